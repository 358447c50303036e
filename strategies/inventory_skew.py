"""A fixed spread whose centre and sizes lean against inventory.

Source: the linear inventory skew of practitioners' market makers (e.g. Hummingbot's
"inventory skew" and "order refresh" pure market making, and the inventory term of
Avellaneda & Stoikov 2008 made linear): with f = position / max_inventory_usd, clipped to
[-1, 1], both quotes move by -f * skew_bps, the side that adds to the position shrinks by
size_skew * |f| and the side that reduces it grows by the same; at |f| = 1 the adding side
is no longer quoted.
"""
from __future__ import annotations

from decimal import Decimal

from keeper.model import Intent, Snapshot
from strategies.base import MAX_AMOUNT, MAX_SPREAD_BPS, Param, Strategy, base_for_notional, perps, position_usd, sticky


class InventorySkew(Strategy):
    name = "inventory_skew"
    description = "Fixed spread whose quotes and sizes skew against inventory."
    needs = ("perp",)
    params = (
        Param("spread_bps", float, 5.0, "Distance of each quote from the centre, in bps", gt=0, lt=MAX_SPREAD_BPS,
              per_market=True),
        Param("size_usd", Decimal, Decimal("100"), "Quote size per side when flat, in USD", gt=0, high=MAX_AMOUNT,
              per_market=True),
        Param("max_inventory_usd", Decimal, Decimal("1000"), "Position at which the skew is full and adding stops",
              gt=0, high=MAX_AMOUNT, per_market=True),
        Param("skew_bps", float, 10.0, "How far the centre moves against a full position, in bps", low=0,
              lt=MAX_SPREAD_BPS),
        Param("size_skew", float, 0.8, "Share of size moved from the adding side to the reducing side at full position",
              low=0, high=1),
        Param("requote_bps", float, 1.0, "Leave a resting quote alone while it is within this many bps of target",
              low=0, lt=MAX_SPREAD_BPS),
    )

    def quote(self, snapshot: Snapshot) -> list[Intent]:
        intents = []
        for name, market in perps(snapshot):
            oracle = market.oracle_price
            f = max(-1.0, min(1.0, position_usd(snapshot, name) / float(self.max_inventory_usd[name])))
            size = base_for_notional(market, self.size_usd[name])
            centre = -f * self.skew_bps
            for side, sign in (("bid", -1), ("ask", 1)):
                adding = f * sign < 0  # a bid adds to a long, an ask to a short
                if adding and abs(f) >= 1:
                    continue
                scale = 1 - self.size_skew * abs(f) if adding else 1 + self.size_skew * abs(f)
                offset = round(oracle * (centre + sign * self.spread_bps[name]) / 10_000)
                want = Intent(name, side, int(size * scale), oracle_offset=offset)
                intents.append(sticky(snapshot, want, self.requote_bps))
        return intents
