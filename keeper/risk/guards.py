"""Data a market's quotes can't be trusted on: the market is pulled (its intents dropped, so
the reconciler cancels what rests there) for as long as the condition holds.

driftpy's oracle-validity rules are the model (math/oracle.is_oracle_valid): stale for too
many slots, a confidence interval too wide for the price, a price too far from a second view
of it. Drift itself pauses the AMM on such oracles; a maker's resting quotes are not paused
by anyone but the maker.
"""
from __future__ import annotations

from typing import Optional

from keeper.model import BPS, MarketState, Snapshot
from keeper.risk.config import AccountLimits, MarketLimits


def stale_book(snapshot: Snapshot, account: AccountLimits) -> str:
    if snapshot.book_slot is None:
        return ""
    lag = snapshot.slot - snapshot.book_slot
    return f"order book {lag} slots old (max {account.max_book_lag_slots})" if lag > account.max_book_lag_slots else ""


def _bps(a: int, b: int) -> int:
    return abs(a - b) * BPS // b if b > 0 else BPS


def untrusted(market: MarketState, slot: int, limits: MarketLimits, previous_oracle: Optional[int]) -> str:
    """Why this market's data can't be quoted on, or "" when it can."""
    oracle = market.oracle_price
    if oracle <= 0:
        return f"oracle price {oracle} not positive"
    lag = slot - market.oracle_slot
    if lag > limits.max_oracle_lag_slots:
        return f"oracle {lag} slots old (max {limits.max_oracle_lag_slots})"
    conf = market.oracle_conf * BPS // oracle
    if conf > limits.max_conf_bps:
        return f"oracle confidence {conf} bps of the price (max {limits.max_conf_bps})"
    if previous_oracle and _bps(oracle, previous_oracle) > limits.max_jump_bps:
        return f"oracle jumped {_bps(oracle, previous_oracle)} bps in one tick (max {limits.max_jump_bps})"
    if market.reference_price:
        gap = _bps(oracle, market.reference_price)
        if gap > limits.max_reference_deviation_bps:
            return (f"oracle {oracle} is {gap} bps from the Pyth reading {market.reference_price} "
                    f"(max {limits.max_reference_deviation_bps})")
    else:
        bid, ask = market.book.best_bid, market.book.best_ask
        if bid and ask and bid < ask:
            mid = (bid + ask) // 2
            gap = _bps(oracle, mid)
            if gap > limits.max_mid_deviation_bps:
                return f"oracle {oracle} is {gap} bps from the book's mid {mid} (max {limits.max_mid_deviation_bps})"
    return ""
