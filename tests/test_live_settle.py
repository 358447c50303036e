"""Settling perp PnL on the real program (`keeper localnet`): the plan's settle_pnl
transaction lands, and the program records the settled PnL."""
from __future__ import annotations

import json
import subprocess

import pytest

from keeper.archive.reader import open_session
from keeper.model import Execution
from tests.live import localnet

PORT = 29_471  # and 29_472, its websocket: no other test uses them
PERPS = "SOL-PERP,BTC-PERP,ETH-PERP"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    # 0.05%/s: fixed quotes still get run over, and the oracle stays near its TWAP
    with localnet(tmp_path_factory.mktemp("localnet"), PORT, climb_pct=0.05) as chain:
        yield chain


def test_settle_pnl_moves_the_perp_pnl_into_the_usdc_deposit(chain):
    """With settle_pnl_s = 2 the plan settles the perp markets we hold or traded every 2 s: the
    program takes the transaction, and what was our unsettled PnL is now in the USDC deposit.
    (The program refuses a settle, PriceBandsBreached, while the oracle is far from its TWAP:
    hence this chain's slow climb.)"""
    risk = chain.home / "settle.toml"
    risk.write_text("[account]\nsettle_pnl_s = 2\n")
    result = subprocess.run(chain.run_args("--ticks", "20", "--param", "spread_bps=2", "--risk", str(risk),
                                           markets=PERPS), cwd=chain.home, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    executions = [r.value for r in open_session(chain.last_session()).records() if isinstance(r.value, Execution)]
    settles = [o for e in executions for o in e.outcomes if o.action == "settle"]
    assert settles, "the oracle climbed past fixed quotes for 20 ticks: a position must have been built"
    assert all(o.ok for o in settles), [o.error for o in settles if not o.ok]
    assert [o.market for o in settles] == [m for e in executions for m in e.plan.settles]
    assert "settled PnL into USDC: " in result.stderr + result.stdout
    settled = {p.market_index: p.settled_pnl for p in chain.user_account().perp_positions if p.settled_pnl}
    assert settled, "the program recorded no settled PnL"


def test_a_flatten_on_stop_settles_what_it_closed(chain):
    """The stop's flatten closes the positions, then its last tick settles their PnL: nothing of
    it is left unsettled on the program."""
    result = subprocess.run(chain.run_args("--ticks", "15", "--param", "spread_bps=2", "--on-stop", "flatten",
                                           markets=PERPS), cwd=chain.home, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    session = chain.last_session()
    summary = json.loads((session / "summary.json").read_text())
    assert summary["on_stop"]["left"] and set(summary["on_stop"]["left"].values()) == {"flat"}, summary["on_stop"]
    last = [r.value for r in open_session(session).records() if isinstance(r.value, Execution)][-1]
    assert set(last.plan.settles) >= set(summary["on_stop"]["left"]), last.plan
    assert all(o.ok for o in last.outcomes if o.action == "settle"), last.outcomes
    indexes = {"SOL-PERP": 0, "BTC-PERP": 1, "ETH-PERP": 2}
    for p in chain.user_account().perp_positions:
        if p.market_index in (indexes[m] for m in last.plan.settles):
            assert p.base_asset_amount == 0 and p.quote_asset_amount == 0, p  # flat and nothing left to settle
