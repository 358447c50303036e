"""keeper localnet: JSON-RPC throughput and a driftpy place-order round trip.

Starts `keeper localnet` in a child process (400 ms slots, makers and takers running), then:
- getMultipleAccounts of every Drift market and oracle account, back to back on one
  keep-alive connection: requests per second;
- sendTransaction of pre-signed SOL transfers, preflight on: transactions per second;
- DriftClient.place_perp_order, confirmation included, then cancel: round-trip p50/p99.

Without the Drift binary ($DRIFT_PROGRAM_SO or ~/.cache/drift-keeper/drift.so) it says so and
measures the first two against a chain of built-in programs only.

    .venv/bin/python bench/localnet_rpc.py [REQUESTS]
"""
from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from bench._timing import percentile
from keeper.errors import UserError
from keeper.localnet import program
from keeper.wallet import write_keypair

PORT = 18_899


def start_localnet(wallet: Path, with_drift: bool) -> subprocess.Popen:
    if with_drift:
        cmd = [sys.executable, "-m", "keeper", "localnet", "--port", str(PORT), "--fund", str(wallet)]
    else:
        cmd = [sys.executable, __file__, "--serve-builtins"]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in child.stdout:
        if "RPC URL" in line:
            return child
    raise SystemExit(f"localnet did not start: exit {child.wait()}: {line.strip()}")


def serve_builtins() -> None:
    from keeper.localnet.chain import Chain
    from keeper.localnet.server import listening

    async def main():
        async with listening(Chain(), PORT) as url:
            print(f"RPC URL {url}", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())


def rpc(http: httpx.Client, method: str, *params):
    reply = http.post("/", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).json()
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply["result"]


def accounts_to_read(http: httpx.Client, with_drift: bool) -> list[str]:
    if not with_drift:
        return [str(Keypair().pubkey()) for _ in range(10)]
    markets = rpc(http, "getProgramAccounts", str(program.DRIFT_PROGRAM_ID),
                  {"encoding": "base64", "dataSlice": {"offset": 0, "length": 0}})
    return [a["pubkey"] for a in markets][:100]


def bench_reads(http: httpx.Client, keys: list[str], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        rpc(http, "getMultipleAccounts", keys, {"encoding": "base64"})
    return n / (time.perf_counter() - start)


def bench_sends(http: httpx.Client, payer: Keypair, n: int) -> float:
    rpc(http, "requestAirdrop", str(payer.pubkey()), 10**12)
    blockhash = rpc(http, "getLatestBlockhash")["value"]["blockhash"]
    to = Keypair().pubkey()
    txs = []
    for i in range(n):  # distinct amounts, so every transaction has its own signature
        ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=1_000_000 + i))
        tx = VersionedTransaction(MessageV0.try_compile(payer.pubkey(), [ix], [], Hash.from_string(blockhash)), [payer])
        txs.append(base64.b64encode(bytes(tx)).decode())
    start = time.perf_counter()
    for raw in txs:
        rpc(http, "sendTransaction", raw, {"encoding": "base64"})
    return n / (time.perf_counter() - start)


async def bench_place_order(url: str, wallet: Keypair, n: int) -> list[float]:
    """Seconds per DriftClient.place_perp_order, confirmed, on SOL-PERP (each cancelled after)."""
    from driftpy.drift_client import DriftClient
    from driftpy.types import MarketType, OrderParams, OrderType, PositionDirection, PostOnlyParams, TxParams
    from solana.rpc.async_api import AsyncClient
    from solana.rpc.commitment import Confirmed

    client = DriftClient(AsyncClient(url, commitment=Confirmed), wallet, env="mainnet", market_lookup_tables=[],
                         perp_market_indexes=[0], spot_market_indexes=[0], tx_params=TxParams(600_000, 0))
    await client.initialize_user()
    await client.subscribe()
    await client.deposit(10_000 * 10**6, 0, client.get_associated_token_account_public_key(0))
    oracle = client.get_oracle_price_data_for_perp_market(0).price
    times = []
    for i in range(n):
        params = OrderParams(order_type=OrderType.Limit(), market_type=MarketType.Perp(),
                             direction=PositionDirection.Long(), base_asset_amount=10**8, market_index=0,
                             price=oracle * 9 // 10 // 100 * 100 - 100 * i, user_order_id=1,
                             post_only=PostOnlyParams.MustPostOnly())
        start = time.perf_counter()
        await client.place_perp_order(params)
        times.append(time.perf_counter() - start)
        # driftpy builds a cancel's accounts from its cached user: wait until the order shows there.
        while not client.get_user().get_open_orders():
            await asyncio.sleep(0.001)
        # Two identical cancels in one blockhash would be one transaction; vary the compute limit.
        client.tx_params = TxParams(600_000 - i, 0)
        await client.cancel_orders()
    await client.unsubscribe()
    await client.connection.close()
    return times


def main() -> None:
    if sys.argv[1:] == ["--serve-builtins"]:
        return serve_builtins()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    try:
        program.find_program()
        with_drift = True
    except UserError as exc:
        print(f"no Drift binary ({exc}); measuring the server on built-in programs only")
        with_drift = False
    with tempfile.TemporaryDirectory() as tmp:
        wallet = Keypair()
        wallet_path = write_keypair(Path(tmp) / "wallet.json", wallet)
        child = start_localnet(wallet_path, with_drift)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{PORT}") as http:
                keys = accounts_to_read(http, with_drift)
                print(f"getMultipleAccounts ({len(keys)} accounts): {bench_reads(http, keys, n):,.0f} requests/s")
                print(f"sendTransaction (SOL transfer, preflight on): {bench_sends(http, Keypair(), n // 2):,.0f} tx/s")
            if with_drift:
                times = sorted(asyncio.run(bench_place_order(f"http://127.0.0.1:{PORT}", wallet, 200)))
                print(f"driftpy place_perp_order round trip, confirmed (200): p50 {percentile(times, 50) * 1e3:.1f} ms, "
                      f"p99 {percentile(times, 99) * 1e3:.1f} ms")
        finally:
            child.terminate()
            child.wait()


if __name__ == "__main__":
    main()
