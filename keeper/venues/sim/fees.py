"""Maker rebates and taker fees: the one rounding rule, as the program applies it.

Drift (this build, checked to the unit by tests/test_conformance.py against `keeper localnet`)
charges each fill separately on that fill's quote: the taker's fee rounds UP, the maker's
rebate rounds DOWN. Rounding a rebate's magnitude up instead (floor division of a negative
number) pays a maker 1 unit too much on every small fill.
"""
from __future__ import annotations

from keeper.accounting import quote_value
from keeper.model import FEE_DENOMINATOR, MarketSpec


def fill_fee(quote: int, spec: MarketSpec, maker: bool) -> int:
    """Signed quote we pay on one fill of `quote` (1e6): negative is a rebate earned."""
    if maker:
        return -(quote * spec.maker_rebate // FEE_DENOMINATOR)
    return -(-quote * spec.taker_fee // FEE_DENOMINATOR)


def fee_for(size: int, price: int, spec: MarketSpec, maker: bool) -> int:
    """The fee of a fill of `size` base at `price`, on the quote the program books for it."""
    return fill_fee(quote_value(size, price, spec.base_precision), spec, maker)
