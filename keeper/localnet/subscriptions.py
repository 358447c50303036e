"""Websocket subscriptions: account, program, slot, signature and logs, as a validator sends them.

The Chain calls our listeners synchronously on every change; each connection gets its own
bounded queue and writer task, so one slow client can't stall the chain. A client that
falls too far behind is disconnected, as a validator does; it reconnects and resubscribes.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field

import orjson
from aiohttp import WSMsgType, web
from solders.account import Account
from solders.pubkey import Pubkey
from solders.signature import Signature

from keeper.localnet.chain import Chain, Landed
from keeper.localnet.encode import RpcError, account_json, error_json
from keeper.localnet.rpc import SOLANA_VERSION, config_param, filters_predicate, param, pubkey_param, signature_param

log = logging.getLogger(__name__)
QUEUE_LIMIT = 10_000


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    subs: set[int] = field(default_factory=set)  # its subscription ids; the details live in Subscriptions


class Subscriptions:
    def __init__(self, chain: Chain):
        self.chain = chain
        self._ids = itertools.count(1)
        self._subs: dict[int, tuple[_Client, str, object, dict, object]] = {}  # id -> client, kind, key, config, extra
        self._by_account: dict[Pubkey, set[int]] = {}
        self._by_program: dict[Pubkey, set[int]] = {}
        self._by_signature: dict[Signature, set[int]] = {}
        self._slots: set[int] = set()
        self._logs: set[int] = set()
        chain.account_listeners.append(self._account_changed)
        chain.slot_listeners.append(self._slot_changed)
        chain.landed_listeners.append(self._landed)
        self._clients: set[_Client] = set()

    async def close(self) -> None:
        """Close every websocket, so the server stops without waiting for clients to leave."""
        for client in list(self._clients):
            await client.ws.close()

    # -- the websocket endpoint ----------------------------------------------------------
    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=4 << 20)
        await ws.prepare(request)
        client = _Client(ws)
        self._clients.add(client)
        writer = asyncio.ensure_future(self._write(client))
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                self._send(client, self._answer(client, message.data))
        finally:
            for sub_id in list(client.subs):
                self._drop(sub_id)
            writer.cancel()
            self._clients.discard(client)
        return ws

    async def _write(self, client: _Client) -> None:
        while True:
            payload = await client.queue.get()
            if client.ws.closed:
                return
            await client.ws.send_str(payload)

    def _send(self, client: _Client, message: dict) -> None:
        try:
            client.queue.put_nowait(orjson.dumps(message).decode())
        except asyncio.QueueFull:
            log.warning("websocket client fell %d messages behind; disconnecting it", QUEUE_LIMIT)
            asyncio.ensure_future(client.ws.close())

    def _answer(self, client: _Client, text: str) -> dict:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}
        if not isinstance(request, dict):
            return {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"}, "id": None}
        request_id = request.get("id")
        try:
            method, params = request.get("method"), request.get("params") or []
            if not isinstance(params, list):
                raise RpcError(-32602, "Invalid params: params must be an array")
            if isinstance(method, str) and method.endswith("Unsubscribe"):
                sub_id = param(params, 0)
                found = sub_id in client.subs
                self._drop(sub_id)
                result = found
            else:
                result = self._subscribe(client, method, params)
            return {"jsonrpc": "2.0", "result": result, "id": request_id}
        except RpcError as exc:
            return {"jsonrpc": "2.0", "error": exc.to_json(), "id": request_id}

    def _subscribe(self, client: _Client, method, params: list) -> int:
        if method == "accountSubscribe":
            key, config = pubkey_param(param(params, 0)), config_param(params, 1)
            account_json(Account(0, b"", key, False, 0), config.get("encoding", "base64"))  # validates encoding
            return self._add(client, "account", key, config, None, self._by_account)
        if method == "programSubscribe":
            key, config = pubkey_param(param(params, 0)), config_param(params, 1)
            matches = filters_predicate(config.get("filters") or [])
            return self._add(client, "program", key, config, matches, self._by_program)
        if method == "slotSubscribe":
            return self._add(client, "slot", None, {}, None, None)
        if method == "signatureSubscribe":
            sig = signature_param(param(params, 0))
            sub_id = self._add(client, "signature", sig, config_param(params, 1), None, self._by_signature)
            landed = self.chain.landed(sig)
            if landed is not None:
                self._landed(landed)
            return sub_id
        if method == "logsSubscribe":
            spec = param(params, 0, "all")
            mentions = None
            if isinstance(spec, dict):
                keys = spec.get("mentions")
                if not isinstance(keys, list) or len(keys) != 1:
                    raise RpcError(-32602, "Invalid params: mentions takes exactly one pubkey")
                mentions = pubkey_param(keys[0])
            elif spec not in ("all", "allWithVotes"):
                raise RpcError(-32602, "Invalid params: expected 'all' or {mentions: [pubkey]}")
            return self._add(client, "logs", None, {}, mentions, None)
        raise RpcError(-32601, "Method not found")

    def _add(self, client, kind, key, config, extra, index) -> int:
        sub_id = next(self._ids)
        self._subs[sub_id] = (client, kind, key, config, extra)
        client.subs.add(sub_id)
        if index is not None:
            index.setdefault(key, set()).add(sub_id)
        elif kind == "slot":
            self._slots.add(sub_id)
        elif kind == "logs":
            self._logs.add(sub_id)
        return sub_id

    def _drop(self, sub_id) -> None:
        entry = self._subs.pop(sub_id, None) if isinstance(sub_id, int) else None
        if entry is None:
            return
        client, kind, key, _, _ = entry
        client.subs.discard(sub_id)
        index = {"account": self._by_account, "program": self._by_program, "signature": self._by_signature}.get(kind)
        if index is not None:
            index.get(key, set()).discard(sub_id)
        self._slots.discard(sub_id)
        self._logs.discard(sub_id)

    # -- chain listeners -----------------------------------------------------------------
    def _notify(self, sub_id: int, method: str, result) -> None:
        client = self._subs[sub_id][0]
        self._send(client, {"jsonrpc": "2.0", "method": method, "params": {"result": result, "subscription": sub_id}})

    def _context(self, slot: int, value) -> dict:
        return {"context": {"slot": slot, "apiVersion": SOLANA_VERSION}, "value": value}

    def _account_changed(self, pubkey: Pubkey, account: Account, slot: int) -> None:
        for sub_id in list(self._by_account.get(pubkey, ())):
            config = self._subs[sub_id][3]
            self._notify(sub_id, "accountNotification",
                         self._context(slot, account_json(account, config.get("encoding", "base64"))))
        data = bytes(account.data)
        for sub_id in list(self._by_program.get(account.owner, ())):
            _, _, _, config, matches = self._subs[sub_id]
            if matches(data):
                value = {"pubkey": str(pubkey), "account": account_json(account, config.get("encoding", "base64"))}
                self._notify(sub_id, "programNotification", self._context(slot, value))

    def _slot_changed(self, slot: int) -> None:
        for sub_id in list(self._slots):
            self._notify(sub_id, "slotNotification", {"parent": slot - 1, "root": max(0, slot - 32), "slot": slot})

    def _landed(self, landed: Landed) -> None:
        for sub_id in list(self._by_signature.get(landed.signature, ())):
            self._notify(sub_id, "signatureNotification", self._context(landed.slot, {"err": error_json(landed.err)}))
            self._drop(sub_id)  # signature subscriptions end with their one notification
        for sub_id in list(self._logs):
            mentions = self._subs[sub_id][4]
            if mentions is None or mentions in landed.tx.message.account_keys:
                value = {"signature": str(landed.signature), "err": error_json(landed.err), "logs": landed.logs}
                self._notify(sub_id, "logsNotification", self._context(landed.slot, value))
