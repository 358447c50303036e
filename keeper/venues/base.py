"""The one protocol every venue speaks. The loop never asks which venue it runs on."""
from __future__ import annotations

from typing import Protocol

from keeper.model import Execution, Plan, Snapshot


class Venue(Protocol):
    network: str  # "local", "localnet", "devnet", "mainnet", "replay", or an RPC URL

    async def snapshot(self) -> Snapshot:
        """Load (on the local market: advance to) the next tick's state."""

    async def execute(self, plan: Plan, snapshot: Snapshot) -> Execution:
        """Carry out a plan: cancels first, then placements."""

    async def cancel_all(self) -> int:
        """Cancel every keeper order (user_order_id != 0); returns how many were cancelled."""

    async def close(self) -> None:
        """Release connections and helper processes."""


class VenueExhausted(Exception):
    """The venue has no more ticks to give (a replay reached the end of its archive)."""


class SkipTick(Exception):
    """This tick's data can't be trusted (say the DLOB helper failed): quote nothing rather than quote blind."""
