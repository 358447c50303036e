"""What the websocket streams (book users, the tape) share: one session's load-while-reading, and
error lines that keep provider URLs out of the log."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Optional

from keeper.wallet import redact_url


async def serve(reader: asyncio.Future, load: Callable[[], Awaitable], went_live: Callable[[], None]) -> None:
    """Load while `reader` drains the socket (a load takes seconds on mainnet, and an unread socket
    backs up), call `went_live` if the stream is still up after it, and return when the reader ends."""
    try:
        await load()
        if not reader.done():
            went_live()
        await reader
    finally:
        await stop(reader)
        if not reader.cancelled():
            reader.exception()  # raised above already, or moot after a failed load: mark it seen


def describe(exc: BaseException, *urls: str) -> str:
    """One line for a stream or RPC failure. Provider URLs often carry an API key: they are redacted."""
    text = str(exc) or str(exc.__cause__ or exc.__context__ or "")  # solana-py wraps HTTP errors without words
    for url in urls:
        text = text.replace(url, redact_url(url))
    return f"{type(exc).__name__}: {' '.join(text.split())[:160]}"


# Longer than a socket's close handshake (close_timeout=2), which a repeated cancel would cut short.
RECANCEL_S = 5.0


async def stop(task: Optional[asyncio.Task]) -> None:
    """End a stream's task; cancelling it closes its socket on the way out. Python 3.11's wait_for
    drops a cancel that lands as the awaited thing completes (gh-86296), and the task then runs on
    into its next read, so the cancel is repeated until the task has ended."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_S)
