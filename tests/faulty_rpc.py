"""A fault-injecting JSON-RPC proxy on loopback, in front of any JSON-RPC URL.

    async with FaultyRpc(upstream_url) as proxy:
        proxy.plan("sendTransaction", [Fault.TIMEOUT, Fault.PASS, Fault.LOSE])
        client = AsyncClient(proxy.url)

The n-th call of a method gets the n-th fault of its plan; once the plan is used up, calls get
`then` (PASS unless told). A "*" plan covers methods without a plan of their own. A batch
request is planned by its first request's method. Every call is recorded in `proxy.calls`.
HTTP only: websocket clients should talk to the upstream directly.
"""
from __future__ import annotations

import asyncio
import enum
import socket
from dataclasses import dataclass
from typing import Iterable, Union

import aiohttp
import orjson
from aiohttp import web


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


Step = Union[Fault, Delay]


@dataclass(frozen=True)
class Call:
    method: str
    params: object
    fault: Step


class FaultyRpc:
    def __init__(self, upstream: str):
        self.upstream = upstream
        self.url = ""
        self.calls: list[Call] = []
        self._plans: dict[str, tuple[list[Step], Step]] = {}
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

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
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))  # the OS picks a free port: no races between parallel tests
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        self._closing.set()  # wakes the TIMEOUT handlers so shutdown doesn't wait on them
        await self._runner.cleanup()
        await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        method, params = _method(body)
        fault = self._next(method)
        self.calls.append(Call(method, params, fault))
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
        if fault is Fault.MALFORMED:
            return web.Response(body=b'{"jsonrpc": "2.0", "result": {"conte', content_type="application/json")
        async with self._session.post(self.upstream, data=body, headers={"Content-Type": "application/json"}) as up:
            answer, status = await up.read(), up.status
        if fault is Fault.LOSE:
            return _drop(request)
        return web.Response(body=answer, status=status, content_type="application/json")


def _method(body: bytes) -> tuple[str, object]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "?", None
    first = payload[0] if isinstance(payload, list) and payload else payload
    if not isinstance(first, dict):
        return "?", None
    return str(first.get("method", "?")), first.get("params")


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the socket under the client: it sees the connection end with no answer."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=204)  # never reaches the client; aiohttp wants a response object
