"""Background makers: the real DLOB's shape laid around the simulated oracle.

Each entry of the shipped shape is one real resting order (side, price or offset relative to
that snapshot's oracle, size). Entries become orders scaled to the current oracle; fixed-price
ones go stale as the oracle moves, so a seeded fraction is re-anchored every tick, the way real
makers requote. An entry whose order was filled stays empty until it is picked for a requote.
"""
from __future__ import annotations

import random
from typing import Callable

from keeper.venues.sim.book import Order
from keeper.venues.sim.exchange import Exchange

REQUOTE_PER_SECOND = 0.02  # fraction of the book's entries requoted each simulated second
# A fixed-price entry is requoted at once when the oracle has moved this far from where it was
# placed: makers watch the price, so their quotes do not go stale by more than a few seconds
# of calm moves (SOL's real volatility is ~1 bp a second).
STALE_PPM = 1_000


class Makers:
    def __init__(self, shape: dict, step_size: int, ex: Exchange, market: str, rng: random.Random,
                 next_oid: Callable[[], int]):
        self._entries = [
            ("bid" if side == 0 else "ask", ppm, steps * step_size, bool(floating), bool(post_only), f"maker{maker}")
            for side, ppm, steps, floating, post_only, maker in shape["orders"]
        ]
        self.live: list[Order | None] = [None] * len(self._entries)
        self._anchor: list[int] = [0] * len(self._entries)  # the oracle each fixed-price entry was placed at
        self._ex, self._market = ex, market
        self._book = ex.markets[market].book
        self._rng, self._next_oid = rng, next_oid
        self._carry = 0.0

    def seed(self) -> None:
        for i in range(len(self._entries)):
            self._place(i)

    def requote(self, dt_ms: int) -> None:
        n = len(self._entries)
        if not n:
            return
        oracle = self._book.oracle
        for i, o in enumerate(self.live):
            if o is not None and o.offset is None and abs(oracle - self._anchor[i]) * 1_000_000 > STALE_PPM * self._anchor[i]:
                self._ex.withdraw(self._market, o)
                self.live[i] = None
                self._place(i)
        self._carry += n * REQUOTE_PER_SECOND * dt_ms / 1000
        k, self._carry = int(self._carry), self._carry - int(self._carry)
        for _ in range(k):
            i = self._rng.randrange(n)
            old = self.live[i]
            if old is not None:
                if old.offset is not None and old.filled == 0:
                    continue  # an untouched floating order already follows the oracle
                self._ex.withdraw(self._market, old)
                self.live[i] = None
            self._place(i)

    def filled(self, o: Order) -> None:
        """A background order was filled: fully, and the exchange took it off the book."""
        if o.remaining == 0:
            self.live[o.tag] = None

    def _place(self, i: int) -> None:
        side, ppm, size, floating, post_only, user = self._entries[i]
        book = self._book
        t = book.tick
        scaled = book.oracle * ppm // 1_000_000
        if floating:
            offset = scaled // t * t
            price = book.floating_price(side, offset)
            o = Order(self._next_oid(), user, side, size, offset=offset, post_only=post_only, tag=i)
        else:
            price = max(t, scaled // t * t if side == "bid" else -(-scaled // t) * t)
            o = Order(self._next_oid(), user, side, size, price=price, post_only=post_only, tag=i)
        # Makers do not post through the market; such an entry waits for a later requote.
        if self._ex.markets[self._market].crosses(side, price):
            return
        self._ex.rest(self._market, o)
        self.live[i] = o
        self._anchor[i] = book.oracle
