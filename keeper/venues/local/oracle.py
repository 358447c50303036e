"""Simulated oracle prices: a seeded random walk, or a recorded price path."""
from __future__ import annotations

import bisect
import math
import random
from pathlib import Path
from typing import Optional

from keeper.errors import UserError
from keeper.model import asset_of
from keeper.venues.local import specs as S

_YEAR_MS = 365 * 86_400_000


def load_price_path(path: str) -> list[tuple[int, int]]:
    """Read a CSV of `timestamp,price` (unix seconds, may be fractional; USD) into [(ts_ms, price 1e6)].

    A header line is allowed. Any problem raises UserError naming the file and line.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise UserError(f"{path}: cannot read price path ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: cannot read price path (not UTF-8 text)") from None
    out: list[tuple[int, int]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 2:
            raise UserError(f"{path}:{lineno}: expected 'timestamp,price', got {line[:60]!r}")
        try:
            ts, price = float(cells[0]), float(cells[1])
        except ValueError:
            if not out and lineno == _first_content_line(text):
                continue  # header
            raise UserError(f"{path}:{lineno}: timestamp and price must be numbers, got {line[:60]!r}") from None
        if not (math.isfinite(ts) and math.isfinite(price)):
            raise UserError(f"{path}:{lineno}: timestamp and price must be finite numbers, got {line[:60]!r}")
        if price <= 0:
            raise UserError(f"{path}:{lineno}: price must be positive, got {cells[1][:60]}")
        ts_ms, price_i = ts * 1000, price * 1_000_000
        if not (abs(ts_ms) < 2**63 and price_i < 2**64):  # Drift's i64 timestamps and u64 prices
            raise UserError(f"{path}:{lineno}: timestamp or price out of range, got {line[:60]!r}")
        ts_ms, price_i = round(ts_ms), round(price_i)
        if price_i <= 0:
            raise UserError(f"{path}:{lineno}: price {cells[1][:60]} is below one micro-dollar")
        if out and ts_ms <= out[-1][0]:
            raise UserError(f"{path}:{lineno}: timestamps must increase ({cells[0][:60]} does not follow the previous line)")
        out.append((ts_ms, price_i))
    if not out:
        raise UserError(f"{path}: price path has no 'timestamp,price' rows")
    return out


def _first_content_line(text: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.strip().startswith("#"):
            return i
    return 0


class RandomWalk:
    """Geometric Brownian motion, zero drift, with the market's real realised volatility."""

    def __init__(self, start_price: int, annual_vol_bps: int, rng: random.Random):
        self._price = float(start_price)
        self._sigma2 = (annual_vol_bps / 10_000) ** 2 / _YEAR_MS
        self._rng = rng
        self._at: Optional[tuple[int, int]] = None  # (ts, price) last given

    def advance(self, ts_ms: int, dt_ms: int) -> int:
        # Markets that share an oracle share this walk: the same ts gives the same price.
        if self._at is not None and self._at[0] == ts_ms:
            return self._at[1]
        var = self._sigma2 * dt_ms
        self._price *= math.exp(self._rng.gauss(0.0, math.sqrt(var)) - var / 2)
        self._at = (ts_ms, max(1, round(self._price)))
        return self._at[1]


class PathFollower:
    """Follows a recorded path, scaled so its first price maps to `start_price`.

    The path's price holds between rows (the last row at or before ts) and after its end.
    """

    def __init__(self, path: list[tuple[int, int]], start_price: int):
        self._ts = [t for t, _ in path]
        self._px = [p for _, p in path]
        self._start = start_price
        self._p0 = path[0][1]

    def advance(self, ts_ms: int, dt_ms: int) -> int:
        i = max(0, bisect.bisect_right(self._ts, ts_ms) - 1)
        return max(1, self._start * self._px[i] // self._p0)


def price_sources(names: list[str], seed: int, price_path: Optional[list[tuple[int, int]]]) -> dict:
    """One price source per market: a seeded walk at the market's real volatility, or the path.

    With a path, the first market follows its prices and the others its relative moves from
    their own reference price, so one CSV drives a whole set of markets. Markets on the same
    asset (SOL and SOL-PERP) get the same source object, so their oracles are one; they start
    from the perp's reference price, the spot dump being from another year.
    """
    sources: dict = {}
    by_asset: dict = {}
    for i, name in enumerate(names):
        asset = asset_of(name)
        if asset in by_asset:
            sources[name] = by_asset[asset]
            continue
        perp = f"{asset}-PERP"
        params = S.params(perp if perp in S.names() else name)
        if price_path:
            source = PathFollower(price_path, price_path[0][1] if i == 0 else params.reference_price)
        else:
            source = RandomWalk(params.reference_price, params.annual_vol_bps, random.Random(f"{seed}/{name}/oracle"))
        sources[name] = by_asset[asset] = source
    return sources
