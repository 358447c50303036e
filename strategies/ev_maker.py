"""Quote only where a fill is worth having: the distance with the best expected value.

Source: the expected-value maker of the keeper's seed 004 design, and the fill-probability /
markout decomposition of the market-making literature (e.g. Cartea, Jaimungal & Penalva,
"Algorithmic and High-Frequency Trading", 2015, ch. 10: a quote's value is its fill
probability times the edge kept after adverse selection). From a model fitted on archived
sessions (keeper/ev_model.py), per market and side, for each distance d from the oracle:

    EV(d) = P(fill within a tick | d) * (markout_bps(d) + maker rebate in bps)

It quotes each side at the d with the highest EV, only if that EV beats min_ev_bps and the
model saw at least min_fills fills there; past max_inventory_usd the adding side stops.
A market the model has no data for is not quoted.
"""
from __future__ import annotations

from decimal import Decimal

from keeper import ev_model
from keeper.model import FEE_DENOMINATOR, Intent, Snapshot
from strategies.base import MAX_AMOUNT, Param, Strategy, adds_past, base_for_notional, position_usd, sticky


class EvMaker(Strategy):
    name = "ev_maker"
    description = "Quotes at the distance whose fill has the best positive expected value (fitted model)."
    params = (
        Param("model", str, "", "Fill model file from `keeper fit ev_maker SESSION... --out MODEL`"),
        Param("size_usd", Decimal, Decimal("100"), "Quote size per side, in USD", gt=0, high=MAX_AMOUNT, per_market=True),
        Param("min_ev_bps", float, 0.0, "Quote only where the expected value per tick beats this, in bps",
              low=-100, high=100),
        Param("min_fills", int, 5, "Trust a distance only once the model saw this many fills there", low=1,
              high=1_000_000),
        Param("max_inventory_usd", Decimal, Decimal("1000"), "Stop adding to a position beyond this notional", gt=0,
              high=MAX_AMOUNT, per_market=True),
        Param("requote_bps", float, 1.0, "Leave a resting quote alone while it is within this many bps of target",
              low=0, high=1_000),
    )

    def check(self) -> None:
        if not self.model:
            raise ValueError("parameter model: ev_maker needs a fill model; fit one with "
                             "`keeper fit ev_maker SESSION... --out MODEL` and pass --param model=MODEL")
        self.fitted = ev_model.load(self.model)

    def best(self, market: str, side: str, rebate_bps: float) -> tuple[float, float] | None:
        """(distance in bps, EV in bps) of the best quote on one side, or None."""
        data = self.fitted["markets"].get(market)
        if data is None or not data[side]["observations"]:
            return None
        tally = data[side]
        found = None
        for d, fills, markout in zip(self.fitted["distances_bps"], tally["fills"], tally["markout_bps"]):
            if fills < self.min_fills:
                continue
            ev = fills / tally["observations"] * (markout + rebate_bps)
            if found is None or ev > found[1]:
                found = (d, ev)
        return found if found is not None and found[1] > self.min_ev_bps else None

    def quote(self, snapshot: Snapshot) -> list[Intent]:
        intents = []
        for name, market in snapshot.markets.items():
            oracle = market.oracle_price
            rebate_bps = market.spec.maker_rebate / FEE_DENOMINATOR * 10_000
            held, limit = position_usd(snapshot, name), float(self.max_inventory_usd[name])
            size = base_for_notional(market, self.size_usd[name])
            for side, sign in (("bid", -1), ("ask", 1)):
                if adds_past(side, held, limit):
                    continue
                found = self.best(name, side, rebate_bps)
                if found is None:
                    continue
                offset = round(oracle * sign * found[0] / 10_000)
                intents.append(sticky(snapshot, Intent(name, side, size, oracle_offset=offset), self.requote_bps))
        return intents
