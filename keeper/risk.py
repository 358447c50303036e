"""Step 4 of the tick: the risk gate between the strategy and the reconciler.

For now a pass-through with a visible state; limits, guards and breakers hang here later.
"""
from __future__ import annotations

from keeper.model import Intent, Snapshot

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"


class RiskGate:
    def __init__(self) -> None:
        self.state = ACTIVE

    def check(self, intents: list[Intent], snapshot: Snapshot) -> tuple[list[Intent], list[str]]:
        """Returns the intents allowed through and one line per dropped or trimmed intent."""
        if self.state == HALTED:
            return [], [f"risk {HALTED}: all intents dropped"] if intents else []
        if self.state == REDUCING:
            kept = [i for i in intents if i.reduce_only]
            return kept, [f"risk {REDUCING}: dropped non-reduce-only {i.market} {i.side}" for i in intents if not i.reduce_only]
        return list(intents), []
