"""The User accounts that make up the DLOB, kept in the Node helper.

Which users: driftpy's own filters, User accounts with open orders. `keeper run --subscription`
chooses how they are kept fresh:
- polling: getProgramAccounts every `refresh_s`; users it no longer returns are removed.
- websocket: a programSubscribe stream in a background task, with one getProgramAccounts right
  after subscribing. When the stream drops we warn once, poll as above while it is down, and
  reconnect with backoff; each reconnect loads again, since changes made meanwhile were missed.
  A stream can also stay open and go silent: when it has delivered nothing for SILENT_SLOTS
  slots of the RPC's, a load checks it. Changes it never delivered mean it is stale: it is
  reopened, and polled until it is back. Otherwise the book was just quiet, and is current as
  of that load. `resubscribe()` reopens it on request (after the RPC endpoint changed).

Loads and notifications only note what changed; refresh() sends the helper just that (new or
changed bytes, users gone), plus our own User every tick, so the book we quote against always
holds our latest orders. `slot` is the slot of the newest update applied; `book_slot()` how
fresh the book is.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Optional

import base58
from driftpy.constants.config import DRIFT_PROGRAM_ID
from driftpy.memcmp import get_non_idle_user_filter, get_user_filter, get_user_with_order_filter
from driftpy.types import get_ws_url
from solana.rpc.async_api import AsyncClient
from solana.rpc.websocket_api import connect
from solders.account_decoder import UiAccountEncoding
from solders.commitment_config import CommitmentLevel
from solders.rpc.config import RpcAccountInfoConfig, RpcProgramAccountsConfig
from solders.rpc.filter import Memcmp
from solders.rpc.requests import GetProgramAccounts
from solders.rpc.responses import GetProgramAccountsWithContextResp, ProgramNotification, SubscriptionResult

from keeper.backoff import Backoff, unless_cancelled
from keeper.venues.drift.dlob import DlobHelper
from keeper.venues.drift.streams import describe, serve, stop

log = logging.getLogger(__name__)

_USERS, _WITH_ORDERS = get_user_filter(), get_user_with_order_filter()
LOAD_FILTERS = [_USERS, _WITH_ORDERS]
# Not the has-orders filter: a validator says nothing about an account that stops matching, so a
# user cancelling its last order would never leave the book. Drift's OrderSubscriber streams every
# non-idle user too and checks for orders itself (an idle user has none).
STREAM_FILTERS = [_USERS, get_non_idle_user_filter()]
_FLAG_AT, _FLAG = _WITH_ORDERS.offset, base58.b58decode(_WITH_ORDERS.bytes)

FIRST_WAIT_S = 10.0  # the first refresh waits this long for the stream before polling instead
SUBSCRIBE_TIMEOUT_S = 10.0
RETRY_S, MAX_RETRY_S = 1.0, 30.0
STABLE_S = 60.0  # a connection that held this long starts the backoff over
SILENT_SLOTS = 25  # a live stream that delivered nothing for this many slots is checked by a load
FORGET_SLOTS = 1_000  # how long the slot of a user not in the book is kept to reject stale data
PRUNE_S = 60.0


def has_orders(data: bytes) -> bool:
    """The test LOAD_FILTERS makes on chain, made here on a streamed account."""
    return data[_FLAG_AT:_FLAG_AT + len(_FLAG)] == _FLAG


class BookUsers:
    def __init__(self, connection: AsyncClient, helper: DlobHelper, refresh_s: float = 5.0, *,
                 subscription: str = "polling", ws_url: Optional[str] = None):
        if subscription not in ("polling", "websocket"):
            raise ValueError(f"subscription must be 'polling' or 'websocket', not {subscription!r}")
        self.connection, self.helper, self.refresh_s, self.subscription = connection, helper, refresh_s, subscription
        self._ws_url = ws_url
        self.slot = 0  # newest update applied: a load's context slot or a notification's
        self.live = False  # the stream is subscribed and loaded: no polling needed
        self.loads = 0  # getProgramAccounts loads made
        self.connects = 0  # stream sessions that went live
        self.heard = 0  # a live stream is current as of this slot: its newest notification, or a load
        self.silences = 0  # times a live stream was found silent while the chain changed
        self._digests: dict[str, bytes] = {}  # what the helper holds, as digests of the bytes
        self._pending: dict[str, Optional[bytes]] = {}  # not yet sent: new bytes, or None to remove
        self._slots: dict[str, int] = {}  # per user, the slot of the newest data seen: older is ignored
        self._loaded_at = self._pruned_at = float("-inf")
        self._load_lock = asyncio.Lock()
        self._task: Optional[asyncio.Task] = None
        self._tried = asyncio.Event()  # the stream's first attempt ended, live or not
        self._down = False  # the stream is in an outage we already warned about
        self._closed = False
        self._ws = None  # the open socket, while a session runs
        self._moving = False  # resubscribe() asked for a new session: not an outage
        self._wake = asyncio.Event()

    @property
    def ws_url(self) -> str:
        # driftpy's own subscriptions find the websocket this way (port + 1 on a local validator);
        # asked at each connect, so a new session follows the RPC endpoint in use.
        return self._ws_url or get_ws_url(self.connection._provider.endpoint_uri)

    def book_slot(self, slot: int) -> int:
        """How fresh the book is at RPC slot `slot`: a live stream that spoke lately means now;
        otherwise the newest update applied."""
        return slot if self.live and slot - self.heard <= SILENT_SLOTS else self.slot

    def resubscribe(self) -> None:
        """Close the stream's socket and open a new one at once (on the endpoint in use)."""
        self._moving = True
        self._wake.set()
        if self._ws is not None:
            asyncio.ensure_future(self._ws.close())

    async def refresh(self, own: dict[str, bytes], slot: Optional[int] = None) -> None:
        """Bring the helper up to date: book users as polled or streamed, our own user always.
        `slot`: the RPC's slot now, against which a live stream's silence is measured."""
        if self.subscription == "websocket" and self._task is None and not self._closed:
            self._task = asyncio.ensure_future(self._stream())
            # The stream loads once it is subscribed; waiting for it saves loading twice at start.
            try:
                await asyncio.wait_for(self._tried.wait(), FIRST_WAIT_S)
            except asyncio.TimeoutError:
                pass
            self._moving = False
            self._wake.clear()
        if not self.live and time.monotonic() - self._loaded_at >= self.refresh_s:
            await self._load()
        elif self.live and slot is not None and slot - self.heard > SILENT_SLOTS:
            await self._check_silence(slot)
        await self._push(own)

    async def _check_silence(self, slot: int) -> None:
        heard = self.heard
        try:
            missed = await self._load()
        except Exception as exc:  # noqa: BLE001 - the book's lag (book_slot) tells the guards; try next tick
            log.debug("book users: checking a silent stream: %s", self._describe(exc))
            return
        if not missed:
            self.heard = max(self.heard, self.slot)  # just quiet: what we hold is current
            return
        self.silences += 1
        log.warning("book users: websocket silent for %d slots while %d user(s) changed; reopening it, "
                    "polling every %g s until it is back", slot - heard, missed, self.refresh_s)
        self.live = False
        self._down = True
        self.resubscribe()

    async def close(self) -> None:
        """Stop the stream; cancelling its task closes the socket on the way out."""
        self._closed = True
        task, self._task = self._task, None
        await stop(task)
        self.live = False

    # -- what changed ----------------------------------------------------------------------
    def _note(self, key: str, data: Optional[bytes], slot: int, load: bool = False) -> None:
        """One user's account as of `slot`, unless we have seen newer. A load gives way to a
        notification of the same slot: the stream is ordered, and any later change of that
        slot is still on its way to us, while a load can't say where in the slot it was taken."""
        seen = self._slots.get(key)
        if seen is not None and (slot <= seen if load else slot < seen):
            return
        self._slots[key] = slot
        if data is not None and has_orders(data):
            self._pending[key] = data
        elif key in self._digests:
            self._pending[key] = None
        else:
            self._pending.pop(key, None)

    async def _load(self) -> int:
        """Every user with open orders, from getProgramAccounts; users it doesn't return are gone.
        Returns how many users it changed: what a live stream should have told us."""
        async with self._load_lock:
            config = RpcProgramAccountsConfig(
                RpcAccountInfoConfig(encoding=UiAccountEncoding.Base64,
                                     commitment=CommitmentLevel.from_string(self.connection.commitment)),
                [Memcmp(offset=f.offset, bytes_=f.bytes) for f in LOAD_FILTERS], with_context=True)
            # solana-py's get_program_accounts drops the context; its slot is what orders a load
            # against notifications. driftpy's user map asks the provider directly in the same way.
            reply = await self.connection._provider.make_request(
                GetProgramAccounts(DRIFT_PROGRAM_ID, config), GetProgramAccountsWithContextResp)
            self._loaded_at = time.monotonic()
            self.loads += 1
            slot = reply.context.slot
            found = {str(a.pubkey): bytes(a.account.data) for a in reply.value}
            held = set(self._digests) | {k for k, v in self._pending.items() if v is not None}
            before = dict(self._pending)
            for key in held - found.keys():
                self._note(key, None, slot, load=True)
            for key, data in found.items():
                self._note(key, data, slot, load=True)
            self.slot = max(self.slot, slot)
            return sum(1 for key, data in self._pending.items()
                       if before.get(key, ...) != data and self._changes(key, data))

    def _changes(self, key: str, data: Optional[bytes]) -> bool:
        """Whether sending `data` (None: removing) would change what the helper holds."""
        held = self._digests.get(key)
        if data is None:
            return held is not None
        return held != hashlib.blake2b(data, digest_size=16).digest()

    async def _push(self, own: dict[str, bytes]) -> None:
        pending, self._pending = self._pending, {}
        try:
            # Our own user stays whatever it holds: it comes from driftpy every tick.
            gone = [k for k, v in pending.items() if v is None and k in self._digests and k not in own]
            for key in gone:
                del self._digests[key]  # the helper drops them even when the call fails
            await self.helper.remove(gone)
            updates = {k: v for k, v in pending.items() if v is not None}
            updates.update(own)
            changed, digests = {}, {}
            for key, data in updates.items():
                digest = hashlib.blake2b(data, digest_size=16).digest()
                if self._digests.get(key) != digest:
                    changed[key], digests[key] = data, digest
            rejected = await self.helper.upsert(changed)
        except BaseException:
            # Not sent: keep them for the next tick, unless something newer came in meanwhile.
            for key, data in pending.items():
                self._pending.setdefault(key, data)
            raise
        for key, why in rejected.items():
            log.warning("book user %s skipped: %s", key, why)
            digests.pop(key, None)
        self._digests.update(digests)
        self._prune()

    def _prune(self) -> None:
        """Forget the slots of users long out of the book; they only guard against late stale data."""
        if time.monotonic() - self._pruned_at < PRUNE_S:
            return
        self._pruned_at = time.monotonic()
        keep = set(self._digests) | set(self._pending)
        self._slots = {k: s for k, s in self._slots.items() if k in keep or s >= self.slot - FORGET_SLOTS}

    # -- the stream ------------------------------------------------------------------------
    async def _stream(self) -> None:
        """Keep a stream up for good: on a drop, warn once, let refresh() poll, and reconnect."""
        loop = asyncio.get_running_loop()
        backoff = Backoff(RETRY_S, MAX_RETRY_S)
        while not self._closed:
            started = loop.time()
            try:
                await self._session()
                why = "the server closed it"
            except Exception as exc:  # anything the socket or the RPC throws: one line, never a traceback
                unless_cancelled(exc)
                why = self._describe(exc)
            self._tried.set()
            self._loaded_at = float("-inf")  # poll at the next refresh: the book must not go stale
            if self._moving:  # reopened on purpose: no outage, no wait
                self._moving = False
                self._wake.clear()
                continue
            if loop.time() - started >= STABLE_S:
                backoff.reset()
            delay = backoff.failed()
            if not self._down:
                log.warning("book users: websocket down (%s); polling every %g s until it reconnects",
                            why, self.refresh_s)
                self._down = True
            else:
                log.debug("book users: websocket still down (%s); next try in %g s", why, delay)
            try:  # resubscribe() cuts the wait short
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            self._moving = False
            self._wake.clear()

    def _describe(self, exc: Exception) -> str:
        return describe(exc, self.ws_url, self.connection._provider.endpoint_uri)

    async def _session(self) -> None:
        """One connection: subscribe, then load (so no change falls between the two), then stream."""
        async with connect(self.ws_url, open_timeout=SUBSCRIBE_TIMEOUT_S, close_timeout=2) as ws:
            self._ws = ws
            await ws.program_subscribe(DRIFT_PROGRAM_ID, self.connection.commitment, "base64",
                                       filters=STREAM_FILTERS)
            await asyncio.wait_for(self._subscribed(ws), SUBSCRIBE_TIMEOUT_S)
            try:
                await serve(asyncio.ensure_future(self._read(ws)), self._load, self._went_live)
            finally:
                self.live = False
                self._ws = None

    def _went_live(self) -> None:
        self.heard = max(self.heard, self.slot)
        self.live = True
        self.connects += 1
        self._tried.set()
        if self._down:
            log.info("book users: websocket back")
            self._down = False

    async def _subscribed(self, ws) -> None:
        while True:
            for item in await ws.recv():  # a refused subscription raises SubscriptionError here
                if isinstance(item, SubscriptionResult):
                    return
                self._notified(item)

    async def _read(self, ws) -> None:
        async for items in ws:  # ends when the server closes the socket
            for item in items:
                self._notified(item)

    def _notified(self, item) -> None:
        if isinstance(item, ProgramNotification):
            slot = item.result.context.slot
            self._note(str(item.result.value.pubkey), bytes(item.result.value.account.data), slot)
            self.slot = max(self.slot, slot)
            self.heard = max(self.heard, slot)
