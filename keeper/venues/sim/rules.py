"""Drift's placement rules, in one place, as the program of this build applies them.

Each rule was checked against the real program (`keeper localnet`, Dec 2023 build) by
tests/test_conformance.py; where the program differs from what Drift's documentation says,
the program's behaviour is what is modelled:

- post-only is checked against the AMM's quote only, never the DLOB (the program cannot see
  the DLOB when an order lands): a bid is refused when its price is above the AMM's ask plus
  one tick, an ask when it is below the AMM's bid minus one tick, but only on the far side of
  the oracle: a bid under the oracle or an ask over it rests whatever the AMM's quote (which
  lags an oracle that moved since the AMM's last update). A spot market has no AMM here, so
  nothing refuses a post-only spot order. A post-only order through a resting DLOB order rests
  crossed.
- MustPostOnly refuses with PlacePostOnlyLimitFailure; TryPostOnly places nothing and raises
  nothing; Slide moves a bid at or above the AMM's ask to one tick under it (an ask at or
  below the AMM's bid to one tick over it), and leaves the slid price off the tick grid as
  the program does. (The ask the program slides against sits about 1 ppm above the one its
  reserves give, which the sim is fed; the conformance test shows the gap.)
- reduce-only is never checked at placement. At fill time a non-post-only reduce-only order
  fills at most the position it reduces; a post-only one ignores reduce-only (the program
  disregards it for makers).
- max_ts: an order is fillable while the clock's unix_timestamp <= max_ts and is removed
  after; one placed with max_ts already past is silently not placed.
- at most 32 open orders (MaxNumberOfOrders).

Prices and sizes reach the sim snapped (keeper/snap.py); the sim refuses an off-grid order
rather than snap it again (the program standardises one, but on our order path it is a bug).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

from keeper import drift_errors as E
from keeper.model import MAX_OPEN_ORDERS, MarketSpec, Side


class PostOnly(enum.Enum):
    NONE = "none"
    MUST = "must"  # PostOnlyParams.MustPostOnly
    TRY = "try"  # PostOnlyParams.TryPostOnly
    SLIDE = "slide"  # PostOnlyParams.Slide


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order as the program receives it (prices 1e6, sizes in base precision)."""

    market: str
    side: Side
    size: int
    price: Optional[int] = None  # a limit price, or
    oracle_offset: Optional[int] = None  # an offset from the oracle (floats with it)
    post_only: PostOnly = PostOnly.MUST
    reduce_only: bool = False
    ioc: bool = False  # immediate-or-cancel: whatever does not fill at once is removed
    max_ts: int = 0  # unix seconds; 0 = never expires
    user_order_id: int = 0


def check(spec: MarketSpec, req: OrderRequest, open_orders: int, uoid_in_use: bool) -> Optional[str]:
    """The static checks, in the program's order; returns Drift's error name or None."""
    if open_orders >= MAX_OPEN_ORDERS:
        return E.TOO_MANY_ORDERS
    if req.user_order_id and uoid_in_use:
        return E.USER_ORDER_ID_IN_USE
    if req.size <= 0 or req.size % spec.step_size:
        return E.SIZE_NOT_STEP
    if req.size < spec.min_order_size:
        return E.SIZE_BELOW_MIN
    if (req.price is None) == (req.oracle_offset is None):
        return E.PRICE_NOT_TICK
    if req.price is not None and (req.price <= 0 or req.price % spec.tick_size):
        return E.PRICE_NOT_TICK
    if req.oracle_offset is not None and req.oracle_offset % spec.tick_size:
        return E.PRICE_NOT_TICK
    if req.max_ts < 0:
        return E.BAD_MAX_TS
    return None


def expired(max_ts: int, now_s: int) -> bool:
    return max_ts != 0 and now_s > max_ts


def crosses_amm(side: Side, price: int, amm_bid: Optional[int], amm_ask: Optional[int], tick: int,
                oracle: int) -> bool:
    """Would the program call this post-only order a cross (see the module's first rule)?"""
    if side == "bid":
        return amm_ask is not None and price > amm_ask + tick and price >= oracle
    return amm_bid is not None and price < amm_bid - tick and price <= oracle


def post_only_outcome(mode: PostOnly, crossing: bool) -> tuple[Optional[str], bool]:
    """(error name or None, place it?) for a post-only order that does or does not cross;
    a SLIDE order is placed, at slid_price()."""
    if not crossing or mode in (PostOnly.NONE, PostOnly.SLIDE):
        return None, True
    if mode is PostOnly.TRY:
        return None, False
    return E.POST_ONLY_CROSS, False


def slid_price(side: Side, price: int, amm_bid: Optional[int], amm_ask: Optional[int], tick: int) -> int:
    if side == "bid":
        return amm_ask - tick if amm_ask is not None and price >= amm_ask else price
    return amm_bid + tick if amm_bid is not None and price <= amm_bid else price


def fillable(reduce_only: bool, post_only: bool, remaining: int, side: Side, position: int) -> int:
    """How much of a resting order may fill now, given the position it would change."""
    if not reduce_only or post_only:
        return remaining
    reducible = -position if side == "bid" and position < 0 else position if side == "ask" and position > 0 else 0
    return min(remaining, reducible)
