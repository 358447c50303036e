"""Avellaneda & Stoikov's inventory-aware market maker.

Source: M. Avellaneda and S. Stoikov, "High-frequency trading in a limit order book",
Quantitative Finance 8(3), 2008. With mid s, inventory q, risk aversion gamma, volatility
sigma, horizon T - t and fill intensity lambda(delta) = A exp(-kappa delta):

    reservation price   r = s - q * gamma * sigma^2 * (T - t)                  (eq. 29)
    optimal spread      delta_a + delta_b = gamma sigma^2 (T - t) + (2/gamma) ln(1 + gamma/kappa)   (eq. 30)

quoted r -/+ half the spread. Here T - t is a rolling `horizon_s` (the stationary use of the
finite-horizon formulas), sigma is the oracle's EWMA realized volatility, kappa is fitted from
the trade tape (strategies.features.FillIntensity), and q is the perp position. The paper's
unit is one share per fill; with quotes of size_usd, gamma * size_usd is the dimensionless
risk aversion in the spread, while the reservation shift depends on the position's USD value
only. Beyond max_inventory_usd the side that adds to the position is not quoted.
"""
from __future__ import annotations

import math
from decimal import Decimal

from keeper.model import Intent, Snapshot
from strategies.base import (
    MAX_AMOUNT, MAX_SPREAD_BPS, Param, Strategy, adds_past, base_for_notional, perp_base, perps, position_usd,
    sticky,
)
from strategies.features import EwmaVolatility, FillIntensity

BPS = 10_000


class AvellanedaStoikov(Strategy):
    name = "avellaneda_stoikov"
    description = "Avellaneda-Stoikov: quotes around a reservation price that leans against inventory."
    needs = ("perp",)
    params = (
        Param("gamma", float, 0.01, "Risk aversion, per USD", gt=0, high=100),
        Param("horizon_s", float, 300.0, "Horizon T - t of the reservation price, in seconds", gt=0, high=86_400),
        Param("size_usd", Decimal, Decimal("100"), "Quote size per side, in USD", gt=0, high=MAX_AMOUNT, per_market=True),
        Param("max_inventory_usd", Decimal, Decimal("1000"), "Stop adding to a position beyond this notional", gt=0,
              high=MAX_AMOUNT, per_market=True),
        Param("sigma_bps", float, 1.0, "Volatility until estimated, in bps per square-root second", gt=0, high=1_000),
        Param("vol_halflife_s", float, 60.0, "Half-life of the volatility estimate, in seconds", gt=0, high=86_400),
        Param("kappa", float, 0.5, "Fill-intensity decay until estimated from the tape, per bps", gt=0, high=1_000),
        Param("intensity_window_s", float, 600.0, "Trades the fill intensity is fitted on, in seconds", gt=0, high=86_400),
        Param("min_spread_bps", float, 1.0, "Narrowest distance of a quote from the reservation price, in bps",
              low=0, lt=MAX_SPREAD_BPS),
        Param("max_spread_bps", float, 200.0, "Widest distance of a quote from the reservation price, in bps",
              gt=0, lt=MAX_SPREAD_BPS),
        Param("requote_bps", float, 1.0, "Leave a resting quote alone while it is within this many bps of target",
              low=0, lt=MAX_SPREAD_BPS),
    )

    def check(self) -> None:
        if self.min_spread_bps > self.max_spread_bps:
            raise ValueError(f"min_spread_bps ({self.min_spread_bps}) must not exceed max_spread_bps ({self.max_spread_bps})")

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self.vol: dict[str, EwmaVolatility] = {}
        self.intensity: dict[str, FillIntensity] = {}
        self.last_oracle: dict[str, int] = {}

    def estimates(self, name: str) -> tuple[float, float]:
        """(sigma per square-root second, kappa per bps): estimated where there is data."""
        sigma = self.vol[name].sigma()
        fitted = self.intensity[name].fit()
        return (sigma if sigma else self.sigma_bps / BPS), (fitted[1] if fitted else self.kappa)

    def quotes(self, name: str, oracle: int, base: int, precision: int) -> tuple[float, float]:
        """(reservation shift, half spread), as fractions of the oracle price."""
        sigma, kappa_bps = self.estimates(name)
        tau = self.horizon_s
        q_usd = base / precision * oracle / 1e6
        shift = -q_usd * self.gamma * sigma ** 2 * tau
        g = self.gamma * float(self.size_usd[name])  # risk aversion per quote of size_usd
        kappa = kappa_bps * BPS  # per unit of price fraction
        spread = g * sigma ** 2 * tau + (2 / g) * math.log1p(g / kappa)
        half = min(max(spread / 2, self.min_spread_bps / BPS), self.max_spread_bps / BPS)
        limit = self.max_spread_bps / BPS
        return max(-limit, min(limit, shift)), half

    def quote(self, snapshot: Snapshot) -> list[Intent]:
        intents = []
        for name, market in perps(snapshot):
            oracle = market.oracle_price
            self.vol.setdefault(name, EwmaVolatility(self.vol_halflife_s)).update(snapshot.ts, oracle)
            self.intensity.setdefault(name, FillIntensity(self.intensity_window_s)).observe(
                snapshot.ts, self.last_oracle.get(name, oracle), market.trades)
            self.last_oracle[name] = oracle
            base = perp_base(snapshot, name)
            shift, half = self.quotes(name, oracle, base, market.spec.base_precision)
            size = base_for_notional(market, self.size_usd[name])
            held, limit = position_usd(snapshot, name), float(self.max_inventory_usd[name])
            for side, sign in (("bid", -1), ("ask", 1)):
                if adds_past(side, held, limit):
                    continue
                offset = round(oracle * (shift + sign * half))
                intents.append(sticky(snapshot, Intent(name, side, size, oracle_offset=offset), self.requote_bps))
        return intents
