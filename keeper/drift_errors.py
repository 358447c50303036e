"""Drift program error names, one table for every venue (all exist in driftpy's IDL; a test checks)."""

POST_ONLY_CROSS = "PlacePostOnlyLimitFailure"
PRICE_NOT_TICK = "InvalidOrderLimitPrice"
SIZE_NOT_STEP = "InvalidOrderNotStepSizeMultiple"
SIZE_BELOW_MIN = "InvalidOrderMinOrderSize"
TOO_MANY_ORDERS = "MaxNumberOfOrders"
INSUFFICIENT_COLLATERAL = "InsufficientCollateral"
NOT_RISK_REDUCING = "InvalidOrderNotRiskReducing"
ORDER_NOT_FOUND = "OrderDoesNotExist"
USER_ORDER_ID_IN_USE = "UserOrderIdAlreadyInUse"
BAD_MAX_TS = "InvalidOrderMaxTs"
PERP_MARKET_NOT_FOUND = "PerpMarketNotFound"
SPOT_MARKET_NOT_FOUND = "SpotMarketNotFound"
MARGIN_TRADING_DISABLED = "MarginTradingDisabled"  # 6157

ALL = (
    POST_ONLY_CROSS, PRICE_NOT_TICK, SIZE_NOT_STEP, SIZE_BELOW_MIN, TOO_MANY_ORDERS, INSUFFICIENT_COLLATERAL,
    NOT_RISK_REDUCING, ORDER_NOT_FOUND, USER_ORDER_ID_IN_USE, BAD_MAX_TS, PERP_MARKET_NOT_FOUND,
    SPOT_MARKET_NOT_FOUND, MARGIN_TRADING_DISABLED,
)

# Refusals whose name alone doesn't say what to do, explained once in the log.
HINTS = {
    MARGIN_TRADING_DISABLED: "6157: this spot order would borrow (sell more than the user holds, or buy past its "
                             "USDC), and the Drift user has margin trading off; deposit the asset or enable margin "
                             "trading (driftpy update_user_margin_trading_enabled)",
}
