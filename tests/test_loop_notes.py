"""The log says what the risk gate trimmed or dropped once while a rule keeps holding, even as
the note's figures move from tick to tick; the archived plans keep every tick's notes.

The exchange is the real local market and the gate the real one; only the strategy is a test's:
it asks for more than max_order allows, by a different amount each tick."""
from __future__ import annotations

import logging

from keeper.loop import Loop, note_shape
from keeper.model import QUOTE_PRECISION, Intent
from keeper.risk import RiskConfig, RiskGate
from keeper.risk.config import MarketLimits
from keeper.venues.local import LocalVenue
from strategies.base import Strategy

MAX_ORDER_USD = 50


class Oversized(Strategy):
    """Bids worth $100 and a dollar more each tick; from tick `second_from` also a deeper one."""

    name = "oversized"
    description = "asks for more than the risk gate allows"

    def __init__(self, second_from: int) -> None:
        super().__init__()
        self.second_from, self.ticks = second_from, 0

    def quote(self, snapshot):
        self.ticks += 1
        market = snapshot.markets["SOL-PERP"]
        size = (100 + self.ticks) * QUOTE_PRECISION * market.spec.base_precision // market.oracle_price
        wanted = [Intent("SOL-PERP", "bid", size, oracle_offset=-market.oracle_price // 1000)]
        if self.ticks >= self.second_from:
            wanted.append(Intent("SOL-PERP", "bid", size, oracle_offset=-market.oracle_price // 500))
        return wanted


class Plans:
    def __init__(self) -> None:
        self.notes: list[tuple[str, ...]] = []

    def on_tick(self, snapshot, execution) -> None:
        self.notes.append(execution.plan.dropped)


async def test_a_rule_that_keeps_trimming_is_logged_once_and_archived_every_tick(caplog):
    risk = RiskGate(RiskConfig(markets={"SOL-PERP": MarketLimits(max_order_quote=MAX_ORDER_USD * QUOTE_PRECISION)}))
    plans = Plans()
    loop = Loop(LocalVenue(["SOL-PERP"], seed=5), Oversized(second_from=11), risk, observers=(plans,), fast=True)
    with caplog.at_level(logging.INFO, logger="keeper"):
        await loop.run(20)
    trims = [n for notes in plans.notes for n in notes if n.startswith("risk max_order: SOL-PERP bid trimmed from")]
    assert len(trims) == 10 + 2 * 10, plans.notes  # every tick's plan says it: one bid, then two
    assert len({note_shape(n) for n in trims}) == 1 and len(set(trims)) > 10  # one rule, its figures moving
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("risk max_order:")]
    # the first bid's trim when it starts, the second bid's when it joins: not one line a tick
    assert logged == [plans.notes[0][0], plans.notes[10][1]], logged


def test_a_note_s_shape_blanks_its_figures_and_keeps_its_words():
    assert note_shape("risk drawdown_cover: ETH-PERP ask of 74000000 dropped (room 791,609)") == \
        "risk drawdown_cover: ETH-PERP ask of # dropped (room #)"
    assert note_shape("risk guard: SOL-PERP not quoted: oracle 12.5 bps off") != \
        note_shape("risk guard: BTC-PERP not quoted: oracle 12.5 bps off")
