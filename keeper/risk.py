"""Step 4 of the tick: the risk gate between the strategy and the reconciler.

Intents the gate drops are not placed, and the reconciler cancels whatever of ours rests in
their place: a market whose data can't be trusted ends the tick with none of our quotes.
"""
from __future__ import annotations

from dataclasses import dataclass

from keeper.model import Intent, MarketState, Snapshot

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"
BPS = 10_000


@dataclass(frozen=True)
class Guards:
    """When data is too old or two readings of the price disagree (slots are ~400 ms on Solana)."""

    max_oracle_lag_slots: int = 50  # the oracle's publish slot behind the RPC's slot
    max_book_lag_slots: int = 75  # the order book's users last known complete this long ago
    max_reference_deviation_bps: int = 50  # the oracle against an independent reading of it


class RiskGate:
    def __init__(self, guards: Guards = Guards()) -> None:
        self.state = ACTIVE
        self.guards = guards

    def check(self, intents: list[Intent], snapshot: Snapshot) -> tuple[list[Intent], list[str]]:
        """Returns the intents allowed through and one line per dropped or trimmed intent."""
        if self.state == HALTED:
            return [], [f"risk {HALTED}: all intents dropped"] if intents else []
        notes = []
        stale_book = self._stale_book(snapshot)
        untrusted = {name: why for name, m in snapshot.markets.items() if (why := stale_book or self._untrusted(m, snapshot.slot))}
        for name, why in untrusted.items():
            notes.append(f"risk: {name} not quoted: {why}")
        kept = [i for i in intents if i.market not in untrusted]
        if self.state == REDUCING:
            notes += [f"risk {REDUCING}: dropped non-reduce-only {i.market} {i.side}" for i in kept if not i.reduce_only]
            kept = [i for i in kept if i.reduce_only]
        return kept, notes

    def _stale_book(self, snapshot: Snapshot) -> str:
        if snapshot.book_slot is None:
            return ""
        lag = snapshot.slot - snapshot.book_slot
        return f"order book {lag} slots old (max {self.guards.max_book_lag_slots})" if lag > self.guards.max_book_lag_slots else ""

    def _untrusted(self, market: MarketState, slot: int) -> str:
        lag = slot - market.oracle_slot
        if lag > self.guards.max_oracle_lag_slots:
            return f"oracle {lag} slots old (max {self.guards.max_oracle_lag_slots})"
        reference = market.reference_price
        if reference:
            gap_bps = abs(market.oracle_price - reference) * BPS // reference
            if gap_bps > self.guards.max_reference_deviation_bps:
                return (f"oracle {market.oracle_price} is {gap_bps} bps from the Pyth reading {reference} "
                        f"(max {self.guards.max_reference_deviation_bps})")
        return ""
