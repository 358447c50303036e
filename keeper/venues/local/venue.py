"""LocalVenue: the Venue protocol over the sim exchange, fed by the local market's synthetic flow."""
from __future__ import annotations

from typing import Optional

from keeper.model import QUOTE_PRECISION, Execution, Outcome, Plan, Snapshot
from keeper.venues.local.flow import DEFAULT_TOXICITY, LocalFlow
from keeper.venues.sim import PostOnly, intent_request, market_state, settle, user_state


class LocalVenue:
    """An in-process simulated Drift exchange.

    Each snapshot() after the first advances simulated time by `interval_ms` (flow.py says
    what happens in a tick). Without a price path every market's oracle is a seeded random
    walk from its real reference price. With one, simulated time starts at the path's first
    timestamp; the FIRST market in `markets` follows the path's prices absolutely, and every
    other asset follows the same relative moves from its own reference price
    (price_i(t) = ref_i * path(t) / path(t0)); SOL spot shares SOL-PERP's oracle.
    A seed (and path) fully determines the run.
    """

    network = "local"

    def __init__(self, markets: list[str], seed: int = 0, price_path: Optional[list[tuple[int, int]]] = None,
                 interval_ms: int = 1000, collateral: int = 10_000 * QUOTE_PRECISION,
                 toxicity: float = DEFAULT_TOXICITY):
        self.flow = LocalFlow(list(markets), seed, price_path, interval_ms, collateral, toxicity)
        self.exchange = self.flow.exchange
        self._started = False

    async def snapshot(self) -> Snapshot:
        ex = self.exchange
        if self._started:
            self.flow.advance()
        self._started = True
        markets = {n: market_state(m) for n, m in ex.markets.items()}
        return Snapshot(ex.now_ms, ex.slot, markets, user_state(ex))

    async def execute(self, plan: Plan, snapshot: Snapshot) -> Execution:
        ex = self.exchange
        outcomes = []
        for oo in plan.cancels:
            err = ex.cancel(oo.order_id)
            outcomes.append(Outcome("cancel", oo.user_order_id, err is None, err or "", oo.order_id))
        for p in plan.places:
            err, oid = ex.place(intent_request(p, ex.now_s, PostOnly.MUST))
            outcomes.append(Outcome("place", p.user_order_id, err is None, err or "", oid))
        outcomes += settle(ex, plan)
        return Execution(ex.now_ms, ex.slot, plan, tuple(outcomes))

    async def cancel_all(self) -> int:
        return self.exchange.cancel_all()

    async def close(self) -> None:
        return None
