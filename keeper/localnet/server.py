"""HTTP JSON-RPC and websockets on loopback, as solana-test-validator serves them.

The same app listens on PORT and PORT + 1: driftpy and solana-py look for the websocket
on the port after the RPC port, and answering both protocols on both ports costs nothing.
"""
from __future__ import annotations

import contextlib
import logging
import random

import orjson
from aiohttp import web

from keeper.localnet.chain import Chain
from keeper.localnet.encode import RpcError
from keeper.localnet.rpc import Rpc
from keeper.localnet.subscriptions import Subscriptions

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
MAX_BODY = 8 << 20


def _response(request_id, result=None, error: RpcError | None = None) -> dict:
    if error is not None:
        return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}
    return {"jsonrpc": "2.0", "result": result, "id": request_id}


def answer(rpc: Rpc, request) -> dict:
    """One JSON-RPC request object to its response object; never raises."""
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or "method" not in request:
        return _response(request.get("id") if isinstance(request, dict) else None, error=RpcError(-32600, "Invalid request"))
    request_id = request.get("id")
    try:
        return _response(request_id, rpc.call(request["method"], request.get("params")))
    except RpcError as exc:
        return _response(request_id, error=exc)
    except Exception as exc:  # a bug of ours must still come back in the JSON-RPC shape
        log.exception("%s failed", request.get("method"))
        return _response(request_id, error=RpcError(-32603, f"Internal error: {type(exc).__name__}"))


def application(rpc: Rpc, subscriptions: Subscriptions) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await subscriptions.serve(request)
        if request.method != "POST":
            return web.Response(status=405, text="JSON-RPC wants POST\n")
        body = await request.read()
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            reply = _response(None, error=RpcError(-32700, "Parse error"))
        else:
            if isinstance(payload, list) and payload:
                reply = [answer(rpc, r) for r in payload]
            else:  # an empty batch is invalid, as is any non-object
                reply = answer(rpc, payload)
        return web.Response(body=orjson.dumps(reply), content_type="application/json")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/", handle)
    return app


async def start(rpc: Rpc, subscriptions: Subscriptions, port: int, host: str = HOST) -> web.AppRunner:
    """Listen on port and port + 1. Raises OSError when either is taken."""
    runner = web.AppRunner(application(rpc, subscriptions), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        for p in (port, port + 1):
            await web.TCPSite(runner, host, p).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner


@contextlib.asynccontextmanager
async def listening(chain: Chain, port: int | None = None):
    """Serve `chain` for the duration of the block; yields the HTTP URL.

    Without a port, picks a free pair of consecutive loopback ports (tests, benches).
    """
    rpc, subscriptions = Rpc(chain), Subscriptions(chain)
    candidates = [port] if port else [random.randrange(20_000, 60_000, 2) for _ in range(50)]
    for candidate in candidates:
        try:
            runner = await start(rpc, subscriptions, candidate)
            break
        except OSError:
            if port:
                raise
    else:
        raise OSError("no two free consecutive loopback ports")
    try:
        yield f"http://{HOST}:{candidate}"
    finally:
        await subscriptions.close()
        await runner.cleanup()
