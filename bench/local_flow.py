"""The local market's flow, measured: a symmetric maker on a crash and on calm walks, fill
rates by distance from the oracle, and how far SOL spot's book strays from SOL-PERP's oracle.

Every run is a real `keeper run --fast` (1 s ticks) of fixed_spread on SOL-PERP; figures come
from each session's summary.json. The informed share is the default unless said otherwise.

    .venv/bin/python -m bench.local_flow
"""
from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

KEEPER = [sys.executable, "-m", "keeper"]
START, CRASH_SECONDS, CRASH_FALL = 1_701_790_320, 300, 0.5


def crash_csv(path: Path) -> Path:
    """-50% over 300 s, linearly."""
    path.write_text("timestamp,price\n" + "".join(
        f"{START + t},{100 * (1 - CRASH_FALL * t / CRASH_SECONDS):.6f}\n" for t in range(CRASH_SECONDS + 1)))
    return path


def run(home: Path, seed: int, ticks: int, *extra: str) -> dict:
    """summary.json of one fixed_spread run on SOL-PERP."""
    archive = home / f"s{len(list(home.glob('s*')))}"
    result = subprocess.run([*KEEPER, "run", "--strategy", "fixed_spread", "--markets", "SOL-PERP", "--fast",
                             "--ticks", str(ticks), "--seed", str(seed), "--archive-dir", str(archive), *extra],
                            cwd=home, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads((next(archive.iterdir()) / "summary.json").read_text())


def pnl(summary: dict) -> float:
    return summary["total"]["total_pnl_usd"]


def fills(summary: dict) -> int:
    return summary["total"]["fills"]


async def spot_gap(ticks: int = 1800) -> float:
    """The largest |SOL spot mid / SOL-PERP oracle - 1| over a run, in bps."""
    from keeper.venues.local import LocalVenue

    v = LocalVenue(["SOL-PERP", "SOL"], seed=1)
    worst = 0.0
    for _ in range(ticks):
        snap = await v.snapshot()
        book, oracle = snap.markets["SOL"].book, snap.markets["SOL-PERP"].oracle_price
        worst = max(worst, abs((book.best_bid + book.best_ask) / 2 / oracle - 1) * 1e4)
    return worst


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        path = str(crash_csv(home / "crash.csv"))
        crash = [run(home, seed, CRASH_SECONDS, "--price-path", path) for seed in range(1, 9)]
        calm = [run(home, seed, 1800, "--toxicity", "0") for seed in range(1, 7)]
        print(f"crash -{CRASH_FALL:.0%} over {CRASH_SECONDS} s, default toxicity, seeds 1-8: PnL $"
              + ", ".join(f"{pnl(s):,.0f}" for s in crash)
              + f"; mean ${statistics.mean(map(pnl, crash)):,.0f}; "
              f"{sum(pnl(s) < 0 for s in crash)}/8 lose; max drawdown up to ${max(s['max_drawdown_quote'] for s in crash) / 1e6:,.0f}")
        print("calm walk, toxicity 0, 30 min, seeds 1-6: PnL $" + ", ".join(f"{pnl(s):,.1f}" for s in calm)
              + f"; mean ${statistics.mean(map(pnl, calm)):,.1f} (sd {statistics.stdev(map(pnl, calm)):,.1f})")
        for bps in (5, 8, 10, 15):
            hour = [run(home, seed, 3600, "--param", f"spread_bps={bps}") for seed in (1, 2)]
            print(f"quotes {bps:>2} bps from the oracle, 1 h, seeds 1-2: {statistics.mean(map(fills, hour)):.0f} fills/h")
    print(f"SOL spot mid vs SOL-PERP oracle, 30 min: at most {asyncio.run(spot_gap()):.1f} bps apart")


if __name__ == "__main__":
    main()
