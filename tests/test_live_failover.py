"""Whole `keeper run`s against several RPC endpoints, each a fault-injecting proxy in front of one
`keeper localnet` (tests/faulty_rpc.py): an endpoint that dies while a second storms 429s, and
websockets that stay open but go silent. The keeper must keep quoting through the healthy
endpoint, never quote on data it can't refresh, and leave no order behind."""
from __future__ import annotations

import asyncio
import contextlib
import json
import signal

import pytest

from keeper.model import Execution, Snapshot
from tests.faulty_rpc import Fault, FaultyRpc
from tests.live import localnet

PORT = 28_961
TICK_S = 0.3  # LiveChain.run_args' --interval
PROBES = {"getSlot", "getGenesisHash"}  # the pool's health probes: the only calls other endpoints get


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with localnet(tmp_path_factory.mktemp("failover"), PORT) as chain:
        yield chain


async def _wait(condition, what: str, child, seconds: float = 120) -> None:
    for _ in range(int(seconds * 10)):
        if condition():
            return
        assert child.returncode is None, f"the keeper exited early, waiting for: {what}"
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


async def _start(chain, **where):
    args = chain.run_args("--subscription", "websocket", **where)
    return await asyncio.create_subprocess_exec(*args, cwd=chain.home, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)


async def _stop(child) -> bytes:
    child.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(child.communicate(), 180)
    assert child.returncode == 0, err.decode()
    assert b"Traceback" not in err
    return err


def _first_at(proxy: FaultyRpc, method: str, after: float = 0.0) -> float | None:
    return next((c.at for c in proxy.calls if c.method == method and c.at > after), None)


def _logged(chain, text: str) -> bool:
    log = chain.last_session() / "keeper.log" if (chain.home / "sessions").exists() else None
    return log is not None and log.exists() and text in log.read_text()


def _ours(snapshot: Snapshot) -> list:
    return [o for o in snapshot.user.open_orders if o.user_order_id]


@pytest.mark.fault("rpc", run=True)
async def test_a_dead_endpoint_and_a_429_storm_fail_over_to_the_healthy_one_and_back(chain, tally):
    """The keeper quotes through #1. #1 dies (every request reset, websockets refused) while #2
    answers everything with 429: the keeper moves to #3, HTTP and websockets alike, and keeps
    quoting there, the others getting only probes. When #1 recovers the keeper moves back."""
    async with contextlib.AsyncExitStack() as stack:
        first, second, third = [await stack.enter_async_context(FaultyRpc(chain.url)) for _ in range(3)]
        child = await _start(chain, rpc=[first.url, second.url, third.url])
        await _wait(lambda: first.count("sendTransaction") > 2, "quotes through #1", child)
        died = asyncio.get_running_loop().time()
        first.plan("*", [], then=Fault.RESET)
        first.websockets_down()
        second.plan("*", [], then=Fault.HTTP_429)
        await _wait(lambda: third.count("sendTransaction") > 0, "a transaction through #3", child)
        moved = _first_at(third, "sendTransaction")
        reached = next(c.at for c in third.calls if c.method not in PROBES)
        await _wait(lambda: third.count("sendTransaction") > 6 and third.live_websockets >= 2
                    and all(p.calls[-1].at > reached + 1.0 for p in (first, second)),
                    "quoting and streaming through #3, the others probed meanwhile", child)
        recovered = asyncio.get_running_loop().time()
        sent_on_first = first.count("sendTransaction")
        first.plan("*", [], then=Fault.PASS)
        first.websockets_up()
        await _wait(lambda: first.count("sendTransaction") > sent_on_first + 2, "back on #1", child)
        err = await _stop(child)

    assert b"rpc: moving from #1" in err and b"to #3" in err and b"is healthy again" in err
    # the keeper may try #2 before its probe sees the storm; from #3 on, the others get probes only
    for proxy in (first, second):
        while_on_third = [c for c in proxy.calls if reached + 1.0 < c.at < recovered]
        assert while_on_third and {c.method for c in while_on_third} <= PROBES
    session = chain.last_session()
    manifest = json.loads((session / "manifest.json").read_text())
    assert manifest["genesis_hash"] == "11111111111111111111111111111111"  # keeper localnet's
    records = tally.archive(session)
    assert max(len(_ours(s)) for s in records if isinstance(s, Snapshot)) <= 2
    tally.failover(moved - died, TICK_S)
    tally.orders_left(chain.open_orders())


@pytest.mark.fault("websocket", run=True)
async def test_a_silent_websocket_is_found_reopened_and_polled_meanwhile(chain, tally):
    """Every stream stays open and stops delivering (new ones would talk). The book users' and
    the oracles' streams are found silent within a few dozen slots, reopened, and the keeper
    quotes on fresh data throughout."""
    async with FaultyRpc(chain.url) as proxy:
        child = await _start(chain, url=proxy.url)
        await _wait(lambda: proxy.count("sendTransaction") > 2 and proxy.live_websockets >= 2, "quoting", child)
        connects = proxy.ws_connects
        proxy.silence()
        await _wait(lambda: proxy.ws_connects >= connects + 2, "the silent streams reopened", child)
        sent = proxy.count("sendTransaction")
        await _wait(lambda: proxy.count("sendTransaction") > sent + 6, "quoting after", child)
        err = await _stop(child)
    assert proxy.dropped_notifications > 0
    assert b"book users: websocket silent for" in err and b"book users: websocket back" in err
    assert b"websocket for oracle" in err and b"silent for" in err
    snapshots = [r for r in tally.archive(chain.last_session()) if isinstance(r, Snapshot)]
    for snapshot in snapshots[-5:]:
        assert snapshot.slot - snapshot.markets["SOL-PERP"].oracle_slot < 50
        assert snapshot.slot - snapshot.book_slot < 75
    tally.orders_left(chain.open_orders())


@pytest.mark.fault("websocket", run=True)
async def test_a_book_that_can_neither_stream_nor_be_polled_pulls_the_quotes_until_it_can(chain, tally):
    """Every stream goes silent, new ones too, and the book's users can't be polled either
    (getProgramAccounts answers 503): the book's age grows and the book guard pulls our quotes
    (a silent socket no longer passes for a current book). When the node recovers, quoting
    resumes."""
    async with FaultyRpc(chain.url) as proxy:
        child = await _start(chain, url=proxy.url)
        await _wait(lambda: proxy.count("sendTransaction") > 2, "quoting", child)
        proxy.silence(new_streams_too=True)
        proxy.plan("getProgramAccounts", [], then=Fault.HTTP_503)
        # the book guard trips once the book is 75 slots old (7.5 s at 100 ms a slot)
        await _wait(lambda: _logged(chain, "slots old (max 75)"), "the book guard tripped", child)
        await _wait(lambda: not chain.open_orders(), "our quotes pulled", child)
        proxy.unsilence()
        proxy.plan("getProgramAccounts", [], then=Fault.PASS)
        sent = proxy.count("sendTransaction")
        await _wait(lambda: proxy.count("sendTransaction") > sent + 3, "quoting resumed", child)
        err = await _stop(child)
    assert b"order book" in err and b"slots old (max 75)" in err
    records = tally.archive(chain.last_session())
    snapshots = [r for r in records if isinstance(r, Snapshot)]
    stale = [s for s in snapshots if s.slot - s.book_slot > 75]
    assert stale, "the book's age was said"
    for snapshot in stale[1:]:  # from the tick after the guard tripped: nothing of ours rests
        assert not _ours(snapshot)
    after = snapshots[snapshots.index(stale[-1]) + 1:]
    assert [s for s in after if _ours(s)], "quoting resumed"
    placed = [o for r in records if isinstance(r, Execution) for o in r.outcomes if o.ok and o.action == "place"]
    assert placed
    tally.orders_left(chain.open_orders())
