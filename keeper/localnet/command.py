"""`keeper localnet`: boot the exchange, serve it, and advance slots until Ctrl-C."""
from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from keeper.errors import UserError
from keeper.localnet import flow, genesis, program
from keeper.localnet.chain import Chain
from keeper.localnet.rpc import Rpc
from keeper.localnet.server import HOST, start
from keeper.localnet.subscriptions import Subscriptions
from keeper.venues.local.oracle import load_price_path, price_sources
from keeper.wallet import LOCALNET_WALLET as DEFAULT_WALLET, load_keypair, write_keypair

log = logging.getLogger(__name__)

PRICED = ("SOL-PERP", "BTC-PERP", "ETH-PERP")  # SOL spot shares SOL-PERP's oracle
FUND_SOL = 100 * 10**9  # lamports
FUND_USDC = 100_000 * 10**6  # quote precision


@dataclass
class Options:
    drift_program: Optional[str] = None
    port: int = 8899
    slot_ms: int = 400
    price_path: Optional[str] = None
    fund: Optional[str] = None
    seed: int = 0
    quote_oracle: str = "account"  # genesis.QUOTE_ORACLES


class Localnet:
    """The chain, the exchange on it, its oracles and background flow, stepped one slot at a time."""

    def __init__(self, options: Options, wallet: Keypair):
        self.program_path = path = program.find_program(options.drift_program)
        path_rows = load_price_path(options.price_path) if options.price_path else None
        self.options = options
        self.chain = Chain()
        program.load(self.chain, path)
        self._sources = price_sources(list(PRICED), options.seed, path_rows)
        self._t0 = path_rows[0][0] if path_rows else 0  # a path is followed from its first row
        self._elapsed_ms = 0
        self.exchange = genesis.bootstrap(self.chain, Keypair(), self._prices(), self.chain.unix_timestamp,
                                          options.quote_oracle)
        self.wallet = wallet.pubkey()
        genesis.fund(self.chain, self.exchange, self.wallet, FUND_SOL, FUND_USDC)
        self.flow = flow.Flow(self.chain, self.exchange, seed=options.seed, slot_ms=options.slot_ms)

    def _prices(self) -> dict[str, int]:
        return {name: source.advance(self._t0 + self._elapsed_ms, self.options.slot_ms) for name, source in self._sources.items()}

    def step(self) -> int:
        """One slot: the clock, the oracles, then the makers and takers who react to them."""
        slot = self.chain.advance(int(time.time()))
        self._elapsed_ms += self.options.slot_ms
        genesis.set_prices(self.chain, self.exchange, self._prices(), slot, self.chain.unix_timestamp)
        self.flow.step(slot)
        return slot

    async def run_clock(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not stop.is_set():
            due += self.options.slot_ms / 1000
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                self.step()
            except Exception:  # a bad slot must not stop the chain; say what happened and go on
                log.exception("slot %d: background step failed", self.chain.slot)


def wallet_keypair(fund: Optional[str]) -> tuple[Keypair, Path]:
    """--fund's keypair; without it, a localnet wallet kept in data/localnet/ across runs."""
    if fund:
        return load_keypair(fund), Path(fund).expanduser()
    if DEFAULT_WALLET.exists():
        return load_keypair(DEFAULT_WALLET), DEFAULT_WALLET
    keypair = Keypair()
    return keypair, write_keypair(DEFAULT_WALLET, keypair)


def banner(net: Localnet, url: str, wallet_path: Path) -> str:
    ex = net.exchange
    lines = [
        f"keeper localnet: the Drift program ({net.program_path.name}) on LiteSVM",
        f"  RPC URL     {url}",
        f"  websocket   ws://{HOST}:{net.options.port + 1}",
        f"  program id  {program.DRIFT_PROGRAM_ID}",
        f"  slot time   {net.options.slot_ms} ms",
        "  markets",
    ]
    for market in ex.markets.values():
        oracle = "none (the quote asset is worth exactly 1)" if market.oracle == Pubkey.default() else market.oracle
        lines.append(f"    {market.name:<9} {market.kind} {market.index}  oracle {oracle}")
    lines += [
        f"  wallet      {net.wallet}  ({FUND_SOL // 10**9} SOL, {FUND_USDC // 10**6:,} USDC)",
        f"  keypair     {wallet_path}",
        "",
        "  Point driftpy (or any Solana client) at the RPC URL, with that keypair.",
        "  Ctrl-C stops the chain (its state is not kept).",
    ]
    return "\n".join(lines)


def localnet_command(options: Options) -> int:
    if not 1 <= options.port <= 65534:
        raise UserError(f"--port {options.port}: must be between 1 and 65534 (the websocket takes the next port)")
    if options.slot_ms <= 0:
        raise UserError(f"--slot-ms {options.slot_ms}: must be a positive number of milliseconds")
    _check_ports(options.port)  # before the boot, so a busy port fails fast
    keypair, wallet_path = wallet_keypair(options.fund)
    net = Localnet(options, keypair)
    return asyncio.run(_serve(net, wallet_path))


def _port_error(port: int, exc: OSError) -> UserError:
    return UserError(f"--port {port}: cannot listen on {HOST}:{port} and {port + 1} "
                     f"({exc.strerror or exc}); is another validator running?")


def _check_ports(port: int) -> None:
    for p in (port, port + 1):
        with socket.socket() as probe:
            # As the server will: reuse the address, so only a live listener (not TIME_WAIT) is "in use".
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, p))
            except OSError as exc:
                raise _port_error(port, exc) from None


async def _serve(net: Localnet, wallet_path: Path) -> int:
    subscriptions = Subscriptions(net.chain)
    try:
        runner = await start(Rpc(net.chain), subscriptions, net.options.port)
    except OSError as exc:
        raise _port_error(net.options.port, exc) from None
    url = f"http://{HOST}:{net.options.port}"
    print(banner(net, url, wallet_path), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    clock = asyncio.ensure_future(net.run_clock(stop))
    try:
        await stop.wait()
    finally:
        clock.cancel()
        await subscriptions.close()
        await runner.cleanup()
    print(f"keeper localnet: stopped at slot {net.chain.slot}", file=sys.stderr)
    return 0
