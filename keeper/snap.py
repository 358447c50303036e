"""Step 3 of the tick: fit intents to the market's tick, step and minimum size.

Prices are snapped away from the touch (bids down, asks up) so snapping never makes a
quote more aggressive than the strategy asked for; sizes are snapped down.
"""
from __future__ import annotations

from keeper.model import Intent, MarketState, replace


def snap_price(price: int, tick: int, side: str) -> int:
    return (price // tick) * tick if side == "bid" else -((-price) // tick) * tick


def snap_size(size: int, step: int) -> int:
    return (size // step) * step


def snap_intents(intents: list[Intent], markets: dict[str, MarketState]) -> tuple[list[Intent], list[str]]:
    """Returns the snapped intents and one line per dropped intent saying why."""
    kept: list[Intent] = []
    dropped: list[str] = []
    for intent in intents:
        market = markets.get(intent.market)
        if market is None:
            dropped.append(f"{intent.market} {intent.side}: market not in snapshot")
            continue
        spec = market.spec
        size = snap_size(intent.size, spec.step_size)
        if size < spec.min_order_size:
            dropped.append(f"{intent.market} {intent.side}: size {intent.size} below min order size {spec.min_order_size}")
            continue
        if intent.price is not None:
            price = snap_price(intent.price, spec.tick_size, intent.side)
            if price <= 0:
                dropped.append(f"{intent.market} {intent.side}: price {intent.price} not positive")
                continue
            kept.append(intent if size == intent.size and price == intent.price else replace(intent, size=size, price=price))
        else:
            offset = snap_price(intent.oracle_offset, spec.tick_size, intent.side)
            kept.append(intent if size == intent.size and offset == intent.oracle_offset
                        else replace(intent, size=size, oracle_offset=offset))
    return kept, dropped
