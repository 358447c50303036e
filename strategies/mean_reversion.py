"""Quotes centred between the oracle and its moving average, betting the price reverts."""
from __future__ import annotations

from decimal import Decimal

from keeper.model import Intent, Snapshot
from strategies.base import MAX_AMOUNT, MAX_SPREAD_BPS, Param, Strategy, base_for_notional, sticky


class MeanReversion(Strategy):
    name = "mean_reversion"
    description = "Quotes skewed toward an exponential moving average of the oracle, trimmed by inventory."
    params = (
        Param("window", int, 30, "Moving-average window, in ticks"),
        Param("spread_bps", float, 25.0, "Distance of each quote from the skewed centre, in bps"),
        Param("skew", float, 0.5, "How far to shift the centre toward the average (0 none, 1 all the way)"),
        Param("size_usd", Decimal, Decimal("100"), "Quote size per side, in USD at the oracle price"),
        Param("max_position_usd", Decimal, Decimal("1000"), "Stop adding to a position beyond this notional"),
        Param("requote_bps", float, 2.0, "Leave a resting quote alone while it is within this many bps of target"),
    )

    def check(self) -> None:
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if self.spread_bps <= 0 or self.size_usd <= 0 or self.max_position_usd <= 0:
            raise ValueError("spread_bps, size_usd and max_position_usd must be positive")
        if self.spread_bps >= MAX_SPREAD_BPS:
            raise ValueError(f"spread_bps must be below {MAX_SPREAD_BPS}")
        if max(self.size_usd, self.max_position_usd) > MAX_AMOUNT:
            raise ValueError(f"size_usd and max_position_usd must be at most {MAX_AMOUNT:,}")
        if not 0 <= self.skew <= 1:
            raise ValueError("skew must be between 0 and 1")

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self.average: dict[str, float] = {}  # market -> EMA of the oracle, in price precision

    def quote(self, snapshot: Snapshot) -> list[Intent]:
        alpha = 2 / (self.window + 1)
        intents = []
        for name, market in snapshot.markets.items():
            oracle = market.oracle_price
            average = self.average.get(name, oracle)
            average += alpha * (oracle - average)
            self.average[name] = average
            centre = oracle + self.skew * (average - oracle)
            half = centre * self.spread_bps / 10_000
            size = base_for_notional(market, self.size_usd)
            limit = base_for_notional(market, self.max_position_usd)
            position = snapshot.user.positions.get(name)
            base = position.base if position else 0
            if base + size <= limit:
                intents.append(sticky(snapshot, Intent(name, "bid", size, price=round(centre - half)), self.requote_bps))
            if base - size >= -limit:
                intents.append(sticky(snapshot, Intent(name, "ask", size, price=round(centre + half)), self.requote_bps))
        return intents
