"""Takers: seeded Poisson arrivals per market, sizes shaped like the real book's near-touch orders.

Resting maker orders are far larger than a typical taker, so their sizes are scaled down to
the assumed mean taker size (make_specs.TAKER_MEAN_USD) while keeping their distribution.

A `toxicity` share of the arrivals is informed: such a taker knows where the oracle will be
at the end of the tick and trades only when the book lets it profit from that, after the
taker fee (see flow.py). The rest trade a random side with a slippage limit.
"""
from __future__ import annotations

import math
import random

NEAR_PPM = 20_000  # sizes come from real orders resting within 2% of the oracle
SLIPPAGE_PPM = 5_000  # uninformed takers are IOC limits this far through the oracle


class Takers:
    def __init__(self, shape: dict, step_size: int, per_hour: int, size_ppm: int, rng: random.Random,
                 toxicity: float = 0.0):
        sizes = [max(1, steps * size_ppm // 1_000_000) * step_size for _, ppm, steps, floating, _, _ in shape["orders"]
                 if abs(ppm - (0 if floating else 1_000_000)) <= NEAR_PPM]
        self.sizes = sorted(sizes) or [step_size]
        self.per_hour = per_hour
        self.toxicity = toxicity
        self._rng = rng

    def arrivals(self, dt_ms: int) -> list[tuple[str, int, bool]]:
        """[(taker side, size, informed)] for the next dt_ms; an informed taker's side is chosen later."""
        rng = self._rng
        lam = self.per_hour * dt_ms / 3_600_000
        # Knuth's method: exact for the small rates of one tick.
        n, p, floor = 0, rng.random(), math.exp(-lam)
        while p > floor:
            n += 1
            p *= rng.random()
        out = []
        for _ in range(n):
            side = "bid" if rng.random() < 0.5 else "ask"
            size = self.sizes[rng.randrange(len(self.sizes))]
            out.append((side, size, rng.random() < self.toxicity))
        return out
