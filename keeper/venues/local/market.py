"""One simulated market: its oracle, DLOB, vAMM (perps), background makers, takers and funding."""
from __future__ import annotations

import math
import random
from typing import Callable, Optional

from keeper.model import MarketSpec, Trade
from keeper.venues.local.book import OrderBook, Vamm
from keeper.venues.local.makers import Makers
from keeper.venues.local.specs import Params
from keeper.venues.local.takers import Takers

HOUR_MS = 3_600_000
# Drift caps the mark/oracle TWAP spread used for funding at oracle_twap / 33 (tier A/B contracts).
FUNDING_SPREAD_CAP_DIVISOR = 33
VOL_HALF_LIFE_TICKS = 60
# Drift widens the vAMM spread with the oracle's recent standard deviation, measured over far
# more than one tick; a minute's worth gives spreads near the dumps' long/short_spread.
VOL_HORIZON_MS = 60_000


class Market:
    def __init__(self, spec: MarketSpec, params: Params, shape: dict, source, seed: int,
                 next_oid: Callable[[], int]):
        self.spec, self.params, self.name = spec, params, spec.name
        self.source = source
        self.book = OrderBook(spec.tick_size)
        self.takers = Takers(shape, spec.step_size, params.takers_per_hour, params.taker_size_ppm, random.Random(f"{seed}/{spec.name}/takers"))
        unit = self.takers.sizes[len(self.takers.sizes) // 2]
        self.vamm: Optional[Vamm] = (
            Vamm(spec.tick_size, unit, spec.step_size, params.base_spread, params.max_spread) if spec.kind == "perp" else None
        )
        self.makers = Makers(shape, spec.step_size, self.book, random.Random(f"{seed}/{spec.name}/makers"), next_oid, self.crosses)
        self.trades: list[Trade] = []
        self.oracle = 0
        self.oracle_slot = 0
        self._var = 0.0  # EMA of squared per-tick returns (ppm^2): the vAMM's volatility spread
        self.mark_twap = 0
        self.oracle_twap = 0
        self.funding_rate = 0

    @property
    def oracle_conf(self) -> int:
        return self.oracle * self.params.oracle_conf_ppm // 1_000_000

    def start(self, ts: int, slot: int, interval_ms: int) -> None:
        self.oracle = self.book.oracle = self.source.advance(ts, 0)
        self.oracle_slot = slot
        sigma_tick = self.params.annual_vol_bps / 10_000 * math.sqrt(interval_ms / (365 * 86_400_000)) * 1e6
        self._var = sigma_tick * sigma_tick
        self._interval_ms = interval_ms
        self._requote_vamm()
        self.makers.seed()
        self.oracle_twap = self.oracle
        # Start the mark TWAP where the dump's last funding rate says it was, scaled to this oracle.
        spread = self.params.last_funding_rate * 24 * self.oracle // (1000 * self.params.reference_price)
        self.mark_twap = self.oracle + spread
        self.funding_rate = self._rate()

    def move(self, ts: int, dt_ms: int, slot: int) -> None:
        new = self.source.advance(ts, dt_ms)
        ret = (new - self.oracle) * 1_000_000 / self.oracle
        a = 1 / VOL_HALF_LIFE_TICKS
        self._var += a * (ret * ret - self._var)
        self.oracle = self.book.oracle = new
        self.oracle_slot = slot
        self._requote_vamm()

    def _requote_vamm(self) -> None:
        if self.vamm is not None:
            self.vamm.requote(self.oracle, round(math.sqrt(self._var * VOL_HORIZON_MS / self._interval_ms)))

    def vamm_top(self, side: str) -> Optional[int]:
        return self.vamm.top(side) if self.vamm is not None else None

    def best(self, side: str) -> Optional[int]:
        """Best price on a side, DLOB and vAMM together."""
        a, b = self.book.best(side), self.vamm_top(side)
        if a is None or b is None:
            return a if b is None else b
        return max(a, b) if side == "bid" else min(a, b)

    def crosses(self, side: str, price: int) -> bool:
        opp = self.best("ask" if side == "bid" else "bid")
        return opp is not None and (price >= opp if side == "bid" else price <= opp)

    def mark(self) -> int:
        bid, ask = self.best("bid"), self.best("ask")
        if bid is None or ask is None:
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
