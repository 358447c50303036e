"""Tick overhead from snapshot to executed plan, excluding the venue's own time.

Three perp markets on the local market. Two cases:
- "as shipped": each market's real book shape (SOL-PERP ~450 resting orders, BTC ~100,
  ETH ~75) and snapshots carrying 20 levels a side;
- "3 x 450 full L3": every market gets the real SOL-PERP book shape (~450 orders) and the
  snapshot carries every level and every L3 order, the heaviest snapshot the keeper sees.
The keeper's work per tick (strategy, snapping, risk, reconcile, archive, observers) is the
tick's wall time minus the time spent inside the venue.

    .venv/bin/python bench/tick_overhead.py [TICKS]
"""
from __future__ import annotations

import asyncio
import importlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import TimedVenue, percentile  # noqa: E402

import strategies  # noqa: E402
from keeper.archive.writer import SessionWriter  # noqa: E402
from keeper.loop import Loop  # noqa: E402
from keeper.report import ReportObserver  # noqa: E402
from keeper.risk import RiskGate  # noqa: E402
from keeper.venues.local import LocalVenue  # noqa: E402
local_specs = importlib.import_module("keeper.venues.local.specs")  # the package re-exports a specs() function
sim_views = importlib.import_module("keeper.venues.sim.views")

MARKETS = ["SOL-PERP", "BTC-PERP", "ETH-PERP"]


async def measure(strategy_name: str, ticks: int, folder: str) -> dict:
    venue = TimedVenue(LocalVenue(MARKETS, seed=11))
    manifest = {"network": "local", "strategy": strategy_name, "params": {}, "seed": 11, "markets": MARKETS,
                "interval_ms": 1000, "price_path": None, "started_at": "2026-01-01T00:00:00+00:00",
                "versions": {"keeper": "bench", "driftpy": "0.8.89", "python": sys.version.split()[0]}, "argv": []}
    writer = SessionWriter.create(folder, manifest)
    loop = Loop(venue, strategies.build(strategy_name), RiskGate(), writer, (ReportObserver(),), fast=True)
    overhead, l3_in_snapshots = [], []
    for _ in range(ticks):
        before_venue = venue.spent_ns
        start = time.perf_counter_ns()
        execution = await loop.tick()
        total = time.perf_counter_ns() - start
        overhead.append((total - (venue.spent_ns - before_venue)) / 1e6)
    snap = await venue.venue.snapshot()
    for market in snap.markets.values():
        l3_in_snapshots.append(len(market.book.l3 or ()))
    orders_in_books = [sum(1 for _ in m.book.orders()) for m in venue.venue.exchange.markets.values()]
    await venue.cancel_all()
    writer.close()
    overhead.sort()
    return {"p50": percentile(overhead, 50), "p99": percentile(overhead, 99), "max": overhead[-1],
            "l3": l3_in_snapshots, "books": orders_in_books, "plans": execution}


def full_books() -> None:
    """Every market shaped like the real SOL-PERP book, and snapshots with the whole book."""
    sol = local_specs.shapes()["SOL-PERP"]
    local_specs.shapes = lambda: {name: sol for name in MARKETS}
    sim_views.BOOK_DEPTH = 10**9


def main() -> None:
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    with tempfile.TemporaryDirectory() as folder:
        for case in ("as shipped", "3 x 450 full L3"):
            if case != "as shipped":
                full_books()
            for name in ("fixed_spread", "mean_reversion"):
                r = asyncio.run(measure(name, ticks, folder))
                print(f"tick overhead [{case}], {name}, {ticks} ticks, {','.join(MARKETS)}: "
                      f"p50 {r['p50']:.3f} ms, p99 {r['p99']:.3f} ms, max {r['max']:.3f} ms "
                      f"(resting orders per book {r['books']}, L3 orders per snapshot {r['l3']})")


if __name__ == "__main__":
    main()
