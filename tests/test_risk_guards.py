"""The risk gate's data guards: a stale oracle, a stale book, or an oracle that an independent
reading contradicts takes the market out of quoting, and the reconciler pulls what rests there."""
from __future__ import annotations


import pytest

from keeper.loop import decide
from keeper.model import PRICE_PRECISION, Intent, OpenOrder, replace
from keeper.risk import AccountLimits, RiskConfig, RiskGate
from strategies import build
from tests.conftest import SOL_PERP, market, snapshot

ETH = replace(SOL_PERP, name="ETH-PERP", market_index=2)
BID = Intent("SOL-PERP", "bid", 10**9, price=84 * PRICE_PRECISION)
ETH_BID = Intent("ETH-PERP", "bid", 10**9, price=84 * PRICE_PRECISION)


def two_markets(sol=None, eth=None, book_slot=None):
    snap = snapshot({"SOL-PERP": sol or market(), "ETH-PERP": eth or market(ETH)})
    return replace(snap, book_slot=book_slot)


def test_fresh_data_passes_everything():
    kept, notes = RiskGate().check([BID, ETH_BID], two_markets(book_slot=1000))
    assert kept == [BID, ETH_BID] and notes == []


@pytest.mark.fault("data")
def test_stale_oracle_takes_only_that_market_out():
    sol = replace(market(), oracle_slot=1000 - 51)
    kept, notes = RiskGate().check([BID, ETH_BID], two_markets(sol=sol))
    assert kept == [ETH_BID]
    assert notes == ["risk guard: SOL-PERP not quoted: oracle 51 slots old (max 50)"]
    at_limit = replace(market(), oracle_slot=1000 - 50)
    assert RiskGate().check([BID], two_markets(sol=at_limit))[0] == [BID]


@pytest.mark.fault("data")
def test_stale_book_takes_every_market_out():
    kept, notes = RiskGate(RiskConfig(account=AccountLimits(max_book_lag_slots=10))).check([BID, ETH_BID], two_markets(book_slot=989))
    assert kept == []
    assert len(notes) == 2 and all("order book 11 slots old" in n for n in notes)


@pytest.mark.fault("data")
def test_reference_price_disagreement_takes_the_market_out():
    oracle = 85 * PRICE_PRECISION
    close = replace(market(oracle=oracle), reference_price=oracle * 10_040 // 10_000)  # 40 bps
    far = replace(market(oracle=oracle), reference_price=oracle * 10_060 // 10_000)  # 60 bps
    assert RiskGate().check([BID], two_markets(sol=close))[0] == [BID]
    kept, notes = RiskGate().check([BID], two_markets(sol=far))
    assert kept == [] and "bps from the Pyth reading" in notes[0]


@pytest.mark.fault("data")
def test_a_guarded_market_has_its_resting_quotes_cancelled():
    """Through the whole decision: the strategy still wants quotes, the gate drops them, and the
    reconciler plans the cancel of what rests, so nothing of ours stays on a stale market."""
    strategy = build("fixed_spread", {})
    stale = replace(market(), oracle_slot=0)
    resting = (OpenOrder(7, 1, "SOL-PERP", "bid", 84_000_000, 10**9), OpenOrder(8, 2, "SOL-PERP", "ask", 86_000_000, 10**9))
    snap = snapshot({"SOL-PERP": stale}, orders=resting)
    plan = decide(strategy, RiskGate(), snap)
    assert plan.places == ()
    assert sorted(o.order_id for o in plan.cancels) == [7, 8]
    assert any("oracle 1000 slots old" in note for note in plan.dropped)
