"""Quotes centred between the oracle and its moving average, betting the price reverts."""
from __future__ import annotations

from decimal import Decimal

from keeper.model import Intent, Snapshot
from strategies.base import MAX_AMOUNT, MAX_SPREAD_BPS, Param, Strategy, base_for_notional, sticky


class MeanReversion(Strategy):
    name = "mean_reversion"
    description = "Quotes skewed toward an exponential moving average of the oracle, trimmed by inventory."
    params = (
        Param("window", int, 30, "Moving-average window, in ticks", low=1, high=100_000),
        Param("spread_bps", float, 25.0, "Distance of each quote from the skewed centre, in bps", gt=0,
              lt=MAX_SPREAD_BPS, per_market=True),
        Param("skew", float, 0.5, "How far to shift the centre toward the average (0 none, 1 all the way)", low=0, high=1),
        Param("size_usd", Decimal, Decimal("100"), "Quote size per side, in USD at the oracle price", gt=0,
              high=MAX_AMOUNT),
        Param("max_position_usd", Decimal, Decimal("1000"), "Stop adding to a position beyond this notional", gt=0,
              high=MAX_AMOUNT),
        Param("requote_bps", float, 2.0, "Leave a resting quote alone while it is within this many bps of target",
              low=0, lt=MAX_SPREAD_BPS),
    )

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
            half = centre * self.spread_bps[name] / 10_000
            size = base_for_notional(market, self.size_usd)
            limit = base_for_notional(market, self.max_position_usd)
            position = snapshot.user.positions.get(name)
            base = position.base if position else 0
            if base + size <= limit:
                intents.append(sticky(snapshot, Intent(name, "bid", size, price=round(centre - half)), self.requote_bps))
            if base - size >= -limit:
                intents.append(sticky(snapshot, Intent(name, "ask", size, price=round(centre + half)), self.requote_bps))
        return intents
