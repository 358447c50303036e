"""snapshot.last_plan: what became of the previous plan, as the loop hands it to the strategy."""
from __future__ import annotations

import asyncio

import strategies
from keeper.archive import codec, schema
from keeper.loop import Loop
from keeper.model import Execution, Fill, Intent, OpenOrder, Outcome, Placement, Plan, Snapshot
from keeper.outcomes import last_plan
from keeper.reconcile import reconcile
from keeper.risk import RiskConfig, RiskGate
from keeper.venues.local import LocalVenue
from tests.conftest import snapshot

BID = Intent("SOL-PERP", "bid", 10**9, price=84_000_000)
ASK = Intent("SOL-PERP", "ask", 10**9, price=86_000_000)


def test_each_placement_is_placed_rejected_filled_or_expired():
    plan = Plan(places=(Placement(BID, 1), Placement(ASK, 2), Placement(BID, 3), Placement(ASK, 4), Placement(BID, 5)))
    outcomes = (Outcome("place", 1, True, "", 11), Outcome("place", 2, False, "PlacePostOnlyLimitFailure"),
                Outcome("place", 3, True, "", 13), Outcome("place", 4, True, "", 14))  # 5: never sent
    after = snapshot(orders=(OpenOrder(11, 1, "SOL-PERP", "bid", 84_000_000, 10**9, filled=3 * 10**8),))
    fills = (Fill("SOL-PERP", "bid", 84_000_000, 10**9, 0, 13, 3, True, 0),
             Fill("SOL-PERP", "ask", 86_000_000, 4 * 10**8, 0, 14, 4, True, 0))
    after = Snapshot(after.ts, after.slot, after.markets, type(after.user)(1, 1, {}, after.user.open_orders, fills))
    got = last_plan(Execution(5, 1, plan, outcomes), after)
    assert [(o.user_order_id, o.status, o.filled, o.error) for o in got.orders] == [
        (1, "placed", 3 * 10**8, ""), (2, "rejected", 0, "PlacePostOnlyLimitFailure"), (3, "filled", 10**9, ""),
        (4, "expired", 4 * 10**8, ""), (5, "rejected", 0, "not sent")]
    assert got.ts == 5


def test_the_loop_hands_the_strategy_its_last_plan_and_archives_it():
    seen = []

    class Watching(strategies.build("fixed_spread", markets=["SOL-PERP"]).__class__):
        def quote(self, snap):
            seen.append(snap.last_plan)
            return super().quote(snap)

    written = []

    class Archive:
        def write_snapshot(self, snap):
            written.append(snap)

        def write_execution(self, execution):
            pass

    loop = Loop(LocalVenue(["SOL-PERP"], seed=3), Watching(markets=["SOL-PERP"]), RiskGate(RiskConfig()),
                Archive(), fast=True)
    asyncio.run(loop.run(ticks=3))
    assert seen[0] is None  # the first tick has no previous plan
    assert [o.status for o in seen[1].orders] == ["placed", "placed"]
    assert [s.last_plan for s in written] == seen  # the archive holds what the strategy saw
    doc = {"kind": "snapshot", "seq": 1, "ts": written[1].ts, "slot": written[1].slot, "snapshot": codec.encode(written[1])}
    assert schema.errors("snapshot", doc) == []
    assert codec.decode(Snapshot, doc["snapshot"]) == written[1]


def test_ioc_intents_never_match_a_resting_order_and_go_out_every_time():
    ioc = Intent("SOL", "ask", 10**9, price=84_000_000, post_only=False, ioc=True)
    resting = (OpenOrder(7, 1, "SOL", "ask", 84_000_000, 10**9, post_only=False),)  # a remainder the venue kept
    plan = reconcile([ioc], resting)
    assert plan.cancels == resting and plan.places == (Placement(ioc, 2),)
    assert reconcile([ioc], ()).places == (Placement(ioc, 1),)
    try:
        Intent("SOL", "ask", 1, price=1, ioc=True)
    except ValueError as exc:
        assert "post-only or immediate-or-cancel" in str(exc)
    else:
        raise AssertionError("post-only and IOC together must be refused")
