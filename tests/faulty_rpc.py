"""A fault-injecting JSON-RPC proxy on loopback, in front of any JSON-RPC URL.

    async with FaultyRpc(upstream_url) as proxy:
        proxy.plan("sendTransaction", [Fault.TIMEOUT, Fault.PASS, Fault.LOSE])
        client = AsyncClient(proxy.url)

The n-th call of a method gets the n-th fault of its plan; once the plan is used up, calls get
`then` (PASS unless told). A "*" plan covers methods without a plan of their own. A batch
request is planned by its first request's method. Every call is recorded in `proxy.calls`.
Websockets are relayed to the upstream's websocket (port + 1, as on a validator; the proxy
listens on its own port + 1 too). `websockets_down()` closes every relayed stream and refuses
new ones until `websockets_up()`: a node whose websocket endpoint went away. `silence()` keeps
the relayed streams open but drops their notifications (subscription answers still pass):
a subscription that went quiet on a node that looks healthy. `Answer(result)` in a plan
answers a method without forwarding it (a node of another chain: getGenesisHash).
"""
from __future__ import annotations

import asyncio
import base64
import enum
import socket
import time
from dataclasses import dataclass
from typing import Iterable, Union

import aiohttp
import orjson
from aiohttp import web
from driftpy.constants.config import DRIFT_PROGRAM_ID
from driftpy.types import get_ws_url
from solders.transaction import VersionedTransaction
from solders.transaction_status import InstructionErrorCustom, TransactionErrorInstructionError

from keeper.localnet.encode import error_text, simulation_json


class Fault(enum.Enum):
    PASS = "pass"  # forward, answer what the upstream answered
    TIMEOUT = "timeout"  # never answer (until the proxy closes); nothing is forwarded
    RESET = "reset"  # drop the connection without answering; nothing is forwarded
    HTTP_429 = "429"  # Too Many Requests, as a rate-limited RPC provider answers
    HTTP_503 = "503"  # a gateway with no healthy node behind it
    HTTP_500 = "500"
    MALFORMED = "malformed"  # 200 with a truncated JSON body; nothing is forwarded
    LOSE = "lose"  # forward (the upstream acts on it), then drop the connection: the reply is lost


@dataclass(frozen=True)
class Delay:
    """Wait, then forward as-is: a slow node rather than a broken one."""

    seconds: float


@dataclass(frozen=True)
class Refuse:
    """Answer a sendTransaction as a node whose preflight simulation failed with this Drift
    error in the transaction's last instruction (where a plan's place_orders sits). Nothing is
    forwarded, so nothing lands: exactly what a real refusal leaves behind."""

    code: int
    name: str


@dataclass(frozen=True)
class Answer:
    """Answer with this JSON-RPC result; nothing is forwarded."""

    result: object


Step = Union[Fault, Delay, Refuse, Answer]


@dataclass(frozen=True)
class Call:
    method: str
    params: object
    fault: Step
    at: float = 0.0  # time.monotonic() when it came in


class FaultyRpc:
    def __init__(self, upstream: str):
        self.upstream = upstream
        self.url = ""
        self.calls: list[Call] = []
        self._plans: dict[str, tuple[list[Step], Step]] = {}
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._streams: set[web.WebSocketResponse] = set()
        self._ws_down = False
        self.ws_connects = 0  # websocket connections relayed so far
        self._frozen: dict[str, object] = {}  # account -> the copy served while it is frozen
        self._hidden: set[str] = set()  # accounts answered as missing
        self._muted: set[web.WebSocketResponse] = set()  # streams whose notifications are dropped
        self._mute_new = False
        self.dropped_notifications = 0

    def plan(self, method: str, faults: Iterable[Step], then: Step = Fault.PASS) -> None:
        """Replace `method`'s plan: its next calls get `faults` in order, then `then` forever."""
        self._plans[method] = (list(faults), then)

    def count(self, method: str) -> int:
        return sum(1 for c in self.calls if c.method == method)

    def _next(self, method: str) -> Step:
        key = method if method in self._plans else "*"
        if key not in self._plans:
            return Fault.PASS
        queue, then = self._plans[key]
        return queue.pop(0) if queue else then

    async def __aenter__(self) -> "FaultyRpc":
        self._session = aiohttp.ClientSession()
        app = web.Application(client_max_size=8 << 20)
        app.router.add_post("/", self._handle)
        app.router.add_get("/", self._relay)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        socks = _port_pair()
        for sock in socks:
            await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{socks[0].getsockname()[1]}"
        return self

    def freeze(self, *accounts: str) -> None:
        """Serve these accounts as they are now, from now on: a node that lags behind the chain."""
        self._frozen = {a: None for a in accounts}

    def thaw(self) -> None:
        self._frozen = {}

    def hide(self, *accounts: str) -> None:
        """Answer these accounts as missing (value null) over HTTP: data that never becomes readable."""
        self._hidden = set(accounts)

    def websockets_down(self) -> None:
        self._ws_down = True
        for stream in list(self._streams):
            asyncio.ensure_future(stream.close(code=1011, message=b"injected drop"))

    def websockets_up(self) -> None:
        self._ws_down = False

    def silence(self, new_streams_too: bool = False) -> None:
        """Drop every notification on the streams open now (and on new ones, if told), keeping
        them open: the client sees a healthy socket that says nothing."""
        self._muted |= self._streams
        self._mute_new = new_streams_too

    def unsilence(self) -> None:
        self._muted.clear()
        self._mute_new = False

    @property
    def live_websockets(self) -> int:
        return len(self._streams)

    def _stale(self, body: bytes, answer: bytes) -> bytes:
        requests, replies = orjson.loads(body), orjson.loads(answer)
        pairs = zip(requests, replies) if isinstance(requests, list) else [(requests, replies)]
        for request, reply in pairs:
            params, result = request.get("params") or [None], reply.get("result")
            if not isinstance(result, dict):
                continue
            if request.get("method") == "getMultipleAccounts":
                result["value"] = [self._served(key, value) for key, value in zip(params[0], result["value"])]
            elif request.get("method") == "getAccountInfo":
                result["value"] = self._served(params[0], result["value"])
        return orjson.dumps(replies)

    def _served(self, key: str, value):
        if key in self._hidden:
            return None
        if key not in self._frozen:
            return value
        if self._frozen[key] is None:
            self._frozen[key] = value
        return self._frozen[key]

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        if self._ws_down:
            return web.Response(status=503, text="injected fault: websocket endpoint down\n")
        downstream = web.WebSocketResponse(autoping=True)
        await downstream.prepare(request)
        self._streams.add(downstream)
        if self._mute_new:
            self._muted.add(downstream)
        self.ws_connects += 1
        try:
            async with self._session.ws_connect(get_ws_url(self.upstream)) as upstream:
                async def pump_up():
                    async for message in downstream:
                        await upstream.send_str(message.data)
                    await upstream.close()

                up = asyncio.ensure_future(pump_up())
                async for message in upstream:
                    if downstream in self._muted and _is_notification(message.data):
                        self.dropped_notifications += 1
                        continue
                    await downstream.send_str(message.data)
                up.cancel()
        except (aiohttp.ClientError, ConnectionResetError):
            pass  # the upstream or the client went away: the client sees its stream end
        finally:
            self._streams.discard(downstream)
            self._muted.discard(downstream)
            await downstream.close()
        return downstream

    async def __aexit__(self, *exc) -> None:
        self._closing.set()  # wakes the TIMEOUT handlers so shutdown doesn't wait on them
        await self._runner.cleanup()
        await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        method, params = _method(body)
        fault = self._next(method)
        self.calls.append(Call(method, params, fault, time.monotonic()))
        if isinstance(fault, Delay):
            await asyncio.sleep(fault.seconds)
            fault = Fault.PASS
        if fault is Fault.TIMEOUT:
            await self._closing.wait()
            return _drop(request)
        if fault is Fault.RESET:
            return _drop(request)
        if fault in (Fault.HTTP_429, Fault.HTTP_503, Fault.HTTP_500):
            return web.Response(status=int(fault.value), text="injected fault\n")
        if isinstance(fault, Refuse):
            return web.json_response(_refusal(body, fault))
        if isinstance(fault, Answer):
            request_id = (orjson.loads(body) or {}).get("id") if body.startswith(b"{") else None
            return web.json_response({"jsonrpc": "2.0", "result": fault.result, "id": request_id})
        if fault is Fault.MALFORMED:
            return web.Response(body=b'{"jsonrpc": "2.0", "result": {"conte', content_type="application/json")
        async with self._session.post(self.upstream, data=body, headers={"Content-Type": "application/json"}) as up:
            answer, status = await up.read(), up.status
        if fault is Fault.LOSE:
            return _drop(request)
        if (self._frozen or self._hidden) and status == 200:
            answer = self._stale(body, answer)
        return web.Response(body=answer, status=status, content_type="application/json")


def _is_notification(data: str) -> bool:
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(message, dict) and str(message.get("method", "")).endswith("Notification")


def _port_pair() -> tuple[socket.socket, socket.socket]:
    """Two bound sockets on adjacent free ports (clients find the websocket on port + 1)."""
    for _ in range(50):
        first = socket.socket()
        first.bind(("127.0.0.1", 0))
        second = socket.socket()
        try:
            second.bind(("127.0.0.1", first.getsockname()[1] + 1))
        except OSError:
            first.close()
            second.close()
            continue
        return first, second
    raise OSError("no two adjacent free ports on loopback")


def _method(body: bytes) -> tuple[str, object]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "?", None
    first = payload[0] if isinstance(payload, list) and payload else payload
    if not isinstance(first, dict):
        return "?", None
    return str(first.get("method", "?")), first.get("params")


def _refusal(body: bytes, refuse: Refuse) -> dict:
    """The JSON-RPC error a validator sends for a failed preflight, in its exact shape."""
    request = orjson.loads(body)
    tx = VersionedTransaction.from_bytes(base64.b64decode(request["params"][0]))
    index = len(tx.message.instructions) - 1
    err = TransactionErrorInstructionError(index, InstructionErrorCustom(refuse.code))
    logs = [f"Program {DRIFT_PROGRAM_ID} invoke [1]",
            f"Program log: AnchorError occurred. Error Code: {refuse.name}. Error Number: {refuse.code}.",
            f"Program {DRIFT_PROGRAM_ID} failed: custom program error: {refuse.code:#x}"]
    error = {"code": -32002, "message": f"Transaction simulation failed: {error_text(err)}",
             "data": simulation_json(err, logs, 21_000)}
    return {"jsonrpc": "2.0", "error": error, "id": request.get("id")}


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the socket under the client: it sees the connection end with no answer."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=204)  # never reaches the client; aiohttp wants a response object
