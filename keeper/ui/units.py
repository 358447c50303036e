"""Human units for logs and screens: prices in USD at the market's tick precision, sizes in
base units at its step precision, quote amounts in USD. Integers in, text out: the order
path never sees these."""
from __future__ import annotations

from decimal import Decimal

from keeper.model import PRICE_PRECISION, QUOTE_PRECISION, MarketSpec, asset_of


def decimals(increment: int, precision: int) -> int:
    """How many decimals an amount on this grid needs: a tick of 100 at 1e6 is 0.0001, 4."""
    places = 0
    while increment > 0 and increment * 10**places % precision and places < 12:
        places += 1
    return places


def price(value: int | None, spec: MarketSpec) -> str:
    """85123400 on SOL-PERP (tick $0.0001) -> "85.1234"."""
    if value is None:
        return "-"
    return f"{value / PRICE_PRECISION:,.{decimals(spec.tick_size, PRICE_PRECISION)}f}"


def base(value: int, spec: MarketSpec, signed: bool = False, unit: bool = True) -> str:
    """250000000 on SOL-PERP (step 0.01 SOL) -> "0.25 SOL"."""
    places = decimals(spec.step_size, spec.base_precision)
    text = f"{value / spec.base_precision:{'+' if signed else ''},.{places}f}"
    return f"{text} {asset_of(spec.name)}" if unit else text


def usd(quote: int, signed: bool = False) -> str:
    """1234567 -> "$1.23"; signed: "+$1.23" / "-$1.23"."""
    sign = ("-" if quote < 0 else "+" if signed else "")
    return f"{sign}${abs(quote) / QUOTE_PRECISION:,.2f}"


def number(value: float, signed: bool = False) -> str:
    """A float from a summary, as written, without scientific notation: 1e-05 -> "0.00001"."""
    return f"{Decimal(repr(float(value))).normalize():{'+' if signed else ''},f}"


