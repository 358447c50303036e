"""A session's columns (keeper/archive/columns.py) read back as model values, tick by tick.

A replay looks at a small part of each tick: the oracles, the trades, the book at its own
orders' prices, and the book's top for the risk gate's check against the mid. So the books
are views over the columns: `RecordedBook` is the Book the strategy sees, made whole only if
it reads the levels; `OthersBook` answers the queue model's questions at one price (the size
there, the L3 orders there, in queue order) with a bisection over that tick's slice.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Iterator, Optional

import msgspec

from keeper.archive.columns import Block, Tape
from keeper.model import Book, BookOrder, Execution, LastPlan, Level, MarketState, Side, Trade, UserState

_TRADES = msgspec.msgpack.Decoder(tuple[Trade, ...])
_USER = msgspec.msgpack.Decoder(UserState)
_LAST_PLAN = msgspec.msgpack.Decoder(Optional[LastPlan])
_EXECUTION = msgspec.msgpack.Decoder(Execution)
PROGRESS_EVERY = 64  # snapshots between progress updates


def ticks(tape: Tape, start: int = 0, end: Optional[int] = None, shown=None) -> Iterator[tuple[Block, int]]:
    """(block, index in it) of the snapshots [start, end) of the tape; `shown` (a
    keeper.ui.progress.Progress over tape.total()) is told how far they got. A first replay
    builds the columns a block ahead of the ticks, so the bytes read say where the build is, not
    the replay: within a block, progress is its share of the block's bytes."""
    served = 0
    before = after = 0  # the segments' bytes read when the block being served began and ended
    blocks = tape.blocks(start)
    for first, block in blocks:
        before, after = after, tape.session.bytes_read
        for i in range(max(0, start - first), block.n):
            if end is not None and first + i >= end:
                if not tape.warm:
                    for _ in blocks:  # read on to the end, so the cache is written whole for the next replay
                        pass
                break
            served += 1
            if shown is not None and not served % PROGRESS_EVERY:
                shown.update(first + i + 1 if tape.warm else before + (after - before) * (i + 1) // block.n, served)
            yield block, i
        else:
            continue
        break
    if shown is not None:
        shown.update(tape.total() if tape.warm else tape.session.bytes_read, served)  # the final count


def markets(block: Block, i: int) -> dict[str, MarketState]:
    """The snapshot's markets as recorded, in its order."""
    out = {}
    b = block
    for r in range(b.rows[i], b.rows[i + 1]):
        out[b.names[b.market[r]]] = MarketState(
            b.specs[b.spec[r]], b.oracle[r], b.oracle_slot[r], b.conf[r], b.mark[r], b.funding[r],
            RecordedBook(b, r), None if b.vbid_null[r] else b.vbid[r], None if b.vask_null[r] else b.vask[r],
            _TRADES.decode(b.blob("trades", r)) if b.trades_n[r] else (), None if b.ref_null[r] else b.ref[r])
    return out


def others(block: Block, i: int) -> dict[str, "OthersBook"]:
    """Per market, what others had resting: the queue a replayed order joins."""
    return {block.names[block.market[r]]: OthersBook(block, r) for r in range(block.rows[i], block.rows[i + 1])}


def user(block: Block, i: int) -> UserState:
    return _USER.decode(block.blob("user", i))


def last_plan(block: Block, i: int) -> Optional[LastPlan]:
    return _LAST_PLAN.decode(block.blob("last_plan", i))


def execution(block: Block, i: int) -> Optional[Execution]:
    """The execution recorded right after the snapshot, or None."""
    data = block.blob("execution", i)
    return _EXECUTION.decode(data) if data else None


def _recorded_order(b: Block, k: int) -> BookOrder:
    """Row k of the L3 as recorded."""
    return BookOrder("ask" if b.l3_side.item(k) else "bid", b.l3_price.item(k), b.l3_size.item(k),
                     b.users[b.l3_user.item(k)], b.l3_oid.item(k),
                     None if b.l3_offset_null.item(k) else b.l3_offset.item(k), bool(b.l3_post_only.item(k)))


def _others_order(b: Block, k: int, side: Side) -> BookOrder:
    """Row k of others' L3."""
    return BookOrder(side, b.o3_price.item(k), b.o3_size.item(k), b.users[b.o3_user.item(k)], b.o3_oid.item(k),
                     None if b.o3_offset_null.item(k) else b.o3_offset.item(k), bool(b.o3_post_only.item(k)))


class RecordedBook:
    """The recorded Book of one market at one snapshot, made when first read. It answers as a
    Book does, is equal to the Book it stands for, and the archive writes it as that Book."""

    __slots__ = ("_b", "_r", "_book")

    def __init__(self, block: Block, row: int) -> None:
        self._b, self._r, self._book = block, row, None

    def model_value(self) -> Book:
        return self.book()

    def book(self) -> Book:
        if self._book is None:
            b, r = self._b, self._r
            b0, b1, b2 = b.b0[r], b.b1[r], b.b2[r]
            bids = tuple(map(Level, b.lv_price[b0:b1].tolist(), b.lv_size[b0:b1].tolist()))
            asks = tuple(map(Level, b.lv_price[b1:b2].tolist(), b.lv_size[b1:b2].tolist()))
            l3 = None
            if not b.l3_null[r]:
                l3 = tuple(_recorded_order(b, k) for k in range(b.l0[r], b.l1[r]))
            self._book = Book(bids, asks, l3)
        return self._book

    @property
    def bids(self) -> tuple[Level, ...]:
        return self.book().bids

    @property
    def asks(self) -> tuple[Level, ...]:
        return self.book().asks

    @property
    def l3(self) -> Optional[tuple[BookOrder, ...]]:
        return self.book().l3

    @property
    def best_bid(self) -> Optional[int]:
        b, r = self._b, self._r
        return b.lv_price.item(b.b0[r]) if b.b0[r] < b.b1[r] else None

    @property
    def best_ask(self) -> Optional[int]:
        b, r = self._b, self._r
        return b.lv_price.item(b.b1[r]) if b.b1[r] < b.b2[r] else None

    def size_at(self, side: Side, price: int) -> Optional[int]:
        return self.book().size_at(side, price)

    def orders_at(self, side: Side, price: int) -> Optional[tuple[BookOrder, ...]]:
        return self.book().orders_at(side, price)

    def ids_on(self, side: Side) -> Optional[frozenset[tuple[str, int]]]:
        return self.book().ids_on(side)

    def __eq__(self, other) -> bool:
        if isinstance(other, RecordedBook):
            other = other.book()
        return self.book() == other if isinstance(other, Book) else NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return repr(self.book())


class OthersBook:
    """What others had resting in one market at one snapshot (the recorded run's own quotes
    taken out), as a queue model asks: by side and price. A replay asks it about each of its
    resting orders twice a tick (this snapshot's book, then the previous one's for a floating
    order's new price): each question is a bisection over the block's sort keys."""

    __slots__ = ("_b", "_r")

    def __init__(self, block: Block, row: int) -> None:
        self._b, self._r = block, row

    def size_at(self, side: Side, price: int) -> Optional[int]:
        b, r = self._b, self._r
        a, z = (b.o0[r], b.o1[r]) if side == "bid" else (b.o1[r], b.o2[r])
        keys = b.list("ov_key")
        key = -price if side == "bid" else price
        k = bisect_left(keys, key, a, z)
        if k == z:
            return None  # beyond the displayed depth, or an empty side
        return b.list("ov_size")[k] if keys[k] == key else 0

    def orders_at(self, side: Side, price: int) -> Optional[tuple[BookOrder, ...]]:
        b, r = self._b, self._r
        if b.l3_null[r]:
            return None
        a, z = (b.q0[r], b.q1[r]) if side == "bid" else (b.q1[r], b.q2[r])
        keys = b.list("o3_key")
        key = -price if side == "bid" else price
        lo = bisect_left(keys, key, a, z)
        if lo == z or keys[lo] != key:
            return ()
        return tuple(_others_order(b, k, side) for k in range(lo, bisect_right(keys, key, lo, z)))

    def ids_on(self, side: Side) -> Optional[frozenset[tuple[str, int]]]:
        b, r = self._b, self._r
        if b.l3_null[r]:
            return None
        a, z = (b.q0[r], b.q1[r]) if side == "bid" else (b.q1[r], b.q2[r])
        users = b.users
        return frozenset((users[u], oid) for u, oid in zip(b.o3_user[a:z].tolist(), b.o3_oid[a:z].tolist()))

    def _levels(self, side: Side) -> tuple[Level, ...]:
        b, r = self._b, self._r
        a, z = (b.o0[r], b.o1[r]) if side == "bid" else (b.o1[r], b.o2[r])
        keys = b.ov_key[a:z].tolist()
        return tuple(map(Level, [-k for k in keys] if side == "bid" else keys, b.ov_size[a:z].tolist()))

    @property
    def bids(self) -> tuple[Level, ...]:
        return self._levels("bid")

    @property
    def asks(self) -> tuple[Level, ...]:
        return self._levels("ask")

    @property
    def best_bid(self) -> Optional[int]:
        b, r = self._b, self._r
        return -b.ov_key.item(b.o0[r]) if b.o0[r] < b.o1[r] else None

    @property
    def best_ask(self) -> Optional[int]:
        b, r = self._b, self._r
        return b.ov_key.item(b.o1[r]) if b.o1[r] < b.o2[r] else None
