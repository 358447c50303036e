"""LocalVenue: the Venue protocol over the in-process exchange."""
from __future__ import annotations

from typing import Optional

from keeper.model import (
    QUOTE_PRECISION,
    Book,
    BookOrder,
    Execution,
    Level,
    MarketState,
    OpenOrder,
    Outcome,
    Plan,
    Snapshot,
    UserState,
)
from keeper.venues.local.exchange import Exchange
from keeper.venues.local.market import Market

BOOK_DEPTH = 20  # L2 levels per side in a snapshot


class LocalVenue:
    """An in-process simulated Drift exchange.

    Each snapshot() after the first advances simulated time by `interval_ms`: oracles move,
    floating orders follow them, background makers requote, crossed resting orders are picked
    off, takers arrive and fill, funding accrues, expired orders drop.

    Without a price path every market's oracle is a seeded random walk from its real reference
    price. With one, simulated time starts at the path's first timestamp; the FIRST market in
    `markets` follows the path's prices absolutely, and every other market follows the same
    relative moves from its own reference price (price_i(t) = ref_i * path(t) / path(t0)).
    A seed (and path) fully determines the run.
    """

    network = "local"

    def __init__(self, markets: list[str], seed: int = 0, price_path: Optional[list[tuple[int, int]]] = None,
                 interval_ms: int = 1000, collateral: int = 10_000 * QUOTE_PRECISION):
        self.exchange = Exchange(list(markets), seed, price_path, interval_ms, collateral)
        self._started = False

    async def snapshot(self) -> Snapshot:
        ex = self.exchange
        if self._started:
            ex.advance()
        self._started = True
        markets = {n: _market_state(m) for n, m in ex.markets.items()}
        acct = ex.account
        oracles = ex.oracles()
        total = acct.total_collateral(oracles)
        free = max(0, total - acct.requirement(oracles))
        positions = {n: led.position(n, oracles[n]) for n, led in acct.ledgers.items()}
        open_orders = tuple(
            OpenOrder(o.oid, o.uoid, acct.market_of[o.oid], o.side, o.price, o.size, o.filled, o.offset,
                      o.post_only, o.reduce_only, o.max_ts)
            for o in sorted(acct.orders.values(), key=_oid)
        )
        user = UserState(total, free, positions, open_orders, tuple(acct.fills), dict(acct.funding))
        acct.fills.clear()
        for k in acct.funding:
            acct.funding[k] = 0
        for m in ex.markets.values():
            m.trades.clear()
        return Snapshot(ex.ts, ex.slot, markets, user)

    async def execute(self, plan: Plan, snapshot: Snapshot) -> Execution:
        ex = self.exchange
        outcomes = []
        for oo in plan.cancels:
            err = ex.cancel(oo.order_id)
            outcomes.append(Outcome("cancel", oo.user_order_id, err is None, err or "", oo.order_id))
        for p in plan.places:
            err, oid = ex.place(p)
            outcomes.append(Outcome("place", p.user_order_id, err is None, err or "", oid))
        return Execution(ex.ts, ex.slot, plan, tuple(outcomes))

    async def cancel_all(self) -> int:
        return self.exchange.cancel_all()

    async def close(self) -> None:
        return None


def _oid(o) -> int:
    return o.oid


def _side(m: Market, side: str) -> tuple[tuple[Level, ...], list[BookOrder]]:
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


def _market_state(m: Market) -> MarketState:
    bids, l3b = _side(m, "bid")
    asks, l3a = _side(m, "ask")
    return MarketState(
        spec=m.spec,
        oracle_price=m.oracle,
        oracle_slot=m.oracle_slot,
        oracle_conf=m.oracle_conf,
        mark_price=m.mark(),
        funding_rate=m.funding_rate,
        book=Book(bids, asks, tuple(l3b + l3a)),
        vamm_bid=m.vamm_top("bid"),
        vamm_ask=m.vamm_top("ask"),
        trades=tuple(m.trades),
    )
