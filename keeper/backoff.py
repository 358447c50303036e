"""The one backoff of the keeper: a wait that doubles with each failure in a row, up to a cap.

Every retry loop uses it: the sender's RPC retries, driftpy's account polling, the book
users' reconnects, the placement pause after a refusal, and an RPC endpoint's time out of
rotation after it failed. `jitter` spreads the waits over [wait/2, wait], so many keepers
hitting one RPC don't retry in lockstep.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass


@dataclass
class Backoff:
    first: float  # seconds: the wait after the first failure
    cap: float  # seconds: the longest wait
    jitter: bool = False
    failures: int = 0  # in a row
    until: float = 0.0  # time.monotonic() before which hold() says to wait

    def __post_init__(self):
        if not 0 < self.first <= self.cap:
            raise ValueError(f"backoff: first wait {self.first} must be positive and at most the cap {self.cap}")

    def wait(self) -> float:
        """The wait after the failures so far (0 when there were none)."""
        if not self.failures:
            return 0.0
        wait = min(self.cap, self.first * 2 ** min(self.failures - 1, 64))
        return wait * random.uniform(0.5, 1.0) if self.jitter else wait

    def failed(self) -> float:
        """Count a failure; the wait before the next try. Also holds until then (see held())."""
        self.failures += 1
        wait = self.wait()
        self.until = time.monotonic() + wait
        return wait

    def held(self) -> bool:
        """Still within the wait that the last failure started."""
        return time.monotonic() < self.until

    def left(self) -> float:
        return max(0.0, self.until - time.monotonic())

    def reset(self) -> None:
        """A success: the next failure starts from the first wait again."""
        self.failures, self.until = 0, 0.0


def unless_cancelled(exc: BaseException) -> None:
    """For a retry loop that catches Exception: a cancel must still end it. The HTTP and
    websocket clients can turn a cancel that lands mid-request into an ordinary error (a
    ReadError); a loop that retried on it would never end, and whatever awaits it (a venue's
    close, asyncio.run's teardown) would hang for ever."""
    import asyncio

    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc
