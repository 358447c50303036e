"""Shared by the bench scripts: a venue proxy that keeps the venue's own time apart."""
from __future__ import annotations

import time


class TimedVenue:
    """Forwards to a venue and adds up the time spent inside it (its I/O, on a live venue)."""

    def __init__(self, venue) -> None:
        self.venue = venue
        self.network = venue.network
        self.spent_ns = 0

    async def _timed(self, call):
        start = time.perf_counter_ns()
        try:
            return await call
        finally:
            self.spent_ns += time.perf_counter_ns() - start

    async def snapshot(self):
        return await self._timed(self.venue.snapshot())

    async def execute(self, plan, snapshot):
        return await self._timed(self.venue.execute(plan, snapshot))

    async def cancel_all(self):
        return await self.venue.cancel_all()

    async def close(self):
        return await self.venue.close()


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]
