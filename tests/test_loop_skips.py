"""Ticks skipped for want of data: --ticks counts them, the summary groups them by reason, and
the log says so when it starts, when the quotes are pulled, then once a minute, not once a tick.

The exchange underneath is the real local market; only its data feed goes dark on chosen ticks,
as a live venue's does when the RPC or the DLOB helper fails."""
from __future__ import annotations

import logging

from keeper import loop as loop_module
from keeper.loop import Loop
from keeper.risk import RiskConfig, RiskGate
from keeper.venues.base import SkipTick
from keeper.venues.local import LocalVenue
import strategies


class DarkFeed(LocalVenue):
    """The local market whose snapshots fail with `reason` on the ticks in `dark`."""

    def __init__(self, dark: set[int], reason: str = "data unavailable: perp market 0 (SOL-PERP): no price"):
        super().__init__(["SOL-PERP"], seed=3)
        self.dark, self.reason, self.calls = dark, reason, 0
        self.pulled = 0

    async def snapshot(self):
        self.calls += 1
        if self.calls in self.dark:
            raise SkipTick(self.reason)
        return await super().snapshot()

    async def cancel_all(self) -> int:
        self.pulled += 1
        return await super().cancel_all()


def _loop(venue) -> Loop:
    return Loop(venue, strategies.build("fixed_spread", {}), RiskGate(RiskConfig()), fast=True)


async def test_ticks_counts_attempts_and_the_reasons_are_grouped():
    venue = DarkFeed({2, 3, 7})
    loop = _loop(venue)
    await loop.run(10)
    assert venue.calls == 10 and loop.attempts == 10
    assert (loop.ticks, loop.skipped) == (7, 3)
    assert dict(loop.skip_reasons) == {venue.reason: 3}


async def test_a_run_that_never_has_data_still_ends():
    loop = _loop(DarkFeed(set(range(1, 100))))
    await loop.run(5)
    assert (loop.ticks, loop.skipped) == (0, 5)


async def test_a_long_outage_is_said_once_then_once_a_minute(monkeypatch, caplog):
    clock = [1000.0]
    monkeypatch.setattr(loop_module.time, "monotonic", lambda: clock[0])
    venue = DarkFeed(set(range(2, 200)))

    class Stepping(Loop):  # a second of wall time per attempt
        async def _skip(self, why):
            clock[0] += 1.0
            await super()._skip(why)

    loop = Stepping(venue, strategies.build("fixed_spread", {}), RiskGate(RiskConfig()), fast=True)
    with caplog.at_level(logging.INFO, logger="keeper"):
        await loop.run(150)  # 1 quoted tick, then 149 skipped seconds
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("skipped, nothing quoted" in m for m in lines) == 1
    assert sum("cancelling our resting quotes" in m for m in lines) == 1
    reminders = [m for m in lines if m.startswith("still no trustworthy data")]
    # pulled at the 3rd skip (t=1003); reminders at 60 s intervals while it lasts (149 skips in all)
    assert len(reminders) == 2
    assert reminders[0].startswith("still no trustworthy data: 60 tick(s) skipped in the last 60 s, 63 in a row")
    assert venue.pulled == 2  # the pull at the third skip, then the shutdown's cancel


async def test_data_coming_back_is_said_and_a_new_reason_is_logged(caplog):
    venue = DarkFeed({2, 3, 4, 5, 6})

    async def snapshot(original=venue.snapshot):
        if venue.calls >= 4:  # from the 5th call on, the outage has another cause
            venue.reason = "order book unavailable: the DLOB helper died"
        return await original()

    venue.snapshot = snapshot
    loop = _loop(venue)
    with caplog.at_level(logging.INFO, logger="keeper"):
        await loop.run(9)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert loop.ticks == 4 and dict(loop.skip_reasons) == {
        "data unavailable: perp market 0 (SOL-PERP): no price": 3, "order book unavailable: the DLOB helper died": 2}
    assert "ticks still skipped, now because: order book unavailable: the DLOB helper died" in lines
    assert "data is back after 5 skipped tick(s); quoting again" in lines
