"""One of our resting orders against archived flow: latency, queue position, fills.

The what-if replay holds a RestingFill per resting order and advances it once per
snapshot with that snapshot's book and the trades printed since the previous one; it
returns the base filled. The queue rule is a QueueModel (keeper.venues.sim.queue); what
is the same under every model lives here:
- latency: an order placed at clock k lands at k + latency_slots and is touched only by
  flow stamped at or after that. Until it lands, everything resting at its price is ahead
  of it, so its queue is re-seated from each book it has not landed in yet. The flow a
  snapshot carries happened before the strategy saw it, so with one snapshot per slot
  latency 0 and 1 both fill from the next snapshot's flow on;
- a trade through our price, or a book whose other side reached our price, proves our
  level was consumed: the rest of the order fills, whatever the model;
- a trade at our price goes through the queue model, and fills us what passed the queue
  ahead (a partial fill when that is less than the order);
- trades whose taker sat on our side (a buyer when we bid) never touch us.
"""
from __future__ import annotations

from typing import Iterable, Optional

from keeper.errors import UserError
from keeper.model import Book, Side, Trade
from keeper.venues.sim.queue import QueueModel

DEFAULT_LATENCY_SLOTS = 1


def check_latency_slots(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"--latency-slots must be a whole number of slots, 0 or more; got {value!r}")
    return value


class RestingFill:
    __slots__ = ("model", "side", "price", "remaining", "active_from", "queue", "level", "before")

    def __init__(self, model: QueueModel, side: Side, price: int, size: int, placed_at: int,
                 latency_slots: int, book: Book) -> None:
        self.model = model
        self.side = side
        self.price = price
        self.remaining = size
        self.active_from = placed_at + check_latency_slots(latency_slots)
        self.before: Optional[frozenset] = None  # with an L3: the orders on our side placed before us
        self._seat(book)

    def _seat(self, book: Book) -> None:
        self.level = book.size_at(self.side, self.price) or 0
        self.queue = self.model.new_order(self.level, book.orders_at(self.side, self.price))
        ids = book.ids_on(self.side)
        if ids is not None:
            self.before = ids

    def reprice(self, price: int, book: Book) -> None:
        """A floating order moved with the oracle to `price` (in `book`, the book it moved in).
        Drift keeps time priority at every price: with an L3 the queue ahead is what the orders
        placed before ours hold there; without one, all of the level (its back)."""
        self.price = price
        self.level = book.size_at(self.side, price) or 0
        orders = book.orders_at(self.side, price)
        if self.before is not None and orders is not None:
            orders = tuple(o for o in orders if (o.user, o.order_id) in self.before)
        self.queue = self.model.new_order(self.level, orders)

    @property
    def queue_ahead(self) -> int:
        return max(self.queue.ahead, 0)

    def advance(self, clock: int, book: Book, trades: Iterable[Trade], crossing: Optional[int] = None,
                crossing_known: bool = False) -> int:
        """Feeds the trades printed up to `clock` (oldest first), then the book at `clock`;
        returns the base filled and leaves `remaining` what is left.

        What proves our level consumed is, by default, the book's other side at or through our
        price. On Drift a crossed DLOB does not fill a post-only maker (two makers never match);
        only a taker or the AMM does: a Drift replay passes the AMM's opposite quote as
        `crossing` (with crossing_known, None meaning there is none)."""
        if self.remaining <= 0:
            return 0
        if clock < self.active_from:
            self._seat(book)
            return 0
        bid = self.side == "bid"
        price = self.price
        filled = 0
        for trade in trades:
            if trade.taker_side == self.side:
                continue
            if (trade.price < price) if bid else (trade.price > price):
                filled = self.remaining
                break
            if trade.price == price:
                self.model.trade(self.queue, trade.size)
                filled = min(self.remaining, filled + self.model.is_filled(self.queue))
                if filled == self.remaining:
                    break
        other = crossing if crossing_known else (book.best_ask if bid else book.best_bid)
        if other is not None and ((other <= price) if bid else (other >= price)):
            filled = self.remaining
        self.remaining -= filled
        if self.remaining > 0:
            size = book.size_at(self.side, price)
            if size is not None:
                # only a queue that counts orders ahead of us by id reads them, and only while some are
                q = self.queue
                orders = book.orders_at(self.side, price) if q.ahead_ids is not None and q.ahead > 0 else None
                self.model.depth(q, self.level, size, orders)
                self.level = size
        return filled
