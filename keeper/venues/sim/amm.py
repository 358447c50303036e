"""A perp's AMM quote: a ladder of levels around the oracle whose size grows with distance.

The program's AMM quotes a bid and an ask from its reserves; what matters to a maker is where
they sit (the post-only rule is checked against them, see rules.py) and how much they absorb
before a taker reaches the book behind them. Drift widens the AMM spread with the oracle's
recent volatility, up to max_spread; so does requote(). A replay that knows the AMM's quote
sets it directly with set_quote().
"""
from __future__ import annotations

from typing import Optional


class Vamm:
    LEVELS = 16

    def __init__(self, tick: int, unit: int, step: int, base_spread: int, max_spread: int):
        self.tick, self.unit, self.step = tick, unit, step
        self.base_half, self.max_half = base_spread // 2, max(base_spread // 2, max_spread // 2)
        self.bids: list[list[int]] = []  # [price, remaining] best first; refilled every requote
        self.asks: list[list[int]] = []

    def requote(self, oracle: int, vol_ppm: int) -> None:
        half = min(self.max_half, max(self.base_half, vol_ppm))
        gap = max(self.base_half, 1)
        t, u, s = self.tick, self.unit, self.step
        self.bids = []
        self.asks = []
        for k in range(self.LEVELS):
            d = half + k * gap
            bid = oracle * (1_000_000 - d) // 1_000_000 // t * t
            ask = -(-oracle * (1_000_000 + d) // 1_000_000 // t) * t
            size = u * (k + 1) // s * s
            if self.bids and bid >= self.bids[-1][0]:
                bid = self.bids[-1][0] - t
            if self.asks and ask <= self.asks[-1][0]:
                ask = self.asks[-1][0] + t
            if bid > 0:
                self.bids.append([bid, size])
            self.asks.append([ask, size])

    def set_quote(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
        """The AMM's levels as known from outside ([(price, base)], best first)."""
        self.bids = [[p, q] for p, q in bids]
        self.asks = [[p, q] for p, q in asks]

    def top(self, side: str) -> Optional[int]:
        levels = self.bids if side == "bid" else self.asks
        for price, size in levels:
            if size > 0:
                return price
        return None
