"""Matching on the local market: priority, floating orders, the vAMM, fees, pick-offs, funding."""
from __future__ import annotations

from keeper.accounting import quote_value
from keeper.model import BASE_PRECISION, Intent, Placement, Plan
from keeper.venues.local import LocalVenue

T0 = 1_700_000_000_000
SOL = "SOL-PERP"


def venue(path, markets=(SOL,), seed=3) -> LocalVenue:
    return LocalVenue(list(markets), seed=seed, price_path=path)


async def place(v, snap, *intents, uoid=1):
    ex = await v.execute(Plan(places=tuple(Placement(it, uoid + i) for i, it in enumerate(intents))), snap)
    assert all(o.ok for o in ex.outcomes), ex.outcomes
    return [o.order_id for o in ex.outcomes]


def quiet(v):
    """No random takers, so a test drives every fill itself."""
    for t in v.flow.takers.values():
        t.per_hour = 0


async def test_sol_perp_book_has_real_depth_and_l2_matches_l3():
    v = LocalVenue([SOL, "SOL"], seed=1)
    snap = await v.snapshot()
    assert 400 <= v.exchange.markets[SOL].book.count <= 500
    for _ in range(200):
        snap = await v.snapshot()
    assert v.exchange.markets[SOL].book.count >= 350  # requoting keeps the book populated
    book = snap.markets[SOL].book
    assert len(book.bids) == len(book.asks) == 20
    assert [l.price for l in book.bids] == sorted((l.price for l in book.bids), reverse=True)
    assert [l.price for l in book.asks] == sorted(l.price for l in book.asks)
    assert book.best_bid < book.best_ask
    for lv in book.bids:
        assert lv.size == sum(o.size for o in book.l3 if o.side == "bid" and o.price == lv.price)


async def test_vamm_on_perps_only_and_quotes_around_oracle():
    v = LocalVenue([SOL, "BTC-PERP", "ETH-PERP", "SOL"], seed=2)
    snap = await v.snapshot()
    for name in (SOL, "BTC-PERP", "ETH-PERP"):
        m = snap.markets[name]
        assert m.vamm_bid < m.oracle_price < m.vamm_ask
        assert m.book.best_bid <= m.mark_price <= m.book.best_ask or m.vamm_bid <= m.mark_price <= m.vamm_ask
    spot = snap.markets["SOL"]
    assert spot.vamm_bid is None and spot.vamm_ask is None and spot.funding_rate == 0


async def test_price_then_time_priority():
    v = venue([(T0, 85_000_000)])
    quiet(v)
    snap = await v.snapshot()
    m = v.exchange.markets[SOL]
    top = m.best("ask") - 100  # our bids become the best bid
    first, second, lower = await place(
        v, snap,
        Intent(SOL, "bid", BASE_PRECISION, price=top - 100),
        Intent(SOL, "bid", BASE_PRECISION, price=top - 100),
        Intent(SOL, "bid", BASE_PRECISION, price=top - 200),
    )
    better = (await place(v, snap, Intent(SOL, "bid", BASE_PRECISION, price=top), uoid=4))[0]
    v.exchange.take(SOL, "ask", 2 * BASE_PRECISION, 1)  # a taker sells 2 SOL
    snap = await v.snapshot()
    fills = snap.user.fills
    assert [(f.order_id, f.price, f.size) for f in fills] == [(better, top, BASE_PRECISION), (first, top - 100, BASE_PRECISION)]
    remaining = {o.order_id for o in snap.user.open_orders}
    assert remaining == {second, lower}
    assert [(t.price, t.size, t.taker_side) for t in snap.markets[SOL].trades][:2] == [
        (top, BASE_PRECISION, "ask"), (top - 100, BASE_PRECISION, "ask")]


async def test_maker_fill_earns_rebate_taker_pays_fee():
    v = venue([(T0, 85_000_000)])
    quiet(v)
    snap = await v.snapshot()
    m = v.exchange.markets[SOL]
    px = m.best("ask") - 100
    await place(v, snap, Intent(SOL, "bid", 2 * BASE_PRECISION, price=px))
    v.exchange.take(SOL, "ask", 2 * BASE_PRECISION, 1)
    ask = m.best("ask")
    await place(v, snap, Intent(SOL, "bid", BASE_PRECISION, price=ask, post_only=False), uoid=2)
    snap = await v.snapshot()
    maker, taker = snap.user.fills[0], snap.user.fills[-1]
    assert maker.maker and maker.fee == -(quote_value(2 * BASE_PRECISION, px, BASE_PRECISION) * 20 // 100_000)
    assert maker.fee < 0
    assert not taker.maker and taker.price <= ask
    quote = quote_value(taker.size, taker.price, BASE_PRECISION)
    assert taker.fee == -(-quote * 100 // 100_000) > 0
    pos = snap.user.positions[SOL]
    assert pos.base == sum(f.size for f in snap.user.fills)
    assert v.exchange.account.ledgers[SOL].fees == sum(f.fee for f in snap.user.fills)


async def test_floating_order_moves_with_oracle():
    path = [(T0, 85_000_000), (T0 + 1000, 85_100_000), (T0 + 2000, 84_900_000)]
    v = venue(path)
    quiet(v)
    snap = await v.snapshot()
    (oid,) = await place(v, snap, Intent(SOL, "bid", BASE_PRECISION, oracle_offset=-100_000))
    for expected_oracle in (85_100_000, 84_900_000):
        snap = await v.snapshot()
        assert snap.markets[SOL].oracle_price == expected_oracle
        (mine,) = [o for o in snap.markets[SOL].book.l3 if o.user == "keeper"]
        assert (mine.order_id, mine.price, mine.oracle_offset) == (oid, expected_oracle - 100_000, -100_000)
    (oo,) = snap.user.open_orders
    assert oo.price == 0 and oo.oracle_offset == -100_000


async def test_crossed_resting_order_is_picked_off_at_its_price():
    path = [(T0, 85_000_000), (T0 + 1000, 84_000_000)]  # oracle drops 1.2%
    v = venue(path)
    quiet(v)
    snap = await v.snapshot()
    px = v.exchange.markets[SOL].best("ask") - 100  # the best bid, just under the DLOB and vAMM asks
    (oid,) = await place(v, snap, Intent(SOL, "bid", BASE_PRECISION, price=px))
    snap = await v.snapshot()
    assert snap.markets[SOL].vamm_ask < px  # now our stale bid is through the vAMM
    (fill,) = snap.user.fills
    assert (fill.order_id, fill.price, fill.size, fill.maker, fill.side) == (oid, px, BASE_PRECISION, True, "bid")
    assert (px, BASE_PRECISION, "ask") in [(t.price, t.size, t.taker_side) for t in snap.markets[SOL].trades]
    assert snap.user.open_orders == ()
    assert snap.user.positions[SOL].unrealized_pnl < 0  # adverse selection: bought above the new oracle


async def test_funding_sign_follows_rate_and_position():
    # BTC-PERP starts from its dump's positive funding rate: longs pay shorts.
    v = LocalVenue(["BTC-PERP"], seed=4, price_path=[(T0, 120_000_000_000)])
    quiet(v)
    snap = await v.snapshot()
    assert snap.markets["BTC-PERP"].funding_rate > 0
    m = v.exchange.markets["BTC-PERP"]
    await place(v, snap, Intent("BTC-PERP", "bid", BASE_PRECISION // 100, price=m.best("ask"), post_only=False))
    total = 0
    for _ in range(60):
        snap = await v.snapshot()
        total += snap.user.funding["BTC-PERP"]
    rate = snap.markets["BTC-PERP"].funding_rate
    assert total < 0
    expected = (BASE_PRECISION // 100) * rate * 60_000 // (BASE_PRECISION * 1_000 * 3_600_000)
    assert abs(-total - expected) <= expected // 50 + 1
    assert v.exchange.account.ledgers["BTC-PERP"].funding == total
    # A short earns it.
    v2 = LocalVenue(["BTC-PERP"], seed=4, price_path=[(T0, 120_000_000_000)])
    quiet(v2)
    snap = await v2.snapshot()
    m2 = v2.exchange.markets["BTC-PERP"]
    await place(v2, snap, Intent("BTC-PERP", "ask", BASE_PRECISION // 100, price=m2.best("bid"), post_only=False))
    got = sum([(await v2.snapshot()).user.funding["BTC-PERP"] for _ in range(60)])
    assert got > 0


async def test_takers_arrive_and_trade():
    v = LocalVenue([SOL, "BTC-PERP", "ETH-PERP", "SOL"], seed=5)
    await v.snapshot()
    prints = {n: 0 for n in v.exchange.markets}
    for _ in range(600):
        snap = await v.snapshot()
        for n, m in snap.markets.items():
            prints[n] += len(m.trades)
            assert all(t.size > 0 and t.price > 0 and t.taker_side in ("bid", "ask") for t in m.trades)
    assert all(prints.values()), prints
