"""Max drawdown on a crash path, drawdown breakers on and off.

SOL-PERP's oracle slides 90% over one hour (exponentially: the same % each second) on the
local market, and mean_reversion, which buys dips, is given room for a $5,000 position in
$500 clips. Each run is a real `keeper run --fast` with 1 s ticks; the figures come from the
session's summary.json.

    .venv/bin/python -m bench.crash_path
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

KEEPER = [sys.executable, "-m", "keeper"]
START, SECONDS, FALL = 1_700_000_000, 3_600, 0.9
RUN = ["run", "--strategy", "mean_reversion", "--param", "max_position_usd=5000", "--param", "size_usd=500",
       "--markets", "SOL-PERP", "--fast", "--ticks", str(SECONDS), "--seed", "1"]


def crash_csv(path: Path) -> Path:
    left = 1 - FALL
    path.write_text("timestamp,price\n" + "".join(f"{START + t},{100 * left ** (t / SECONDS):.6f}\n"
                                                  for t in range(SECONDS + 1)))
    return path


def run(home: Path, breakers: bool) -> tuple[int, dict, Path]:
    """(exit code, summary.json, session folder) of one run on the crash path."""
    archive = home / ("on" if breakers else "off")
    extra = []
    if not breakers:
        (home / "off.toml").write_text("[account]\nbreakers = false\n")
        extra = ["--risk", str(home / "off.toml")]
    result = subprocess.run([*KEEPER, *RUN, "--price-path", str(crash_csv(home / "crash.csv")),
                             "--archive-dir", str(archive), *extra], cwd=home, capture_output=True, text=True)
    session = next(archive.iterdir())
    return result.returncode, json.loads((session / "summary.json").read_text()), session


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"crash path: SOL-PERP oracle -{FALL:.0%} over {SECONDS} s; mean_reversion, $5,000 position cap, "
              f"$10,000 collateral; hard breaker at 20% of it")
        for breakers in (True, False):
            code, summary, _ = run(Path(tmp), breakers)
            dd = summary["max_drawdown_quote"] / 1e6
            print(f"  breakers {'on ' if breakers else 'off'}: max drawdown ${dd:,.2f} ({dd / 100:.1f}% of budget), "
                  f"state {summary['risk_state']} after {summary['ticks']} ticks, exit {code}, "
                  f"{summary['cancelled_on_shutdown']} keeper order(s) cancelled on shutdown")


def collapse(seed: int, breakers: bool) -> tuple[int, int]:
    """(max drawdown, liquidations) of mean_reversion on a -99% collapse with -42%/+180% ticks."""
    import asyncio

    import strategies
    from keeper.loop import Loop
    from keeper.research.scenarios import collapse_path
    from keeper.risk import RiskGate, from_dict
    from keeper.venues.local import LocalVenue

    path = collapse_path(seed)
    venue = LocalVenue(["SOL-PERP"], seed=seed, price_path=path, collateral=10_000 * 10**6)
    risk = RiskGate(from_dict({} if breakers else {"account": {"breakers": False}}))
    strategy = strategies.build("mean_reversion", {"size_usd": "500", "max_position_usd": "5000"}, markets=["SOL-PERP"])
    asyncio.run(Loop(venue, strategy, risk, fast=True, quote_ttl_s=30).run(len(path)))
    return risk.drawdown.max_drawdown, venue.exchange.liquidations


if __name__ == "__main__":
    main()
    print("collapse: -99% over 3,600 ticks, volatility building tenfold, one-tick jumps of -42%, +180%, -42%; "
          "mean_reversion as above; hard limit $2,000")
    for seed in (1, 2, 3):
        for breakers in (True, False):
            dd, liquidations = collapse(seed, breakers)
            print(f"  seed {seed} breakers {'on ' if breakers else 'off'}: max drawdown ${dd / 1e6:,.2f}, "
                  f"overshoot ${max(0, dd - 2_000 * 10**6) / 1e6:,.2f}, liquidations {liquidations}")
