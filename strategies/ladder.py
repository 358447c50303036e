"""A ladder of quotes: N levels per side, spaced and sized geometrically, as a grid.

Source: grid trading and layered market making as practitioners run them (e.g. Hummingbot's
"order levels" with level spread and amount multipliers): level k (0-based) rests
first_bps * spacing^k from the centre, sized size_usd * size_ratio^k. With anchor = oracle the
ladder floats with the oracle; with anchor = grid its prices stay fixed around a centre that
moves only when the oracle leaves the ladder's span, so a move fills level after level.
"""
from __future__ import annotations

from decimal import Decimal

from keeper.model import MAX_OPEN_ORDERS, Intent, Snapshot
from strategies.base import MAX_AMOUNT, MAX_SPREAD_BPS, Param, Strategy, base_for_notional, sticky


class Ladder(Strategy):
    name = "ladder"
    description = "N quotes per side with geometric spacing and sizes, floating or as a fixed grid."
    params = (
        Param("levels", int, 3, "Quotes per side", low=1, high=MAX_OPEN_ORDERS // 2),
        Param("first_bps", float, 5.0, "Distance of the innermost level from the centre, in bps", gt=0,
              lt=MAX_SPREAD_BPS, per_market=True),
        Param("spacing", float, 2.0, "Each level's distance is the previous one's times this", low=1, high=10),
        Param("size_usd", Decimal, Decimal("100"), "Size of the innermost level, in USD", gt=0, high=MAX_AMOUNT,
              per_market=True),
        Param("size_ratio", float, 1.5, "Each level's size is the previous one's times this", low=0.1, high=10),
        Param("anchor", str, "oracle", "oracle: the ladder floats with the oracle; grid: fixed prices, recentred "
              "when the oracle leaves the ladder", choices=("oracle", "grid")),
        Param("requote_bps", float, 1.0, "Leave a resting quote alone while it is within this many bps of target",
              low=0, lt=MAX_SPREAD_BPS),
    )

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self.centres: dict[str, int] = {}  # grid anchor per market, price precision

    def check(self) -> None:
        wanted = 2 * self.levels * len(self.markets or ())
        if wanted > MAX_OPEN_ORDERS:
            raise ValueError(f"parameter levels: {self.levels} per side on {len(self.markets)} markets is {wanted} "
                             f"orders; a Drift user has {MAX_OPEN_ORDERS} order slots")

    def distances_bps(self, name: str) -> list[float]:
        return [self.first_bps[name] * self.spacing ** k for k in range(self.levels)]

    def quote(self, snapshot: Snapshot) -> list[Intent]:
        intents = []
        for name, market in snapshot.markets.items():
            oracle = market.oracle_price
            distances = [d for d in self.distances_bps(name) if d < MAX_SPREAD_BPS]
            if self.anchor == "grid":
                centre = self.centres.get(name, oracle)
                if abs(oracle - centre) * 10_000 > centre * distances[-1]:  # outside the ladder: recentre
                    centre = oracle
                self.centres[name] = centre
            for k, distance in enumerate(distances):
                size = base_for_notional(market, self.size_usd[name] * Decimal(self.size_ratio ** k))
                for side, sign in (("bid", -1), ("ask", 1)):
                    if self.anchor == "grid":
                        want = Intent(name, side, size, price=round(centre * (1 + sign * distance / 10_000)))
                    else:
                        want = Intent(name, side, size, oracle_offset=round(oracle * sign * distance / 10_000))
                    intents.append(sticky(snapshot, want, self.requote_bps))
        return intents
