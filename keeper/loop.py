"""One tick: snapshot -> strategy -> snap -> risk -> reconcile -> execute -> archive.

The loop never asks which venue it runs on. Ticks never overlap. A stop request abandons a
tick that is still loading its snapshot and never lets a decided plan go out, but a plan that
is already being sent is seen through (its transactions' fate must be known before the final
cancel reads the chain). Every keeper order is cancelled before the loop returns; with
on_stop=flatten, our positions are first closed by ticks whose plan the risk gate's closing
rule makes instead of the strategy (archived like any tick).
"""
from __future__ import annotations

import asyncio
import collections
import gc
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Optional, Protocol

from keeper.archive.writer import ArchiveError
from keeper.model import Execution, Plan, Snapshot, replace
from keeper.outcomes import Hints, with_last_plan
from keeper.reconcile import reconcile
from keeper.risk import HALTED, RiskGate
from keeper.snap import snap_intents
from keeper.ui import units
from keeper.venues.base import SkipTick, Venue, VenueExhausted
from strategies.base import Strategy

log = logging.getLogger("keeper")

# Consecutive ticks without trustworthy data after which resting quotes are pulled: stale
# quotes are what a taker picks off.
PULL_AFTER_SKIPS = 3
# While data stays missing, how often the log says so again (with a count), not once a tick.
SKIP_REMINDER_S = 60.0
# `--on-stop`: cancel our orders (the default), or flatten our positions first, then cancel.
CANCEL, FLATTEN = "cancel", "flatten"
# Closing orders a flatten sends per position (one a tick) before it gives up on it.
FLATTEN_TRIES = 5
# The first note of every flatten plan: the record says the risk gate made it, not the strategy
# (replay --verify cannot reproduce it from the strategy).
FLATTEN_NOTE = "on stop: flatten (reduce-only IOC)"
# The start of the note a tick whose strategy raised carries in its plan (a sweep's row counts them).
STRATEGY_ERROR = "strategy error: "


class Observer(Protocol):
    """Told of every tick. It may also have on_skip(reason) for skipped ticks and
    on_tick_seconds(seconds) for each tick's time from snapshot to executed plan."""

    def on_tick(self, snapshot: Snapshot, execution: Execution) -> None: ...


_FIGURE = re.compile(r"\d[\d,.]*")


def note_shape(note: str) -> str:
    """A plan note with its figures blanked: what stays the same while one rule keeps holding."""
    return _FIGURE.sub("#", note)


def quiet_gc() -> None:
    """Keep the cyclic garbage collector out of the tick's tail latency.

    Tick data is acyclic (frozen Structs and tuples), so reference counting frees
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
    on_stop: str = CANCEL

    def __post_init__(self) -> None:
        self.ticks = 0  # ticks that quoted
        self.skipped = 0  # ticks skipped for want of trustworthy data
        self.skip_reasons: collections.Counter[str] = collections.Counter()
        self._skips_in_a_row = 0
        self._skip_reason = ""  # the reason of the current run of skips
        self._reminded_at = 0.0
        self._since_reminder = 0
        self._loading: Optional[asyncio.Task] = None  # the run task, while it awaits a snapshot
        self._task: Optional[asyncio.Task] = None  # the task of run(), found once (a lookup costs ~1 us a tick)
        # (observer, whether it also wants each tick's seconds), and whether any does
        self._observers = [(o, hasattr(o, "on_tick_seconds")) for o in self.observers]
        self._timed = any(timed for _, timed in self._observers)
        self._last_notes: collections.Counter[str] = collections.Counter()  # note_shape() of last tick's notes
        self._archive_failed = False
        self.unarchived: collections.Counter[str] = collections.Counter()  # records the archive refused, by kind
        self.stopping = asyncio.Event()
        self._last_execution: Optional[Execution] = None  # becomes the next snapshot's last_plan
        self._hints = Hints()
        self.flatten_ticks = 0
        self.left: dict[str, str] = {}  # after a flatten, per market with a position at its start: "flat" or why not
        self._flattening = False
        self._abandon = asyncio.Event()  # a second stop during a flatten: leave what is left
        self.flatten_cancelled = 0
        self._closing: collections.Counter[str] = collections.Counter()  # closing orders sent, per market
        self._open: dict[str, str] = {}  # positions the last flatten snapshot showed, in base units
        self._blocked: dict[str, str] = {}  # why the risk gate could not close a position then
        self._why: dict[str, str] = {}  # per market, why its position is not closed yet
        quiet_gc()

    def stop(self) -> None:
        if self._flattening and not self._abandon.is_set():
            log.warning("stop requested again: flatten abandoned, cancelling our orders")
            self._abandon.set()
        self.stopping.set()
        if self._loading is not None:  # nothing has been sent yet this tick: no need to finish it
            self._loading.cancel()

    async def tick(self, flattening: bool = False) -> Execution:
        if self.kill_file and os.path.exists(self.kill_file):
            self.risk.halt(f"kill switch: file {self.kill_file} exists")
        self._loading = self._task or asyncio.current_task()
        started = time.monotonic() if self._timed else 0.0
        try:
            snapshot = await self.venue.snapshot()
        finally:
            self._loading = None
        snapshot = with_last_plan(snapshot, self._last_execution)
        self._record("write_snapshot", snapshot)
        if flattening:
            plan = self._flatten_plan(snapshot)
        else:
            try:
                plan = decide(self.strategy, self.risk, snapshot, self.quote_ttl_s)
            except Exception as exc:  # a strategy bug must not leave orders unattended: quote nothing new
                log.error("strategy %s failed on tick %d: %s: %s", self.strategy.name, self.ticks, type(exc).__name__, exc)
                plan = Plan(dropped=(f"{STRATEGY_ERROR}{type(exc).__name__}: {exc}",))
            settles = self.risk.settle.due(snapshot)
            if settles:
                plan = replace(plan, settles=settles)
        if self._abandon.is_set() or (self.stopping.is_set() and not flattening):
            # the shutdown cancel follows; placing first would only add to it
            execution = Execution(snapshot.ts, snapshot.slot, plan, (), self.risk.state)
        else:
            execution = await self.venue.execute(plan, snapshot)
            if execution.risk_state != self.risk.state:
                execution = replace(execution, risk_state=self.risk.state)
        self._record("write_execution", execution)
        self._last_execution = execution
        self._hints.explain(execution)
        seconds = time.monotonic() - started if self._timed else 0.0
        for observer, timed in self._observers:
            observer.on_tick(snapshot, execution)
            if timed:
                observer.on_tick_seconds(seconds)
        self._log_notes(plan.dropped)
        if flattening:
            self.flatten_ticks += 1
            self._note_closing(execution)
        else:
            self.ticks += 1
            if self.risk.state == HALTED:  # this tick's plan cancelled our orders; the final cancel checks
                self.stop()
        return execution

    # -- --on-stop flatten ---------------------------------------------------------------------
    async def flatten(self) -> None:
        """Close every position with reduce-only IOC orders at most reduce_cross_bps past the
        oracle (the risk gate's closing rule), one tick at a time, until a snapshot shows them
        flat, or each had FLATTEN_TRIES orders, or a second stop; self.left says what is left."""
        self._flattening = True
        skipped, skip_reason = 0, ""
        try:
            while not self._abandon.is_set():
                started = time.monotonic()
                try:
                    execution = await self.tick(flattening=True)
                    skip_reason = ""
                except SkipTick as exc:
                    skipped, skip_reason, execution = skipped + 1, f"no trustworthy data ({exc})", None
                    if skipped > FLATTEN_TRIES:
                        break
                except VenueExhausted:
                    break
                except Exception as exc:  # never in the way of the final cancel
                    log.error("flatten failed: %s: %s", type(exc).__name__, exc)
                    skip_reason = f"flatten failed: {type(exc).__name__}"
                    break
                except asyncio.CancelledError:
                    if not self._abandon.is_set():
                        raise
                    asyncio.current_task().uncancel()
                    break
                if execution is not None and not execution.plan.places:
                    break  # flat, or nothing more to try: the final cancel follows
                if not self.fast:
                    try:
                        await asyncio.wait_for(self._abandon.wait(), max(0.0, self.interval_s - (time.monotonic() - started)))
                    except asyncio.TimeoutError:
                        pass
        finally:
            self._flattening = False
        for name in self._closing:
            if name not in self._open:
                self.left[name] = "flat"
                continue
            why = ("stop requested again" if self._abandon.is_set() else skip_reason or self._blocked.get(name)
                   or self._why.get(name, "not closed"))
            self.left[name] = f"{self._open[name]} left: {why}"
        for name, why in self.left.items():
            log.info("on stop, flatten: %s: %s", name, why)

    def _flatten_plan(self, snapshot: Snapshot) -> Plan:
        intents, self._blocked = self.risk.flatten(snapshot)
        tries = f"{FLATTEN_TRIES} reduce-only IOC orders within {self.risk.config.account.reduce_cross_bps} bps of the oracle"
        for intent in intents:
            if self._closing[intent.market] >= FLATTEN_TRIES:
                self._blocked[intent.market] = self._why.get(intent.market, f"{tries} did not close it")
        intents = [i for i in intents if i.market not in self._blocked]
        self._open = {name: units.base(abs(p.base), snapshot.markets[name].spec)
                      for name, p in snapshot.user.positions.items() if p.base and name in snapshot.markets}
        for name in self._open:
            self._closing.setdefault(name, 0)  # every position seen is reported, closed or not
        for intent in intents:
            self._closing[intent.market] += 1
            self._why.setdefault(intent.market, f"{tries} did not close it")
        intents, notes = snap_intents(intents, snapshot.markets)
        plan = reconcile(intents, snapshot.user.open_orders, (FLATTEN_NOTE, *notes), now_s=snapshot.ts // 1000)
        if not plan.places:  # the flatten's last tick: settle what it closed, ready to withdraw
            settles = self.risk.settle.pending(snapshot, self._closing)
            if settles:
                plan = replace(plan, settles=settles)
        return plan

    def _note_closing(self, execution: Execution) -> None:
        """Orders a flatten tick cancelled count as the shutdown's; a refused closing order's
        error is why its position may be left."""
        self.flatten_cancelled += sum(1 for r in execution.outcomes[:len(execution.plan.cancels)] if r.ok)
        placed = execution.outcomes[len(execution.plan.cancels):]
        for placement, outcome in zip(execution.plan.places, placed):
            if not outcome.ok:
                self._why[placement.intent.market] = f"closing order rejected: {outcome.error}"

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
        """Every dropped or trimmed intent, with its rule; a note repeated tick after tick once,
        even as its figures move (the room left, the oracle): one line while a rule keeps
        holding, not one a tick. The archive keeps every tick's notes."""
        if not notes and not self._last_notes:
            return
        shapes = collections.Counter(note_shape(note) for note in notes)
        seen: collections.Counter[str] = collections.Counter()
        for note in notes:
            shape = note_shape(note)
            seen[shape] += 1
            if seen[shape] > self._last_notes[shape]:  # more of these than last tick: this one is new
                log.info("%s", note)
        self._last_notes = shapes

    @property
    def attempts(self) -> int:
        return self.ticks + self.skipped

    async def run(self, ticks: Optional[int] = None) -> int:
        """Runs until `ticks` ticks were attempted (skipped ones count: a run with --ticks ends
        whatever the data does) or stop() is called; then, with on_stop=flatten, flattens;
        returns how many keeper orders the shutdown cancelled."""
        exhausted = False
        self._task = asyncio.current_task()
        try:
            while (ticks is None or self.attempts < ticks) and not self.stopping.is_set():
                started = time.monotonic() if not self.fast else 0.0
                try:
                    await self.tick()
                    self._data_back()
                except VenueExhausted:
                    exhausted = True
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
            if self.on_stop == FLATTEN and not exhausted:
                await self.flatten()
        finally:
            cancelled = await self.venue.cancel_all() + self.flatten_cancelled
            log.info("shutdown: cancelled %d keeper order(s)", cancelled)
        return cancelled

    async def _skip(self, why: SkipTick) -> None:
        """Each reason is logged when it first appears; once a run of skips is long enough to
        pull our quotes it is said once, then once a minute with a count, never once a tick."""
        reason = str(why)
        self.skipped += 1
        self.skip_reasons[reason] += 1
        for observer in self.observers:
            if hasattr(observer, "on_skip"):
                observer.on_skip(reason)
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
            self._last_execution = None  # its orders are gone by our hand, not the market's
            log.info("cancelled %d keeper order(s) until data is back", cancelled)
        elif self._skips_in_a_row > PULL_AFTER_SKIPS and now - self._reminded_at >= SKIP_REMINDER_S:
            log.warning("still no trustworthy data: %d tick(s) skipped in the last %.0f s, %d in a row (%s)",
                        self._since_reminder, now - self._reminded_at, self._skips_in_a_row, reason)
            self._reminded_at, self._since_reminder = now, 0

    def _data_back(self) -> None:
        if self._skips_in_a_row >= PULL_AFTER_SKIPS:
            log.warning("data is back after %d skipped tick(s); quoting again", self._skips_in_a_row)
        self._skips_in_a_row, self._skip_reason, self._since_reminder = 0, "", 0
