"""What a strategy is: a name, a one-line description, typed parameters, and quote().

A strategy is pure: quote() sees a snapshot and the strategy's own state and returns the
orders it wants resting. No I/O, no clock, no randomness; that is what lets
`keeper replay --verify` reproduce every recorded plan.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from keeper.model import PRICE_PRECISION, Intent, MarketState, Snapshot

# Bounds that keep quote()'s maths finite: a quote 100% from the oracle has no price, and
# sizes beyond these overflow Decimal and any Drift u64 amount long before that.
MAX_SPREAD_BPS = 10_000
MAX_AMOUNT = Decimal(10**12)  # USD, or base units

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


@dataclass(frozen=True)
class Param:
    name: str
    type: type  # int, float, Decimal, bool or str
    default: Any
    prompt: str  # one line, shown by the picker and by `keeper strategies`

    def parse(self, text: str) -> Any:
        """Turn user text into a value of this parameter's type; ValueError says why not."""
        raw = text.strip()
        try:
            if self.type is bool:
                if raw.lower() in _TRUE:
                    return True
                if raw.lower() in _FALSE:
                    return False
                raise ValueError
            if self.type is Decimal:
                value = Decimal(raw)
                if not value.is_finite():
                    raise ValueError
                return value
            if self.type is float:
                value = float(raw)
                if value != value or value in (float("inf"), float("-inf")):
                    raise ValueError
                return value
            return self.type(raw)
        except (ValueError, InvalidOperation):
            shown = text if len(text) <= 60 else text[:57] + "..."  # one readable line, however long the input
            raise ValueError(f"parameter {self.name} wants {self.type_name}, got {shown!r}") from None

    @property
    def type_name(self) -> str:
        return {Decimal: "decimal", float: "float", int: "int", bool: "bool", str: "text"}[self.type]

    def show(self, value: Any) -> str:
        return str(value).lower() if self.type is bool else str(value)


class Strategy:
    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **values: Any) -> None:
        known = {p.name: p for p in self.params}
        for key in values:
            if key not in known:
                raise ValueError(f"strategy {self.name} has no parameter {key!r} (it has: {', '.join(known) or 'none'})")
        self.values = {p.name: values.get(p.name, p.default) for p in self.params}
        for key, value in self.values.items():
            setattr(self, key, value)
        self.check()

    def check(self) -> None:
        """Raise ValueError for parameter values that make no sense together."""

    def quote(self, snapshot: Snapshot) -> list[Intent]:
        raise NotImplementedError


# Small conversions for strategy maths: floats in, Drift integers out.

def price_from_usd(usd: float) -> int:
    return round(usd * PRICE_PRECISION)


def base_from_units(market: MarketState, units: Decimal | float) -> int:
    """Base amount in the market's precision, from human units."""
    return int(Decimal(str(units)) * market.spec.base_precision)


def base_for_notional(market: MarketState, usd: Decimal | float) -> int:
    """Base amount worth `usd` at the oracle price."""
    return int(Decimal(str(usd)) * PRICE_PRECISION * market.spec.base_precision) // market.oracle_price


def sticky(snapshot: Snapshot, want: Intent, tolerance_bps: float) -> Intent:
    """Keep resting an order of ours that is already close enough to `want`.

    Re-quoting on every one-tick move loses queue priority and pays for cancels; returning
    the resting order's exact terms lets the reconciler leave it alone. It reads only the
    snapshot, so the strategy stays pure.
    """
    oracle = snapshot.markets[want.market].oracle_price
    band = oracle * tolerance_bps / 10_000
    floating = want.oracle_offset is not None
    for order in snapshot.user.open_orders:
        if (order.user_order_id == 0 or order.market != want.market or order.side != want.side
                or order.post_only != want.post_only or order.reduce_only != want.reduce_only
                or (order.oracle_offset is not None) != floating):
            continue
        target, resting = (want.oracle_offset, order.oracle_offset) if floating else (want.price, order.price)
        if abs(resting - target) <= band and want.size // 2 <= order.remaining <= want.size * 6 // 5:
            return replace(want, size=order.remaining, price=None if floating else order.price,
                           oracle_offset=order.oracle_offset if floating else None)
    return want


def parse_sizes(text: str) -> dict[str, Decimal]:
    """'SOL-PERP=1,BTC-PERP=0.002' -> {market: base units}; ValueError says what is wrong."""
    sizes: dict[str, Decimal] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        market, sep, value = part.partition("=")
        try:
            if not sep:
                raise InvalidOperation
            sizes[market.strip()] = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"sizes: {part[:60]!r} is not MARKET=AMOUNT") from None
        if not sizes[market.strip()].is_finite() or sizes[market.strip()] <= 0:
            raise ValueError(f"sizes: {part[:60]!r} needs a positive amount")
        if sizes[market.strip()] > MAX_AMOUNT:
            raise ValueError(f"sizes: {part[:60]!r} is more than {MAX_AMOUNT:,} units")
    return sizes
