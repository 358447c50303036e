"""Queue models: how much of the size resting at our price stands ahead of our order, and
when the flow reaches us.

Why the naive rule lies. It fills a resting order on any trade at or through its price.
A trade *at* our price only proves that someone at that price was filled; price-time
priority gives the fill to the orders that were there before ours, and only once they are
gone does the flow reach us. So quoting at a displayed level looks far better than it is:
on ../shared/perf's coarse-tick stream, where most quotes sit on displayed levels, the
naive rule fills the reference maker 416 times, a queue-aware model about 224. Only a
trade *through* our price (or a book that crossed it) proves that our level was consumed.

The shape follows hftbacktest's queue models (four calls per order): `new_order` seats the
order behind what rests at its price when it lands; `trade` reports a trade at our price;
`depth` reports the level's new size at a snapshot; `is_filled` hands out what the flow has
passed beyond the queue ahead (and resets it). Trades through our price and crossed books
fill in the driver (keeper.venues.sim.fills), the same for every model. All sizes are
integers in the market's base precision; the state of one order is a QueuePosition.

What each model assumes:
- `risk_averse` (default): nobody ahead of us ever cancels. The queue ahead shrinks only by
  trades at our price, and by the level shrinking below it (what is not there cannot be
  ahead); a level that grows never pushes us back. hftbacktest's RiskAdverseQueueModel.
- `prob`: a level that shrinks by more than its trades lost that much to cancels, and each
  cancel sits ahead of us with weight front**n against back**n (n = 3), so cancels are
  likelier on the longer side of us. An expected value, no random numbers: the same inputs
  give the same queue. Like hftbacktest's ProbQueueModel with PowerProbQueueFunc.
- `l3_fifo`: where the archive has the L3 book, the orders ahead of us are known by id; at
  each snapshot the queue ahead is what those very orders still hold (cancels and fills
  ahead counted exactly, later arrivals never counted). Without L3 it acts as risk_averse.
- `naive`: no queue; any trade at our price fills us up to its size. Kept to compare with.

Every model seats a new order behind the archived L3 orders at its price where there are
some, else behind the displayed L2 size there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence

from keeper.errors import UserError
from keeper.model import BookOrder

DEFAULT_QUEUE_MODEL = "l3_fifo"  # exact with an archived L3 book; risk_averse where there is only L2
PROB_POWER = 3  # hftbacktest's examples use PowerProbQueueFunc(3)


@dataclass(slots=True)
class QueuePosition:
    """One order's place in its level: `ahead` may go negative between a trade and is_filled."""

    ahead: int
    traded: int = 0  # traded at our price since the last depth update (prob: not a cancel)
    ahead_ids: Optional[frozenset] = None  # l3_fifo: (user, order_id) of the orders ahead of us


def resting_ahead(level_size: int, orders: Optional[Sequence[BookOrder]]) -> int:
    """What rests at our price before our order lands: the L3 orders there where the archive
    has an L3 (none there means nobody is queued, whatever the L2 shows), else the L2 size."""
    return level_size if orders is None else sum(o.size for o in orders)


class QueueModel(Protocol):
    name: str

    def new_order(self, level_size: int, orders: Optional[Sequence[BookOrder]]) -> QueuePosition: ...

    def trade(self, q: QueuePosition, size: int) -> None: ...

    def depth(self, q: QueuePosition, prev_size: int, new_size: int, orders: Optional[Sequence[BookOrder]]) -> None: ...

    def is_filled(self, q: QueuePosition) -> int: ...


class RiskAverseQueue:
    name = "risk_averse"

    def new_order(self, level_size, orders):
        return QueuePosition(resting_ahead(level_size, orders))

    def trade(self, q, size):
        q.ahead -= size

    def depth(self, q, prev_size, new_size, orders):
        if new_size < q.ahead:
            q.ahead = new_size

    def is_filled(self, q):
        if q.ahead >= 0:
            return 0
        passed, q.ahead = -q.ahead, 0
        return passed


class ProbQueue(RiskAverseQueue):
    name = "prob"

    def __init__(self, power: int = PROB_POWER) -> None:
        self.power = power

    def trade(self, q, size):
        q.ahead -= size
        q.traded += size

    def depth(self, q, prev_size, new_size, orders):
        after_trades = prev_size - q.traded
        q.traded = 0
        cancelled = after_trades - new_size
        if cancelled > 0 and q.ahead > 0:
            front = q.ahead
            back = after_trades - front if after_trades > front else 0  # trades took from the front, not from behind us
            f, b = front ** self.power, back ** self.power
            cut_front = cancelled * f // (f + b)  # floor: never advance us more than expected
            overflow = cancelled - cut_front - back  # more cancelled behind us than was there
            q.ahead = front - cut_front - (overflow if overflow > 0 else 0)
        if new_size < q.ahead:
            q.ahead = new_size


class L3FifoQueue(RiskAverseQueue):
    name = "l3_fifo"

    def new_order(self, level_size, orders):
        if orders is None:
            return QueuePosition(level_size)
        return QueuePosition(resting_ahead(level_size, orders), ahead_ids=frozenset((o.user, o.order_id) for o in orders))

    def depth(self, q, prev_size, new_size, orders):
        if q.ahead_ids is not None and orders is not None:
            still = sum(o.size for o in orders if (o.user, o.order_id) in q.ahead_ids)
            if still < q.ahead:
                q.ahead = still
        if new_size < q.ahead:
            q.ahead = new_size


class NaiveQueue(RiskAverseQueue):
    name = "naive"

    def new_order(self, level_size, orders):
        return QueuePosition(0)

    def depth(self, q, prev_size, new_size, orders):
        pass


QUEUE_MODELS: dict[str, Callable[[], QueueModel]] = {
    "risk_averse": RiskAverseQueue,
    "prob": ProbQueue,
    "l3_fifo": L3FifoQueue,
    "naive": NaiveQueue,
}


def make_queue_model(name: str) -> QueueModel:
    factory = QUEUE_MODELS.get(name)
    if factory is None:
        raise UserError(f"unknown fill model {name!r}: choose one of {', '.join(QUEUE_MODELS)}")
    return factory()
