"""Market features strategies share: pure functions of one snapshot's values, and small
estimators that carry state from tick to tick (fed by quote(), so strategies stay pure).

Floats are fine here: these feed strategy maths, whose results are rounded to Drift integers
before they become Intents. Prices are in PRICE_PRECISION units, times in milliseconds.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Iterable, Optional

from keeper.model import Book, Trade


def mid(book: Book) -> Optional[float]:
    if not book.bids or not book.asks:
        return None
    return (book.bids[0].price + book.asks[0].price) / 2


def microprice(book: Book) -> Optional[float]:
    """The touch prices weighted by the opposite side's size: (bid*ask_size + ask*bid_size) /
    (bid_size + ask_size). A heavy bid pulls it toward the ask, where the next trade is likelier
    (Stoikov, "The micro-price", Quantitative Finance 2018, its first-order approximation)."""
    if not book.bids or not book.asks:
        return None
    bid, ask = book.bids[0], book.asks[0]
    total = bid.size + ask.size
    if total == 0:
        return None
    return (bid.price * ask.size + ask.price * bid.size) / total


def book_imbalance(book: Book, depth: int = 1) -> Optional[float]:
    """(bid size - ask size) / (bid size + ask size) over the best `depth` levels, in [-1, 1]."""
    bids = sum(level.size for level in book.bids[:depth])
    asks = sum(level.size for level in book.asks[:depth])
    if bids + asks == 0:
        return None
    return (bids - asks) / (bids + asks)


def trade_flow_imbalance(trades: Iterable[Trade]) -> Optional[float]:
    """(taker-bought - taker-sold) / traded size, in [-1, 1]; None without trades."""
    bought = sold = 0
    for trade in trades:
        if trade.taker_side == "bid":
            bought += trade.size
        else:
            sold += trade.size
    if bought + sold == 0:
        return None
    return (bought - sold) / (bought + sold)


class EwmaVolatility:
    """Realized volatility of log returns, per square root of a second, as an exponentially
    weighted mean of squared returns scaled by their time step:

        var <- (1 - a) * var + a * r^2 / dt,   a = 1 - exp(-dt * ln 2 / halflife)

    so uneven tick spacing weighs each return by the time it spans (RiskMetrics' EWMA with a
    time-based decay). sigma() is None until the first return."""

    def __init__(self, halflife_s: float) -> None:
        self.halflife_s = halflife_s
        self.variance: Optional[float] = None  # per second
        self._last: Optional[tuple[int, float]] = None  # (ts_ms, price)

    def update(self, ts_ms: int, price: float) -> Optional[float]:
        if price <= 0:
            return self.sigma()
        if self._last is not None and ts_ms > self._last[0]:
            dt = (ts_ms - self._last[0]) / 1000
            r2 = math.log(price / self._last[1]) ** 2 / dt
            a = 1 - math.exp(-dt * math.log(2) / self.halflife_s)
            self.variance = r2 if self.variance is None else (1 - a) * self.variance + a * r2
        if self._last is None or ts_ms > self._last[0]:
            self._last = (ts_ms, price)
        return self.sigma()

    def sigma(self) -> Optional[float]:
        return None if self.variance is None else math.sqrt(self.variance)


class FillIntensity:
    """The arrival rate of trades reaching a distance delta from the mid, fitted as
    lambda(delta) = A * exp(-kappa * delta) (Avellaneda & Stoikov 2008, section 2.4).

    A resting quote at distance delta is reached by every trade printed at delta or further,
    so lambda(delta) is the count of trades at least delta from the mid, per second, over a
    window. Its log is fitted by least squares on a grid of distances (in bps of the mid),
    using only the grid points some trade reached. fit() gives (A per second, kappa per bps),
    or None with fewer than `min_trades` trades or fewer than two such points."""

    GRID_BPS = (0.5, 1, 2, 3, 5, 7, 10, 15, 20, 30, 50)

    def __init__(self, window_s: float, min_trades: int = 10) -> None:
        self.window_ms = window_s * 1000
        self.min_trades = min_trades
        self.trades: deque[tuple[int, float]] = deque()  # (ts_ms, distance in bps)
        self.start_ms: Optional[int] = None
        self.now_ms: Optional[int] = None

    def observe(self, ts_ms: int, reference: float, trades: Iterable[Trade]) -> None:
        """Trades printed since the previous snapshot, against the mid they traded away from."""
        if self.start_ms is None:
            self.start_ms = ts_ms
        self.now_ms = ts_ms
        if reference > 0:
            for trade in trades:
                self.trades.append((ts_ms, abs(trade.price - reference) / reference * 10_000))
        while self.trades and self.trades[0][0] <= ts_ms - self.window_ms:
            self.trades.popleft()

    def fit(self) -> Optional[tuple[float, float]]:
        if len(self.trades) < self.min_trades or self.now_ms is None:
            return None
        span_s = min(self.window_ms, self.now_ms - self.start_ms) / 1000
        if span_s <= 0:
            return None
        points = []
        for delta in self.GRID_BPS:
            count = sum(1 for _, d in self.trades if d >= delta)
            if count:
                points.append((delta, math.log(count / span_s)))
        if len(points) < 2:
            return None
        n = len(points)
        mx = sum(x for x, _ in points) / n
        my = sum(y for _, y in points) / n
        sxx = sum((x - mx) ** 2 for x, _ in points)
        slope = sum((x - mx) * (y - my) for x, y in points) / sxx
        kappa = -slope
        if kappa <= 0:  # trades no rarer far from the mid: no decay to fit
            return None
        return math.exp(my - slope * mx), kappa
