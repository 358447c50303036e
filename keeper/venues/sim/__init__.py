"""The one simulated Drift exchange: rules, a price-time FIFO L3 book, the AMM, our account.

Every simulated path trades here; only the flow differs (the local market's synthetic makers
and takers, a replay's archived tape). Where this model and the real program disagree, the
program is right: tests/test_conformance.py runs the same scenarios on both.

Public API (money in Drift's integer precisions, see keeper/model.py):

    from keeper.venues.sim import Exchange, MarketConfig, AmmSpec, OrderRequest, PostOnly, Order

    ex = Exchange([MarketConfig(spec, AmmSpec(base_spread, max_spread, unit)), MarketConfig(spot_spec)],
                  collateral=10_000 * 10**6, now_ms=t0, prices={"SOL-PERP": 85_000_000, ...},
                  slot=s0, tick_ms=1000, rates={"USDC": SpotRates(...), "SOL": SpotRates(...)})

  time and prices
    ex.advance(now_ms, slot)          clock: funding and spot interest for the time passed, then
                                      expiry (an order is fillable while now_s <= max_ts)
    ex.set_oracle(market, price, slot) floating orders move with it; the AMM requotes around it
    ex.markets[m].amm_fed = True; ex.markets[m].vamm.set_quote(bids, asks)
                                      use a known AMM quote instead of the modelled ladder
    ex.end_tick(dt_ms)                TWAPs and funding rate; liquidation below maintenance

  our orders (rules.py has the rules and why)
    ex.place(OrderRequest(market, side, size, price=... | oracle_offset=..., post_only=PostOnly.MUST,
                          reduce_only=False, ioc=False, max_ts=0, user_order_id=0))
        -> (Drift error name or None, order_id); order_id 0 with no error: nothing rests
    ex.cancel(order_id) -> error name or None;   ex.cancel_all() -> count
    ex.queue_ahead(order_id)          base resting at its price ahead of it (FIFO)
    ex.settle_pnl(market) -> quote    a perp's unsettled PnL into the USDC balance (settle_pnl)

  outside flow
    ex.rest(market, Order(...)) / ex.withdraw(market, order)   others' resting orders (an L3 feed),
                                      each joining the back of its price's queue
    ex.take(market, side, size, limit) -> base filled          an outside IOC taker
    ex.arbitrage(market)              stale orders the AMM crosses are taken; crossed DLOB orders match
    ex.on_maker_fill = fn(market, order)                       told when others' orders fill

  reading
    ex.drain_fills() -> [Fill]        our fills since the last drain; Fill.maker says which side we were
    ex.account: .ledgers[m] (keeper.accounting.Ledger), .usdc, .orders, .total_collateral(oracles,
        maintenance=False), .requirement(oracles, extra=None, maintenance=False), .free_collateral(oracles),
        .below_maintenance(oracles)
    views.user_state(ex), views.market_state(ex.markets[m])     as keeper.model values
    fees.fill_fee(quote, spec, maker)  the one fee rounding rule
"""
from __future__ import annotations

from keeper.model import Outcome, Placement, Plan
from keeper.venues.sim.book import Order
from keeper.venues.sim.exchange import AUTHORITY, Exchange
from keeper.venues.sim.interest import SpotRates
from keeper.venues.sim.market import AmmSpec, MarketConfig
from keeper.venues.sim.rules import OrderRequest, PostOnly
from keeper.venues.sim.views import market_state, user_state


def intent_request(p: Placement, now_s: int, post_only: PostOnly = PostOnly.MUST) -> OrderRequest:
    """A keeper placement as the order the program receives (the live venue's mapping)."""
    it = p.intent
    return OrderRequest(it.market, it.side, it.size, price=it.price, oracle_offset=it.oracle_offset,
                        post_only=post_only if it.post_only else PostOnly.NONE, reduce_only=it.reduce_only, ioc=it.ioc,
                        max_ts=now_s + it.expiry_s if it.expiry_s else 0, user_order_id=p.user_order_id)


def settle(ex: Exchange, plan: Plan) -> list[Outcome]:
    """A plan's settles on the sim, after its orders (the live venue's order)."""
    for market in plan.settles:
        ex.settle_pnl(market)
    return [Outcome("settle", 0, True, "", 0, market) for market in plan.settles]


__all__ = ["AUTHORITY", "AmmSpec", "Exchange", "MarketConfig", "Order", "OrderRequest", "PostOnly", "SpotRates",
           "intent_request", "market_state", "settle", "user_state"]
