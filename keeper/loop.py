"""One tick: snapshot -> strategy -> snap -> risk -> reconcile -> execute -> archive.

The loop never asks which venue it runs on. Ticks never overlap. A stop request abandons a
tick that is still loading its snapshot and never lets a decided plan go out, but a plan that
is already being sent is seen through (its transactions' fate must be known before the final
cancel reads the chain). Every keeper order is cancelled before the loop returns.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import gc
import os
import logging
import time
from dataclasses import dataclass
from typing import Optional, Protocol

from keeper.archive.writer import ArchiveError
from keeper.model import Execution, Plan, Snapshot
from keeper.reconcile import reconcile
from keeper.risk import HALTED, RiskGate
from keeper.snap import snap_intents
from keeper.venues.base import SkipTick, Venue, VenueExhausted
from strategies.base import Strategy

log = logging.getLogger("keeper")

# Consecutive ticks without trustworthy data after which resting quotes are pulled: stale
# quotes are what a taker picks off.
PULL_AFTER_SKIPS = 3
# While data stays missing, how often the log says so again (with a count), not once a tick.
SKIP_REMINDER_S = 60.0


class Observer(Protocol):
    def on_tick(self, snapshot: Snapshot, execution: Execution) -> None: ...


def quiet_gc() -> None:
    """Keep the cyclic garbage collector out of the tick's tail latency.

    Tick data is acyclic (frozen slotted dataclasses and tuples), so reference counting frees
    it; but each snapshot allocates thousands of objects, which kept triggering full
    collections that rescanned the whole heap (p99 17 ms -> 1.8 ms with full L3 books).
    Freezing moves start-up objects out of the scans; a high first threshold makes
    collections rare. Cycles, if any appear, are still collected.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def decide(strategy: Strategy, risk: RiskGate, snapshot: Snapshot, quote_ttl_s: Optional[int] = None) -> Plan:
    """The pure part of a tick: the same snapshot always gives the same plan."""
    intents = strategy.quote(snapshot)
    intents, snap_notes = snap_intents(intents, snapshot.markets)
    intents, risk_notes = risk.check(intents, snapshot)
    return reconcile(intents, snapshot.user.open_orders, tuple(snap_notes + risk_notes),
                     now_s=snapshot.ts // 1000, quote_ttl_s=quote_ttl_s)


@dataclass
class Loop:
    venue: Venue
    strategy: Strategy
    risk: RiskGate
    archive: Optional[object] = None  # SessionWriter: write_snapshot / write_execution
    observers: tuple[Observer, ...] = ()
    interval_s: float = 1.0
    fast: bool = False
    kill_file: Optional[str] = None  # its appearance cancels everything and halts (live runs only)
    quote_ttl_s: Optional[int] = None  # every placement expires this long after it (the dead-man's switch)

    def __post_init__(self) -> None:
        self.ticks = 0  # ticks that quoted
        self.skipped = 0  # ticks skipped for want of trustworthy data
        self.skip_reasons: collections.Counter[str] = collections.Counter()
        self._skips_in_a_row = 0
        self._skip_reason = ""  # the reason of the current run of skips
        self._reminded_at = 0.0
        self._since_reminder = 0
        self._loading: Optional[asyncio.Task] = None  # the run task, while it awaits a snapshot
        self._last_notes: set[str] = set()
        self._archive_failed = False
        self.unarchived: collections.Counter[str] = collections.Counter()  # records the archive refused, by kind
        self.stopping = asyncio.Event()
        quiet_gc()

    def stop(self) -> None:
        self.stopping.set()
        if self._loading is not None:  # nothing has been sent yet this tick: no need to finish it
            self._loading.cancel()

    async def tick(self) -> Execution:
        if self.kill_file and os.path.exists(self.kill_file):
            self.risk.halt(f"kill switch: file {self.kill_file} exists")
        self._loading = asyncio.current_task()
        try:
            snapshot = await self.venue.snapshot()
        finally:
            self._loading = None
        self._record("write_snapshot", snapshot)
        try:
            plan = decide(self.strategy, self.risk, snapshot, self.quote_ttl_s)
        except Exception as exc:  # a strategy bug must not leave orders unattended: quote nothing new
            log.error("strategy %s failed on tick %d: %s: %s", self.strategy.name, self.ticks, type(exc).__name__, exc)
            plan = Plan(dropped=(f"strategy error: {type(exc).__name__}: {exc}",))
        if self.stopping.is_set():  # the shutdown cancel follows; placing first would only add to it
            execution = Execution(snapshot.ts, snapshot.slot, plan, (), self.risk.state)
        else:
            execution = await self.venue.execute(plan, snapshot)
            if execution.risk_state != self.risk.state:
                execution = dataclasses.replace(execution, risk_state=self.risk.state)
        self._record("write_execution", execution)
        for observer in self.observers:
            observer.on_tick(snapshot, execution)
        self.ticks += 1
        self._log_notes(plan.dropped)
        if self.risk.state == HALTED:  # this tick's plan cancelled our orders; the final cancel checks
            self.stop()
        return execution

    def _record(self, method: str, value) -> None:
        """Archive a record; if that fails (a full disk), halt: never trade unrecorded. The
        halting tick still runs, so its plan cancels our quotes."""
        if self.archive is None:
            return
        if self._archive_failed:
            self.unarchived[method] += 1
            return
        try:
            getattr(self.archive, method)(value)
        except ArchiveError as exc:
            self.unarchived[method] += 1
            self._archive_failed = True
            log.error("%s", exc)
            self.risk.halt(f"the archive cannot be written ({exc})")

    def _log_notes(self, notes: tuple[str, ...]) -> None:
        """Every dropped or trimmed intent, with its rule; a note repeated tick after tick once."""
        for note in notes:
            if note not in self._last_notes:
                log.info("%s", note)
        self._last_notes = set(notes)

    @property
    def attempts(self) -> int:
        return self.ticks + self.skipped

    async def run(self, ticks: Optional[int] = None) -> int:
        """Runs until `ticks` ticks were attempted (skipped ones count: a run with --ticks ends
        whatever the data does) or stop() is called; returns how many keeper orders the
        shutdown cancelled."""
        try:
            while (ticks is None or self.attempts < ticks) and not self.stopping.is_set():
                started = time.monotonic()
                try:
                    await self.tick()
                    self._data_back()
                except VenueExhausted:
                    break
                except SkipTick as exc:
                    await self._skip(exc)
                except asyncio.CancelledError:
                    if not self.stopping.is_set():
                        raise
                    asyncio.current_task().uncancel()  # our own stop(): go on to the final cancel
                    log.info("stop requested while loading tick %d's snapshot; tick abandoned", self.ticks)
                    break
                if not self.fast:
                    remaining = self.interval_s - (time.monotonic() - started)
                    if remaining > 0:
                        try:
                            await asyncio.wait_for(self.stopping.wait(), remaining)
                        except asyncio.TimeoutError:
                            pass
        finally:
            cancelled = await self.venue.cancel_all()
            log.info("shutdown: cancelled %d keeper order(s)", cancelled)
        return cancelled

    async def _skip(self, why: SkipTick) -> None:
        """Each reason is logged when it first appears; once a run of skips is long enough to
        pull our quotes it is said once, then once a minute with a count, never once a tick."""
        reason = str(why)
        self.skipped += 1
        self.skip_reasons[reason] += 1
        self._skips_in_a_row += 1
        self._since_reminder += 1
        if reason != self._skip_reason and self._skips_in_a_row <= PULL_AFTER_SKIPS or self._skips_in_a_row == 1:
            log.warning("tick %d skipped, nothing quoted: %s", self.attempts, reason)
        elif reason != self._skip_reason:
            log.warning("ticks still skipped, now because: %s", reason)
        self._skip_reason = reason
        now = time.monotonic()
        if self._skips_in_a_row == PULL_AFTER_SKIPS:
            log.error("%d ticks in a row without trustworthy data (%s): cancelling our resting quotes",
                      PULL_AFTER_SKIPS, reason)
            self._reminded_at, self._since_reminder = now, 0
            cancelled = await self.venue.cancel_all()
            log.info("cancelled %d keeper order(s) until data is back", cancelled)
        elif self._skips_in_a_row > PULL_AFTER_SKIPS and now - self._reminded_at >= SKIP_REMINDER_S:
            log.warning("still no trustworthy data: %d tick(s) skipped in the last %.0f s, %d in a row (%s)",
                        self._since_reminder, now - self._reminded_at, self._skips_in_a_row, reason)
            self._reminded_at, self._since_reminder = now, 0

    def _data_back(self) -> None:
        if self._skips_in_a_row >= PULL_AFTER_SKIPS:
            log.warning("data is back after %d skipped tick(s); quoting again", self._skips_in_a_row)
        self._skips_in_a_row, self._skip_reason, self._since_reminder = 0, "", 0
