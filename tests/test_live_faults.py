"""Whole `keeper run`s on the live path with faults injected by a proxy on loopback in front of
`keeper localnet` (tests/faulty_rpc.py): signals mid-tick, every kind of RPC fault, refusals by
the Drift program, a websocket that drops, and a node serving a stale oracle. Each run must
keep its records, never double an order, and leave no order behind."""
from __future__ import annotations

import asyncio
import signal

import pytest

from keeper import drift_errors as E
from keeper.archive.reader import open_session
from keeper.model import Execution, Snapshot
from tests.faulty_rpc import Delay, Fault, FaultyRpc, Refuse
from tests.live import localnet, placement_problems

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


async def _keeper(chain, proxy, subscription: str = "polling", *extra: str):
    # polling keeps every read on HTTP, where the proxy's plans apply
    args = chain.run_args("--subscription", subscription, *extra, url=proxy.url)
    return await asyncio.create_subprocess_exec(*args, cwd=chain.home, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)


@pytest.mark.fault("process", run=True)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_signal_while_a_plan_is_being_sent(chain, tally, sig):
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
    tally.orders_left(chain.open_orders())


@pytest.mark.fault("process", run=True)
async def test_signal_while_a_snapshot_is_loading_abandons_the_tick(chain, tally):
    async with FaultyRpc(chain.url) as proxy:
        child = await _keeper(chain, proxy)
        await _wait_for(proxy, "sendTransaction", 0, child)
        proxy.plan("getProgramAccounts", [], then=Delay(3))  # the book's users load slowly from now on
        await _wait_for(proxy, "getProgramAccounts", proxy.count("getProgramAccounts"), child)
        child.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == 0, err.decode()
    assert b"tick abandoned" in err
    tally.orders_left(chain.open_orders())
    # the abandoned tick left no execution behind, and no plan went out after the signal
    executions = [r for r in tally.archive(chain.last_session()) if isinstance(r, Execution)]
    outcomes = [o for e in executions for o in e.outcomes]
    assert executions and all(o.ok for o in outcomes if o.action == "cancel"), outcomes
    placed = [o for o in outcomes if o.action == "place"]
    assert not placement_problems(placed), placement_problems(placed)


@pytest.mark.fault("rpc", run=True)
async def test_keeper_run_rides_out_rpc_faults_without_doubling_an_order(chain, tally):
    """Every kind of RPC fault, on the calls a tick makes, while the keeper quotes: it backs off,
    skips what it must, keeps quoting, never holds more than its two quotes, and leaves none."""
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
    records = tally.archive(chain.last_session())
    snapshots = [r for r in records if isinstance(r, Snapshot)]
    assert max(len([o for o in s.user.open_orders if o.user_order_id]) for s in snapshots) <= 2
    placed_after = [o for r in records[len(records) // 2:] if isinstance(r, Execution) for o in r.outcomes if o.ok]
    assert placed_after, "quoting went on through the faults"
    tally.orders_left(chain.open_orders())


def _most_resting(records) -> int:
    return max(len([o for o in s.user.open_orders if o.user_order_id]) for s in records if isinstance(s, Snapshot))


async def _stop(child) -> tuple[bytes, bytes]:
    child.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(child.communicate(), 180)
    assert child.returncode == 0, err.decode()
    assert b"Traceback" not in err
    return out, err


@pytest.mark.fault("program", run=True)
async def test_a_refused_placement_takes_down_the_quotes_it_replaced_and_pauses_placing(chain, tally):
    """The program refuses a plan's place_orders (a post-only quote that would cross). The
    refusal takes the plan's cancels with it, so they are sent again on their own: the old
    quotes must not outlive their replacement. New placements pause, 1 s then doubling, and
    quoting resumes once the program takes them."""
    refusal = Refuse(6057, E.POST_ONLY_CROSS)
    async with FaultyRpc(chain.url) as proxy:
        child = await _keeper(chain, proxy)
        await _wait_for(proxy, "sendTransaction", 0, child)
        proxy.plan("sendTransaction", [refusal, Fault.PASS] * 3)
        await _wait_for(proxy, "sendTransaction", proxy.count("sendTransaction") + 10, child, seconds=120)
        out, err = await _stop(child)
    assert sum(isinstance(c.fault, Refuse) for c in proxy.calls) == 3
    assert b"PlacePostOnlyLimitFailure" in err and b"placements paused for 1 s" in err
    records = tally.archive(chain.last_session())
    refused = [r for r in records if isinstance(r, Execution)
               and any(o.error == f"failed: {E.POST_ONLY_CROSS}" for o in r.outcomes if o.action == "place")]
    assert len(refused) == 3
    with_cancels = [r for r in refused if any(o.action == "cancel" for o in r.outcomes)]
    assert with_cancels, "a refused plan that replaced quotes"
    for execution in with_cancels:  # sent again alone, and they went
        assert all(o.ok for o in execution.outcomes if o.action == "cancel")
        gone = {o.order_id for o in execution.outcomes if o.action == "cancel"}
        after = next(r for r in records[records.index(execution):] if isinstance(r, Snapshot))
        assert not gone & {o.order_id for o in after.user.open_orders}
    paused = [o for r in records if isinstance(r, Execution) for o in r.outcomes if o.error.startswith("paused")]
    assert paused and not any(o.ok for o in paused)
    last_refusal = records.index(refused[-1])
    assert [o for r in records[last_refusal:] if isinstance(r, Execution) for o in r.outcomes
            if o.action == "place" and o.ok], "quoting resumed"
    assert _most_resting(records) <= 2
    tally.orders_left(chain.open_orders())


@pytest.mark.fault("websocket", run=True)
async def test_a_dropped_websocket_is_resubscribed_and_the_keeper_never_quotes_blind(chain, tally):
    """Every websocket stream drops and the endpoint refuses new ones for 4 s. The book's users
    are polled meanwhile, driftpy's subscriptions reconnect, and afterwards the keeper quotes
    on a fresh oracle and a fresh book again."""
    async with FaultyRpc(chain.url) as proxy:
        child = await _keeper(chain, proxy, "websocket")
        await _wait_for(proxy, "sendTransaction", 0, child)
        before = proxy.ws_connects
        proxy.websockets_down()
        await asyncio.sleep(4)
        proxy.websockets_up()
        dropped_at = proxy.count("sendTransaction")
        for _ in range(600):  # everything resubscribed: as many streams as before the drop
            if proxy.live_websockets >= before and child.returncode is None:
                break
            await asyncio.sleep(0.1)
        await _wait_for(proxy, "sendTransaction", proxy.count("sendTransaction") + 6, child, seconds=120)
        out, err = await _stop(child)
    assert proxy.ws_connects >= 2 * before, "every stream was opened again"
    assert b"book users: websocket down" in err and b"book users: websocket back" in err
    assert proxy.count("sendTransaction") > dropped_at + 5
    records = tally.archive(chain.last_session())
    last = [r for r in records if isinstance(r, Snapshot)][-5:]
    for snapshot in last:  # fresh again: the guards' limits are 50 slots for the oracle, 75 for the book
        assert snapshot.slot - snapshot.markets["SOL-PERP"].oracle_slot < 50
        assert snapshot.slot - snapshot.book_slot < 75
    assert _most_resting(records) <= 2
    tally.orders_left(chain.open_orders())


@pytest.mark.fault("data", run=True)
async def test_a_node_serving_a_stale_oracle_pulls_the_quotes_until_it_catches_up(chain, tally):
    """The RPC keeps serving the SOL oracle as it was (a node lagging behind the chain): once
    it is older than the guard allows, the resting quotes are cancelled and none are placed;
    when the node catches up, quoting resumes."""
    from keeper.localnet.genesis import ORACLES

    async with FaultyRpc(chain.url) as proxy:
        child = await _keeper(chain, proxy)
        await _wait_for(proxy, "sendTransaction", 0, child)
        proxy.freeze(str(ORACLES["SOL"]))
        session = chain.last_session()  # quoting, so this run's session is the newest

        def pulled() -> bool:  # the 50-slot guard tripped (about 5 s of 100 ms slots), ticks went on stale
            stale = [r.value for r in open_session(session).records() if isinstance(r.value, Snapshot)
                     and r.value.slot - r.value.markets["SOL-PERP"].oracle_slot > 50]
            return len(stale) >= 3 and not chain.open_orders()

        for _ in range(600):
            if pulled():
                break
            assert child.returncode is None, "the keeper exited early"
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the stale oracle never pulled the quotes")
        proxy.thaw()
        thawed = proxy.count("sendTransaction")
        await _wait_for(proxy, "sendTransaction", thawed + 2, child, seconds=120)
        out, err = await _stop(child)
    assert b"slots old (max 50)" in err
    records = tally.archive(chain.last_session())
    snapshots = [r for r in records if isinstance(r, Snapshot)]
    stale = [s for s in snapshots if s.slot - s.markets["SOL-PERP"].oracle_slot > 50]
    assert stale, "the oracle went stale"
    for snapshot in stale[1:]:  # from the tick after the guard tripped: nothing of ours rests
        assert not [o for o in snapshot.user.open_orders if o.user_order_id]
    fresh_after = [s for s in snapshots[snapshots.index(stale[-1]) + 1:] if s.user.open_orders]
    assert fresh_after, "quoting resumed"
    tally.orders_left(chain.open_orders())


@pytest.mark.fault("rpc", run=True)
async def test_health_turns_503_while_the_loop_is_stuck_on_a_slow_rpc_and_recovers(chain, tally):
    """The node holds every getMultipleAccounts for 8 s: the tick waiting on its snapshot can't
    finish, so /health (served from its own thread) says the loop is stuck, then ok once the
    node answers again."""
    import httpx

    from tests.test_ops_metrics import free_port

    port = free_port()
    health = f"http://127.0.0.1:{port}/health"

    async def status():
        try:
            async with httpx.AsyncClient() as client:
                reply = await client.get(health, timeout=5)
            return reply.status_code, reply.text
        except httpx.HTTPError:
            return None, ""

    async def until(code: int, seconds: float = 60):
        for _ in range(int(seconds * 10)):
            got = await status()
            if got[0] == code:
                return got
            await asyncio.sleep(0.1)
        raise AssertionError(f"/health never answered {code} (last: {got})")

    async with FaultyRpc(chain.url) as proxy:
        child = await _keeper(chain, proxy, "polling", "--metrics-port", str(port), "--health-stale-after", "2")
        await _wait_for(proxy, "sendTransaction", 0, child)  # quoting
        assert (await until(200))[1] == "ok\n"
        proxy.plan("getMultipleAccounts", [Delay(8)] * 6)
        code, reason = await until(503)
        assert reason.startswith("stuck: the loop has not completed a tick for"), reason
        await until(200)  # the node answers again, ticks complete
        out, err = await _stop(child)
    tally.archive(chain.last_session())
    tally.orders_left(chain.open_orders())
