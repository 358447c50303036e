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

ALL = (
    POST_ONLY_CROSS, PRICE_NOT_TICK, SIZE_NOT_STEP, SIZE_BELOW_MIN, TOO_MANY_ORDERS, INSUFFICIENT_COLLATERAL,
    NOT_RISK_REDUCING, ORDER_NOT_FOUND, USER_ORDER_ID_IN_USE, BAD_MAX_TS, PERP_MARKET_NOT_FOUND,
    SPOT_MARKET_NOT_FOUND,
)
