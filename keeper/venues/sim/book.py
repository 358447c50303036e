"""The DLOB of one market: resting limit orders in price-time (FIFO) priority, and the sweep that matches them.

An order added at a price joins the back of that price's queue: it fills only after every order
resting there before it (`queue_ahead` says how much that is).

Floating (oracle-offset) orders are kept sorted by offset rather than by price: the whole
group moves with the oracle without re-sorting, and is merged with the fixed-price orders
whenever the book is walked.
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional

from sortedcontainers import SortedList


class Order:
    __slots__ = ("oid", "user", "uoid", "side", "price", "offset", "size", "filled", "post_only",
                 "reduce_only", "max_ts", "seq", "tag", "mine", "key")

    def __init__(self, oid: int, user: str, side: str, size: int, price: int = 0, offset: Optional[int] = None,
                 uoid: int = 0, post_only: bool = False, reduce_only: bool = False, max_ts: int = 0,
                 tag: int = -1, mine: bool = False):
        self.oid, self.user, self.uoid, self.side = oid, user, uoid, side
        self.price, self.offset, self.size, self.filled = price, offset, size, 0
        self.post_only, self.reduce_only, self.max_ts = post_only, reduce_only, max_ts
        self.tag, self.mine = tag, mine  # tag: index of the background maker's shape entry
        self.seq = 0
        self.key = None

    @property
    def remaining(self) -> int:
        return self.size - self.filled


def better(side: str, a: int, b: int) -> bool:
    """Is price a strictly better than b for a resting order on `side`?"""
    return a > b if side == "bid" else a < b


class OrderBook:
    def __init__(self, tick: int):
        self.tick = tick
        self.oracle = 0
        self._fixed = {"bid": SortedList(), "ask": SortedList()}
        self._floating = {"bid": SortedList(), "ask": SortedList()}
        self._seq = 0
        self.count = 0

    def price_of(self, o: Order) -> int:
        if o.offset is None:
            return o.price
        return self.floating_price(o.side, o.offset)

    def floating_price(self, side: str, offset: int) -> int:
        # Rounded to a tick away from the other side, so an offset quote never crosses by rounding.
        t = self.tick
        raw = self.oracle + offset
        return max(t, raw // t * t) if side == "bid" else max(t, -(-raw // t) * t)

    def add(self, o: Order) -> None:
        self._seq += 1
        o.seq = self._seq
        k = o.price if o.offset is None else o.offset
        o.key = (-k if o.side == "bid" else k, o.seq, o)
        (self._fixed if o.offset is None else self._floating)[o.side].add(o.key)
        self.count += 1

    def remove(self, o: Order) -> None:
        (self._fixed if o.offset is None else self._floating)[o.side].remove(o.key)
        o.key = None
        self.count -= 1

    def best(self, side: str) -> Optional[int]:
        fx, fl = self._fixed[side], self._floating[side]
        a = fx[0][2].price if fx else None
        b = self.floating_price(side, fl[0][2].offset) if fl else None
        if a is None:
            return b
        if b is None:
            return a
        return b if better(side, b, a) else a

    def levels(self, side: str) -> Iterator[tuple[int, list[Order]]]:
        """(price, orders in time priority) from the best price outward."""
        fx, fl = iter(self._fixed[side]), iter(self._floating[side])
        a, b = next(fx, None), next(fl, None)
        pa = a[2].price if a else 0
        pb = self.floating_price(side, b[2].offset) if b else 0
        bid = side == "bid"
        while a is not None or b is not None:
            if b is None or (a is not None and (pa >= pb if bid else pa <= pb)):
                best = pa
            else:
                best = pb
            group = []
            while a is not None and pa == best:
                group.append(a[2])
                a = next(fx, None)
                pa = a[2].price if a else 0
            n_fixed = len(group)
            while b is not None and pb == best:
                group.append(b[2])
                b = next(fl, None)
                pb = self.floating_price(side, b[2].offset) if b else 0
            if len(group) > 1 and n_fixed < len(group):
                group.sort(key=_seq)
            yield best, group

    def queue_ahead(self, o: Order) -> int:
        """Base resting at o's price that fills before o: everything placed there earlier."""
        price = self.price_of(o)
        for p, group in self.levels(o.side):
            if p == price:
                return sum(x.remaining for x in group if x.seq < o.seq)
            if better(o.side, price, p):
                break
        return 0

    def orders(self) -> Iterator[Order]:
        for lists in (self._fixed, self._floating):
            for side in ("bid", "ask"):
                for k in lists[side]:
                    yield k[2]


def _seq(o: Order) -> int:
    return o.seq


# A match: (resting order or None for the vAMM, price, base)
Match = tuple[Optional[Order], int, int]


def sweep(book: OrderBook, vamm, taker_side: str, size: int, limit: int,
          skip_mine: bool = False, cap: Optional[Callable[[Order], int]] = None) -> list[Match]:
    """Match a taker against the best prices first: DLOB orders (time priority within a price), then
    the vAMM (sim.amm.Vamm, or None) at equal price. vAMM levels are consumed in place; DLOB orders are left for the caller
    to fill (so the book is not mutated while walked). `cap` limits fills of our own resting orders
    (reduce-only)."""
    maker_side = "ask" if taker_side == "bid" else "bid"
    amm = (vamm.asks if maker_side == "ask" else vamm.bids) if vamm is not None else []
    ai = 0
    out: list[Match] = []
    left = size

    def in_limit(p: int) -> bool:
        return p <= limit if taker_side == "bid" else p >= limit

    def take_amm(bound: Optional[int]) -> None:
        nonlocal ai, left
        while left and ai < len(amm):
            lvl = amm[ai]
            p = lvl[0]
            if not in_limit(p) or (bound is not None and not better(maker_side, p, bound)):
                return
            q = min(left, lvl[1])
            if q:
                lvl[1] -= q
                left -= q
                out.append((None, p, q))
            if lvl[1] == 0:
                ai += 1

    for price, group in book.levels(maker_side):
        if not left or not in_limit(price):
            break
        take_amm(price)
        for o in group:
            if not left:
                break
            if skip_mine and o.mine:
                continue
            avail = o.remaining
            if o.mine and cap is not None:
                avail = min(avail, cap(o))
            if avail <= 0:
                continue
            q = min(left, avail)
            left -= q
            out.append((o, price, q))
    take_amm(None)
    return out
