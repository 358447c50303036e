"""Symmetric quotes around the oracle, a fixed distance away, on every market."""
from __future__ import annotations

from decimal import Decimal

from keeper.model import Intent, Snapshot
from strategies.base import (
    MAX_AMOUNT, MAX_SPREAD_BPS, Param, Strategy, base_for_notional, base_from_units, sticky,
)


class FixedSpread(Strategy):
    name = "fixed_spread"
    description = "Symmetric post-only quotes around the oracle at a fixed spread (the default)."
    params = (
        Param("spread_bps", float, 5.0, "Distance of each quote from the oracle, in bps", gt=0, lt=MAX_SPREAD_BPS,
              per_market=True),
        Param("size_usd", Decimal, Decimal("100"), "Quote size per side, in USD at the oracle price", gt=0,
              high=MAX_AMOUNT, per_market=True),
        Param("sizes", Decimal, Decimal(0), "Per-market sizes in base units, e.g. SOL-PERP=1,BTC-PERP=0.002 "
              "(0: use size_usd)", low=0, high=MAX_AMOUNT, per_market=True),
        Param("floating", bool, True, "Rest oracle-offset orders that move with the oracle"),
        Param("requote_bps", float, 2.0, "Leave a resting quote alone while it is within this many bps of target",
              low=0, lt=MAX_SPREAD_BPS),
    )

    def quote(self, snapshot: Snapshot) -> list[Intent]:
        intents = []
        for name, market in snapshot.markets.items():
            units = self.sizes[name]
            size = base_from_units(market, units) if units else base_for_notional(market, self.size_usd[name])
            offset = round(market.oracle_price * self.spread_bps[name] / 10_000)
            for side, sign in (("bid", -1), ("ask", 1)):
                if self.floating:
                    want = Intent(name, side, size, oracle_offset=sign * offset)
                else:
                    want = Intent(name, side, size, price=market.oracle_price + sign * offset)
                intents.append(sticky(snapshot, want, self.requote_bps))
        return intents
