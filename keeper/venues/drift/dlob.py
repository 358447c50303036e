"""Drift's order book from raw User accounts, built by the SDK's DLOB in a Node helper process.

`js_src/dlob_helper.js` speaks JSON lines on stdin/stdout (protocol at the top of that file). This
side owns the account state: it keeps every User account it was given, so a helper that crashes,
hangs or talks nonsense is killed, and the next request starts a new one and sends it the whole
state before it is served. The request that hit the failure raises `HelperFailed` and the caller
skips quoting for that tick. Call `start()` after a failure to restart without waiting for a request.

Account bytes never reach a log or an exception message: errors name pubkeys only.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import orjson

from keeper.model import Book, BookOrder, Level

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "js_src" / "dlob_helper.js"
# A whole-book reply is ~1 MB at 5,000 orders; the reader must hold a full line.
READ_LIMIT = 256 * 1024 * 1024
# Accounts per upsert line: ~1.5 MB of base64, well under a second for the helper to decode.
UPSERT_CHUNK = 256


class DlobError(Exception):
    """Base of the errors this module raises."""


class HelperFailed(DlobError):
    """The helper crashed, hung or sent garbage: it was killed, the request is lost, and the next
    request (or `start()`) runs a new helper with the whole account state."""


class RequestRejected(DlobError):
    """The helper is fine but refused the request (bad arguments); it answered with one line."""


class _Broken(Exception):
    """Internal: the pipe to the helper cannot be trusted any more."""


@dataclass(frozen=True, slots=True)
class DlobBook:
    """A book reply: the book, and the vAMM's own best prices when a PerpMarket was sent."""

    book: Book
    slot: int
    vamm_bid: Optional[int] = None
    vamm_ask: Optional[int] = None


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote(raw: bytes) -> str:
    return repr(_one_line(raw[:60].decode("utf-8", "replace"), 80))


# Replies are checked as strictly as the protocol is written: a value of the wrong type would
# otherwise pass into a Book, and from there into the archive, which could not read it back.
_INTEGER = re.compile(r"-?[0-9]{1,40}")


def _int(value) -> int:
    """An integer as the helper sends one: a decimal string (or a JSON integer)."""
    if type(value) is int or (type(value) is str and _INTEGER.fullmatch(value)):
        return int(value)
    raise ValueError(f"not an integer: {_one_line(repr(value), 40)}")


def _list(value) -> list:
    if type(value) is not list:
        raise ValueError(f"not a list: {_one_line(repr(value), 40)}")
    return value


def _levels(rows) -> tuple[Level, ...]:
    return tuple(Level(_int(r["price"]), _int(r["size"])) for r in _list(rows))


def _orders(l3: dict, side: str) -> tuple[BookOrder, ...]:
    columns = _list(l3["columns"])
    price, size, user, order_id, offset, post_only = (columns.index(c) for c in (
        "price", "size", "user", "order_id", "oracle_price_offset", "post_only"))
    out = []
    for r in _list(l3[side + "s"]):
        if len(_list(r)) != len(columns) or type(r[user]) is not str or type(r[post_only]) is not bool:
            raise ValueError(f"{side} row does not match the columns")
        out.append(BookOrder(side, _int(r[price]), _int(r[size]), r[user], _int(r[order_id]), _int(r[offset]) or None,
                             r[post_only]))
    return tuple(out)


def _book_reply(reply: dict, l3: bool) -> DlobBook:
    book = Book(_levels(reply["bids"]), _levels(reply["asks"]),
                _orders(reply["l3"], "bid") + _orders(reply["l3"], "ask") if l3 else None)
    vamm_bid, vamm_ask = reply.get("vamm_bid"), reply.get("vamm_ask")
    return DlobBook(book, _int(reply["slot"]), None if vamm_bid is None else _int(vamm_bid),
                    None if vamm_ask is None else _int(vamm_ask))


def _rejected(reply: dict) -> list[tuple[str, str]]:
    """An upsert reply's [(pubkey, reason)] for the accounts the helper could not read."""
    out = []
    for item in _list(reply.get("rejected") or []):
        if type(item) is not dict or type(item.get("pubkey")) is not str:
            raise ValueError("a rejected account without its pubkey")
        out.append((item["pubkey"], _one_line(item.get("error", ""), 200)))
    return out


def _removed(reply: dict) -> int:
    return _int(reply["removed"])


class DlobHelper:
    """One `node js_src/dlob_helper.js` process and the account state to rebuild it from."""

    def __init__(self, *, timeout: float = 2.0, startup_timeout: float = 15.0, sync_timeout: float = 30.0,
                 command: Optional[Sequence[str]] = None) -> None:
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.sync_timeout = sync_timeout  # per upsert line while re-sending the state after a restart
        self.command = list(command) if command else ["node", str(SCRIPT)]
        self.starts = 0  # helper processes started and synced; more than one means restarts
        self.startup_s: Optional[float] = None  # the last start: spawn until the helper answered a ping
        self._accounts: dict[str, bytes] = {}
        self._proc: Optional[asyncio.subprocess.Process] = None
        self._stderr_task: Optional[asyncio.Task] = None
        self._lock = asyncio.Lock()
        self._next_id = 0
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=5)
        self._closed = False

    async def __aenter__(self) -> "DlobHelper":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    @property
    def accounts(self) -> int:
        return len(self._accounts)

    async def start(self) -> None:
        """Start (or, after a failure, restart) the helper now rather than on the next request."""
        if self._closed:
            raise HelperFailed("the DLOB helper is closed")
        async with self._lock:
            await self._ensure_running()

    async def ping(self) -> dict:
        return await self._call({"op": "ping"}, self.timeout)

    async def upsert(self, accounts: Mapping[str, bytes]) -> dict[str, str]:
        """Add or replace User accounts (only the changed ones). Returns {pubkey: reason} for accounts
        the helper could not read; those are dropped, here and there, until they change again."""
        if not accounts:
            return {}
        for pubkey, data in accounts.items():
            if not isinstance(pubkey, str) or not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError("upsert takes {pubkey str: account bytes}")
        rejected: dict[str, str] = {}
        items = [(k, bytes(v)) for k, v in accounts.items()]
        for start in range(0, len(items), UPSERT_CHUNK):
            chunk = items[start : start + UPSERT_CHUNK]
            try:
                refused = await self._call(self._upsert_message(chunk), self.timeout, _rejected)
            except HelperFailed:
                # Whatever the dead helper got, the restart re-sends the state: make it hold the batch.
                self._accounts.update(items[start:])
                raise
            self._accounts.update(chunk)
            rejected.update(self._drop_rejected(refused))
        return rejected

    async def remove(self, pubkeys: Iterable[str]) -> int:
        """Forget accounts (closed, or no longer of interest). Returns how many the helper had."""
        pubkeys = list(pubkeys)
        if not pubkeys:
            return 0
        try:
            return await self._call({"op": "remove", "pubkeys": pubkeys}, self.timeout, _removed)
        finally:
            for pubkey in pubkeys:
                self._accounts.pop(pubkey, None)

    async def reset(self) -> None:
        try:
            await self._call({"op": "reset"}, self.timeout)
        finally:
            self._accounts.clear()

    async def book(self, market_type: str, market_index: int, slot: int, oracle_price: int,
                   oracle_slot: Optional[int] = None, *, oracle_conf: Optional[int] = None,
                   perp_market_bytes: Optional[bytes] = None, now: Optional[int] = None, depth: int = 20,
                   l3: bool = True, l3_depth: Optional[int] = None, vamm_levels: Optional[int] = None) -> Book:
        """The book of one market at `slot`: L2 (depth levels a side, best first; vAMM levels merged in
        when the PerpMarket account bytes are given) and, with l3, every resting order best first.

        oracle_price is 1e6 (floating orders sit at oracle + offset); oracle_slot defaults to slot.
        `now` (unix seconds) feeds the vAMM's spread model; without it the helper uses its clock."""
        detail = await self.book_detail(market_type, market_index, slot, oracle_price, oracle_slot,
                                        oracle_conf=oracle_conf, perp_market_bytes=perp_market_bytes, now=now,
                                        depth=depth, l3=l3, l3_depth=l3_depth, vamm_levels=vamm_levels)
        return detail.book

    async def book_detail(self, market_type: str, market_index: int, slot: int, oracle_price: int,
                          oracle_slot: Optional[int] = None, *, oracle_conf: Optional[int] = None,
                          perp_market_bytes: Optional[bytes] = None, now: Optional[int] = None, depth: int = 20,
                          l3: bool = True, l3_depth: Optional[int] = None,
                          vamm_levels: Optional[int] = None) -> DlobBook:
        """`book`, plus the slot and the vAMM's best bid/ask (None without perp_market_bytes)."""
        if market_type not in ("perp", "spot"):
            raise ValueError(f"market_type must be 'perp' or 'spot', not {market_type!r}")
        ints = {"market_index": market_index, "slot": slot, "oracle_price": oracle_price, "oracle_slot": oracle_slot,
                "oracle_conf": oracle_conf, "now": now, "depth": depth, "l3_depth": l3_depth,
                "vamm_levels": vamm_levels}
        message: dict = {"op": "book" if l3 else "l2", "market_type": market_type}
        for name, value in ints.items():
            if value is None:
                continue
            if type(value) is not int:
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            message[name] = str(value)
        if perp_market_bytes is not None:
            message["perp_market"] = base64.b64encode(perp_market_bytes).decode("ascii")
        return await self._call(message, self.timeout, lambda reply: _book_reply(reply, l3))

    async def close(self) -> None:
        self._closed = True
        async with self._lock:  # let a request in flight finish (or time out) first
            proc, self._proc = self._proc, None
            if proc is not None and proc.returncode is None:
                try:
                    proc.stdin.close()  # the helper exits when its stdin ends
                    await asyncio.wait_for(proc.wait(), 2.0)
                except (asyncio.TimeoutError, OSError):
                    await self._kill(proc)
            await self._stop_stderr(grace=0.5)

    # --- the pipe ------------------------------------------------------------------------------

    async def _call(self, message: dict, timeout: float, parse=None):
        if self._closed:
            raise HelperFailed("the DLOB helper is closed")
        async with self._lock:
            await self._ensure_running()
            try:
                reply = await self._roundtrip(message, timeout)
                if "error" in reply:
                    raise RequestRejected(_one_line(reply["error"], 300) or "the helper refused the request without a reason")
                if parse is None:
                    return reply
                try:
                    return parse(reply)
                except Exception as e:  # noqa: BLE001 - whatever the nonsense, the helper can't be trusted
                    raise _Broken(f"malformed {message['op']} reply ({type(e).__name__}: {_one_line(e, 60)})") from None
            except _Broken as e:
                await self._fail(str(e))

    async def _fail(self, reason: str) -> None:
        """Kill the helper and raise for this request; the next request starts a new helper."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await self._kill(proc)
        await self._stop_stderr(grace=0.5)
        tail = f"; stderr: {self._stderr_tail[-1]}" if self._stderr_tail else ""
        log.warning("DLOB helper failed (%s)%s; the next request restarts it", reason, tail)
        # Not restarted from a background task here: an unfinished create_subprocess_exec hangs
        # asyncio.run's shutdown (CPython 3.11), so a keeper exiting on this error would never exit.
        raise HelperFailed(_one_line(f"DLOB helper failed: {reason}"))

    async def _ensure_running(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            return
        if self._proc is not None:  # died between requests: nothing was lost in flight, the restart re-sends the book
            log.warning("DLOB helper had exited (code %s); restarting it", self._proc.returncode)
        await self._spawn_and_sync()

    async def _spawn_and_sync(self) -> None:
        """Start a helper and hand it every account we hold. Raises HelperFailed, leaving no process."""
        if self._proc is not None:
            await self._kill(self._proc)
            self._proc = None
        start = time.perf_counter()
        self._stderr_tail.clear()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, limit=READ_LIMIT)
        except OSError as e:
            raise HelperFailed(_one_line(f"cannot start the DLOB helper ({' '.join(self.command[:2])}): {e}")) from None
        self._proc = proc
        self._stderr_task = asyncio.create_task(self._drain_stderr(proc))
        try:
            reply = await self._roundtrip({"op": "ping"}, self.startup_timeout)
            if reply.get("ok") is not True:
                raise _Broken(f"ping answered {_one_line(reply, 80)}")
            self.startup_s = time.perf_counter() - start
            items = list(self._accounts.items())
            for i in range(0, len(items), UPSERT_CHUNK):
                reply = await self._roundtrip(self._upsert_message(items[i : i + UPSERT_CHUNK]), self.sync_timeout)
                if "error" in reply:
                    raise _Broken(f"re-sending the accounts failed: {_one_line(reply['error'])}")
                try:
                    rejected = _rejected(reply)
                except ValueError as e:
                    raise _Broken(f"malformed upsert reply ({_one_line(e, 60)})") from None
                for pubkey, reason in self._drop_rejected(rejected).items():
                    log.warning("DLOB helper rejected account %s on re-send: %s", pubkey, reason)
        except BaseException as e:  # cancelled (close()) included: never leave a half-started helper behind
            self._proc = None
            await self._kill(proc)
            await self._stop_stderr(grace=0.5)
            if isinstance(e, _Broken):
                tail = f"; stderr: {self._stderr_tail[-1]}" if self._stderr_tail else ""
                raise HelperFailed(_one_line(f"DLOB helper did not start: {e}{tail}")) from None
            raise
        if self.starts or items:
            log.info("DLOB helper started in %.2f s, %d accounts sent", time.perf_counter() - start, len(items))
        self.starts += 1

    async def _roundtrip(self, message: dict, timeout: float) -> dict:
        try:
            return await asyncio.wait_for(self._exchange(self._proc, message), timeout)
        except asyncio.TimeoutError:
            raise _Broken(f"no answer to {message['op']} within {timeout:g} s") from None

    async def _exchange(self, proc: asyncio.subprocess.Process, message: dict) -> dict:
        self._next_id += 1
        request_id = self._next_id
        try:
            proc.stdin.write(orjson.dumps({"id": request_id, **message}) + b"\n")
            await proc.stdin.drain()
            while True:
                raw = await proc.stdout.readline()
                if not raw:
                    raise _Broken(f"helper exited (code {await self._exit_code(proc)})")
                try:
                    reply = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise _Broken(f"garbage on stdout: {_quote(raw)}") from None
                got = reply.get("id") if isinstance(reply, dict) else None
                # A caller cancelled mid-request leaves its reply in the pipe; it is stale, not garbage.
                if type(got) is int and got < request_id:
                    log.debug("skipped the reply to abandoned request %d", got)
                    continue
                if got != request_id:
                    raise _Broken(f"reply to request {request_id} came back as {_quote(raw)}")
                return reply
        except (BrokenPipeError, ConnectionResetError) as e:
            raise _Broken(f"pipe broke ({type(e).__name__})") from None
        except (ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            raise _Broken("reply line too long or cut short") from None

    def _upsert_message(self, items: Sequence[tuple[str, bytes]]) -> dict:
        return {"op": "upsert",
                "accounts": [{"pubkey": k, "data": base64.b64encode(v).decode("ascii")} for k, v in items]}

    def _drop_rejected(self, rejected: list[tuple[str, str]]) -> dict[str, str]:
        for pubkey, _ in rejected:
            self._accounts.pop(pubkey, None)
        return dict(rejected)

    async def _exit_code(self, proc: asyncio.subprocess.Process) -> Optional[int]:
        try:
            return await asyncio.wait_for(proc.wait(), 1.0)
        except asyncio.TimeoutError:
            return None

    async def _kill(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            try:
                proc.kill()  # SIGKILL also ends a stopped (SIGSTOP) process
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except asyncio.TimeoutError:
                log.error("DLOB helper pid %s did not die after SIGKILL", proc.pid)

    async def _drain_stderr(self, proc: asyncio.subprocess.Process) -> None:
        # The helper writes diagnostics only (never account data); a full stderr pipe would stall it.
        while True:
            line = await proc.stderr.readline()
            if not line:
                return
            text = _one_line(line.decode("utf-8", "replace"), 300)
            if text not in self._stderr_tail:  # the SDK repeats itself ("price is zero") on every request
                log.warning("DLOB helper: %s", text)
            self._stderr_tail.append(text)

    async def _stop_stderr(self, grace: float = 0.0) -> None:
        task, self._stderr_task = self._stderr_task, None
        if task is None:
            return
        if grace:
            # A dead helper's last words (a stack trace) are still in the pipe: let them arrive.
            await asyncio.wait({task}, timeout=grace)
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
