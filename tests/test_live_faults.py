"""SIGINT and SIGTERM mid-tick on the live path: every keeper order is cancelled, confirmed,
before the keeper exits. A slow RPC (a delaying proxy on loopback in front of `keeper localnet`)
makes sure the signal lands while a transaction is in flight or a snapshot is loading."""
from __future__ import annotations

import asyncio
import signal

import pytest

from keeper.archive.reader import open_session
from keeper.model import Execution
from tests.faulty_rpc import Delay, FaultyRpc
from tests.live import localnet

PORT = 28_975


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with localnet(tmp_path_factory.mktemp("signals"), PORT) as chain:
        yield chain


async def _wait_for(proxy: FaultyRpc, method: str, after: int, child, seconds: float = 60) -> None:
    """Until the keeper has made more than `after` calls of `method` (it is now inside one)."""
    for _ in range(int(seconds * 10)):
        if proxy.count(method) > after:
            return
        assert child.returncode is None, "the keeper exited early"
        await asyncio.sleep(0.1)
    raise AssertionError(f"the keeper never called {method}")


async def _keeper(chain, proxy):
    # polling: the proxy speaks HTTP only, and this keeps every read going through it
    args = chain.run_args("--subscription", "polling", url=proxy.url)
    return await asyncio.create_subprocess_exec(*args, cwd=chain.home, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_signal_while_a_plan_is_being_sent(chain, sig):
    async with FaultyRpc(chain.url) as proxy:
        child = await _keeper(chain, proxy)
        await _wait_for(proxy, "sendTransaction", 0, child)  # the first plan: our quotes
        proxy.plan("sendTransaction", [Delay(1.5)])  # the next one hangs in the RPC for a while
        await _wait_for(proxy, "sendTransaction", proxy.count("sendTransaction"), child)
        child.send_signal(sig)
        out, err = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert b"keeper order(s) cancelled on shutdown" in out
    assert chain.open_orders() == []


async def test_signal_while_a_snapshot_is_loading_abandons_the_tick(chain):
    async with FaultyRpc(chain.url) as proxy:
        child = await _keeper(chain, proxy)
        await _wait_for(proxy, "sendTransaction", 0, child)
        proxy.plan("getProgramAccounts", [], then=Delay(3))  # the book's users load slowly from now on
        await _wait_for(proxy, "getProgramAccounts", proxy.count("getProgramAccounts"), child)
        child.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == 0, err.decode()
    assert b"tick abandoned" in err
    assert chain.open_orders() == []
    # the abandoned tick left no execution behind, and no plan went out after the signal
    executions = [r.value for r in open_session(chain.last_session()).records() if isinstance(r.value, Execution)]
    assert executions and all(o.ok for e in executions for o in e.outcomes)


async def test_keeper_run_rides_out_rpc_faults_without_doubling_an_order(chain):
    """Every kind of RPC fault, on the calls a tick makes, while the keeper quotes: it backs off,
    skips what it must, keeps quoting, never holds more than its two quotes, and leaves none."""
    from keeper.archive.reader import open_session
    from keeper.model import Snapshot
    from tests.faulty_rpc import Fault

    faults = [Fault.HTTP_429, Fault.TIMEOUT, Fault.RESET, Fault.HTTP_503, Fault.HTTP_500, Fault.MALFORMED, Fault.LOSE]
    async with FaultyRpc(chain.url) as proxy:
        child = await _keeper(chain, proxy)
        await _wait_for(proxy, "sendTransaction", 0, child)
        for method in ("sendTransaction", "getMultipleAccounts", "getLatestBlockhash", "getSignatureStatuses",
                       "getProgramAccounts"):
            proxy.plan(method, [f for fault in faults for f in (fault, Fault.PASS, Fault.PASS)])
        await _wait_for(proxy, "sendTransaction", proxy.count("sendTransaction") + 12, child, seconds=240)
        child.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(child.communicate(), 180)
    assert child.returncode == 0, err.decode()
    assert b"Traceback" not in err
    records = [r.value for r in open_session(chain.last_session()).records()]
    snapshots = [r for r in records if isinstance(r, Snapshot)]
    assert max(len([o for o in s.user.open_orders if o.user_order_id]) for s in snapshots) <= 2
    placed_after = [o for r in records[len(records) // 2:] if isinstance(r, Execution) for o in r.outcomes if o.ok]
    assert placed_after, "quoting went on through the faults"
    assert chain.open_orders() == []
