"""The sim's state as the keeper's values: MarketState and UserState (keeper/model.py)."""
from __future__ import annotations

from keeper.model import Book, BookOrder, Level, MarketState, UserState
from keeper.venues.sim.exchange import Exchange
from keeper.venues.sim.market import SimMarket

BOOK_DEPTH = 20  # L2 levels per side in a snapshot


def user_state(ex: Exchange, drain: bool = True) -> UserState:
    """Our account now; with drain, the fills and funding since the last call are handed over."""
    acct = ex.account
    oracles = ex.oracles()
    total, requirement, maintenance_collateral, maintenance_requirement = acct.margin(oracles)
    free = max(0, total - requirement)
    positions = {n: led.position(n, oracles[n]) for n, led in acct.ledgers.items()}
    return UserState(total, free, positions, acct.open_orders(), tuple(ex.drain_fills()) if drain else tuple(acct.fills),
                     _funding(acct, drain), maintenance_collateral=maintenance_collateral,
                     maintenance_requirement=maintenance_requirement)


def _funding(acct, drain: bool) -> dict[str, int]:
    funding = dict(acct.funding)
    if drain:
        for k in acct.funding:
            acct.funding[k] = 0
    return funding


def market_state(m: SimMarket, drain: bool = True) -> MarketState:
    bids, l3b = _side(m, "bid")
    asks, l3a = _side(m, "ask")
    trades = tuple(m.trades)
    if drain:
        m.trades.clear()
    return MarketState(
        spec=m.spec, oracle_price=m.oracle, oracle_slot=m.oracle_slot, oracle_conf=m.oracle_conf,
        mark_price=m.mark(), funding_rate=m.funding_rate, book=Book(bids, asks, tuple(l3b + l3a)),
        vamm_bid=m.vamm_top("bid"), vamm_ask=m.vamm_top("ask"), trades=trades,
    )


def _side(m: SimMarket, side: str) -> tuple[tuple[Level, ...], list[BookOrder]]:
    levels, l3 = [], []
    for price, group in m.book.levels(side):
        size = 0
        for o in group:
            size += o.remaining
            l3.append(BookOrder(side, price, o.remaining, o.user, o.oid, o.offset, o.post_only))
        levels.append(Level(price, size))
        if len(levels) == BOOK_DEPTH:
            break
    return tuple(levels), l3
