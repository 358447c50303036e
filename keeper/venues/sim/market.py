"""One market of the sim: its oracle, DLOB, AMM (perps), prints, mark/oracle TWAPs and funding."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from keeper.model import MarketSpec, Trade
from keeper.venues.sim.amm import Vamm
from keeper.venues.sim.book import OrderBook

HOUR_MS = 3_600_000
# Drift caps the mark/oracle TWAP spread used for funding at oracle_twap / 33 (tier A/B contracts).
FUNDING_SPREAD_CAP_DIVISOR = 33
VOL_HALF_LIFE_TICKS = 60
# Drift widens the vAMM spread with the oracle's recent standard deviation, measured over far
# more than one tick; a minute's worth gives spreads near the dumps' long/short_spread.
VOL_HORIZON_MS = 60_000


@dataclass(frozen=True, slots=True)
class AmmSpec:
    """A perp's AMM: its spreads (per 1e6), the base one ladder level holds, and where it starts."""

    base_spread: int
    max_spread: int
    unit: int
    annual_vol_bps: int = 0  # the oracle volatility assumed before any move is seen
    start_funding_rate: int = 0  # FUNDING_RATE_PRECISION per hour, at start_price
    start_price: int = 0


@dataclass(frozen=True, slots=True)
class MarketConfig:
    spec: MarketSpec
    amm: Optional[AmmSpec] = None  # perps only
    oracle_conf_ppm: int = 0


class SimMarket:
    def __init__(self, cfg: MarketConfig):
        self.cfg, self.spec, self.name = cfg, cfg.spec, cfg.spec.name
        self.book = OrderBook(cfg.spec.tick_size)
        a = cfg.amm
        self.vamm: Optional[Vamm] = (
            Vamm(cfg.spec.tick_size, a.unit, cfg.spec.step_size, a.base_spread, a.max_spread) if a is not None else None)
        self.trades: list[Trade] = []
        self.oracle = 0
        self.oracle_slot = 0
        self._var = 0.0  # EMA of squared per-tick returns (ppm^2): the vAMM's volatility spread
        self._tick_ms = 1000
        self.mark_twap = 0
        self.oracle_twap = 0
        self.funding_rate = 0
        self.amm_fed = False  # the AMM's quote is set from outside (a replay), not modelled

    @property
    def oracle_conf(self) -> int:
        return self.oracle * self.cfg.oracle_conf_ppm // 1_000_000

    def start(self, price: int, slot: int, tick_ms: int) -> None:
        self.oracle = self.book.oracle = price
        self.oracle_slot = slot
        self._tick_ms = tick_ms
        a = self.cfg.amm
        if a is not None:
            sigma_tick = a.annual_vol_bps / 10_000 * math.sqrt(tick_ms / (365 * 86_400_000)) * 1e6
            self._var = sigma_tick * sigma_tick
            self._requote_vamm()
            self.oracle_twap = price
            # Start the mark TWAP where the last funding rate says it was, scaled to this oracle.
            spread = a.start_funding_rate * 24 * price // (1000 * a.start_price) if a.start_price else 0
            self.mark_twap = price + spread
            self.funding_rate = self._rate()

    def move(self, price: int, slot: int) -> None:
        ret = (price - self.oracle) * 1_000_000 / self.oracle
        self._var += (ret * ret - self._var) / VOL_HALF_LIFE_TICKS
        self.oracle = self.book.oracle = price
        self.oracle_slot = slot
        self._requote_vamm()

    def _requote_vamm(self) -> None:
        if self.vamm is not None and not self.amm_fed:
            self.vamm.requote(self.oracle, round(math.sqrt(self._var * VOL_HORIZON_MS / self._tick_ms)))

    def vamm_top(self, side: str) -> Optional[int]:
        return self.vamm.top(side) if self.vamm is not None else None

    def best(self, side: str) -> Optional[int]:
        """Best price on a side, DLOB and vAMM together."""
        a, b = self.book.best(side), self.vamm_top(side)
        if a is None or b is None:
            return a if b is None else b
        return max(a, b) if side == "bid" else min(a, b)

    def crosses(self, side: str, price: int) -> bool:
        """Would a `side` order at `price` take liquidity (DLOB or AMM) now?"""
        opp = self.best("ask" if side == "bid" else "bid")
        return opp is not None and (price >= opp if side == "bid" else price <= opp)

    def mark(self) -> int:
        bid, ask = self.best("bid"), self.best("ask")
        if bid is None or ask is None or bid >= ask:
            return self.oracle
        return (bid + ask) // 2

    def accrue_twaps(self, dt_ms: int) -> None:
        if self.vamm is None:
            return
        w = min(dt_ms, HOUR_MS)
        self.mark_twap = (self.mark_twap * (HOUR_MS - w) + self.mark() * w) // HOUR_MS
        self.oracle_twap = (self.oracle_twap * (HOUR_MS - w) + self.oracle * w) // HOUR_MS
        self.funding_rate = self._rate()

    def _rate(self) -> int:
        """Drift's hourly funding rate: (mark TWAP - oracle TWAP) / 24, capped, in FUNDING_RATE_PRECISION."""
        if self.vamm is None:
            return 0
        cap = self.oracle_twap // FUNDING_SPREAD_CAP_DIVISOR
        spread = max(-cap, min(cap, self.mark_twap - self.oracle_twap))
        q = abs(spread) * 1000 // 24
        return q if spread >= 0 else -q
