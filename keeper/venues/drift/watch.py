"""driftpy's websocket subscriptions, watched for the failure a reconnect loop can't see: a
socket that stays open and goes silent.

driftpy streams each market account (and the State) on a socket of its own, and the oracles
on one shared socket; it reconnects when a socket closes, never when one just stops talking.
Silence alone proves nothing (a market account changes only when someone trades), so a
stream whose data is SILENT_SLOTS behind the RPC's slot is checked against one
getMultipleAccounts of every such account: where the chain holds something else, the stream
missed it. That account takes the polled copy, its socket is reopened, and each tick polls it
again while it stays behind; where the chain holds the same, the data is current as of that
read. An oracle changes every slot, so a silent oracle stream is found within SILENT_SLOTS.

Quoting is left to the data guards (keeper/risk/guards.py): an oracle's publish slot says how
old its price is, and the book's age (BookUsers.book_slot) how old the book is; polled data
that is fresh is quoted on, data that can't be refreshed is pulled.

Our User is read fresh every tick (DriftVenue._read_fresh), so its stream is not watched.
`move()` reopens every websocket, driftpy's and the book users', on the endpoint now in use.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Callable, Optional

from driftpy.accounts.types import DataAndSlot
from driftpy.accounts.ws.account_subscriber import WebsocketAccountSubscriber
from driftpy.accounts.ws.multi_account_subscriber import WebsocketMultiAccountSubscriber
from solders.pubkey import Pubkey

from keeper.backoff import Backoff
from keeper.venues.drift.orderbook import SILENT_SLOTS, BookUsers

log = logging.getLogger(__name__)
MAX_KEYS = 100  # getMultipleAccounts takes at most this many
REOPEN_FIRST_S, REOPEN_MAX_S = 2.0, 30.0


@dataclass(frozen=True)
class _Stream:
    name: str
    pubkey: Pubkey
    get: Callable[[], Optional[DataAndSlot]]
    put: Callable[[DataAndSlot], None]
    decode: Callable[[bytes], object]
    subscriber: object  # what reopen() restarts


class StreamWatch:
    def __init__(self, client, book_users: BookUsers):
        self.client, self.book_users = client, book_users
        self.silences = 0  # streams found silent while their account changed
        self._stale: dict[str, int] = {}  # stream -> slot of our latest poll of it, until it speaks again
        # while a reopened stream stays silent it is polled every tick but reopened only this often
        self._reopening: dict[int, Backoff] = {}

    def _streams(self) -> list[_Stream]:
        subscriber = self.client.account_subscriber
        out = []
        singles = [("State", subscriber.state_subscriber)]
        singles += [(f"perp market {i}", s) for i, s in subscriber.perp_market_subscribers.items()]
        singles += [(f"spot market {i}", s) for i, s in subscriber.spot_market_subscribers.items()]
        for name, s in singles:
            if isinstance(s, WebsocketAccountSubscriber):
                out.append(_Stream(name, s.pubkey, lambda s=s: s.data_and_slot, s.update_data, s.decode, s))
        oracles = subscriber.oracle_subscriber
        if isinstance(oracles, WebsocketMultiAccountSubscriber):
            for key, decode in list(oracles.decode_map.items()):
                out.append(_Stream(f"oracle {key}", key, lambda k=key: oracles.data_map.get(k),
                                   lambda d, k=key: oracles._update_data(k, d), decode, oracles))  # noqa: SLF001
        return out

    async def check(self, slot: int) -> None:
        """At RPC slot `slot`: poll the streams that are SILENT_SLOTS behind, and reopen those
        that missed a change. Never raises: a failed poll leaves the data as old as it is."""
        streams = self._streams()
        for stream in streams:
            held = stream.get()
            if stream.name in self._stale and held is not None and held.slot > self._stale[stream.name]:
                log.info("websocket for %s back", stream.name)
                del self._stale[stream.name]
                self._reopening.pop(id(stream.subscriber), None)
        behind = [s for s in streams if (held := s.get()) is not None and slot - held.slot > SILENT_SLOTS]
        for start in range(0, len(behind), MAX_KEYS):
            chunk = behind[start:start + MAX_KEYS]
            try:
                reply = await self.client.connection.get_multiple_accounts([s.pubkey for s in chunk])
                polled = [(s, s.decode(bytes(info.data))) for s, info in zip(chunk, reply.value) if info is not None]
            except Exception as exc:  # noqa: BLE001 - the guards judge the data's age
                log.debug("checking silent websockets: %s: %s", type(exc).__name__, str(exc)[:160])
                return
            at = reply.context.slot
            silent = []
            for stream, fresh in polled:
                held = stream.get()
                if fresh != held.data:
                    silent.append((stream, slot - held.slot))
                stream.put(DataAndSlot(at, fresh))
            for key, subscriber in {id(s.subscriber): s.subscriber for s, _ in silent}.items():
                backoff = self._reopening.setdefault(key, Backoff(REOPEN_FIRST_S, REOPEN_MAX_S))
                if not backoff.held():
                    backoff.failed()
                    await reopen(subscriber)
            for stream, lag in silent:
                if stream.name not in self._stale:
                    self.silences += 1
                    log.warning("websocket for %s silent for %d slots while the account changed; reopened it, "
                                "polling it until it speaks again", stream.name, lag)
                self._stale[stream.name] = at

    def follow(self) -> None:
        """Pool listener: the endpoint in use changed."""
        asyncio.ensure_future(self.move())

    async def move(self) -> None:
        for subscriber in _subscribers(self.client):
            await reopen(subscriber)
        self.book_users.resubscribe()


def _subscribers(client) -> list:
    subscriber = client.account_subscriber
    found = [subscriber.state_subscriber, *subscriber.perp_market_subscribers.values(),
             *subscriber.spot_market_subscribers.values(), subscriber.oracle_subscriber]
    found += [user.account_subscriber for user in client.users.values()]
    found += [stats.account_subscriber for stats in client.user_stats.values()]
    return [s for s in found if isinstance(s, (WebsocketAccountSubscriber, WebsocketMultiAccountSubscriber))]


async def reopen(subscriber) -> None:
    """Restart a driftpy websocket subscriber's socket, keeping its data: its loop reads the
    endpoint's URL when it connects, so the new socket goes to the endpoint in use."""
    task, subscriber.task = subscriber.task, None
    if task is not None:
        task.cancel()
        await asyncio.wait({task})
    ws, subscriber.ws = subscriber.ws, None
    if ws is not None:
        with contextlib.suppress(Exception):
            await ws.close()
    if isinstance(subscriber, WebsocketMultiAccountSubscriber):
        # its subscription ids belong to the old socket; its loop subscribes every account again
        subscriber.subscription_map.clear()
        subscriber.pubkey_to_subscription.clear()
        subscriber.pending_subscriptions.clear()
        subscriber.task = asyncio.create_task(subscriber._subscribe_ws())  # noqa: SLF001
    else:
        subscriber.task = asyncio.create_task(subscriber.subscribe_ws())
