"""The sim exchange: markets, our account, Drift's placement rules, matching, expiry, funding,
interest and liquidation, on a clock the caller drives.

Nothing here is random and nothing reads the wall clock: the flow that feeds it (the local
market's makers and takers, or a replay's archived tape) decides what happens, and the same
calls always give the same fills.
"""
from __future__ import annotations

from typing import Callable, Optional

from keeper import drift_errors as E
from keeper.model import Fill, Trade
from keeper.venues.sim import rules
from keeper.venues.sim.account import Account
from keeper.venues.sim.book import Order, sweep
from keeper.venues.sim.interest import SpotRates
from keeper.venues.sim.liquidation import liquidate
from keeper.venues.sim.market import MarketConfig, SimMarket
from keeper.venues.sim.rules import OrderRequest, PostOnly

AUTHORITY = "keeper"  # BookOrder.user of our own orders


class Exchange:
    def __init__(self, markets: list[MarketConfig], collateral: int, now_ms: int, prices: dict[str, int],
                 slot: int = 0, tick_ms: int = 1000, rates: Optional[dict[str, SpotRates]] = None):
        self.now_ms = now_ms
        self.slot = slot
        self.markets: dict[str, SimMarket] = {c.spec.name: SimMarket(c) for c in markets}
        self.account = Account({n: m.spec for n, m in self.markets.items()}, collateral, rates)
        # Called with (market, order) when someone else's resting order filled; the flow that
        # placed it (background makers) forgets it once it is gone.
        self.on_maker_fill: Optional[Callable[[str, Order], None]] = None
        self.liquidations = 0
        for name, m in self.markets.items():
            m.start(prices[name], slot, tick_ms)

    @property
    def now_s(self) -> int:
        return self.now_ms // 1000

    def oracles(self) -> dict[str, int]:
        return {n: m.oracle for n, m in self.markets.items()}

    # -- clock and prices ---------------------------------------------------------------------

    def advance(self, now_ms: int, slot: int) -> None:
        """Move the clock: funding and interest for the time passed, then expiry."""
        dt = now_ms - self.now_ms
        self.now_ms, self.slot = now_ms, slot
        acct = self.account
        for name, m in self.markets.items():
            acct.accrue(name, m.funding_rate, dt)
        acct.accrue_usdc(dt)
        self.expire()

    def set_oracle(self, market: str, price: int, slot: Optional[int] = None) -> None:
        """A new oracle price: floating orders move with it and the AMM requotes around it."""
        self.markets[market].move(price, self.slot if slot is None else slot)

    def end_tick(self, dt_ms: int) -> None:
        """After a tick's flow: TWAPs and funding rates (no time passed, nothing to accrue: a
        replay sets the archived rates itself), then liquidation if margin is breached."""
        if dt_ms:
            for m in self.markets.values():
                m.accrue_twaps(dt_ms)
        if liquidate(self):
            self.liquidations += 1

    def expire(self) -> None:
        now = self.now_s
        for o in [o for o in self.account.orders.values() if rules.expired(o.max_ts, now)]:
            self._drop(o)

    # -- our orders ---------------------------------------------------------------------------

    def place(self, req: OrderRequest) -> tuple[Optional[str], int]:
        """Place one of our orders under the program's rules; returns (error name or None, order_id).

        order_id 0 with no error: accepted but nothing rests (TryPostOnly that would cross, a
        max_ts already past, or an IOC order whose rest was cancelled after it filled)."""
        acct = self.account
        m = self.markets.get(req.market)
        if m is None:
            return (E.PERP_MARKET_NOT_FOUND if req.market.endswith("-PERP") else E.SPOT_MARKET_NOT_FOUND), 0
        uoid_used = any(o.uoid == req.user_order_id for o in acct.orders.values())
        err = rules.check(m.spec, req, len(acct.orders), uoid_used)
        if err:
            return err, 0
        price = req.price if req.price is not None else m.book.floating_price(req.side, req.oracle_offset)
        post_only = req.post_only is not PostOnly.NONE
        limit = req.price or 0
        if post_only:
            amm_bid, amm_ask, tick = m.vamm_top("bid"), m.vamm_top("ask"), m.spec.tick_size
            crossing = rules.crosses_amm(req.side, price, amm_bid, amm_ask, tick, m.oracle)
            err, ok = rules.post_only_outcome(req.post_only, crossing)
            if err or not ok:
                return err, 0
            if req.post_only is PostOnly.SLIDE:  # a slid floating order becomes a fixed one
                slid = rules.slid_price(req.side, price, amm_bid, amm_ask, tick)
                if slid != price:
                    price = limit = slid
        # Only an order that adds to the worst case is margin-checked (reduce-only or not).
        oracles = self.oracles()
        before = acct.requirement(oracles)
        after = acct.requirement(oracles, (req.market, req.side, req.size))
        if after > before and acct.total_collateral(oracles) < after:
            return E.INSUFFICIENT_COLLATERAL, 0
        if rules.expired(req.max_ts, self.now_s):
            return None, 0
        offset = None if post_only and limit != (req.price or 0) else req.oracle_offset
        o = Order(acct.new_order_id(), AUTHORITY, req.side, req.size, price=limit, offset=offset,
                  uoid=req.user_order_id, post_only=post_only, reduce_only=req.reduce_only, max_ts=req.max_ts,
                  mine=True)
        if not post_only and m.crosses(req.side, price):
            self._take_at_placement(m, o, price)
        if o.remaining > 0 and not req.ioc:
            m.book.add(o)
            acct.track(req.market, o)
            return None, o.oid
        return None, o.oid if o.filled else 0

    def cancel(self, order_id: int) -> Optional[str]:
        o = self.account.orders.get(order_id)
        if o is None:
            return E.ORDER_NOT_FOUND
        self._drop(o)
        return None

    def cancel_all(self, keeper_only: bool = True) -> int:
        """Cancel our orders (with keeper_only, those tagged with a user_order_id)."""
        mine = [o for o in self.account.orders.values() if o.uoid != 0 or not keeper_only]
        for o in mine:
            self._drop(o)
        return len(mine)

    def settle_pnl(self, market: str) -> int:
        """Our PnL in a perp market into the USDC balance, at the oracle; the quote moved."""
        return self.account.settle_pnl(market, self.markets[market].oracle)

    def queue_ahead(self, order_id: int) -> int:
        o = self.account.orders[order_id]
        return self.markets[self.account.market_of[order_id]].book.queue_ahead(o)

    def price_of(self, order_id: int) -> int:
        """Where one of our orders rests now (a floating one follows the oracle)."""
        return self.markets[self.account.market_of[order_id]].book.price_of(self.account.orders[order_id])

    def fill_ours(self, order_id: int, size: int, price: Optional[int] = None) -> int:
        """Fill one of our resting orders as the maker, at `price` (where it stood when the flow
        met it; default where it rests now), from flow known from outside (a replay's archived
        tape through its queue model); returns the base filled."""
        o = self.account.orders.get(order_id)
        if o is None or size <= 0:
            return 0
        m = self.markets[self.account.market_of[order_id]]
        taker = "ask" if o.side == "bid" else "bid"
        return self._fill_resting(m, o, m.book.price_of(o) if price is None else price, size, taker, record=False)

    def drain_fills(self) -> list[Fill]:
        fills, self.account.fills = self.account.fills, []
        return fills

    # -- flow from outside --------------------------------------------------------------------

    def rest(self, market: str, o: Order) -> None:
        """Someone else's resting order joins the back of its price's queue."""
        self.markets[market].book.add(o)

    def withdraw(self, market: str, o: Order) -> None:
        self.markets[market].book.remove(o)

    def take(self, market: str, side: str, size: int, limit: int) -> int:
        """An outside taker (IOC limit) sweeps the book and the AMM; returns the base it got."""
        m = self.markets[market]
        got = 0
        for maker, price, q in sweep(m.book, m.vamm, side, size, limit, cap=self._cap(market)):
            if maker is None:
                m.trades.append(Trade(price, q, side))
            else:
                q = self._fill_resting(m, maker, price, q, side)
            got += q
        return got

    def arbitrage(self, market: str) -> None:
        """What arbitrageurs and fillers do once the oracle moved: resting orders the AMM's quote
        now crosses are taken at their own price, and DLOB orders crossed with each other are
        matched (a post-only order is always the maker; two post-only orders stay crossed)."""
        m = self.markets[market]
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
        while True:
            bid_lv = next(book.levels("bid"), None)
            ask_lv = next(book.levels("ask"), None)
            if bid_lv is None or ask_lv is None or bid_lv[0] < ask_lv[0]:
                return
            b, a = bid_lv[1][0], ask_lv[1][0]
            if (b.mine and a.mine) or (b.post_only and a.post_only):
                return  # no self-trade, and two makers never match
            if b.post_only != a.post_only:
                maker, taker = (b, a) if b.post_only else (a, b)
            else:
                maker, taker = (b, a) if b.seq < a.seq else (a, b)
            price = bid_lv[0] if maker is b else ask_lv[0]
            q = min(self._avail(market, b), self._avail(market, a))
            if q <= 0:
                return
            first, second = (b, a) if b.mine else (a, b)  # ours first: its caps apply
            q = self._fill_resting(m, first, price, q, taker.side, maker=first is maker)
            if q:
                self._fill_resting(m, second, price, q, taker.side, maker=second is maker, record=False)

    # -- matching -----------------------------------------------------------------------------

    def _avail(self, market: str, o: Order) -> int:
        if not o.mine:
            return o.remaining
        return rules.fillable(o.reduce_only, o.post_only, o.remaining, o.side, self.account.position(market))

    def _cap(self, market: str):
        return lambda o: self._avail(market, o)

    def _fill_resting(self, m: SimMarket, o: Order, price: int, q: int, taker_side: str, record: bool = True,
                      maker: bool = True) -> int:
        """Fill a resting order (ours or someone else's) by up to q; returns the base filled."""
        if o.mine:
            q = min(q, self._avail(m.name, o))
            if q > 0:
                self.account.fill_order(m.name, o, price, q, maker, self.now_ms)
            if o.remaining == 0:
                self._drop(o)
        else:
            o.filled += q
            if o.remaining == 0:
                m.book.remove(o)
            if self.on_maker_fill is not None:
                self.on_maker_fill(m.name, o)
        if q > 0 and record:
            m.trades.append(Trade(price, q, taker_side))
        return q

    def _take_at_placement(self, m: SimMarket, o: Order, limit: int) -> None:
        """A non-post-only order that crosses takes liquidity at once (fillers fill it on Drift)."""
        size = rules.fillable(o.reduce_only, False, o.size, o.side, self.account.position(m.name))
        for maker, price, q in sweep(m.book, m.vamm, o.side, size, limit, skip_mine=True, cap=self._cap(m.name)):
            if maker is not None:
                q = self._fill_resting(m, maker, price, q, o.side)
            else:
                m.trades.append(Trade(price, q, o.side))
            if q:
                self.account.fill_order(m.name, o, price, q, False, self.now_ms)

    def _drop(self, o: Order) -> None:
        market = self.account.untrack(o)
        self.markets[market].book.remove(o)
