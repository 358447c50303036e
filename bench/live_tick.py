"""Tick overhead on `keeper localnet`: the real Drift program on a local SVM behind JSON-RPC.

Starts `keeper localnet` in a child process (400 ms slots, makers and takers running, the
oracles following a zigzag price path so fixed-price quotes go stale every tick), creates
and funds a Drift user with `keeper init` / `keeper deposit`, opens the DriftVenue the way
`keeper run` does, and times each tick in four parts:

1. snapshot: DriftVenue.snapshot() (driftpy's cached markets and oracles, our User and the
   Pyth accounts read fresh in one getMultipleAccounts,
   book users brought up to date in the Node DLOB helper, its L2/L3 per market);
2. decide: keeper.loop.decide (strategy, snapping, risk, reconcile);
3. plan -> signed bytes: DriftVenue.instruction_groups, packed with split_to_fit and signed
   with TxSender.sign, as execute does, without sending;
4. send + confirm: DriftVenue.execute() on the same plan, as the loop runs it (priority fee
   lookup, blockhash, build and sign again, sendTransaction with preflight, status poll).

1-3 are the keeper's own overhead per tick; 4 is mostly RPC and the program, shown apart.
Writing the archive and the observers are left out (bench/tick_overhead.py measures them).

    .venv/bin/python -m bench.live_tick [TICKS]
"""
from __future__ import annotations

import asyncio
import collections
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from solders.keypair import Keypair
from solders.transaction import VersionedTransaction

import strategies
from bench._timing import percentile
from keeper.cli import parser as keeper_parser
from keeper.errors import UserError
from keeper.localnet import program
from keeper.loop import decide, quiet_gc
from keeper.risk import RiskGate
from keeper.venues.drift.connect import open_drift_venue
from keeper.venues.drift.sender import BUDGET_IXS, split_to_fit
from keeper.venues.base import SkipTick
from keeper.venues.drift.venue import BOOK_DEPTH
from keeper.wallet import write_keypair

KEEPER = [sys.executable, "-m", "keeper"]
SLOT_MS = 400  # the localnet default, close to mainnet's slot time
# `keeper run`'s default --interval. Back to back, most ticks would fall in the slot of the
# one before, see the same oracle and plan nothing.
INTERVAL_S = 1.0
# 25 bps a second (10 a slot): every tick sees the oracle move well past requote_bps, so
# every plan cancels and replaces; quotes 25 bps out stay clear of the vAMM after a slot's
# move, so post-only places aren't refused.
SLOPE_PER_S = 0.0025
LEG_S = 60  # up for a minute, down for a minute: prices stay within +-16%
STRATEGY = ("fixed_spread", {"floating": "false", "spread_bps": "25", "requote_bps": "2"})
RUNS = (["SOL-PERP"], ["SOL-PERP", "BTC-PERP", "ETH-PERP"])


# -- the localnet ---------------------------------------------------------------------------------
def zigzag_path(path: Path) -> Path:
    """Rows every 0.1 s (finer than a slot, so the oracle moves every slot)."""
    rows = []
    for i in range(2 * 3600 * 10):  # two hours: longer than any run
        t = i / 10
        leg = t % (2 * LEG_S)
        rows.append(f"{t:.1f},{100 * (1 + SLOPE_PER_S) ** (leg if leg < LEG_S else 2 * LEG_S - leg):.4f}\n")
    path.write_text("timestamp,price\n" + "".join(rows))
    return path


def free_port_pair() -> int:
    """A port whose successor is free too: the localnet's websocket takes port + 1."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65535:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise SystemExit("no free pair of ports")


def start_localnet(home: Path, wallet: Path, port: int) -> subprocess.Popen:
    # Output goes to a file, not a pipe: nobody reads the pipe once the banner is in, and a
    # full pipe would stall the chain.
    log = home / "localnet.log"
    child = subprocess.Popen([*KEEPER, "localnet", "--port", str(port), "--slot-ms", str(SLOT_MS),
                              "--price-path", str(zigzag_path(home / "path.csv")), "--fund", str(wallet)],
                             cwd=home, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "Ctrl-C" in log.read_text():  # the banner's last line
            return child
        if child.poll() is not None:
            break
        time.sleep(0.1)
    stop(child)
    raise SystemExit(f"keeper localnet did not start:\n{log.read_text()[-2000:]}")


def stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGINT)  # its Ctrl-C path closes the websockets and the server
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def keeper(home: Path, *args: str) -> None:
    result = subprocess.run([*KEEPER, *args], cwd=home, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        raise SystemExit(f"keeper {' '.join(args)} failed:\n{result.stderr}")


# -- building signed bytes without sending ---------------------------------------------------------
def signed_transactions(venue, groups: list[list], blockhash, cu_price: int) -> list[bytes]:
    """What execute does between its RPC calls: pack the groups with split_to_fit, then sign
    each batch as TxSender.send would; the blockhash and the priority fee (RPC answers in the
    real path) are given."""
    sender = venue.sender
    return [bytes(sender.sign(batch, blockhash, cu_price))
            for batch in split_to_fit(sender.payer, groups, sender.config.cu_limit)]


def drift_instructions(raw: bytes) -> int:
    """Instructions in a signed transaction, less the two compute-budget ones the sender adds."""
    return len(VersionedTransaction.from_bytes(raw).message.instructions) - BUDGET_IXS


# -- one run --------------------------------------------------------------------------------------
async def tick(venue, strategy, risk, res: dict) -> None:
    """One tick, timed in parts, its figures added to `res`."""
    r = res["r"]
    # Untimed: a fresh blockhash and the last fee paid, so the signed bytes could be sent as
    # they are (the simulation below checks that they would be accepted).
    blockhash = (await venue.client.connection.get_latest_blockhash()).value.blockhash
    cu_price = venue.sender.last_fee

    t0 = time.perf_counter_ns()
    try:
        snapshot = await venue.snapshot()
    except SkipTick as exc:
        res["skipped"][str(exc)[:120]] += 1
        return
    t1 = time.perf_counter_ns()
    plan = decide(strategy, risk, snapshot)
    t2 = time.perf_counter_ns()
    groups, _ = venue.instruction_groups(plan, snapshot)
    t_ix = time.perf_counter_ns()
    raw = signed_transactions(venue, groups, blockhash, cu_price) if plan else []
    t3 = time.perf_counter_ns()

    r["snapshot"].append((t1 - t0) / 1e6)
    r["decide"].append((t2 - t1) / 1e6)
    r["overhead"].append((t3 - t0) / 1e6)
    for m in snapshot.markets.values():
        r[f"l3 {m.spec.name}"].append(len(m.book.l3 or ()))
        r[f"l2 {m.spec.name}"].append(len(m.book.bids) + len(m.book.asks))
    if not plan:
        return
    r["sign"].append((t3 - t2) / 1e6)
    r["instructions"].append((t_ix - t2) / 1e6)
    r["pack and sign"].append((t3 - t_ix) / 1e6)
    res["shapes"][(len(plan.cancels), len(plan.places), sum(map(drift_instructions, raw)), len(raw),
                   max(map(len, raw)))] += 1
    # The measured bytes are real transactions: signatures checked, program run, nothing kept.
    for tx in raw:
        sim = await venue.client.connection.simulate_transaction(VersionedTransaction.from_bytes(tx), sig_verify=True)
        res["rejected"] += sim.value.err is not None

    t4 = time.perf_counter_ns()
    execution = await venue.execute(plan, snapshot)
    r["round trip"].append((time.perf_counter_ns() - t4) / 1e6)
    res["outcomes"].update(f"{o.action} {'ok' if o.ok else o.error.split(':')[0]}" for o in execution.outcomes)


async def measure(url: str, wallet: Path, markets: list[str], ticks: int) -> dict:
    name, params = STRATEGY
    # `keeper run`'s own parser, so the venue gets exactly its defaults (priority fee auto,
    # websocket subscription, must post-only).
    args = keeper_parser().parse_args(["run", "--network", url, "--keypair", str(wallet), "--markets", ",".join(markets)])
    venue = await open_drift_venue(args, markets)
    strategy, risk = strategies.build(name, params), RiskGate()
    quiet_gc()  # as Loop does, so the collector's pauses are the keeper's, not the bench's
    res = {"r": collections.defaultdict(list), "shapes": collections.Counter(), "outcomes": collections.Counter(),
           "skipped": collections.Counter(), "rejected": 0}
    try:
        for _ in range(ticks):
            started = time.monotonic()
            await tick(venue, strategy, risk, res)
            await asyncio.sleep(max(0.0, INTERVAL_S - (time.monotonic() - started)))  # as Loop.run paces
    finally:
        # Leave no orders behind, whatever happened above.
        res["cancelled"] = await venue.cancel_all()
        await venue.close()
    return res


# -- printing -------------------------------------------------------------------------------------
def figures(values: list[float]) -> str:
    if not values:
        return "no samples"
    s = sorted(values)
    return f"p50 {percentile(s, 50):7.2f} ms   p99 {percentile(s, 99):7.2f} ms   max {s[-1]:7.2f} ms   (n={len(s)})"


def report(markets: list[str], ticks: int, res: dict) -> None:
    r = res["r"]
    name, params = STRATEGY
    print(f"\n{name} {' '.join(f'{k}={v}' for k, v in params.items())} on {','.join(markets)}: "
          f"{ticks} ticks, {len(r['sign'])} with a non-empty plan, {sum(res['skipped'].values())} skipped")
    for why, n in res["skipped"].most_common():
        print(f"  skipped (SkipTick) x{n}: {why}")
    book = ", ".join(f"{m} {statistics.median(r[f'l3 {m}']):.0f} L3 orders, {statistics.median(r[f'l2 {m}']):.0f} L2 levels"
                     for m in markets if r[f"l3 {m}"])
    print(f"  order book per snapshot, median (L2: both sides, vAMM merged, {BOOK_DEPTH} a side at most): {book}")
    for (cancels, places, ixs, txs, size), n in sorted(res["shapes"].items(), key=lambda kv: -kv[1]):
        print(f"  plan: {cancels} cancels + {places} places -> {ixs} Drift instructions in {txs} transaction(s), "
              f"largest {size} B: {n} ticks")
    print(f"  (1) snapshot                    {figures(r['snapshot'])}")
    print(f"  (2) decide                      {figures(r['decide'])}")
    print(f"  (3) plan -> signed tx bytes     {figures(r['sign'])}")
    print(f"      of which instructions       {figures(r['instructions'])}")
    print(f"      of which pack+compile+sign  {figures(r['pack and sign'])}")
    print(f"      keeper overhead (1+2+3)     {figures(r['overhead'])}")
    print(f"  (4) send + confirm (execute)    {figures(r['round trip'])}")
    print(f"  signed bytes refused by simulateTransaction: {res['rejected']}; outcomes: "
          f"{', '.join(f'{k} x{n}' for k, n in sorted(res['outcomes'].items()))}; "
          f"cancelled at the end: {res['cancelled']}")


def main() -> None:
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    try:
        program.find_program()
    except UserError as exc:
        raise SystemExit(f"needs the Drift program binary: {exc}")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        wallet = write_keypair(home / "wallet.json", Keypair())
        port = free_port_pair()
        child = start_localnet(home, wallet, port)
        try:
            url = f"http://127.0.0.1:{port}"
            keeper(home, "init", "--yes", "--network", url, "--keypair", str(wallet))
            keeper(home, "deposit", "10000", "--network", url, "--keypair", str(wallet))
            print(f"keeper localnet ({SLOT_MS} ms slots, oracle zigzag {SLOPE_PER_S * 1e4:.0f} bps/s), "
                  f"one Drift user with 10,000 USDC, a tick every {INTERVAL_S:g} s; times per tick")
            for markets in RUNS:
                report(markets, ticks, asyncio.run(measure(url, wallet, markets, ticks)))
        finally:
            stop(child)


if __name__ == "__main__":
    main()
