"""Drift's placement rules on the local market, each rejected with Drift's own error name."""
from __future__ import annotations


from keeper.model import BASE_PRECISION, MAX_OPEN_ORDERS, Intent, OpenOrder, Placement, Plan
from keeper.venues.local import LocalVenue
from keeper import drift_errors as E
from keeper.venues.local.specs import spot_rates
from keeper.venues.sim.interest import RATE_PRECISION, YEAR_MS

T0 = 1_700_000_000_000
FLAT = [(T0, 85_000_000)]  # SOL-PERP's oracle held at $85


def venue(markets=("SOL-PERP",), **kw) -> LocalVenue:
    return LocalVenue(list(markets), seed=7, price_path=FLAT, **kw)


async def place(v: LocalVenue, *intents: Intent, start_uoid: int = 1):
    snap = await v.snapshot() if not v._started else None
    plan = Plan(places=tuple(Placement(it, start_uoid + i) for i, it in enumerate(intents)))
    ex = await v.execute(plan, snap)
    return ex.outcomes


def below_touch(v: LocalVenue, market="SOL-PERP", ticks=50) -> int:
    m = v.exchange.markets[market]
    return m.best("bid") - ticks * m.spec.tick_size


async def test_valid_order_rests_with_exchange_order_id():
    v = venue()
    await v.snapshot()
    (out,) = await place(v, Intent("SOL-PERP", "bid", BASE_PRECISION, price=below_touch(v)))
    assert out.ok and out.error == "" and out.order_id == 1
    snap = await v.snapshot()
    (oo,) = snap.user.open_orders
    assert (oo.order_id, oo.user_order_id, oo.market, oo.side, oo.size) == (1, 1, "SOL-PERP", "bid", BASE_PRECISION)
    assert any(b.user == "keeper" and b.order_id == 1 for b in snap.markets["SOL-PERP"].book.l3)


def empty_dlob(v: LocalVenue, market: str) -> None:
    """Take the background makers' orders away, leaving the vAMM as the only liquidity."""
    m = v.exchange.markets[market]
    for o in list(m.book.orders()):
        m.book.remove(o)
    v.flow.makers[market].live = [None] * len(v.flow.makers[market].live)


async def test_post_only_refused_only_past_the_vamm_quote_plus_a_tick():
    # The program's rule (tests/test_conformance.py checks it on the real one): a post-only bid
    # is refused above the AMM's ask plus one tick, an ask below the AMM's bid minus one tick.
    v = venue()
    await v.snapshot()
    empty_dlob(v, "SOL-PERP")
    snap = await v.snapshot()
    m = snap.markets["SOL-PERP"]
    tick = m.spec.tick_size
    (out,) = await place(v, Intent("SOL-PERP", "bid", BASE_PRECISION, price=m.vamm_ask + 2 * tick))
    assert not out.ok and out.error == E.POST_ONLY_CROSS
    (out,) = await place(v, Intent("SOL-PERP", "ask", BASE_PRECISION, price=m.vamm_bid - 2 * tick), start_uoid=2)
    assert not out.ok and out.error == E.POST_ONLY_CROSS
    (out,) = await place(v, Intent("SOL-PERP", "bid", BASE_PRECISION, price=m.vamm_ask + tick), start_uoid=3)
    assert out.ok


async def test_post_only_through_the_dlob_rests_crossed_on_spot():
    # The program cannot see the DLOB when an order lands, and spot has no AMM here: nothing
    # refuses it. When the order it crosses is not post-only, a filler matches the two, and
    # ours, the post-only one, is the maker at its own price.
    v = venue(("SOL-PERP", "SOL"))
    snap = await v.snapshot()
    spot = snap.markets["SOL"]
    assert spot.vamm_ask is None
    (out,) = await place(v, Intent("SOL", "bid", BASE_PRECISION, price=spot.book.best_ask))
    assert out.ok
    ask = next(o for o in spot.book.l3 if o.side == "ask" and o.price == spot.book.best_ask)
    assert not ask.post_only  # this seed's best spot ask is a resting order that may take
    snap = await v.snapshot()
    fills = [f for f in snap.user.fills if f.order_id == out.order_id]
    assert fills and all(f.maker and f.price == spot.book.best_ask for f in fills)


async def test_price_must_be_tick_multiple():
    v = venue()
    await v.snapshot()
    (out,) = await place(v, Intent("SOL-PERP", "bid", BASE_PRECISION, price=below_touch(v) + 50))
    assert not out.ok and out.error == E.PRICE_NOT_TICK


async def test_size_must_be_step_multiple():
    v = venue()
    await v.snapshot()
    (out,) = await place(v, Intent("SOL-PERP", "bid", 15_000_000, price=below_touch(v)))
    assert not out.ok and out.error == E.SIZE_NOT_STEP


async def test_size_below_minimum_rejected():
    v = venue(("SOL-PERP", "SOL"))
    await v.snapshot()
    # Spot SOL: step 0.0001 SOL but minimum 0.1 SOL, so 0.05 SOL is a step multiple yet too small.
    (out,) = await place(v, Intent("SOL", "bid", 50_000_000, price=below_touch(v, "SOL")))
    assert not out.ok and out.error == E.SIZE_BELOW_MIN
    (out,) = await place(v, Intent("SOL", "bid", 100_000_000, price=below_touch(v, "SOL")), start_uoid=2)
    assert out.ok


async def test_at_most_32_open_orders():
    v = venue()
    await v.snapshot()
    px = below_touch(v)
    intents = [Intent("SOL-PERP", "bid", 10_000_000, price=px - i * 100) for i in range(MAX_OPEN_ORDERS + 1)]
    outs = await place(v, *intents)
    assert all(o.ok for o in outs[:MAX_OPEN_ORDERS])
    assert not outs[-1].ok and outs[-1].error == E.TOO_MANY_ORDERS
    assert len((await v.snapshot()).user.open_orders) == MAX_OPEN_ORDERS


async def test_initial_margin_counts_open_orders():
    v = venue()  # $10,000 collateral, 5% initial margin: at most $200,000 of worst-case SOL-PERP
    snap = await v.snapshot()
    assert snap.user.total_collateral == snap.user.free_collateral == 10_000 * 10**6
    px = below_touch(v)
    (out,) = await place(v, Intent("SOL-PERP", "bid", 3_000 * BASE_PRECISION, price=px))
    assert not out.ok and out.error == E.INSUFFICIENT_COLLATERAL
    first, second = await place(v, Intent("SOL-PERP", "bid", 1_500 * BASE_PRECISION, price=px),
                                Intent("SOL-PERP", "bid", 1_500 * BASE_PRECISION, price=px - 100), start_uoid=2)
    assert first.ok
    assert not second.ok and second.error == E.INSUFFICIENT_COLLATERAL
    # An ask on the other side does not add to the worst case while it is smaller than the bids.
    (ask,) = await place(v, Intent("SOL-PERP", "ask", 1_500 * BASE_PRECISION, price=v.exchange.markets["SOL-PERP"].best("ask") + 10_000), start_uoid=4)
    assert ask.ok
    snap = await v.snapshot()
    assert snap.user.free_collateral < snap.user.total_collateral


async def test_reduce_only_is_checked_at_fill_not_at_placement():
    # The program accepts a reduce-only order that would increase the position; a taking
    # (non-post-only) one then fills at most the position it reduces.
    v = venue()
    await v.snapshot()
    (out,) = await place(v, Intent("SOL-PERP", "ask", BASE_PRECISION, price=below_touch(v) + 100_000, reduce_only=True))
    assert out.ok
    ask = v.exchange.markets["SOL-PERP"].best("ask")
    (buy,) = await place(v, Intent("SOL-PERP", "bid", BASE_PRECISION, price=ask, post_only=False), start_uoid=2)
    assert buy.ok and v.exchange.account.ledgers["SOL-PERP"].base == BASE_PRECISION
    bid = v.exchange.markets["SOL-PERP"].best("bid")
    (sell,) = await place(v, Intent("SOL-PERP", "ask", 3 * BASE_PRECISION, price=bid, post_only=False, reduce_only=True),
                          start_uoid=3)
    assert sell.ok
    assert v.exchange.account.ledgers["SOL-PERP"].base == 0  # 1 of the 3 filled: the position, no more


async def test_duplicate_user_order_id_rejected():
    v = venue()
    await v.snapshot()
    px = below_touch(v)
    (a,) = await place(v, Intent("SOL-PERP", "bid", BASE_PRECISION, price=px), start_uoid=9)
    (b,) = await place(v, Intent("SOL-PERP", "bid", BASE_PRECISION, price=px - 100), start_uoid=9)
    assert a.ok and not b.ok and b.error == E.USER_ORDER_ID_IN_USE


async def test_unknown_market_in_plan_is_an_outcome():
    v = venue()
    await v.snapshot()
    a, b = await place(v, Intent("BTC-PERP", "bid", BASE_PRECISION, price=100), Intent("SOL", "bid", BASE_PRECISION, price=100))
    assert (a.ok, a.error) == (False, E.PERP_MARKET_NOT_FOUND)
    assert (b.ok, b.error) == (False, E.SPOT_MARKET_NOT_FOUND)


async def test_cancel_unknown_order_is_an_outcome_not_an_exception():
    v = venue()
    snap = await v.snapshot()
    ghost = OpenOrder(999, 5, "SOL-PERP", "bid", 1_000_000, BASE_PRECISION)
    ex = await v.execute(Plan(cancels=(ghost,)), snap)
    (out,) = ex.outcomes
    assert (out.action, out.ok, out.error, out.order_id, out.user_order_id) == ("cancel", False, E.ORDER_NOT_FOUND, 999, 5)


async def test_cancels_run_before_placements_and_cancel_all_counts():
    v = venue()
    await v.snapshot()
    px = below_touch(v)
    await place(v, *[Intent("SOL-PERP", "bid", BASE_PRECISION, price=px - i * 100) for i in range(MAX_OPEN_ORDERS)])
    snap = await v.snapshot()
    full = snap.user.open_orders
    # With 32 resting, a placement only fits because the cancel in the same plan runs first.
    plan = Plan(cancels=(full[0],), places=(Placement(Intent("SOL-PERP", "bid", BASE_PRECISION, price=px - 5_000), 200),))
    ex = await v.execute(plan, snap)
    assert [o.action for o in ex.outcomes] == ["cancel", "place"] and all(o.ok for o in ex.outcomes)
    assert await v.cancel_all() == MAX_OPEN_ORDERS
    assert (await v.snapshot()).user.open_orders == ()


async def test_expired_orders_are_removed():
    v = venue()
    await v.snapshot()
    (out,) = await place(v, Intent("SOL-PERP", "bid", BASE_PRECISION, price=below_touch(v), expiry_s=2))
    assert out.ok
    snap = await v.snapshot()
    (oo,) = snap.user.open_orders
    assert oo.max_ts == T0 // 1000 + 2
    for _ in range(2):
        snap = await v.snapshot()
    assert snap.ts // 1000 == oo.max_ts + 1
    assert snap.user.open_orders == ()
    assert not any(b.user == "keeper" for b in snap.markets["SOL-PERP"].book.l3)


async def test_spot_short_is_a_borrow_charged_at_the_liability_weight():
    v = venue(("SOL-PERP", "SOL"))
    snap = await v.snapshot()
    bid = snap.markets["SOL"].book.best_bid
    (out,) = await place(v, Intent("SOL", "ask", BASE_PRECISION // 10, price=bid, post_only=False))
    assert out.ok
    snap = await v.snapshot()
    (fill,) = [f for f in snap.user.fills if f.market == "SOL"]
    assert not fill.maker and fill.fee > 0
    oracle = snap.markets["SOL"].oracle_price
    pos = snap.user.positions["SOL"]
    assert pos.base == -fill.size
    # Proceeds in, borrow out: collateral moves only by the sale's edge against the oracle, and fees.
    proceeds = fill.size * fill.price // BASE_PRECISION
    borrow = fill.size * oracle // BASE_PRECISION
    usdc = 10_000 * 10**6 + proceeds - fill.fee
    rates = spot_rates()  # the USDC deposit earns a second of interest; the tiny borrow's rounds to 0
    assert fill.size * rates["SOL"].borrow_rate() * 1000 < RATE_PRECISION * YEAR_MS
    interest = usdc * rates["USDC"].deposit_rate() * 1000 // (RATE_PRECISION * YEAR_MS)
    assert interest > 0
    assert snap.user.total_collateral == usdc + interest - borrow
    assert snap.user.free_collateral == snap.user.total_collateral - borrow * 2000 // 10_000
