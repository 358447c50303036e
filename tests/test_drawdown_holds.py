"""The hard drawdown limit is a promise: on collapses with one-tick jumps of -42% and +180%
(keeper/research/scenarios.py collapse_path), equity never falls more than the limit below its
peak, whatever the strategy, with the default flow of the local market."""
from __future__ import annotations

import asyncio

import pytest

import strategies
from keeper.loop import Loop
from keeper.research.scenarios import collapse_path
from keeper.risk import RiskGate, from_dict
from keeper.venues.local import LocalVenue

COLLATERAL = 10_000 * 10**6
HARD = COLLATERAL * 20 // 100  # the default hard limit: 20% of the starting equity


def _run(strategy: str, params: dict[str, str], seed: int, markets=("SOL-PERP",)) -> tuple[int, str, list]:
    path = collapse_path(seed, seconds=1800)
    venue = LocalVenue(list(markets), seed=seed, price_path=path, collateral=COLLATERAL)
    risk = RiskGate(from_dict({}))
    equity = []

    class Equity:
        def on_tick(self, snapshot, execution):
            equity.append(snapshot.user.equity)

    loop = Loop(venue, strategies.build(strategy, params, markets=list(markets)), risk, observers=(Equity(),),
                fast=True, quote_ttl_s=30)
    asyncio.run(loop.run(len(path)))
    return risk.drawdown.max_drawdown, risk.state, equity


def _max_drawdown(equity: list[int]) -> int:
    peak, worst = equity[0], 0
    for e in equity:
        peak = max(peak, e)
        worst = max(worst, peak - e)
    return worst


@pytest.mark.fault("data", run=True)
@pytest.mark.parametrize("strategy, params, markets", [
    ("mean_reversion", {"size_usd": "500", "max_position_usd": "5000"}, ("SOL-PERP",)),  # buys every dip: the worst case
    ("fixed_spread", {"size_usd": "500"}, ("SOL-PERP",)),
    ("inventory_skew", {}, ("SOL-PERP",)),
    # a perp short hedged by SOL deposits: the cover nets them, at the deposits' maintenance asset weight
    ("spot_hedge", {"size_usd": "500"}, ("SOL-PERP", "SOL")),
], ids=["mean_reversion", "fixed_spread", "inventory_skew", "spot_hedge"])
@pytest.mark.parametrize("seed", [1, 2])
def test_a_collapse_with_jumps_never_carries_equity_past_the_hard_limit(strategy, params, markets, seed, tally):
    gate_drawdown, state, equity = _run(strategy, params, seed, markets)
    worst = _max_drawdown(equity)  # measured on every snapshot's equity, independently of the gate
    assert worst == gate_drawdown
    tally.drawdown_overshoot(worst, HARD)


def test_the_collapse_path_has_the_class_of_jumps():
    path = collapse_path(3, seconds=1800)
    moves = [b / a for (_, a), (_, b) in zip(path, path[1:])]
    assert min(moves) == pytest.approx(0.58, abs=0.02) and max(moves) == pytest.approx(2.80, abs=0.1)
    assert path[-1][1] == pytest.approx(path[0][1] * 0.01, rel=0.01)


def test_without_the_breakers_the_local_market_liquidates_and_the_summary_says_so(tmp_path):
    import json
    import subprocess

    from tests.conftest import KEEPER

    path = tmp_path / "collapse.csv"
    path.write_text("timestamp,price\n" + "".join(f"{ms // 1000},{price / 1e6:.6f}\n"
                                                  for ms, price in collapse_path(1, seconds=1800)))
    (tmp_path / "off.toml").write_text("[account]\nbreakers = false\n")
    result = subprocess.run([*KEEPER, "run", "--fast", "--ticks", "1800", "--seed", "1", "--markets", "SOL-PERP",
                             "--strategy", "fixed_spread", "--param", "size_usd=500", "--price-path", str(path),
                             "--risk", str(tmp_path / "off.toml"), "--archive-dir", "s"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (session,) = (tmp_path / "s").iterdir()
    summary = json.loads((session / "summary.json").read_text())
    assert summary["liquidations"] > 0
    assert f"liquidated {summary['liquidations']} time(s)" in result.stdout
