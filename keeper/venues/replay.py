"""A venue that plays an archived session back.

Two modes:
- what-if (default): the archived market data drives any strategy; the venue keeps that
  strategy's own orders and position, and fills its orders from what later snapshots show
  (trades through the order's price, or a book that has crossed it).
- verify: the archived snapshots are served as recorded, user state included, and each plan
  the loop makes is compared with the plan recorded for that snapshot.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator, Optional

from keeper.accounting import Ledger, quote_value
from keeper.model import (
    MARGIN_PRECISION, Execution, Fill, MarketState, OpenOrder, Outcome, Plan, Snapshot, UserState,
)
from keeper.drift_errors import ORDER_NOT_FOUND, POST_ONLY_CROSS
from keeper.venues.base import VenueExhausted
from keeper.venues.sim.fees import fee_for



class ReplayVenue:
    network = "replay"

    def __init__(self, records: Iterator, verify: bool = False, collateral: int = 0) -> None:
        self.records = records
        self.verify = verify
        self.collateral = collateral
        self.pending: Optional[object] = None  # one record of look-ahead
        self.recorded: Optional[Execution] = None
        self.plans_compared = 0
        self.plans_matched = 0
        self.mismatches: list[str] = []
        # what-if state
        self.orders: list[OpenOrder] = []
        self.order_prices: dict[int, int] = {}  # order_id -> price it rested at
        self.ledgers: dict[str, Ledger] = {}
        self.next_order_id = 1
        self.previous: Optional[Snapshot] = None

    def _next(self, kind: str):
        while True:
            record = self.pending if self.pending is not None else next(self.records, None)
            self.pending = None
            if record is None or record.kind == kind:
                return record

    async def snapshot(self) -> Snapshot:
        record = self._next("snapshot")
        if record is None:
            raise VenueExhausted
        following = next(self.records, None)
        if following is not None and following.kind == "execution":
            self.recorded = following.value
        else:
            self.recorded, self.pending = None, following
        if self.verify:
            return record.value
        snap = self._fill_and_account(record.value)
        self.previous = snap
        return snap

    async def execute(self, plan: Plan, snapshot: Snapshot) -> Execution:
        if self.verify:
            return self._compare(plan, snapshot)
        outcomes = []
        for order in plan.cancels:
            known = any(o.order_id == order.order_id for o in self.orders)
            self.orders = [o for o in self.orders if o.order_id != order.order_id]
            outcomes.append(Outcome("cancel", order.user_order_id, known, "" if known else ORDER_NOT_FOUND, order.order_id))
        for placement in plan.places:
            outcomes.append(self._place(placement, snapshot))
        return Execution(snapshot.ts, snapshot.slot, plan, tuple(outcomes))

    async def cancel_all(self) -> int:
        count = len(self.orders)
        self.orders = []
        return count

    async def close(self) -> None:
        pass

    # verify -------------------------------------------------------------------------------
    def _compare(self, plan: Plan, snapshot: Snapshot) -> Execution:
        if self.recorded is None:
            self.mismatches.append(f"slot {snapshot.slot}: no recorded plan for this snapshot")
            return Execution(snapshot.ts, snapshot.slot, plan, ())
        self.plans_compared += 1
        if plan == self.recorded.plan:
            self.plans_matched += 1
        else:
            self.mismatches.append(
                f"slot {snapshot.slot}: recorded {len(self.recorded.plan.cancels)} cancel(s)/{len(self.recorded.plan.places)} place(s), "
                f"replayed {len(plan.cancels)}/{len(plan.places)}"
            )
        return self.recorded

    # what-if ------------------------------------------------------------------------------
    def _price(self, order: OpenOrder, market: MarketState) -> int:
        return order.price_at(market.oracle_price)

    def _place(self, placement, snapshot: Snapshot) -> Outcome:
        intent = placement.intent
        market = snapshot.markets[intent.market]
        order = OpenOrder(
            order_id=self.next_order_id, user_order_id=placement.user_order_id, market=intent.market, side=intent.side,
            price=intent.price or 0, size=intent.size, oracle_offset=intent.oracle_offset, post_only=intent.post_only,
            reduce_only=intent.reduce_only, max_ts=snapshot.ts // 1000 + intent.expiry_s if intent.expiry_s else 0,
        )
        price = self._price(order, market)
        if intent.post_only and _crosses(intent.side, price, market):
            return Outcome("place", placement.user_order_id, False, POST_ONLY_CROSS)
        self.next_order_id += 1
        self.orders.append(order)
        return Outcome("place", placement.user_order_id, True, "", order.order_id)

    def _fill_and_account(self, recorded: Snapshot) -> Snapshot:
        fills: list[Fill] = []
        funding: dict[str, int] = {}
        for name, market in recorded.markets.items():
            ledger = self.ledgers.setdefault(name, Ledger(market.spec.base_precision))
            if self.previous is not None and market.spec.kind == "perp" and ledger.base:
                funding[name] = ledger.accrue_funding(market.funding_rate, recorded.ts - self.previous.ts)
        if self.previous is not None:
            fills = self._simulate_fills(recorded)
        now_s = recorded.ts // 1000
        self.orders = [o for o in self.orders if o.remaining > 0 and not (o.max_ts and o.max_ts < now_s)]
        return replace(recorded, user=self._user(recorded, tuple(fills), funding))

    def _simulate_fills(self, snap: Snapshot) -> list[Fill]:
        fills = []
        for side in ("bid", "ask"):
            mine = [o for o in self.orders if o.side == side and o.market in snap.markets]
            # most aggressive first, so a better-priced order meets the flow first
            mine.sort(key=lambda o: -self._price(o, snap.markets[o.market]) if side == "bid" else self._price(o, snap.markets[o.market]))
            used: dict[str, int] = {}
            for order in mine:
                market = snap.markets[order.market]
                price = self._price(order, market)
                if _crosses(side, price, market):
                    size = order.remaining
                else:
                    through = sum(t.size for t in market.trades if t.taker_side != side and
                                  (t.price <= price if side == "bid" else t.price >= price))
                    size = min(order.remaining, max(0, through - used.get(order.market, 0)))
                    used[order.market] = used.get(order.market, 0) + size
                if size <= 0:
                    continue
                fee = fee_for(size, price, market.spec, maker=True)
                fill = Fill(order.market, side, price, size, fee, order.order_id, order.user_order_id, True, snap.ts)
                self.ledgers[order.market].apply(fill)
                fills.append(fill)
                index = self.orders.index(order)
                self.orders[index] = replace(order, filled=order.filled + size)
        return fills

    def _user(self, snap: Snapshot, fills: tuple[Fill, ...], funding: dict[str, int]) -> UserState:
        positions = {}
        total = self.collateral
        requirement = 0
        for name, ledger in self.ledgers.items():
            if name not in snap.markets:
                continue
            market = snap.markets[name]
            total += ledger.total_pnl(market.oracle_price)
            requirement += abs(quote_value(ledger.base, market.oracle_price, ledger.base_precision)) * market.spec.margin_ratio_initial // MARGIN_PRECISION
            if ledger.base or ledger.fills:
                positions[name] = ledger.position(name, market.oracle_price)
        return UserState(total, total - requirement, positions, tuple(self.orders), fills, funding)


def _crosses(side: str, price: int, market: MarketState) -> bool:
    if side == "bid":
        opposite = [p for p in (market.book.best_ask, market.vamm_ask) if p is not None]
        return bool(opposite) and price >= min(opposite)
    opposite = [p for p in (market.book.best_bid, market.vamm_bid) if p is not None]
    return bool(opposite) and price <= max(opposite)
