"""The local exchange: simulated time, matching, Drift's placement rules, and our account.

Everything random comes from random.Random streams seeded by (seed, market, purpose), so a
run depends only on its seed and price path, and adding a market leaves the others unchanged.
"""
from __future__ import annotations

import itertools
from typing import Optional

from keeper.errors import UserError
from keeper.model import MAX_OPEN_ORDERS, Placement, Trade
from keeper import drift_errors as E
from keeper.venues.local import specs as S
from keeper.venues.local.account import Account
from keeper.venues.local.book import Order, sweep
from keeper.venues.local.market import Market
from keeper.venues.local.oracle import price_sources
from keeper.venues.local.takers import SLIPPAGE_PPM

AUTHORITY = "keeper"  # BookOrder.user of our own orders; background makers are "maker<N>"
EPOCH_MS = 1_701_790_320_000  # 2023-12-05T15:32:00Z, when the DLOB recordings start
START_SLOT = 234_165_481  # the recordings' first slot
MS_PER_SLOT = 400


class Exchange:
    def __init__(self, markets: list[str], seed: int, price_path: Optional[list[tuple[int, int]]],
                 interval_ms: int, collateral: int):
        if not markets:
            raise UserError(f"no markets given; the local market has: {', '.join(S.names())}")
        if len(set(markets)) != len(markets):
            raise UserError(f"markets listed twice: {', '.join(markets)}")
        if interval_ms <= 0:
            raise UserError(f"interval must be a positive number of milliseconds, not {interval_ms}")
        specs = {n: S.spec(n) for n in markets}  # raises UserError on unknown names
        self.interval_ms = interval_ms
        self.t0 = price_path[0][0] if price_path else EPOCH_MS
        self.ts = self.t0
        self.account = Account(specs, collateral)
        maker_ids = itertools.count(1)
        self.markets: dict[str, Market] = {}
        sources = price_sources(markets, seed, price_path)
        for name in markets:
            self.markets[name] = Market(specs[name], S.params(name), S.shapes()[name], sources[name], seed,
                                        maker_ids.__next__)
        for m in self.markets.values():
            m.start(self.ts, self.slot, interval_ms)

    @property
    def slot(self) -> int:
        return START_SLOT + (self.ts - self.t0) // MS_PER_SLOT

    def oracles(self) -> dict[str, int]:
        return {n: m.oracle for n, m in self.markets.items()}

    # -- time -------------------------------------------------------------------------------

    def advance(self) -> None:
        dt = self.interval_ms
        self.ts += dt
        slot = self.slot
        for m in self.markets.values():
            m.move(self.ts, dt, slot)
        self._expire()
        for m in self.markets.values():
            m.makers.requote(dt)
            self._pick_off(m)
            for side, size in m.takers.arrivals(dt):
                self._take(m, side, size)
            m.accrue_twaps(dt)
            if m.vamm is not None:
                self.account.accrue_funding(m.name, m.funding_rate, dt)

    def _expire(self) -> None:
        now_s = self.ts // 1000
        for o in [o for o in self.account.orders.values() if o.max_ts and o.max_ts < now_s]:
            self._drop(o)

    def _take(self, m: Market, side: str, size: int) -> None:
        o = m.oracle
        limit = o * (1_000_000 + SLIPPAGE_PPM) // 1_000_000 if side == "bid" else o * (1_000_000 - SLIPPAGE_PPM) // 1_000_000
        cap = self._cap(m.name)
        for maker, price, q in sweep(m.book, m.vamm, side, size, limit, cap=cap):
            if maker is None:
                m.trades.append(Trade(price, q, side))
            else:
                self._fill_resting(m, maker, price, q, side)

    def _cap(self, market: str):
        acct = self.account
        return lambda o: acct.reduce_cap(market, o.side) if o.reduce_only else o.remaining

    def _pick_off(self, m: Market) -> None:
        """Arbitrage takers fill resting orders the oracle move left crossed, at the orders' own prices."""
        book = m.book
        if m.vamm is not None:
            for side, opp in (("bid", m.vamm_top("ask")), ("ask", m.vamm_top("bid"))):
                if opp is None:
                    continue
                victims = []
                for price, group in book.levels(side):
                    if (price < opp) if side == "bid" else (price > opp):
                        break
                    victims.extend((o, price) for o in group)
                taker = "ask" if side == "bid" else "bid"
                for o, price in victims:
                    self._fill_resting(m, o, price, o.remaining, taker)
        # DLOB orders crossed with each other (floating ones moved through stale fixed ones):
        # the older order is the maker, at its price.
        while True:
            bid_lv = next(book.levels("bid"), None)
            ask_lv = next(book.levels("ask"), None)
            if bid_lv is None or ask_lv is None or bid_lv[0] < ask_lv[0]:
                return
            b, a = bid_lv[1][0], ask_lv[1][0]
            if b.mine and a.mine:
                return  # never match us against ourselves
            maker, taker = (b, a) if b.seq < a.seq else (a, b)
            price = bid_lv[0] if maker is b else ask_lv[0]
            q = min(b.remaining, a.remaining)
            mine = b if b.mine else a if a.mine else None
            if mine is None:
                self._fill_resting(m, maker, price, q, taker.side)
                self._fill_resting(m, taker, price, q, taker.side, record=False)
            else:
                # Ours goes first: a reduce-only cap may shrink the match (or drop our order).
                other = a if mine is b else b
                q = self._fill_resting(m, mine, price, q, taker.side)
                if q:
                    self._fill_resting(m, other, price, q, taker.side, record=False)

    def _fill_resting(self, m: Market, o: Order, price: int, q: int, taker_side: str, record: bool = True) -> int:
        """Fill a resting order (ours or a background maker's); returns the base filled."""
        acct = self.account
        if o.mine:
            if o.reduce_only:
                q = min(q, acct.reduce_cap(m.name, o.side))
            if q > 0:
                acct.fill_order(m.name, o, price, q, True, self.ts)
            if o.remaining == 0 or (o.reduce_only and acct.reduce_cap(m.name, o.side) == 0):
                self._drop(o)  # Drift cancels a reduce-only order once it can no longer reduce
        else:
            o.filled += q
            m.makers.filled(o)
        if q > 0 and record:
            m.trades.append(Trade(price, q, taker_side))
        return q

    def _drop(self, o: Order) -> None:
        market = self.account.untrack(o)
        self.markets[market].book.remove(o)

    # -- our orders -------------------------------------------------------------------------

    def cancel(self, order_id: int) -> Optional[str]:
        o = self.account.orders.get(order_id)
        if o is None:
            return E.ORDER_NOT_FOUND
        self._drop(o)
        return None

    def cancel_all(self) -> int:
        mine = [o for o in self.account.orders.values() if o.uoid != 0]
        for o in mine:
            self._drop(o)
        return len(mine)

    def place(self, p: Placement) -> tuple[Optional[str], int]:
        """Place one order under Drift's rules; returns (error name or None, order_id)."""
        it, acct = p.intent, self.account
        m = self.markets.get(it.market)
        if m is None:
            return (E.PERP_MARKET_NOT_FOUND if it.market.endswith("-PERP") else E.SPOT_MARKET_NOT_FOUND), 0
        spec = m.spec
        if len(acct.orders) >= MAX_OPEN_ORDERS:
            return E.TOO_MANY_ORDERS, 0
        if p.user_order_id and any(o.uoid == p.user_order_id for o in acct.orders.values()):
            return E.USER_ORDER_ID_IN_USE, 0
        if it.size % spec.step_size:
            return E.SIZE_NOT_STEP, 0
        if it.size < spec.min_order_size:
            return E.SIZE_BELOW_MIN, 0
        if it.price is not None and (it.price <= 0 or it.price % spec.tick_size):
            return E.PRICE_NOT_TICK, 0
        if it.expiry_s < 0:
            return E.BAD_MAX_TS, 0
        price = it.price if it.price is not None else m.book.floating_price(it.side, it.oracle_offset)
        crossing = m.crosses(it.side, price)
        if it.post_only and crossing:
            return E.POST_ONLY_CROSS, 0
        if it.reduce_only and acct.reduce_cap(it.market, it.side) == 0:
            return E.NOT_RISK_REDUCING, 0
        if not it.reduce_only:
            oracles = self.oracles()
            before = acct.requirement(oracles)
            after = acct.requirement(oracles, (it.market, it.side, it.size))
            if after > before and acct.total_collateral(oracles) < after:
                return E.INSUFFICIENT_COLLATERAL, 0
        o = Order(acct.new_order_id(), AUTHORITY, it.side, it.size, price=it.price or 0, offset=it.oracle_offset,
                  uoid=p.user_order_id, post_only=it.post_only, reduce_only=it.reduce_only,
                  max_ts=self.ts // 1000 + it.expiry_s if it.expiry_s else 0, mine=True)
        if crossing:
            self._cross_at_placement(m, o, price)
        if o.remaining > 0 and not (o.reduce_only and acct.reduce_cap(it.market, it.side) == 0):
            m.book.add(o)
            acct.track(it.market, o)
        return None, o.oid

    def _cross_at_placement(self, m: Market, o: Order, limit: int) -> None:
        """A non-post-only order that crosses takes liquidity first (we pay the taker fee)."""
        acct = self.account
        size = min(o.size, acct.reduce_cap(m.name, o.side)) if o.reduce_only else o.size
        for maker, price, q in sweep(m.book, m.vamm, o.side, size, limit, skip_mine=True, cap=self._cap(m.name)):
            if maker is not None:
                q = self._fill_resting(m, maker, price, q, o.side)
            else:
                m.trades.append(Trade(price, q, o.side))
            if q:
                acct.fill_order(m.name, o, price, q, False, self.ts)
