"""Symmetric quotes around the oracle, a fixed distance away, on every market."""
from __future__ import annotations

from decimal import Decimal

from keeper.model import Intent, Snapshot
from strategies.base import (
    MAX_AMOUNT, MAX_SPREAD_BPS, Param, Strategy, base_for_notional, base_from_units, parse_sizes, sticky,
)


class FixedSpread(Strategy):
    name = "fixed_spread"
    description = "Symmetric post-only quotes around the oracle at a fixed spread (the default)."
    params = (
        Param("spread_bps", float, 5.0, "Distance of each quote from the oracle, in bps"),
        Param("size_usd", Decimal, Decimal("100"), "Quote size per side, in USD at the oracle price"),
        Param("sizes", str, "", "Per-market sizes in base units, e.g. SOL-PERP=1,BTC-PERP=0.002 (overrides size_usd)"),
        Param("floating", bool, True, "Rest oracle-offset orders that move with the oracle"),
        Param("requote_bps", float, 2.0, "Leave a resting quote alone while it is within this many bps of target"),
    )

    def check(self) -> None:
        if not 0 < self.spread_bps < MAX_SPREAD_BPS:
            raise ValueError(f"spread_bps must be positive and below {MAX_SPREAD_BPS}")
        if not 0 < self.size_usd <= MAX_AMOUNT:
            raise ValueError(f"size_usd must be positive and at most {MAX_AMOUNT:,}")
        if self.requote_bps < 0:
            raise ValueError("requote_bps must not be negative")
        self.base_sizes = parse_sizes(self.sizes)

    def quote(self, snapshot: Snapshot) -> list[Intent]:
        intents = []
        for name, market in snapshot.markets.items():
            if name in self.base_sizes:
                size = base_from_units(market, self.base_sizes[name])
            else:
                size = base_for_notional(market, self.size_usd)
            offset = round(market.oracle_price * self.spread_bps / 10_000)
            for side, sign in (("bid", -1), ("ask", 1)):
                if self.floating:
                    want = Intent(name, side, size, oracle_offset=sign * offset)
                else:
                    want = Intent(name, side, size, price=market.oracle_price + sign * offset)
                intents.append(sticky(snapshot, want, self.requote_bps))
        return intents
