"""Seeded price paths the scorecard runs every strategy on: calm, trend and crash.

Each is a list of (unix ms, price 1e6) rows, one per second, the shape `keeper run
--price-path` reads, for the FIRST market of a run (SOL-PERP); the local market moves every
other market by the same relative steps. The same (name, seed) always gives the same path.

The noise under all three is the calm walk: geometric Brownian motion, zero drift, at
SOL-PERP's real realised volatility (keeper/venues/local/specs.py, from the real dumps),
starting from SOL-PERP's real reference price. These shapes were fixed before any strategy
was scored on them and are not to be tuned to make one look good.

- calm:  the walk alone, `seconds` long (default 900 s).
- trend: the walk times a steady rise of TREND_RISE (+10%) over the whole path, exponential
         in time (a constant drift), `seconds` long (default 900 s).
- crash: CRASH_LEAD_S (60 s) of the walk, then a linear fall of CRASH_FALL (50%) over
         CRASH_S (300 s), then CRASH_LEAD_S at the bottom, all with the walk on top (420 s).
         The lead-in lets estimators (volatility, fill intensity) start from calm data, as a
         real crash starts from a calm market.
"""
from __future__ import annotations

import math
import random

from keeper.errors import UserError, unknown
from keeper.venues.local.flow import EPOCH_MS
from keeper.venues.local.specs import params as market_params

YEAR_S = 365 * 86_400
MARKET = "SOL-PERP"
TREND_RISE = 0.10
CRASH_FALL, CRASH_S, CRASH_LEAD_S = 0.50, 300, 60
DEFAULT_SECONDS = {"calm": 900, "trend": 900, "crash": CRASH_LEAD_S + CRASH_S + CRASH_LEAD_S}
SYNTHETIC = tuple(DEFAULT_SECONDS)


def walk(seconds: int, seed: int, name: str) -> list[float]:
    """seconds + 1 multiplicative factors of the calm walk, the first 1.0."""
    p = market_params(MARKET)
    var = (p.annual_vol_bps / 10_000) ** 2 / YEAR_S  # per second
    rng = random.Random(f"scenario/{name}/{seed}")
    factors, x = [1.0], 1.0
    for _ in range(seconds):
        x *= math.exp(rng.gauss(0.0, math.sqrt(var)) - var / 2)
        factors.append(x)
    return factors


def shape(name: str, t: int, seconds: int) -> float:
    """The deterministic part of a scenario at second t, as a factor of the start price."""
    if name == "calm":
        return 1.0
    if name == "trend":
        return (1 + TREND_RISE) ** (t / seconds)
    falling = min(max(t - CRASH_LEAD_S, 0), CRASH_S)
    return 1 - CRASH_FALL * falling / CRASH_S


def price_path(name: str, seed: int, seconds: int | None = None) -> list[tuple[int, int]]:
    """The scenario's path: (unix ms, price 1e6) once a second, from the local market's epoch.

    `seconds` shortens calm and trend (tests); the crash is always its full 420 s, since its
    size and speed are what it is about."""
    if name not in SYNTHETIC:
        raise UserError(unknown("scenario", name, SYNTHETIC))
    if name == "crash" or seconds is None:
        seconds = DEFAULT_SECONDS[name]
    start = market_params(MARKET).reference_price
    noise = walk(seconds, seed, name)
    return [(EPOCH_MS + t * 1000, max(1, round(start * shape(name, t, seconds) * noise[t]))) for t in range(seconds + 1)]


# A collapse of the class seen in 2022's perp markets: -99% over the path, volatility building
# up tenfold, and single-tick jumps down 42% and up 180% (a dead-cat bounce). Time is
# compressed (the real one took about 60 hours): one-tick moves are what break a drawdown
# limit, not the hours between them. Not a scorecard scenario: the risk gate's test path.
COLLAPSE_END = 0.01
COLLAPSE_JUMPS = ((0.35, 0.58), (0.60, 2.80), (0.80, 0.58))  # (when, as a share of the path; price factor)


def collapse_path(seed: int, seconds: int = 3600) -> list[tuple[int, int]]:
    p = market_params(MARKET)
    base = (p.annual_vol_bps / 10_000) / math.sqrt(YEAR_S)  # per second
    rng = random.Random(f"scenario/collapse/{seed}")
    log_moves = [rng.gauss(0.0, base * (1 + 9 * t / seconds)) for t in range(seconds)]
    jumps = {int(share * seconds): math.log(factor) for share, factor in COLLAPSE_JUMPS}
    total = sum(log_moves) + sum(jumps.values())
    drift = (math.log(COLLAPSE_END) - total) / seconds  # so that the path ends at COLLAPSE_END
    start, x = p.reference_price, 0.0
    rows = [(EPOCH_MS, start)]
    for t in range(seconds):
        x += log_moves[t] + drift + jumps.get(t, 0.0)
        rows.append((EPOCH_MS + (t + 1) * 1000, max(1, round(start * math.exp(x)))))
    return rows
