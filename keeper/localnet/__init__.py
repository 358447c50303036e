"""`keeper localnet`: the real Drift program in LiteSVM, served as a Solana JSON-RPC endpoint.

chain.py    LiteSVM plus an account index, signature history, blockhashes and a slot clock
rpc.py      the JSON-RPC methods (HTTP) and subscriptions (websocket, on port + 1)
program.py  finding and loading the Drift program binary
genesis.py  the exchange bootstrap: state, USDC, spot and perp markets, oracles, funding
oracle.py   Pyth price accounts whose price follows a path as slots advance
flow.py     background makers and takers, so the book is never empty and quotes get filled
command.py  the `keeper localnet` command
"""
