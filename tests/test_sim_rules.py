"""The sim's rules one at a time, on a bare exchange with a known AMM quote and no flow."""
from __future__ import annotations

import pytest

from keeper import drift_errors as E
from keeper.accounting import quote_value
from keeper.model import BASE_PRECISION, MAX_OPEN_ORDERS, PRICE_PRECISION, QUOTE_PRECISION
from keeper.venues.local.specs import spec
from keeper.venues.sim import AmmSpec, Exchange, MarketConfig, Order, OrderRequest, PostOnly, SpotRates
from keeper.venues.sim.fees import fill_fee
from keeper.venues.sim.interest import RATE_PRECISION, YEAR_MS, Accrual
from keeper.venues.sim.liquidation import IF_LIQUIDATION_FEE, LIQUIDATION_FEE_PRECISION, LIQUIDATOR_FEE

SOL = "SOL-PERP"
S = spec(SOL)
ORACLE = 85 * PRICE_PRECISION
AMM = (ORACLE - 1_000, ORACLE + 1_000)  # 1.2 bps either side
T0 = 1_700_000_000_000


def exchange(collateral: int = 10_000 * QUOTE_PRECISION, markets=(SOL,), rates=None) -> Exchange:
    configs = [MarketConfig(spec(n), AmmSpec(200, 20_000, BASE_PRECISION) if spec(n).kind == "perp" else None)
               for n in markets]
    ex = Exchange(configs, collateral, T0, {n: ORACLE for n in markets}, rates=rates)
    for n in markets:
        m = ex.markets[n]
        if m.vamm is not None:
            m.amm_fed = True
            m.vamm.set_quote([(AMM[0], 10**6 * BASE_PRECISION)], [(AMM[1], 10**6 * BASE_PRECISION)])
    return ex


def bid(size=BASE_PRECISION, price=ORACLE - 100_000, **kw) -> OrderRequest:
    return OrderRequest(SOL, "bid", size, price=price, **kw)


def ask(size=BASE_PRECISION, price=ORACLE + 100_000, **kw) -> OrderRequest:
    return OrderRequest(SOL, "ask", size, price=price, **kw)


def theirs(oid, side, size, price, post_only=True) -> Order:
    return Order(oid, "maker", side, size, price=price, post_only=post_only)


# -- placement --------------------------------------------------------------------------------

@pytest.mark.parametrize("req, error", [
    (bid(size=S.step_size + 1), E.SIZE_NOT_STEP),
    (bid(size=0), E.SIZE_NOT_STEP),
    (OrderRequest("SOL", "bid", 50_000_000, price=ORACLE), E.SIZE_BELOW_MIN),  # spot: step 0.0001, min 0.1
    (bid(price=ORACLE - 150), E.PRICE_NOT_TICK),
    (bid(price=0), E.PRICE_NOT_TICK),
    (OrderRequest(SOL, "bid", BASE_PRECISION, oracle_offset=-150), E.PRICE_NOT_TICK),
    (bid(max_ts=-1), E.BAD_MAX_TS),
    (OrderRequest("ETH-PERP", "bid", BASE_PRECISION, price=ORACLE), E.PERP_MARKET_NOT_FOUND),
])
def test_grid_and_sizes_are_validated_not_snapped(req, error):
    ex = exchange(markets=(SOL, "SOL"))
    assert ex.place(req) == (error, 0)
    assert ex.account.orders == {}


def test_post_only_modes_against_the_amm_quote():
    ex = exchange()
    tick = S.tick_size
    assert ex.place(bid(price=AMM[1] + tick))[0] is None  # one tick over the ask is still not a cross
    assert ex.place(bid(price=AMM[1] + 2 * tick)) == (E.POST_ONLY_CROSS, 0)
    assert ex.place(ask(price=AMM[0] - 2 * tick)) == (E.POST_ONLY_CROSS, 0)
    assert ex.place(bid(price=AMM[1] + 2 * tick, post_only=PostOnly.TRY)) == (None, 0)
    err, oid = ex.place(bid(price=AMM[1] + 5 * tick, post_only=PostOnly.SLIDE))
    assert err is None and ex.account.orders[oid].price == AMM[1] - tick
    err, oid = ex.place(ask(price=AMM[0], post_only=PostOnly.SLIDE))
    assert err is None and ex.account.orders[oid].price == AMM[0] + tick


def test_a_taking_order_fills_at_once_and_ioc_leaves_nothing():
    ex = exchange()
    err, oid = ex.place(bid(size=2 * BASE_PRECISION, price=AMM[1], post_only=PostOnly.NONE, ioc=True))
    (fill,) = ex.drain_fills()
    assert err is None and oid == fill.order_id and ex.account.orders == {}
    assert (fill.price, fill.size, fill.maker) == (AMM[1], 2 * BASE_PRECISION, False)
    ex.markets[SOL].vamm.set_quote([(AMM[0], BASE_PRECISION)], [(AMM[1], BASE_PRECISION)])
    err, oid = ex.place(ask(size=3 * BASE_PRECISION, price=AMM[0], post_only=PostOnly.NONE, ioc=True))
    assert err is None and [f.size for f in ex.drain_fills()] == [BASE_PRECISION] and ex.account.orders == {}


def test_at_most_32_open_orders_and_user_order_ids_are_unique():
    ex = exchange()
    for i in range(MAX_OPEN_ORDERS):
        assert ex.place(bid(size=S.min_order_size, price=ORACLE - (i + 10) * 100, user_order_id=i + 1))[0] is None
    assert ex.place(bid(size=S.min_order_size, user_order_id=200)) == (E.TOO_MANY_ORDERS, 0)
    ex.cancel(next(iter(ex.account.orders)))
    assert ex.place(bid(size=S.min_order_size, user_order_id=2)) == (E.USER_ORDER_ID_IN_USE, 0)


def test_max_ts_is_inclusive_and_an_expired_order_is_removed():
    ex = exchange()
    now_s = T0 // 1000
    err, oid = ex.place(ask(price=AMM[1] - 100, max_ts=now_s + 2))
    assert err is None
    ex.advance((now_s + 2) * 1000 + 999, 0)
    assert oid in ex.account.orders  # now_s == max_ts: still fillable
    ex.advance((now_s + 3) * 1000, 0)
    assert ex.account.orders == {} and ex.markets[SOL].book.count == 0
    assert ex.take(SOL, "bid", BASE_PRECISION, AMM[1] - 100) == 0
    assert ex.place(bid(max_ts=now_s)) == (None, 0)  # already past: accepted, nothing rests


# -- the book ---------------------------------------------------------------------------------

def test_fifo_our_order_waits_behind_what_rested_at_its_price_before_it():
    ex = exchange()
    px = ORACLE + 500  # inside the AMM's ask
    ex.rest(SOL, theirs(900, "ask", 100 * S.step_size, px))
    err, oid = ex.place(ask(size=50 * S.step_size, price=px))
    assert err is None and ex.queue_ahead(oid) == 100 * S.step_size
    ex.rest(SOL, theirs(901, "ask", 100 * S.step_size, px))  # behind us
    assert ex.take(SOL, "bid", 50 * S.step_size, px) == 50 * S.step_size
    assert ex.drain_fills() == [] and ex.queue_ahead(oid) == 50 * S.step_size
    ex.take(SOL, "bid", 100 * S.step_size, px)  # the rest of the queue ahead, then 50 of ours
    (fill,) = ex.drain_fills()
    assert (fill.size, fill.maker, fill.price) == (50 * S.step_size, True, px)


def test_floating_orders_follow_the_oracle():
    ex = exchange()
    err, oid = ex.place(OrderRequest(SOL, "bid", BASE_PRECISION, oracle_offset=-50_000))
    assert err is None
    ex.set_oracle(SOL, ORACLE + 1_000_000)
    assert ex.markets[SOL].book.best("bid") == ORACLE + 1_000_000 - 50_000


def test_two_post_only_orders_crossed_stay_crossed_a_taker_one_is_matched():
    ex = exchange()
    px = ORACLE + 500
    ex.rest(SOL, theirs(900, "ask", BASE_PRECISION, px - 200))  # post-only, under our bid
    assert ex.place(bid(price=px))[0] is None
    ex.arbitrage(SOL)
    assert ex.drain_fills() == []
    ex.rest(SOL, theirs(901, "ask", BASE_PRECISION, px - 100, post_only=False))
    ex.withdraw(SOL, next(o for o in ex.markets[SOL].book.orders() if o.oid == 900))
    ex.arbitrage(SOL)
    (fill,) = ex.drain_fills()
    assert (fill.maker, fill.price) == (True, px)  # ours is the maker, at its own price


# -- reduce-only, fees, margin ------------------------------------------------------------------

def test_reduce_only_caps_a_taking_order_and_is_ignored_for_a_post_only_one():
    ex = exchange()
    assert ex.place(ask(price=ORACLE + 500, reduce_only=True))[0] is None  # accepted though it increases
    ex.take(SOL, "bid", BASE_PRECISION, ORACLE + 500)
    assert ex.account.position(SOL) == -BASE_PRECISION  # post-only: reduce-only disregarded
    ex.place(bid(size=3 * BASE_PRECISION, price=AMM[1], post_only=PostOnly.NONE, reduce_only=True))
    assert ex.account.position(SOL) == 0


@pytest.mark.parametrize("quote, maker, fee", [(850_011, True, -170), (850_011, False, 851), (2_550_000, True, -510),
                                               (2_550_000, False, 2_550), (4_999, True, 0), (1, False, 1)])
def test_fee_rounding_taker_up_maker_down(quote, maker, fee):
    assert fill_fee(quote, S, maker) == fee


def test_initial_margin_counts_open_orders_worst_case_and_per_order():
    collateral = 1_000 * QUOTE_PRECISION
    ex = exchange(collateral)
    # $1,000 at 5%: $20,000 of worst-case base, less $0.01 for the order itself
    biggest = (collateral - 10_000) * 10_000 // S.margin_ratio_initial * BASE_PRECISION // ORACLE // S.step_size * S.step_size
    assert ex.place(bid(size=biggest + S.step_size)) == (E.INSUFFICIENT_COLLATERAL, 0)
    err, oid = ex.place(bid(size=biggest))
    assert err is None
    assert ex.place(bid(size=S.step_size, price=ORACLE - 200_000)) == (E.INSUFFICIENT_COLLATERAL, 0)
    # An ask no bigger than the bids leaves the worst case alone: only its own $0.01 counts.
    ex.cancel(oid)
    assert ex.place(bid(size=biggest - S.step_size))[0] is None
    before = ex.account.requirement(ex.oracles())
    assert ex.place(ask(size=biggest - S.step_size))[0] is None
    assert ex.account.requirement(ex.oracles()) == before + QUOTE_PRECISION // 100 <= collateral


def test_maintenance_breach_cancels_orders_then_liquidates_with_the_fees():
    ex = exchange(1_000 * QUOTE_PRECISION)
    ex.place(bid(size=200 * BASE_PRECISION, price=AMM[1], post_only=PostOnly.NONE))  # $17,000 long
    ex.drain_fills()
    ex.place(bid(size=BASE_PRECISION))
    crash = ORACLE * 965 // 1000  # -3.5%: $595 lost, below the 3% maintenance requirement
    ex.set_oracle(SOL, crash)
    ex.markets[SOL].vamm.set_quote([(crash - 1_000, 10**9 * BASE_PRECISION)], [(crash + 1_000, 10**9 * BASE_PRECISION)])
    assert ex.account.below_maintenance(ex.oracles())
    ex.end_tick(1000)
    assert ex.liquidations == 1 and ex.account.orders == {}
    (fill,) = ex.drain_fills()
    assert fill.side == "ask" and 0 < fill.size < 200 * BASE_PRECISION and fill.order_id == 0
    assert fill.price == crash - crash * LIQUIDATOR_FEE // LIQUIDATION_FEE_PRECISION
    assert fill.fee == quote_value(fill.size, crash, BASE_PRECISION) * IF_LIQUIDATION_FEE // LIQUIDATION_FEE_PRECISION
    assert not ex.account.below_maintenance(ex.oracles())


# -- spot interest ----------------------------------------------------------------------------

def test_borrow_rate_curve_and_interest_on_balances():
    r = SpotRates(optimal_utilization=800_000, optimal_borrow_rate=100_000, max_borrow_rate=1_500_000, utilization=400_000)
    assert r.borrow_rate() == 50_000  # half the optimal utilisation: half the optimal rate
    assert SpotRates(800_000, 100_000, 1_500_000, 900_000).borrow_rate() == 100_000 + 100_000 * 1_400_000 // 200_000
    assert r.deposit_rate() == 20_000  # 5% x 40% utilisation
    acc = Accrual(r)  # remainders carry: a thousand 1 s accruals pay what one 1,000 s accrual does
    assert sum(acc.accrue(10**9, 1000) for _ in range(1000)) == 10**9 * r.deposit_rate() * 10**6 // (RATE_PRECISION * YEAR_MS)
    assert Accrual(r).accrue(-10**9, YEAR_MS) == -(10**9 * 50_000 // RATE_PRECISION)


def test_a_spot_short_is_a_borrow_that_pays_interest():
    rates = {"SOL": SpotRates(800_000, 100_000, 1_500_000, 400_000)}
    ex = exchange(markets=("SOL",), rates=rates)
    ex.rest("SOL", theirs(900, "bid", BASE_PRECISION, ORACLE))
    assert ex.place(OrderRequest("SOL", "ask", BASE_PRECISION, price=ORACLE, post_only=PostOnly.NONE))[0] is None
    assert ex.account.position("SOL") == -BASE_PRECISION
    ex.advance(T0 + YEAR_MS, 0)
    assert ex.account.position("SOL") == -BASE_PRECISION - BASE_PRECISION * 50_000 // RATE_PRECISION
