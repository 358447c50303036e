"""The live tape: every fill on the quoted markets, ours flagged, plus our funding payments.

Read from the Drift program's events (events.py). Transactions come from a logsSubscribe
stream on the program (`--subscription websocket`), or from getSignaturesForAddress +
getTransaction on it (polling, and to backfill whatever a dropped stream missed: each
(re)subscription first catches up from the newest transaction already read).

Each snapshot takes what happened up to its slot (`drain`). Before it does, the signatures of
transactions touching our own User are checked (one cheap call), so a fill of ours a stream
had not delivered yet is fetched now: the fills a snapshot carries are exactly those its
position moved by. A transaction is read once (by signature) and a fill counted once (by
market and fill_record_id), however often either is delivered.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

from driftpy.constants.config import DRIFT_PROGRAM_ID
from driftpy.types import get_ws_url
from solana.rpc.async_api import AsyncClient
from solana.rpc.websocket_api import connect
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.responses import LogsNotification, SubscriptionResult
from solders.signature import Signature

from keeper.backoff import Backoff, unless_cancelled
from keeper.model import Fill, MarketSpec, Trade
from keeper.venues.drift.events import events, is_fill, market_of, own_fill, trade_of
from keeper.venues.drift.streams import describe, serve, stop

log = logging.getLogger(__name__)
PAGE = 1_000  # getSignaturesForAddress's largest page
MAX_BACKFILL = 20_000  # transactions one catch-up reads at most; past that the gap is logged as lost
PER_DRAIN = 500  # transactions a snapshot reads by signature at most, so a long gap can't stall a tick
FETCHES = 8  # getTransaction calls in flight at once
RECENT = 200  # signatures looked at to start reading just before the first snapshot's slot
REMEMBER = 100_000  # signatures and fill ids kept to drop re-deliveries
SUBSCRIBE_TIMEOUT_S = 10.0
RETRY_S, MAX_RETRY_S = 1.0, 30.0


@dataclass
class Drained:
    """What happened since the previous snapshot, up to its slot."""

    trades: dict[str, list[Trade]] = field(default_factory=dict)  # by market name, oldest first
    fills: Optional[list[Fill]] = None  # ours; None when the tape could not vouch for them
    funding: dict[str, int] = field(default_factory=dict)  # quote received, by perp market name
    why: str = ""  # why fills is None


class _Seen(OrderedDict):
    """A bounded set: the oldest entries go first."""

    def add(self, key) -> bool:
        if key in self:
            return False
        self[key] = None
        if len(self) > REMEMBER:
            self.popitem(last=False)
        return True


class Tape:
    def __init__(self, connection: AsyncClient, user: str, markets: dict[tuple[str, int], MarketSpec], *,
                 subscription: str = "websocket", ws_url: Optional[str] = None, program: Pubkey = DRIFT_PROGRAM_ID):
        self.connection, self.user, self.markets, self.program = connection, user, markets, program
        self.subscription = subscription
        self._ws_url = ws_url
        self._ws = None  # the open socket, while a session runs
        self.live = False  # the stream is subscribed and caught up
        self.connects = 0  # stream sessions that went live
        self.backfilled = 0  # transactions read by signature rather than streamed
        self.duplicates = 0  # fills delivered again and dropped
        self._user_key = Pubkey.from_string(user)
        self._signatures, self._fill_ids = _Seen(), _Seen()
        self._pending: list[tuple[int, str, str, object]] = []  # (slot, kind, market, Trade | Fill | funding)
        self._user_order_ids: OrderedDict[int, int] = OrderedDict()  # order id -> keeper tag, from OrderRecords
        self._cursor: dict[Pubkey, Optional[Signature]] = {}  # per address, the newest signature read
        self._started = self._drained = False  # reading from a cursor; a snapshot was served
        self._accounted = -1  # our fills up to this slot were inferred instead: never add them again
        self._task: Optional[asyncio.Task] = None
        self._lock = asyncio.Lock()
        self._down = False
        self._closed = False

    @property
    def ws_url(self) -> str:
        """Read at each connect: after an RPC failover the connection points at the new endpoint."""
        return self._ws_url or get_ws_url(self.connection._provider.endpoint_uri)

    def reopen(self) -> None:
        """The endpoint in use changed: close the stream, so it reconnects there (catching up first)."""
        if self._ws is not None:
            asyncio.ensure_future(self._ws.close())

    # -- what a snapshot takes --------------------------------------------------------------
    async def drain(self, user, slot: int) -> Drained:
        """The trades, fills and funding up to our User `user`, as read at `slot`."""
        why, first = "", not self._started
        try:
            if first:
                await self._start(slot)
            if self.subscription == "polling" or not self.live:
                await self.catch_up(self.program, PER_DRAIN)
            # A streamed fill of ours may still be on its way: fetch it by our user's signatures.
            await self.catch_up(self._user_key)
        except Exception as exc:  # the RPC failed: our fills can't be vouched for this time
            why = self._describe(exc)
        out = Drained(why=why)
        fills: list[Fill] = []
        for _, kind, market, item in self._take(user, slot):
            if kind == "trade":
                out.trades.setdefault(market, []).append(item)
            elif kind == "fill":
                fills.append(item[0])
            else:
                out.funding[market] = out.funding.get(market, 0) + item
        if first:  # the tape reads from `slot` on: what our User holds already is not its to explain
            if self._drained and not why:  # but an earlier snapshot could not start it: it can't vouch for now
                why = "the tape could start reading only now"
            self._drained = True
            out = Drained(fills=None if why else [], why=why)
        else:
            out.fills = None if why else fills
        if why:
            self._accounted = slot
        return out

    def note_orders(self, orders) -> None:
        """Keeper tags of orders seen resting (ours from before the tape started have no OrderRecord in it)."""
        for o in orders:
            self._user_order_ids.setdefault(o.order_id, o.user_order_id)

    def _take(self, user, slot: int) -> list:
        """What `user` (our User at `slot`) already shows. A slot is not atomic to every RPC (keeper
        localnet reads mid-slot), so a fill of ours counts once our order shows it filled: its id
        was handed out, and the order is gone or has filled at least the event's cumulative amount."""
        filled = {o.order_id: o.base_asset_amount_filled for o in user.orders if o.base_asset_amount}
        now, later = [], []
        for p in self._pending:
            if p[0] > slot:
                later.append(p)
            elif p[1] == "fill" and not (p[3][1] < user.next_order_id and filled.get(p[3][1], p[3][2]) >= p[3][2]):
                later.append(p)
            else:
                now.append(p)
        self._pending = later
        return now

    async def _start(self, slot: int) -> None:
        """Read from just before `slot`: what lands in it may come after our User was read."""
        for address in (self.program, self._user_key):
            recent = (await self.connection.get_signatures_for_address(address, limit=RECENT)).value
            older = [s for s in recent if s.slot < slot]
            start = older[0] if older else recent[-1] if recent else None
            self._cursor[address] = start.signature if start else None
        self._started = True
        if self.subscription == "websocket":
            self._task = asyncio.ensure_future(self._stream())

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        await stop(task)
        self.live = False

    # -- reading transactions ---------------------------------------------------------------
    def read(self, signature: str, slot: int, logs: list[str]) -> None:
        """One landed, successful transaction's logs, however it reached us."""
        if not self._signatures.add(signature):
            return
        for event in events().decode(logs):
            record = event.data
            if event.name == "OrderRecord":
                if str(record.user) == self.user:
                    self._user_order_ids[record.order.order_id] = record.order.user_order_id
                    if len(self._user_order_ids) > REMEMBER:
                        self._user_order_ids.popitem(last=False)
            elif event.name == "FundingPaymentRecord":
                spec = self.markets.get(("perp", record.market_index))
                if spec is not None and str(record.user) == self.user:
                    self._pending.append((slot, "funding", spec.name, record.funding_payment))
            elif is_fill(record):
                self._fill(record, slot)

    def _fill(self, record, slot: int) -> None:
        spec = self.markets.get(market_of(record))
        if spec is None:
            return
        if not self._fill_ids.add((*market_of(record), record.fill_record_id)):
            self.duplicates += 1
            return
        trade = trade_of(record, spec, slot)
        self._pending.append((slot, "trade", spec.name, trade))
        ours = own_fill(trade, record, spec.name, self.user, self._user_order_ids)
        if ours is None:
            return
        if slot <= self._accounted:
            log.info("%s: a fill of ours at slot %d was inferred already; its late event is not added", spec.name, slot)
            return
        if trade.maker == self.user:
            cumulative = record.maker_order_cumulative_base_asset_amount_filled
        else:
            cumulative = record.taker_order_cumulative_base_asset_amount_filled
        self._pending.append((slot, "fill", spec.name, (ours, ours.order_id, cumulative)))

    async def catch_up(self, address: Pubkey, budget: int = MAX_BACKFILL) -> int:
        """Read the transactions naming `address` since the newest already read, oldest first and at
        most `budget` of them (the rest wait for the next call); how many were new."""
        async with self._lock:
            until, before, found = self._cursor.get(address), None, []
            while len(found) < MAX_BACKFILL:
                page = (await self.connection.get_signatures_for_address(
                    address, before=before, until=until, limit=PAGE)).value
                found += page
                if len(page) < PAGE:
                    break
                before = page[-1].signature
            else:
                log.warning("tape: more than %d transactions since the last one read; older ones are lost", MAX_BACKFILL)
            new, upto = [], None
            for status in reversed(found):
                if status.err is None and str(status.signature) not in self._signatures:
                    if len(new) == budget:
                        log.info("tape: %d transactions behind; reading %d a snapshot", len(found), budget)
                        break
                    new.append(status)
                upto = status
            gate = asyncio.Semaphore(FETCHES)

            async def fetch(signature: Signature):
                async with gate:
                    return await self.connection.get_transaction(signature, max_supported_transaction_version=0)

            replies = await asyncio.gather(*(fetch(s.signature) for s in new))
            for status, reply in zip(new, replies):
                tx = reply.value
                if tx is None or tx.transaction.meta is None:
                    raise ValueError(f"transaction {status.signature} is listed but not served")
                self.read(str(status.signature), tx.slot, list(tx.transaction.meta.log_messages or []))
            if upto is not None:
                self._cursor[address] = upto.signature
            self.backfilled += len(new)
            return len(new)

    # -- the stream -------------------------------------------------------------------------
    async def _stream(self) -> None:
        """Keep a logs stream up; on a drop, warn once, let drain() poll, and reconnect."""
        backoff = Backoff(RETRY_S, MAX_RETRY_S)
        while not self._closed:
            try:
                await self._session()
                why = "the server closed it"
                backoff.reset()
            except Exception as exc:  # anything the socket or the RPC throws: one line, never a traceback
                unless_cancelled(exc)
                why = self._describe(exc)
            self.live = False
            if not self._down:
                log.warning("tape: websocket down (%s); reading transactions by signature until it reconnects", why)
                self._down = True
            await asyncio.sleep(backoff.failed())

    async def _session(self) -> None:
        """Subscribe, then catch up from the newest transaction read (so none falls between), then stream."""
        async with connect(self.ws_url, open_timeout=SUBSCRIBE_TIMEOUT_S, close_timeout=2) as ws:
            self._ws = ws
            await ws.logs_subscribe(RpcTransactionLogsFilterMentions(self.program), self.connection.commitment)
            early = await asyncio.wait_for(self._subscribed(ws), SUBSCRIBE_TIMEOUT_S)
            try:
                await serve(asyncio.ensure_future(self._read(ws, early)), lambda: self.catch_up(self.program),
                            self._went_live)
            finally:
                self.live = False
                self._ws = None

    def _went_live(self) -> None:
        self.live = True
        self.connects += 1
        if self._down:
            log.info("tape: websocket back")
            self._down = False

    async def _subscribed(self, ws) -> list:
        early = []
        while True:
            for item in await ws.recv():  # a refused subscription raises SubscriptionError here
                if isinstance(item, SubscriptionResult):
                    return early
                early.append(item)

    async def _read(self, ws, early: list) -> None:
        for item in early:
            self._notified(item)
        async for items in ws:  # ends when the server closes the socket
            for item in items:
                self._notified(item)

    def _notified(self, item) -> None:
        if isinstance(item, LogsNotification) and item.result.value.err is None:
            value = item.result.value
            self.read(str(value.signature), item.result.context.slot, list(value.logs))
            # the stream is in landing order: a catch-up after a drop starts from here
            self._cursor[self.program] = value.signature

    def _describe(self, exc: Exception) -> str:
        return describe(exc, self.ws_url, self.connection._provider.endpoint_uri)
