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
        reader.cancel()
        await asyncio.wait({reader})
        if not reader.cancelled():
            reader.exception()  # raised above already, or moot after a failed load: mark it seen


def describe(exc: BaseException, *urls: str) -> str:
    """One line for a stream or RPC failure. Provider URLs often carry an API key: they are redacted."""
    text = str(exc) or str(exc.__cause__ or exc.__context__ or "")  # solana-py wraps HTTP errors without words
    for url in urls:
        text = text.replace(url, redact_url(url))
    return f"{type(exc).__name__}: {' '.join(text.split())[:160]}"


async def stop(task: Optional[asyncio.Task]) -> None:
    """End a stream's task; cancelling it closes its socket on the way out."""
    if task is not None:
        task.cancel()
        await asyncio.wait({task})
