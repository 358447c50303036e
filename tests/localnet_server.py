"""Start the localnet JSON-RPC server in-process on free loopback ports, for tests and benches."""
from __future__ import annotations

import contextlib
import random

from keeper.localnet.chain import Chain
from keeper.localnet.rpc import Rpc
from keeper.localnet.server import start
from keeper.localnet.subscriptions import Subscriptions


@contextlib.asynccontextmanager
async def serving(chain: Chain | None = None):
    """Yields (chain, http_url); the websocket is on the next port, as driftpy expects."""
    chain = chain or Chain()
    rpc, subs = Rpc(chain), Subscriptions(chain)
    for _ in range(50):
        port = random.randrange(20_000, 60_000, 2)
        try:
            runner = await start(rpc, subs, port)
            break
        except OSError:
            continue
    else:
        raise RuntimeError("no two free consecutive loopback ports")
    try:
        yield chain, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
