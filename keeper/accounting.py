"""Average-cost book-keeping of one market's position, in integers.

The local exchange, the replay venue and the reports all count PnL with this one Ledger,
so a run's summary and its replay agree to the last micro-dollar.
"""
from __future__ import annotations

from dataclasses import dataclass

from keeper.model import FUNDING_RATE_PRECISION, QUOTE_PRECISION, Fill, Position


# funding rate (1e9) * base / base precision * elapsed ms -> quote (1e6): / 1e3 / 3.6e6 ms per hour
FUNDING_DIVISOR = (FUNDING_RATE_PRECISION // QUOTE_PRECISION) * 3_600_000


def quote_value(base: int, price: int, base_precision: int) -> int:
    """Quote (1e6) value of `base` at `price` (1e6), truncated toward zero."""
    return _div_trunc(base * price, base_precision)


def _div_trunc(a: int, b: int) -> int:
    q = abs(a) // b
    return -q if a < 0 else q


@dataclass
class Ledger:
    base_precision: int
    base: int = 0
    cost: int = 0  # quote paid for the open position, signed like base
    realized: int = 0
    fees: int = 0  # quote paid; rebates make it negative
    funding: int = 0  # quote received
    volume: int = 0  # quote traded
    fills: int = 0
    max_inventory: int = 0  # largest |base| seen
    funding_rest: int = 0  # funding owed below a micro-dollar, carried to the next accrual

    def accrue_funding(self, rate: int, elapsed_ms: int) -> int:
        """Pay or receive `rate` (quote per base per hour, FUNDING_RATE_PRECISION; >0 longs pay)
        for `elapsed_ms`; returns the quote paid to us now. Remainders carry over, so many short
        accruals pay exactly what one long one would."""
        if not self.base:
            return 0
        owed = -self.base * rate * elapsed_ms + self.funding_rest
        divisor = self.base_precision * FUNDING_DIVISOR
        paid = _div_trunc(owed, divisor)
        self.funding_rest = owed - paid * divisor
        self.funding += paid
        return paid

    def apply(self, fill: Fill) -> None:
        delta = fill.size if fill.side == "bid" else -fill.size
        self.fills += 1
        self.fees += fill.fee
        self.volume += quote_value(fill.size, fill.price, self.base_precision)
        if self.base and (self.base > 0) != (delta > 0):
            closed = min(abs(delta), abs(self.base))
            cost_removed = _div_trunc(self.cost * closed, abs(self.base))
            proceeds = quote_value(closed if self.base > 0 else -closed, fill.price, self.base_precision)
            self.realized += proceeds - cost_removed
            self.cost -= cost_removed
            self.base += closed if delta > 0 else -closed
            delta += -closed if delta > 0 else closed
            if self.base == 0:
                self.cost = 0
        if delta:
            self.base += delta
            self.cost += quote_value(delta, fill.price, self.base_precision)
        self.max_inventory = max(self.max_inventory, abs(self.base))

    def entry_price(self) -> int:
        return _div_trunc(self.cost * self.base_precision, self.base) if self.base else 0

    def unrealized(self, oracle_price: int) -> int:
        return quote_value(self.base, oracle_price, self.base_precision) - self.cost

    def total_pnl(self, oracle_price: int) -> int:
        return self.realized + self.unrealized(oracle_price) - self.fees + self.funding

    def position(self, market: str, oracle_price: int) -> Position:
        return Position(market, self.base, self.entry_price(), self.realized, self.unrealized(oracle_price))
