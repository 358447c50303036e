"""Step 5 of the tick: desired orders vs resting orders -> the smallest plan.

An open keeper order that exactly matches a desired order stays (keeping its queue place);
everything else of ours is cancelled, and only what is missing is placed. Orders without a
user_order_id are not the keeper's and are never touched.

The dead-man's switch: with a quote TTL, every placement expires `quote_ttl_s` after it is
placed (Drift's max_ts), so quotes left by a keeper that died stop being fillable on their own.
A matching order within `refresh_s(ttl)` of its expiry, or without one, no longer counts as a
match: it is replaced before it lapses.
"""
from __future__ import annotations

from operator import attrgetter
from typing import Optional

from keeper.model import MAX_OPEN_ORDERS, MAX_USER_ORDER_ID, Intent, OpenOrder, Placement, Plan, replace


_order_id = attrgetter("order_id")


def _order_key(o: OpenOrder) -> tuple:
    price = 0 if o.oracle_offset is not None else o.price
    return (o.market, o.side, price, o.oracle_offset, o.remaining, o.post_only, o.reduce_only)


def _intent_key(i: Intent) -> tuple:
    return (i.market, i.side, i.price or 0, i.oracle_offset, i.size, i.post_only, i.reduce_only)


QUOTE_TTL_BOUNDS = (5, 3600)  # seconds: --quote-ttl
DEFAULT_QUOTE_TTL = 30


def refresh_s(quote_ttl_s: int) -> int:
    """How long before its expiry a quote is replaced: a third of the TTL leaves several ticks'
    margin for a slow or refused transaction."""
    return max(1, quote_ttl_s // 3)


def _lapsing(order: OpenOrder, now_s: int, quote_ttl_s: Optional[int]) -> bool:
    if quote_ttl_s is None:
        return False
    return order.max_ts == 0 or order.max_ts - now_s < refresh_s(quote_ttl_s)


def with_ttl(intent: Intent, quote_ttl_s: Optional[int]) -> Intent:
    """The intent expiring at most quote_ttl_s after placement (a strategy may ask for less)."""
    if quote_ttl_s is None or 0 < intent.expiry_s <= quote_ttl_s:
        return intent
    return replace(intent, expiry_s=quote_ttl_s)


def reconcile(intents: list[Intent], open_orders: tuple[OpenOrder, ...], dropped: tuple[str, ...] = (),
              now_s: int = 0, quote_ttl_s: Optional[int] = None) -> Plan:
    wanted: dict[tuple, int] = {}
    for i in intents:
        if not i.ioc:
            key = _intent_key(i)
            wanted[key] = wanted.get(key, 0) + 1
    cancels = []
    for order in sorted(open_orders, key=_order_id):
        if order.user_order_id == 0:
            continue
        key = _order_key(order)
        if wanted.get(key, 0) > 0 and not _lapsing(order, now_s, quote_ttl_s):
            wanted[key] -= 1
        else:
            cancels.append(order)

    missing = []
    for intent in intents:
        if intent.ioc:  # it never rests, so nothing resting stands for it: send it every time
            missing.append(intent)
            continue
        key = _intent_key(intent)
        if wanted[key] > 0:
            wanted[key] -= 1
            missing.append(intent)

    notes = list(dropped)
    free_slots = MAX_OPEN_ORDERS - (len(open_orders) - len(cancels))
    if len(missing) > free_slots:
        notes += [f"{i.market} {i.side}: no free order slot ({MAX_OPEN_ORDERS} max)" for i in missing[free_slots:]]
        missing = missing[: max(free_slots, 0)]

    places = []
    if missing:
        # Lowest free ids, never one still resting or being cancelled in this plan, so that a
        # recorded plan is a pure function of the snapshot (replay --verify depends on it).
        taken = {o.user_order_id for o in open_orders}
        free_ids = (uid for uid in range(1, MAX_USER_ORDER_ID + 1) if uid not in taken)
        for intent in missing:
            uid = next(free_ids, None)
            if uid is None:
                notes.append(f"{intent.market} {intent.side}: no free user_order_id")
                continue
            places.append(Placement(with_ttl(intent, quote_ttl_s), uid))
    return Plan(cancels=tuple(cancels), places=tuple(places), dropped=tuple(notes))
