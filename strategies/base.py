"""What a strategy is: a name, a one-line description, checked parameters, the markets it needs, quote().

A strategy is pure: quote() sees a snapshot and the strategy's own state and returns the
orders it wants resting. No I/O, no clock, no randomness; that is what lets
`keeper replay --verify` reproduce every recorded plan.
"""
from __future__ import annotations

import functools
import hashlib
import sys
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Optional, Sequence

from keeper.model import PRICE_PRECISION, Intent, Kind, MarketState, OpenOrder, Snapshot, replace
from strategies.params import Param, PerMarket  # noqa: F401  (re-exported: a strategy file imports from base)

# Bounds that keep quote()'s maths finite: a quote 100% from the oracle has no price, and
# sizes beyond these overflow Decimal and any Drift u64 amount long before that.
MAX_SPREAD_BPS = 10_000
MAX_AMOUNT = Decimal(10**12)  # USD, or base units


class Strategy:
    """Subclasses declare `name`, `description`, `params`, and the kinds of market they need
    (`needs = ("perp", "spot")`); quote() returns the orders they want resting.

    Parameter values are checked against their Params and frozen when the strategy is built:
    `self.spread_bps` reads, assigning to it fails. A per-market parameter reads per market:
    `self.spread_bps[name]`. Anything else a strategy keeps on self is its own state.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    needs: ClassVar[tuple[Kind, ...]] = ()

    def __init__(self, *, markets: Optional[Sequence[str]] = None, **values: Any) -> None:
        known = {p.name: p for p in self.params}
        for key in values:
            if key not in known:
                raise ValueError(f"strategy {self.name} has no parameter {key!r} (it has: {', '.join(known) or 'none'})")
        self.markets = tuple(markets) if markets is not None else None
        if self.markets is not None:
            self.check_markets(self.markets)
        checked = {p.name: p.check(values.get(p.name, p.initial), self.markets) for p in self.params}
        self.values = MappingProxyType(checked)
        for key, value in checked.items():
            object.__setattr__(self, key, value)
        self.check()

    def __setattr__(self, key: str, value: Any) -> None:
        if key in getattr(self, "values", ()):
            raise AttributeError(f"parameter {key} of {self.name} is frozen once the strategy is built")
        object.__setattr__(self, key, value)

    @classmethod
    def check_markets(cls, markets: Sequence[str]) -> None:
        """Raise ValueError, in one line, when the run's markets lack what this strategy needs."""
        have = {market_kind(m) for m in markets}
        missing = [kind for kind in dict.fromkeys(cls.needs) if kind not in have]
        if missing:
            raise ValueError(f"strategy {cls.name} needs a {' and a '.join(missing)} market; "
                             f"the markets given are {', '.join(markets) or 'none'}")

    def check(self) -> None:
        """Raise ValueError for parameter values that make no sense together."""

    def quote(self, snapshot: Snapshot) -> list[Intent]:
        raise NotImplementedError


def market_kind(name: str) -> Kind:
    """Drift names perps NAME-PERP and spot markets by their asset: SOL-PERP, SOL."""
    return "perp" if name.upper().endswith("-PERP") else "spot"


def linked_spot(perp: str) -> str:
    """The spot market of a perp's asset: SOL-PERP -> SOL."""
    return perp[: -len("-PERP")]


def source_file(cls: type) -> Path:
    return Path(sys.modules[cls.__module__].__file__)


def source_sha256(cls: type) -> str:
    """The strategy file's hash, recorded in the manifest so a replay can tell the code changed."""
    return hashlib.sha256(source_file(cls).read_bytes()).hexdigest()


def perp_base(snapshot: Snapshot, market: str) -> int:
    position = snapshot.user.positions.get(market)
    return position.base if position else 0


def perps(snapshot: Snapshot):
    """(name, MarketState) of the snapshot's perp markets."""
    return ((name, m) for name, m in snapshot.markets.items() if m.spec.kind == "perp")


def position_usd(snapshot: Snapshot, name: str) -> float:
    """The perp position's value at the oracle, signed, in USD (strategy maths only)."""
    market = snapshot.markets[name]
    return perp_base(snapshot, name) / market.spec.base_precision * market.oracle_price / PRICE_PRECISION


def adds_past(side: str, position: float, limit: float) -> bool:
    """Whether quoting `side` would add to a position already `limit` or more: a bid to a long, an ask to a short."""
    return position >= limit if side == "bid" else position <= -limit


def spot_base(snapshot: Snapshot, market: str) -> int:
    """Our spot balance in the market's decimals: the venue's spot balances where it reports
    them (a live Drift user), else the position the venue books for the spot market."""
    balance = snapshot.user.spot_balances.get(market)
    return balance.amount if balance is not None else perp_base(snapshot, market)


# Small conversions for strategy maths: floats in, Drift integers out.

def price_from_usd(usd: float) -> int:
    return round(usd * PRICE_PRECISION)


def base_from_units(market: MarketState, units: Decimal | float) -> int:
    """Base amount in the market's precision, from human units."""
    return int(Decimal(str(units)) * market.spec.base_precision)


def base_for_notional(market: MarketState, usd: Decimal | float) -> int:
    """Base amount worth `usd` at the oracle price."""
    return _notional(usd, market.spec.base_precision) // market.oracle_price


@functools.lru_cache(maxsize=256)
def _notional(usd: Decimal | float, base_precision: int) -> int:
    # every tick asks again for the same few sizes; equal amounts give equal Decimals, so equal keys agree
    return int(Decimal(str(usd)) * PRICE_PRECISION * base_precision)


def sticky(snapshot: Snapshot, want: Intent, tolerance_bps: float) -> Intent:
    """Keep resting an order of ours that is already close enough to `want`.

    Re-quoting on every one-tick move loses queue priority and pays for cancels; returning
    the resting order's exact terms lets the reconciler leave it alone. It reads only the
    snapshot, so the strategy stays pure.
    """
    oracle = snapshot.markets[want.market].oracle_price
    band = oracle * tolerance_bps / 10_000
    floating = want.oracle_offset is not None
    for order in _keeper_orders(snapshot.user.open_orders).get((want.market, want.side), ()):
        if (order.post_only != want.post_only or order.reduce_only != want.reduce_only
                or (order.oracle_offset is not None) != floating):
            continue
        target, resting = (want.oracle_offset, order.oracle_offset) if floating else (want.price, order.price)
        if abs(resting - target) <= band and want.size // 2 <= order.remaining <= want.size * 6 // 5:
            return replace(want, size=order.remaining, price=None if floating else order.price,
                           oracle_offset=order.oracle_offset if floating else None)
    return want


_indexed: tuple[tuple, dict] = ((), {})


def _keeper_orders(open_orders: tuple[OpenOrder, ...]) -> dict[tuple[str, str], list[OpenOrder]]:
    """The keeper's open orders by (market, side), in their order. Built once per snapshot (a
    strategy asks for each of its intents), remembered by the tuple it was built from."""
    global _indexed
    if _indexed[0] is not open_orders:
        index: dict[tuple[str, str], list[OpenOrder]] = {}
        for order in open_orders:
            if order.user_order_id:
                index.setdefault((order.market, order.side), []).append(order)
        _indexed = (open_orders, index)
    return _indexed[1]
