"""BookUsers keeping the real DLOB helper's book, streamed or polled, from the localnet chain.

The chain runs the real Drift program with its background makers and takers; a trader of ours
places and cancels an order, and the helper's L3 book must follow. Needs the Drift binary
($DRIFT_PROGRAM_SO or ~/.cache/drift-keeper/drift.so) and node_modules; skips without them.
"""
from __future__ import annotations

import asyncio
import logging
import random
import shutil
from pathlib import Path

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair

from keeper.errors import UserError
from keeper.localnet import genesis, instructions, program
from keeper.localnet.command import Localnet, Options
from keeper.localnet.flow import order_params
from keeper.localnet.rpc import Rpc
from keeper.localnet.server import HOST, start
from keeper.localnet.subscriptions import Subscriptions
from keeper.venues.drift.dlob import DlobHelper
from keeper.venues.drift.orderbook import SILENT_SLOTS, BookUsers

try:
    program.find_program()
except UserError as exc:
    pytest.skip(f"needs the Drift program binary: {exc}", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not (ROOT / "node_modules" / "@drift-labs" / "sdk").exists() or shutil.which("node") is None,
    reason="node or node_modules/@drift-labs/sdk is absent (run npm ci)",
)
LOGGER = "keeper.venues.drift.orderbook"
USDC = 100_000 * 10**6


@pytest.fixture
async def localnet():
    """The chain served on loopback, with its Subscriptions at hand so a test can drop every websocket."""
    net = Localnet(Options(slot_ms=50, seed=7), Keypair())
    subscriptions = Subscriptions(net.chain)
    for port in (random.randrange(20_000, 60_000, 2) for _ in range(50)):
        try:
            runner = await start(Rpc(net.chain), subscriptions, port)
            break
        except OSError:
            continue
    else:
        raise OSError("no two free consecutive loopback ports")
    stop = asyncio.Event()
    clock = asyncio.ensure_future(net.run_clock(stop))
    try:
        yield net, f"http://{HOST}:{port}", subscriptions
    finally:
        stop.set()
        await clock
        await subscriptions.close()
        await runner.cleanup()


@pytest.fixture
async def helper():
    async with DlobHelper() as h:
        yield h


@pytest.fixture
async def rpc(localnet):
    async with AsyncClient(localnet[1], commitment=Confirmed) as client:
        yield client


def _trader(net: Localnet) -> Keypair:
    kp = Keypair()
    genesis.fund(net.chain, net.exchange, kp.pubkey(), 10 * 10**9, USDC)
    instructions.send(net.chain, kp, [*instructions.init_user_ixs(net.exchange, kp.pubkey()),
                                      instructions.deposit_ix(net.exchange, kp.pubkey(), USDC)])
    return kp


def _bid(net: Localnet, kp: Keypair) -> None:
    """A resting bid 20% under the oracle: no taker of the background flow reaches it."""
    oracle = genesis.oracle_prices(net.chain, net.exchange)["SOL"]
    order = order_params(net.exchange.perp("SOL-PERP").index, "bid", 10**9, price=oracle * 80 // 100 // 100 * 100)
    instructions.send(net.chain, kp, [instructions.place_orders_ix(net.exchange, kp.pubkey(), [order])])


def _cancel(net: Localnet, kp: Keypair) -> None:
    instructions.send(net.chain, kp, [instructions.cancel_orders_ix(net.exchange, kp.pubkey())])


async def _in_book(users: BookUsers, helper: DlobHelper, net: Localnet, kp: Keypair) -> bool:
    """Refresh as a tick does, then ask the helper's L3 book whether the trader rests in it."""
    await users.refresh({})
    oracle = genesis.oracle_prices(net.chain, net.exchange)["SOL"]
    book = await helper.book("perp", net.exchange.perp("SOL-PERP").index, net.chain.slot, oracle)
    return any(o.user == str(net.exchange.user(kp.pubkey())) for o in book.l3)


async def _until(check, timeout: float = 20.0) -> None:
    """Poll `check` (async) until true; fail after `timeout` seconds, a bound and not a measurement."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def _records(caplog, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == level]


async def test_stream_sees_an_order_placed_and_cancelled_without_polling(localnet, helper, rpc):
    net, _, _ = localnet
    users = BookUsers(rpc, helper, subscription="websocket")
    try:
        await users.refresh({})
        assert users.live and users.loads == 1  # the one load right after subscribing
        kp = _trader(net)
        _bid(net, kp)
        await _until(lambda: _in_book(users, helper, net, kp))
        _cancel(net, kp)
        cancelled_at = net.chain.slot
        await _until(lambda: _not(_in_book(users, helper, net, kp)))
        assert users.loads == 1, "the stream alone carried the order and its cancel"
        assert users.slot >= cancelled_at
    finally:
        await users.close()


@pytest.mark.fault("websocket")
async def test_a_dropped_stream_resyncs_reconnects_and_keeps_flowing(localnet, helper, rpc, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    net, _, subscriptions = localnet
    users = BookUsers(rpc, helper, subscription="websocket")
    try:
        await users.refresh({})
        assert users.live and users.connects == 1
        kp = _trader(net)
        await subscriptions.close()  # the server drops every websocket...
        _bid(net, kp)  # ...and this order lands while ours is down
        await _until(lambda: _and(_in_book(users, helper, net, kp), lambda: users.live and users.connects == 2))
        assert users.loads >= 2, "the order missed by the stream came from a load"
        loads = users.loads
        _cancel(net, kp)
        await _until(lambda: _not(_in_book(users, helper, net, kp)))
        assert users.loads == loads, "after the reconnect the stream carries updates again"
        assert len(_records(caplog, logging.WARNING)) == 1
        assert any("websocket back" in r.getMessage() for r in _records(caplog, logging.INFO))
        assert not any(r.exc_info for r in caplog.records)
        await users.close()
        await _until(_async(lambda: not subscriptions._clients))  # close() closed our socket
        assert users._task is None and not users.live
    finally:
        await users.close()


@pytest.mark.fault("websocket")
async def test_without_a_websocket_it_polls_and_warns_once(localnet, helper, rpc, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    net, _, _ = localnet
    # Nothing listens on port 1: every connection is refused at once.
    users = BookUsers(rpc, helper, refresh_s=0.2, subscription="websocket", ws_url="ws://127.0.0.1:1")
    try:
        kp = _trader(net)
        await users.refresh({})
        assert not users.live and users.loads == 1
        _bid(net, kp)
        await _until(lambda: _in_book(users, helper, net, kp))
        _cancel(net, kp)
        await _until(lambda: _not(_in_book(users, helper, net, kp)))
        assert users.loads >= 3 and users.connects == 0 and users.slot > 0
        await _until(_async(lambda: _records(caplog, logging.DEBUG)))  # it tried again, quietly
        warnings = _records(caplog, logging.WARNING)
        assert len(warnings) == 1 and "websocket down" in warnings[0].getMessage()
        assert not any(r.exc_info for r in caplog.records)
    finally:
        await users.close()


@pytest.mark.fault("websocket")
async def test_a_silent_stream_is_found_by_what_it_missed_reopened_and_the_book_said_old(localnet, helper, caplog):
    """The socket stays open and stops delivering (tests/faulty_rpc.py's silence). While the
    stream is silent past SILENT_SLOTS the book is no longer said to be current; a load finds
    the order it missed, and the stream is reopened and carries updates again."""
    from tests.faulty_rpc import FaultyRpc

    caplog.set_level(logging.INFO, logger=LOGGER)
    net, url, _ = localnet
    async with FaultyRpc(url) as proxy, AsyncClient(proxy.url, commitment=Confirmed) as rpc:
        users = BookUsers(rpc, helper, subscription="websocket")
        try:
            await users.refresh({}, net.chain.slot)
            assert users.live and users.connects == 1 and users.book_slot(net.chain.slot) == net.chain.slot
            kp = _trader(net)
            proxy.silence()
            _bid(net, kp)  # missed by the silent stream
            heard = users.heard
            await _until(_async(lambda: net.chain.slot > heard + SILENT_SLOTS + 1))
            assert users.book_slot(net.chain.slot) < net.chain.slot - SILENT_SLOTS  # said old, not current
            await users.refresh({}, net.chain.slot)  # the check: a load finds the bid
            assert users.silences == 1
            await _until(_async(lambda: users.live and users.connects == 2))  # reopened, speaking again
            assert await _in_book(users, helper, net, kp)
            loads = users.loads
            _cancel(net, kp)
            await _until(lambda: _not(_in_book(users, helper, net, kp)))
            assert users.loads == loads, "the reopened stream carried the cancel"
            assert proxy.dropped_notifications > 0
            assert any("websocket silent for" in r.getMessage() for r in _records(caplog, logging.WARNING))
        finally:
            await users.close()


async def test_polling_mode_sees_the_order_and_its_cancel(localnet, helper, rpc):
    net, _, subscriptions = localnet
    users = BookUsers(rpc, helper, refresh_s=0.2)
    try:
        kp = _trader(net)
        _bid(net, kp)
        await _until(lambda: _in_book(users, helper, net, kp))
        _cancel(net, kp)
        await _until(lambda: _not(_in_book(users, helper, net, kp)))
        assert users.loads >= 2 and users.connects == 0 and not subscriptions._clients
    finally:
        await users.close()


async def _not(check) -> bool:
    return not await check


async def _and(check, then) -> bool:
    return await check and then()


def _async(predicate):
    async def check() -> bool:
        return predicate()
    return check
