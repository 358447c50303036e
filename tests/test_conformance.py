"""The same scenarios on the sim (keeper/venues/sim/) and on the real Drift program (`keeper
localnet`'s LiteSVM ledger, driven with the program's own instructions), which must agree:
post-only crosses, max_ts expiry, the 32-order cap, fees and their rounding to the unit,
initial margin with open orders, reduce-only, unsettled PnL in initial margin and settle_pnl.
Where they disagree the program is right.

Needs the Drift binary; skips without it (the helpers come from test_localnet_genesis).
"""
from __future__ import annotations

from functools import partial

import pytest
from driftpy import types as dt

from keeper import drift_errors as E
from keeper.localnet import flow, genesis, instructions
from keeper.venues.local.specs import spec
from keeper.venues.sim import AmmSpec, Exchange, MarketConfig, Order, OrderRequest, PostOnly
from tests.test_localnet_genesis import NOW, PRICES, SOL, USDC, advance, new_user, open_orders, position, user_of
from tests.test_localnet_genesis import net  # noqa: F401  (the fixture: a fresh exchange on the program)

MARKET = "SOL-PERP"
S = spec(MARKET)
ORACLE = PRICES["SOL"]
NEAR = ORACLE // S.tick_size * S.tick_size  # the oracle, on the tick grid
BIG = 10**6 * SOL  # AMM depth, so the AMM is never what runs out
POST = {PostOnly.NONE: dt.PostOnlyParams.NONE(), PostOnly.MUST: dt.PostOnlyParams.MustPostOnly(),
        PostOnly.TRY: dt.PostOnlyParams.TryPostOnly(), PostOnly.SLIDE: dt.PostOnlyParams.Slide()}


# -- the program side ---------------------------------------------------------------------------

def params(req: OrderRequest) -> dt.OrderParams:
    return dt.OrderParams(
        order_type=dt.OrderType.Limit(), market_type=dt.MarketType.Perp(), market_index=S.market_index,
        direction=dt.PositionDirection.Long() if req.side == "bid" else dt.PositionDirection.Short(),
        base_asset_amount=req.size, price=req.price or 0, oracle_price_offset=req.oracle_offset,
        post_only=POST[req.post_only], reduce_only=req.reduce_only, bit_flags=1 if req.ioc else 0,
        max_ts=req.max_ts or None, user_order_id=req.user_order_id)


def program_place(svm, ex, kp, *reqs: OrderRequest) -> str | None:
    try:
        instructions.send(svm, kp, [instructions.place_orders_ix(ex, kp.pubkey(), [params(r) for r in reqs])])
    except instructions.TxFailed as exc:
        return exc.error
    return None


def program_cancel(svm, ex, kp) -> None:
    instructions.send(svm, kp, [instructions.cancel_orders_ix(ex, kp.pubkey(), S.market_index)])


def program_take(svm, ex, taker, side: str, size: int, limit: int, makers=()) -> None:
    order = flow.order_params(S.market_index, side, size, price=limit, post_only=False, ioc=True)
    instructions.send(svm, taker, [instructions.place_and_take_ix(
        ex, taker.pubkey(), order, [(ex.user(m.pubkey()), m.pubkey()) for m in makers])])


def amm_quote(svm, ex) -> tuple[int, int]:
    """The AMM's bid and ask, from its spread reserves, as the program prices them."""
    from keeper import drift_idl

    a = drift_idl.decode(svm.get_account(ex.markets[MARKET].pubkey).data).amm
    return (a.bid_quote_asset_reserve * a.peg_multiplier // a.bid_base_asset_reserve,
            a.ask_quote_asset_reserve * a.peg_multiplier // a.ask_base_asset_reserve)


def with_spread(svm, ex, kp) -> tuple[int, int]:
    """A first trade makes the program compute the AMM's spread (bootstrap leaves it at zero)."""
    program_take(svm, ex, kp, "bid", S.min_order_size, ORACLE * 101 // 100)
    program_take(svm, ex, kp, "ask", S.min_order_size, ORACLE * 99 // 100)
    advance(svm, ex)
    return amm_quote(svm, ex)


def fees_of(svm, ex, kp) -> tuple[int, int]:
    from keeper import drift_idl

    fees = drift_idl.decode(svm.get_account(ex.user_stats(kp.pubkey())).data).fees
    return fees.total_fee_paid, fees.total_fee_rebate


# -- the sim side -------------------------------------------------------------------------------

def sim(amm: tuple[int, int], collateral: int = 100_000 * USDC, now_s: int = NOW) -> Exchange:
    ex = Exchange([MarketConfig(S, AmmSpec(200, 20_000, SOL))], collateral, now_s * 1000, {MARKET: ORACLE})
    m = ex.markets[MARKET]
    m.amm_fed = True
    m.vamm.set_quote([(amm[0], BIG)], [(amm[1], BIG)])
    return ex


def maker_order(oid: int, side: str, size: int, price: int) -> Order:
    return Order(oid, "maker", side, size, price=price, post_only=True)


def usdc_of(user) -> int:
    """The user's USDC deposit (a borrow < 0), at the genesis interest index of 1.0."""
    p = next(p for p in user.spot_positions if p.market_index == 0)
    return p.scaled_balance // 1_000 * (1 if "Deposit" in str(p.balance_type) else -1)


def largest_bid(price: int, place, cancel) -> int:
    """The largest bid at `price`, in steps, that `place` accepts (None); `cancel` undoes one."""
    lo, hi = 0, 100_000
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if place(OrderRequest(MARKET, "bid", mid * S.step_size, price=price)) is None:
            cancel()
            lo = mid
        else:
            hi = mid
    return lo


# -- the scenarios --------------------------------------------------------------------------------

def test_post_only_cross(net):
    svm, ex = net
    kp, other = new_user(svm, ex, 31), new_user(svm, ex, 32)
    amm = with_spread(svm, ex, other)
    s = sim(amm)
    tick = S.tick_size
    grid = {"bid": [amm[1] // tick * tick + k * tick for k in range(-2, 4)],
            "ask": [-(-amm[0] // tick) * tick + k * tick for k in range(-3, 3)]}
    for mode in (PostOnly.MUST, PostOnly.TRY, PostOnly.SLIDE):
        for side, prices in grid.items():
            for price in prices:
                req = OrderRequest(MARKET, side, SOL // 10, price=price, post_only=mode)
                err = program_place(svm, ex, kp, req)
                resting = open_orders(user_of(svm, ex, kp))
                on_program = (err, len(resting), resting[0].price if resting else None)
                program_cancel(svm, ex, kp)
                err, oid = s.place(req)
                on_sim = (err, 1 if oid else 0)
                slid = s.account.orders[oid].price if oid else None
                if oid:
                    s.cancel(oid)
                assert on_sim == on_program[:2], (mode, side, price, amm)
                if mode is not PostOnly.SLIDE:
                    continue
                # Slid to one tick inside the AMM's quote. The ask the program slides bids
                # against sits ~1 ppm above the one its reserves give (which the sim is fed):
                # a bid in that ppm slides on the sim only, and a slid bid differs by < 1 tick.
                if side == "ask":
                    assert slid == on_program[2], (price, slid, on_program)
                elif not amm[1] <= price <= amm[1] + amm[1] // 1_000_000:
                    assert abs(slid - on_program[2]) < tick, (price, slid, on_program)
    # A post-only bid through a resting DLOB ask (inside the AMM's spread) is not a cross.
    maker = new_user(svm, ex, 33)
    ask = NEAR + 10 * tick
    assert program_place(svm, ex, maker, OrderRequest(MARKET, "ask", SOL // 10, price=ask)) is None
    s.rest(MARKET, maker_order(900, "ask", SOL // 10, ask))
    req = OrderRequest(MARKET, "bid", SOL // 10, price=ask + tick)
    assert program_place(svm, ex, kp, req) is None and len(open_orders(user_of(svm, ex, kp))) == 1
    assert s.place(req)[0] is None and len(s.account.orders) == 1


def test_post_only_against_an_amm_behind_the_oracle(net):
    """The oracle moves 1% with no trade since: the AMM's quote stays where its last update left
    it, and the program refuses a post-only order that crosses it only on the far side of the
    oracle (a bid at or over it, an ask at or under it)."""
    svm, ex = net
    kp, other = new_user(svm, ex, 41), new_user(svm, ex, 42)
    amm = with_spread(svm, ex, other)
    moved = ORACLE * 101 // 100
    for k in range(1, 11):
        slot = advance(svm, ex)
        genesis.set_prices(svm, ex, {"SOL": ORACLE + (moved - ORACLE) * k // 10}, slot, svm.get_clock().unix_timestamp)
    assert amm_quote(svm, ex) == amm, "no trade: the AMM was not updated"
    s = sim(amm)
    s.set_oracle(MARKET, moved)  # the sim is fed the AMM quote (amm_fed): it stays, as on the program
    tick = S.tick_size
    cases = {
        ("bid", amm[1] // tick * tick + 3 * tick): None,  # crosses the AMM's ask, under the oracle
        ("bid", moved // tick * tick + tick): E.POST_ONLY_CROSS,  # crosses it at or over the oracle
        ("ask", amm[0] // tick * tick - 3 * tick): E.POST_ONLY_CROSS,  # under the AMM's bid and the oracle
        ("ask", moved // tick * tick + 2 * tick): None,  # over the oracle, nowhere near the AMM
    }
    for (side, price), expected in cases.items():
        req = OrderRequest(MARKET, side, SOL // 10, price=price, post_only=PostOnly.MUST)
        on_program = program_place(svm, ex, kp, req)
        program_cancel(svm, ex, kp)
        on_sim, oid = s.place(req)
        if oid:
            s.cancel(oid)
        assert (on_program, on_sim) == (expected, expected), (side, price, amm, moved)


def test_max_ts_expiry(net):
    svm, ex = net
    maker, taker = new_user(svm, ex, 41), new_user(svm, ex, 42)
    amm = with_spread(svm, ex, taker)
    now = svm.get_clock().unix_timestamp
    s = sim(amm, now_s=now)
    price = NEAR + 10 * S.tick_size
    results = []
    for wait in (2, 3):  # seconds after placement; max_ts is placement + 2
        start = svm.get_clock().unix_timestamp
        req = OrderRequest(MARKET, "ask", SOL // 10, price=price, max_ts=start + 2)
        assert program_place(svm, ex, maker, req) is None
        before = position(user_of(svm, ex, maker), S.market_index)
        while svm.get_clock().unix_timestamp < start + wait:
            advance(svm, ex, 3)  # 3 slots of 400 ms: the clock's seconds move
        program_take(svm, ex, taker, "bid", SOL // 10, price, [maker])
        filled = before - position(user_of(svm, ex, maker), S.market_index)
        program = (filled, len(open_orders(user_of(svm, ex, maker))))

        s.advance(start * 1000, 0)
        err, oid = s.place(req)
        assert err is None and oid
        s.advance((start + wait) * 1000 + 500, 0)
        got = s.take(MARKET, "bid", SOL // 10, price)
        results.append((program, (got, len(s.account.orders))))
        program_cancel(svm, ex, maker)
        s.cancel_all(keeper_only=False)
    assert results[0][0] == results[0][1] == (SOL // 10, 0)  # at max_ts: still fills
    assert results[1][0] == results[1][1] == (0, 0)  # past it: never filled, removed
    # Placed with max_ts already past: accepted, nothing rests, on both.
    past = OrderRequest(MARKET, "bid", SOL // 10, price=NEAR - 100 * S.tick_size, max_ts=svm.get_clock().unix_timestamp - 1)
    assert program_place(svm, ex, maker, past) is None and open_orders(user_of(svm, ex, maker)) == []
    s.advance(svm.get_clock().unix_timestamp * 1000, 0)
    assert s.place(past) == (None, 0)


def test_the_32_order_cap(net):
    svm, ex = net
    kp = new_user(svm, ex, 51)
    s = sim((ORACLE, ORACLE))
    reqs = [OrderRequest(MARKET, "bid", S.min_order_size, price=80_000_000 - i * S.tick_size, user_order_id=i + 1)
            for i in range(33)]
    assert program_place(svm, ex, kp, *reqs[:16]) is None and program_place(svm, ex, kp, *reqs[16:32]) is None
    assert [s.place(r)[0] for r in reqs[:32]] == [None] * 32
    assert program_place(svm, ex, kp, reqs[32]) == s.place(reqs[32])[0] == E.TOO_MANY_ORDERS


@pytest.mark.parametrize("size, ticks_out", [(S.step_size, 11), (3 * S.step_size, 13), (123 * S.step_size, 7),
                                             (7 * S.step_size, 1)])
def test_fees_and_their_rounding_to_the_unit(net, size, ticks_out):
    svm, ex = net
    maker, taker = new_user(svm, ex, 61), new_user(svm, ex, 62)
    amm = with_spread(svm, ex, new_user(svm, ex, 63))
    s = sim(amm)
    for maker_side in ("ask", "bid"):
        price = NEAR + ticks_out * S.tick_size if maker_side == "ask" else NEAR - ticks_out * S.tick_size
        taker_side = "bid" if maker_side == "ask" else "ask"
        paid0, rebate0 = fees_of(svm, ex, maker)
        tpaid0, _ = fees_of(svm, ex, taker)
        assert program_place(svm, ex, maker, OrderRequest(MARKET, maker_side, size, price=price)) is None
        advance(svm, ex)
        program_take(svm, ex, taker, taker_side, size, price, [maker])
        rebate = fees_of(svm, ex, maker)[1] - rebate0
        taker_fee = fees_of(svm, ex, taker)[0] - tpaid0
        assert fees_of(svm, ex, maker)[0] == paid0 and rebate > 0

        # The sim: our resting order filled by an outside taker, then ours taking an outside maker's.
        err, _ = s.place(OrderRequest(MARKET, maker_side, size, price=price))
        assert err is None and s.take(MARKET, taker_side, size, price) == size
        s.rest(MARKET, maker_order(800, maker_side, size, price))
        assert s.place(OrderRequest(MARKET, taker_side, size, price=price, post_only=PostOnly.NONE, ioc=True))[0] is None
        made, took = s.drain_fills()
        assert (made.maker, took.maker) == (True, False)
        assert (-made.fee, took.fee) == (rebate, taker_fee), (maker_side, size, price)


def test_initial_margin_with_open_orders_refuses_at_the_same_size(net):
    svm, ex = net
    collateral = 1_000 * USDC
    kp = new_user(svm, ex, 71, usdc=collateral)
    s = sim((ORACLE, ORACLE), collateral=collateral)
    bid = NEAR - 1_000 * S.tick_size
    largest = partial(largest_bid, bid)

    resting: list[OrderRequest] = []
    for extra in ([], [OrderRequest(MARKET, "ask", 100 * SOL, price=NEAR + 1_000 * S.tick_size)],
                  [OrderRequest(MARKET, "bid", S.step_size, price=bid - i * S.tick_size) for i in range(20)]):
        program_cancel(svm, ex, kp)
        s.cancel_all(keeper_only=False)
        resting = extra
        if resting:
            assert program_place(svm, ex, kp, *resting) is None
            assert all(s.place(r)[0] is None for r in resting)
        held = {o.oid for o in s.account.orders.values()}

        def program_try(req):
            return program_place(svm, ex, kp, req)

        def program_undo():
            program_cancel(svm, ex, kp)
            if resting:
                program_place(svm, ex, kp, *resting)

        def sim_try(req):
            return s.place(req)[0]

        def sim_undo():
            for oid in [o for o in s.account.orders if o not in held]:
                s.cancel(oid)

        on_program = largest(program_try, program_undo)
        on_sim = largest(sim_try, sim_undo)
        assert on_sim == on_program, len(resting)
        too_big = OrderRequest(MARKET, "bid", (on_sim + 1) * S.step_size, price=bid)
        assert program_place(svm, ex, kp, too_big) == s.place(too_big)[0] == E.INSUFFICIENT_COLLATERAL


def test_reduce_only(net):
    svm, ex = net
    maker, taker = new_user(svm, ex, 81), new_user(svm, ex, 82)
    amm = with_spread(svm, ex, new_user(svm, ex, 83))
    s = sim(amm)
    inside_ask, inside_bid = NEAR + 10 * S.tick_size, NEAR - 10 * S.tick_size

    def program_base():
        return position(user_of(svm, ex, maker), S.market_index)

    # Accepted at placement although it increases (flat): the program checks reduce-only at fill.
    ro_ask = OrderRequest(MARKET, "ask", SOL // 10, price=inside_ask, reduce_only=True)
    assert program_place(svm, ex, maker, ro_ask) is None
    assert s.place(ro_ask)[0] is None
    # Post-only: reduce-only is disregarded for a maker, so it fills and opens a short.
    advance(svm, ex)
    program_take(svm, ex, taker, "bid", SOL // 10, inside_ask, [maker])
    assert s.take(MARKET, "bid", SOL // 10, inside_ask) == SOL // 10
    assert program_base() == s.account.position(MARKET) == -(SOL // 10)
    # Not post-only: a reduce-only bid of 0.3 fills only the 0.1 it can reduce, and keeps resting.
    ro_bid = OrderRequest(MARKET, "bid", 3 * SOL // 10, price=inside_bid, post_only=PostOnly.NONE, reduce_only=True)
    assert program_place(svm, ex, maker, ro_bid) is None
    assert s.place(ro_bid)[0] is None
    advance(svm, ex)
    program_take(svm, ex, taker, "ask", 3 * SOL // 10, inside_bid, [maker])
    s.take(MARKET, "ask", SOL // 10, inside_bid)  # the program's taker got the rest from the AMM
    assert program_base() == s.account.position(MARKET) == 0
    (left,) = open_orders(user_of(svm, ex, maker))
    (mine,) = s.account.orders.values()
    assert (left.base_asset_amount_filled, left.reduce_only) == (mine.filled, mine.reduce_only) == (SOL // 10, True)


@pytest.mark.parametrize("move_pct", [3, -3])
def test_unsettled_pnl_in_initial_margin(net, move_pct):
    """A long whose oracle has moved: a loss counts against initial margin in full; a gain counts
    at the market's unrealized_pnl_initial_asset_weight, 0 (as on mainnet), until it is settled."""
    svm, ex = net
    collateral, size = 1_000 * USDC, 20 * SOL
    kp, taker = new_user(svm, ex, 91, usdc=collateral), new_user(svm, ex, 92)
    amm = with_spread(svm, ex, new_user(svm, ex, 93))
    s = sim(amm, collateral=collateral)
    price = NEAR - 5 * S.tick_size
    assert program_place(svm, ex, kp, OrderRequest(MARKET, "bid", size, price=price)) is None
    advance(svm, ex)
    program_take(svm, ex, taker, "ask", size, price, [kp])
    assert position(user_of(svm, ex, kp), S.market_index) == size
    assert s.place(OrderRequest(MARKET, "bid", size, price=price))[0] is None
    assert s.take(MARKET, "ask", size, price) == size

    moved = ORACLE * (100 + move_pct) // 100
    for k in range(1, 11):  # in steps, so that the oracle stays valid for the program
        slot = advance(svm, ex)
        genesis.set_prices(svm, ex, {"SOL": ORACLE + (moved - ORACLE) * k // 10}, slot, svm.get_clock().unix_timestamp)
    s.set_oracle(MARKET, moved)
    bid = moved // S.tick_size * S.tick_size - 1_000 * S.tick_size
    on_program = largest_bid(bid, lambda r: program_place(svm, ex, kp, r), lambda: program_cancel(svm, ex, kp))
    on_sim = largest_bid(bid, lambda r: s.place(r)[0], lambda: s.cancel_all(keeper_only=False))
    assert on_sim == on_program, (on_sim, on_program)

    # settled, the gain (or loss) moves into the USDC deposit: then it counts in full
    before = usdc_of(user_of(svm, ex, kp))
    instructions.send(svm, kp, [instructions.settle_pnl_ix(ex, kp.pubkey(), S.market_index)])
    moved_usdc = s.account.settle_pnl(MARKET, moved)
    assert usdc_of(user_of(svm, ex, kp)) - before == moved_usdc and (moved_usdc > 0) == (move_pct > 0)
    on_program = largest_bid(bid, lambda r: program_place(svm, ex, kp, r), lambda: program_cancel(svm, ex, kp))
    on_sim = largest_bid(bid, lambda r: s.place(r)[0], lambda: s.cancel_all(keeper_only=False))
    assert on_sim == on_program, (on_sim, on_program)
