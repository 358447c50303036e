"""Closing a venue must end its stream tasks even when a cancel is dropped on the way: Python
3.11's wait_for drops one that lands as its inner await completes (gh-86296), and a live venue's
close then hung for good."""
from __future__ import annotations

import asyncio

from keeper.venues.drift import streams


async def test_stop_ends_a_task_that_swallowed_its_first_cancel(monkeypatch):
    monkeypatch.setattr(streams, "RECANCEL_S", 0.05)
    reading, cancels = asyncio.Event(), []

    async def stream():
        while True:  # like the tape: a dropped cancel lets it read on, reconnecting
            try:
                reading.set()
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancels.append(1)
                if len(cancels) > 1:
                    raise
                asyncio.current_task().uncancel()  # what wait_for's race amounts to

    task = asyncio.ensure_future(stream())
    await reading.wait()
    await asyncio.wait_for(streams.stop(task), 60)
    assert task.cancelled() and len(cancels) == 2


async def test_stop_returns_at_once_for_no_task_and_for_an_ended_one():
    await streams.stop(None)
    task = asyncio.ensure_future(asyncio.sleep(0))
    await task
    await asyncio.wait_for(streams.stop(task), 60)
    assert task.done() and not task.cancelled()
