"""Drift accounts (as driftpy decodes them) to the keeper's values, in Drift's integer precisions.

One place turns a PerpMarket or SpotMarket into the MarketSpec the program enforces, and a
User account into open orders and positions; the local market's shipped specs are derived
through the same functions.
"""
from __future__ import annotations

from typing import Optional

from driftpy.types import is_variant

from keeper.model import MAX_USER_ORDER_ID, MarketSpec, OpenOrder

SPOT_WEIGHT_PRECISION = 10_000  # Drift's SPOT_WEIGHT_PRECISION: a weight of 1.0


def market_name(account) -> str:
    """Drift pads names with spaces to 32 bytes."""
    return bytes(account.name).decode("utf-8", errors="replace").strip().strip("\0")


def adjusted_fee(fee: int, fee_adjustment: int) -> int:
    # Drift scales a market's taker fee and maker rebate by (100 + fee_adjustment) / 100.
    return fee * (100 + fee_adjustment) // 100


def perp_spec(account, taker_fee: int, maker_rebate: int, name: Optional[str] = None) -> MarketSpec:
    """`taker_fee`/`maker_rebate`: the State's tier-0 numerators (per 100_000), before the market's adjustment."""
    amm = account.amm
    return MarketSpec(
        name=name or market_name(account), kind="perp", market_index=account.market_index, base_precision=10**9,
        tick_size=amm.order_tick_size, step_size=amm.order_step_size, min_order_size=amm.min_order_size,
        taker_fee=adjusted_fee(taker_fee, account.fee_adjustment),
        maker_rebate=adjusted_fee(maker_rebate, account.fee_adjustment),
        margin_ratio_initial=account.margin_ratio_initial, margin_ratio_maintenance=account.margin_ratio_maintenance,
        asset_weight=account.unrealized_pnl_initial_asset_weight,
    )


def spot_spec(account, taker_fee: int, maker_rebate: int, name: Optional[str] = None) -> MarketSpec:
    return MarketSpec(
        name=name or market_name(account), kind="spot", market_index=account.market_index,
        base_precision=10**account.decimals,
        tick_size=account.order_tick_size, step_size=account.order_step_size, min_order_size=account.min_order_size,
        taker_fee=adjusted_fee(taker_fee, account.fee_adjustment),
        maker_rebate=adjusted_fee(maker_rebate, account.fee_adjustment),
        margin_ratio_initial=account.initial_liability_weight - SPOT_WEIGHT_PRECISION,
        margin_ratio_maintenance=account.maintenance_liability_weight - SPOT_WEIGHT_PRECISION,
        asset_weight=account.initial_asset_weight,
    )


def fee_tier(fee_structure) -> tuple[int, int]:
    """Tier 0 of a State fee structure: (taker fee numerator, maker rebate numerator)."""
    tier = fee_structure.fee_tiers[0]
    return tier.fee_numerator, tier.maker_rebate_numerator


def is_open(order) -> bool:
    return is_variant(order.status, "Open") and order.base_asset_amount > 0


def open_orders(user, names: dict[tuple[str, int], str]) -> tuple[OpenOrder, ...]:
    """Every open order on a market we know, as OpenOrder; `names` maps (kind, index) to a market name.

    The keeper's own orders are those with a user_order_id; the rest are left to their owner.
    """
    out = []
    for order in user.orders:
        if not is_open(order):
            continue
        kind = "perp" if is_variant(order.market_type, "Perp") else "spot"
        name = names.get((kind, order.market_index))
        if name is None:
            continue
        floating = order.oracle_price_offset != 0
        out.append(OpenOrder(
            order_id=order.order_id, user_order_id=order.user_order_id, market=name,
            side="bid" if is_variant(order.direction, "Long") else "ask",
            price=0 if floating else order.price, size=order.base_asset_amount, filled=order.base_asset_amount_filled,
            oracle_offset=order.oracle_price_offset if floating else None, post_only=order.post_only,
            reduce_only=order.reduce_only, max_ts=order.max_ts,
        ))
    return tuple(sorted(out, key=lambda o: o.order_id))


def keeper_orders(orders: tuple[OpenOrder, ...]) -> tuple[OpenOrder, ...]:
    return tuple(o for o in orders if 0 < o.user_order_id <= MAX_USER_ORDER_ID)


def perp_base(user, market_index: int) -> int:
    for position in user.perp_positions:
        if position.market_index == market_index and (position.base_asset_amount or position.open_orders):
            return position.base_asset_amount
    return 0


def token_amount(position, market) -> int:
    """A spot position's tokens (10**decimals), negative for a borrow, as the program counts
    them: deposits round down, borrows up. driftpy's get_token_amount divides deposits in
    floats, which loses units past 2**53."""
    scale = 10 ** (19 - market.decimals)
    if is_variant(position.balance_type, "Deposit"):
        return position.scaled_balance * market.cumulative_deposit_interest // scale
    return -(position.scaled_balance * market.cumulative_borrow_interest) // scale  # -ceil(x / scale)
