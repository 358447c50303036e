"""Quote the perp, hedge its delta on the linked spot market: one plan for both.

Source: the delta-neutral market maker of practitioners (e.g. Hummingbot's "cross-exchange
market making" and perpetual "delta neutral" hedging, with a hedge band as in
Whalley & Wilmott's band rebalancing, "An asymptotic analysis of an optimal hedging model",
Math. Finance 1997): post-only quotes on the perp at spread_bps; whenever the asset's net
delta (perp position + spot balance) is worth more than band_usd, one immediate-or-cancel
spot order, crossing the spot book by up to cross_bps, brings it back to zero.

If the venue refuses a spot order with MarginTradingDisabled (6157: the Drift user may not
borrow), spot sells are cut to the balance held, and while the delta stays outside the band
the perp side that would grow it is not quoted, so the band holds with the perp alone.
"""
from __future__ import annotations

from decimal import Decimal

from keeper.drift_errors import MARGIN_TRADING_DISABLED
from keeper.model import Intent, Snapshot
from strategies.base import (
    MAX_AMOUNT, MAX_SPREAD_BPS, Param, Strategy, base_for_notional, linked_spot, market_kind, perp_base, spot_base,
    sticky,
)


class SpotHedge(Strategy):
    name = "spot_hedge"
    description = "Quotes the perp and keeps perp + spot net delta within a band with spot orders."
    needs = ("perp", "spot")
    params = (
        Param("spread_bps", float, 5.0, "Distance of each perp quote from the oracle, in bps", gt=0,
              lt=MAX_SPREAD_BPS, per_market=True),
        Param("size_usd", Decimal, Decimal("100"), "Perp quote size per side, in USD", gt=0, high=MAX_AMOUNT,
              per_market=True),
        Param("band_usd", Decimal, Decimal("150"), "Hedge when the net delta is worth more than this, in USD", gt=0,
              high=MAX_AMOUNT, per_market=True),
        Param("cross_bps", float, 30.0, "How far past the oracle a spot hedge may trade, in bps", gt=0, high=500),
        Param("requote_bps", float, 1.0, "Leave a resting quote alone while it is within this many bps of target",
              low=0, lt=MAX_SPREAD_BPS),
    )

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self.no_borrow: set[str] = set()  # spot markets where the venue refused a borrow

    @classmethod
    def check_markets(cls, markets) -> None:
        super().check_markets(markets)
        if not any(market_kind(m) == "perp" and linked_spot(m) in markets for m in markets):
            raise ValueError(f"strategy {cls.name} needs a perp and its spot market, e.g. SOL-PERP,SOL; "
                             f"the markets given are {', '.join(markets)}")

    def quote(self, snapshot: Snapshot) -> list[Intent]:
        if snapshot.last_plan is not None:
            for order in snapshot.last_plan.orders:
                if order.status == "rejected" and MARGIN_TRADING_DISABLED in order.error:
                    self.no_borrow.add(order.market)
        intents = []
        for name, perp in snapshot.markets.items():
            spot_name = linked_spot(name)
            if perp.spec.kind != "perp":
                continue
            spot = snapshot.markets.get(spot_name)
            oracle = perp.oracle_price
            held = spot_base(snapshot, spot_name) if spot else 0
            units = perp_base(snapshot, name) / perp.spec.base_precision
            if spot:
                units += held / spot.spec.base_precision
            net_usd = units * oracle / 1e6
            band = float(self.band_usd[name])
            hedge = self._hedge(spot, units, held) if spot and abs(net_usd) > band else None
            if hedge is not None:
                intents.append(hedge)
            size = base_for_notional(perp, self.size_usd[name])
            offset = round(oracle * self.spread_bps[name] / 10_000)
            for side, sign in (("bid", -1), ("ask", 1)):
                grows = (net_usd > band and side == "bid") or (net_usd < -band and side == "ask")
                if grows and hedge is None:
                    continue
                intents.append(sticky(snapshot, Intent(name, side, size, oracle_offset=sign * offset), self.requote_bps))
        return intents

    def _hedge(self, spot, units: float, held: int):
        """The spot order that brings the net delta to zero, or None when it can't be sent."""
        side = "ask" if units > 0 else "bid"
        size = round(abs(units) * spot.spec.base_precision)
        if side == "ask" and spot.spec.name in self.no_borrow:
            size = min(size, max(held, 0))
        if size < spot.spec.min_order_size:
            return None
        oracle = spot.oracle_price
        price = round(oracle * (1 - self.cross_bps / 10_000)) if side == "ask" else round(oracle * (1 + self.cross_bps / 10_000))
        return Intent(spot.spec.name, side, size, price=price, post_only=False, ioc=True)
