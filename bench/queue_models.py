"""Queue models against hftbacktest and the naive rule, on ../shared/perf's seeded streams.

Generates the coarse-tick stream (gen_stream.py -T 3600 --seed 42 --tick 0.01) and the
default-tick one into a tmp folder, runs the perf README's reference maker through every
queue model (keeper.venues.sim.fills.RestingFill, the code path the replay uses for one
order) and prints filled lots per model next to hftbacktest's RiskAdverseQueueModel run
(hbt_baseline.py) and the naive plain loop (py_reference.py), both run beside it, plus each
model's throughput as a ratio to `naive` through the same driver.

The reference maker: each tick cancel both quotes, quote 1 lot at floor(mid*(1-h)/tick) and
ceil(mid*(1+h)/tick), h = 5 bp, no bid at a position of 10 lots or more, no ask at -10 or
less, no fees; latency one slot (a quote fills from the next tick's flow on), as
hftbacktest's 10 ms entry latency does on this 1 s stream. hftbacktest quotes 1.0 (10 lots)
with no partial fills and a limit of 10.0; its queue ignores our size, so its fill count
compares with our count of one-lot fills.

hftbacktest wants numpy 2, which the locked set cannot have: give it its own interpreter,
    python3.11 -m venv .venv/hbt && .venv/hbt/bin/pip install hftbacktest==2.4.4 numba
(or set HBT_PYTHON). Without it the README's figures are printed and marked as not run.

    .venv/bin/python bench/queue_models.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from keeper.model import BASE_PRECISION, PRICE_PRECISION, Book, Level, Trade
from keeper.venues.sim.fills import DEFAULT_LATENCY_SLOTS, RestingFill
from keeper.venues.sim.queue import DEFAULT_QUEUE_MODEL, QUEUE_MODELS, make_queue_model

ROOT = Path(__file__).resolve().parents[1]
PERF = ROOT.parent / "shared" / "perf"
HALF_SPREAD = 5e-4
MAX_POSITION_LOTS = 10
# ../shared/perf/README.md, measured with seed 42 and 3,600 ticks: (hftbacktest, naive)
README_FIGURES = {"coarse": (224, 416), "default": (155, 155)}
STREAMS = {"coarse": ["--tick", "0.01"], "default": []}


def load(prefix: Path) -> tuple[dict, list]:
    """The stream as the replay sees it: per tick a Book and its trades in Drift precisions,
    and the tick size the strategy rounds to."""
    meta = json.loads(prefix.with_suffix(".meta.json").read_text())
    ticks = []
    with open(prefix.with_suffix(".jsonl")) as f:
        for line in f:
            d = json.loads(line)
            book = Book(tuple(Level(round(p * PRICE_PRECISION), round(s * BASE_PRECISION)) for p, s in d["bids"]),
                        tuple(Level(round(p * PRICE_PRECISION), round(s * BASE_PRECISION)) for p, s in d["asks"]))
            trades = tuple(Trade(round(p * PRICE_PRECISION), round(s * BASE_PRECISION), "bid" if side > 0 else "ask")
                           for p, s, side in d["trades"])
            ticks.append((book, trades))
    return meta, ticks


def reference_maker(ticks: list, meta: dict, model_name: str, qty_lots: int = 1,
                    latency_slots: int = DEFAULT_LATENCY_SLOTS) -> int:
    """Runs the reference strategy; returns the base filled."""
    model = make_queue_model(model_name)
    tick = round(meta["tick"] * PRICE_PRECISION)
    lot = round(meta["lot"] * BASE_PRECISION)
    size, limit = qty_lots * lot, MAX_POSITION_LOTS * qty_lots * lot
    position = filled = 0
    bid = ask = None
    for k, (book, trades) in enumerate(ticks):
        if bid is not None:
            got = bid.advance(k, book, trades)
            position, filled = position + got, filled + got
        if ask is not None:
            got = ask.advance(k, book, trades)
            position, filled = position - got, filled + got
        bid = ask = None  # cancel both
        if not (book.bids and book.asks):
            continue
        best_bid, best_ask = book.bids[0].price, book.asks[0].price
        mid = (best_bid + best_ask) / 2 / tick  # strategy maths in floats, prices back on the tick grid
        bid_price = math.floor(mid * (1 - HALF_SPREAD)) * tick
        ask_price = math.ceil(mid * (1 + HALF_SPREAD)) * tick
        if position < limit and bid_price < best_ask:  # post-only: a crossing bid is refused
            bid = RestingFill(model, "bid", bid_price, size, k, latency_slots, book)
        if position > -limit and ask_price > best_bid:
            ask = RestingFill(model, "ask", ask_price, size, k, latency_slots, book)
    return filled


def run_json(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def hbt_python() -> str | None:
    candidates = [os.environ.get("HBT_PYTHON"), str(ROOT / ".venv" / "hbt" / "bin" / "python"), sys.executable]
    for python in candidates:
        if python and Path(python).exists() and subprocess.run(
                [python, "-c", "import hftbacktest, numba"], capture_output=True).returncode == 0:
            return python
    return None


def bench_stream(name: str, folder: Path, repeat: int, hbt: str | None) -> None:
    prefix = folder / name
    run_json([sys.executable, str(PERF / "gen_stream.py"), "-T", "3600", "--seed", "42", *STREAMS[name], "--out", str(prefix)])
    meta, ticks = load(prefix)
    lot = round(meta["lot"] * BASE_PRECISION)
    naive_ref = run_json([sys.executable, str(PERF / "py_reference.py"), str(prefix) + ".jsonl"])
    if hbt:
        hbt_fills, hbt_note = run_json([hbt, str(PERF / "hbt_baseline.py"), str(prefix) + ".npz"])["fills"], "run beside"
    else:
        hbt_fills, hbt_note = README_FIGURES[name][0], "NOT RUN: hftbacktest is not importable; the README figure"

    best: dict[str, float] = {}
    fills: dict[str, int] = {}
    for _ in range(repeat):  # interleaved, best of `repeat`, so load on the machine hits every model alike
        for model in QUEUE_MODELS:
            start = time.perf_counter()
            fills[model] = reference_maker(ticks, meta, model)
            best[model] = min(best.get(model, math.inf), time.perf_counter() - start)
    ten_lots = reference_maker(ticks, meta, DEFAULT_QUEUE_MODEL, qty_lots=10)

    print(f"\nstream {name}: gen_stream.py {' '.join(['-T', '3600', '--seed', '42', *STREAMS[name]])} "
          f"(tick {meta['tick']}, lot {meta['lot']}, {meta['n_trades']} trades), h = 5 bp, latency 1 slot")
    print(f"  hftbacktest RiskAdverseQueueModel: {hbt_fills} fills ({hbt_note})")
    print(f"  py_reference.py naive rule:        {naive_ref['fills']} fills (run beside, {naive_ref['ticks_per_s']:,.0f} ticks/s incl. json)")
    print(f"  {'model':<12} {'filled lots':>11} {'vs hbt':>8} {'vs naive ref':>12} {'ticks/s':>9} {'time / naive':>12}")
    for model in QUEUE_MODELS:
        lots = fills[model] / lot
        print(f"  {model:<12} {lots:>11g} {lots / hbt_fills - 1:>+8.1%} {lots / naive_ref['fills'] - 1:>+12.1%} "
              f"{len(ticks) / best[model]:>9,.0f} {best[model] / best['naive']:>12.2f}")
    print(f"  {DEFAULT_QUEUE_MODEL}, 10-lot quotes with partial fills (limit 100 lots): {ten_lots / lot:g} lots "
          f"= {ten_lots / lot / 10:g} ten-lot quotes")
    print("  prob and l3_fifo can only match risk_averse here: each quote lives one interval, so the one level change "
          "it sees comes after its trades, and the stream has no L3")
    default_gap = fills[DEFAULT_QUEUE_MODEL] / lot / hbt_fills - 1
    naive_gap = fills["naive"] / lot / naive_ref["fills"] - 1
    print(f"  targets: {DEFAULT_QUEUE_MODEL} within 15% of hftbacktest: {default_gap:+.1%} "
          f"{'ok' if abs(default_gap) <= 0.15 else 'MISSED'}; naive within 10% of the naive figure: {naive_gap:+.1%} "
          f"{'ok' if abs(naive_gap) <= 0.10 else 'MISSED'}; {DEFAULT_QUEUE_MODEL} time / naive "
          f"{best[DEFAULT_QUEUE_MODEL] / best['naive']:.2f} {'ok' if best[DEFAULT_QUEUE_MODEL] <= 1.2 * best['naive'] else 'MISSED'} (at most 1.20)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per model; the best counts")
    args = parser.parse_args()
    hbt = hbt_python()
    print(f"hftbacktest: {'via ' + hbt if hbt else 'not importable; figures from ../shared/perf/README.md'}")
    with tempfile.TemporaryDirectory() as folder:
        for name in STREAMS:
            bench_stream(name, Path(folder), args.repeat, hbt)


if __name__ == "__main__":
    main()
