"""What became of a plan: the previous Execution read against the snapshot that follows it.

The strategy sees it as `snapshot.last_plan`, so it can react to a refusal (say, spot margin
trading disabled) or to its quotes expiring, without any I/O of its own. It is derived from
values the archive already holds (the execution and the next snapshot), so a replay derives
the same one.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Optional

from keeper import drift_errors
from keeper.model import Execution, LastPlan, PlanOrder, Snapshot, replace

log = logging.getLogger("keeper")


def last_plan(execution: Execution, snapshot: Snapshot) -> LastPlan:
    if not execution.plan.places:
        return LastPlan(execution.ts, (), execution.plan.dropped)
    placed = {o.user_order_id: o for o in execution.outcomes if o.action == "place"}
    resting = {(o.market, o.user_order_id): o for o in snapshot.user.open_orders}
    traded: Counter[tuple[str, int]] = Counter()
    for fill in snapshot.user.fills:
        traded[(fill.market, fill.user_order_id)] += fill.size
    orders = []
    for placement in execution.plan.places:
        intent, uoid = placement.intent, placement.user_order_id
        outcome = placed.get(uoid)
        common = dict(market=intent.market, side=intent.side, size=intent.size, user_order_id=uoid)
        if outcome is None or not outcome.ok:
            error = outcome.error if outcome is not None else "not sent"
            orders.append(PlanOrder(**common, status="rejected", error=error))
            continue
        order = resting.get((intent.market, uoid))
        if order is not None:
            orders.append(PlanOrder(**common, status="placed", filled=order.filled))
        else:
            filled = min(traded[(intent.market, uoid)], intent.size)
            orders.append(PlanOrder(**common, status="filled" if filled >= intent.size else "expired", filled=filled))
    return LastPlan(execution.ts, tuple(orders), execution.plan.dropped)


def with_last_plan(snapshot: Snapshot, execution: Optional[Execution]) -> Snapshot:
    if execution is None:
        return snapshot
    return replace(snapshot, last_plan=last_plan(execution, snapshot))


class Hints:
    """Explains, once per session, a Drift refusal whose name alone doesn't say what to do."""

    def __init__(self) -> None:
        self.said: set[str] = set()

    def explain(self, execution: Execution) -> None:
        for outcome in execution.outcomes:
            if outcome.ok:
                continue
            for name, hint in drift_errors.HINTS.items():
                if name in outcome.error and name not in self.said:
                    self.said.add(name)
                    log.warning("%s: %s", name, hint)
