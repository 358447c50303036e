"""The dead-man's switch on the real program: every keeper order carries max_ts = placement +
--quote-ttl, so after the keeper is SIGKILLed its quotes stop being fillable once the TTL has
passed. The chain is `keeper localnet`'s, run in this process so the test can send a taker
order that names the dead keeper's user as its maker, exactly as a filler would."""
from __future__ import annotations

import asyncio
import signal

import pytest
from solders.keypair import Keypair

from keeper.drift_idl import decode
from keeper.errors import UserError
from keeper.localnet import instructions, program
from keeper.localnet.command import Localnet, Options
from keeper.localnet.flow import is_open_perp, order_params
from keeper.localnet.instructions import TxFailed
from keeper.localnet.server import listening
from keeper.venues.local.specs import spec
from keeper.wallet import write_keypair
from tests.conftest import KEEPER

try:
    program.find_program()
except UserError as exc:
    pytest.skip(f"needs the Drift program binary: {exc}", allow_module_level=True)

TTL = 5
SOL_PERP = spec("SOL-PERP")


@pytest.fixture
async def chain(tmp_path):
    wallet = Keypair()
    path = write_keypair(tmp_path / "wallet.json", wallet)
    # A flat oracle keeps the AMM at its 1 bp half-spread, so our 0.5 bp quotes stay the best price
    # and a taker at their price can only be filled by them.
    flat = tmp_path / "flat.csv"
    flat.write_text("timestamp,price\n0,100\n1000000,100\n")
    net = Localnet(Options(slot_ms=100, seed=5, price_path=str(flat)), wallet)
    stop = asyncio.Event()
    async with listening(net.chain) as url:
        clock = asyncio.ensure_future(net.run_clock(stop))
        try:
            yield net, url, path, wallet
        finally:
            stop.set()
            await clock


async def _keeper(home, *args, wait: bool = True):
    child = await asyncio.create_subprocess_exec(*KEEPER, *args, cwd=home, stdout=asyncio.subprocess.PIPE,
                                                 stderr=asyncio.subprocess.PIPE)
    if not wait:
        return child
    out, err = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == 0, err.decode()
    return child


def _ours(net, wallet) -> tuple[list, int]:
    """Our open SOL-PERP keeper orders and our SOL-PERP position (base 1e9)."""
    user = decode(bytes(net.chain.get_account(net.exchange.user(wallet.pubkey())).data))
    orders = [o for o in user.orders if is_open_perp(o, SOL_PERP.market_index) and o.user_order_id]
    base = next((p.base_asset_amount for p in user.perp_positions if p.market_index == SOL_PERP.market_index), 0)
    return orders, base


def _take(net, wallet, order) -> str:
    """A taker IOC order at the resting order's own price, naming our user as its only maker."""
    side = "ask" if "Long" in str(order.direction) else "bid"
    take = order_params(SOL_PERP.market_index, side, SOL_PERP.min_order_size, price=order.price, post_only=False,
                        ioc=True)
    maker = (net.exchange.user(wallet.pubkey()), wallet.pubkey())
    try:
        instructions.send(net.chain, net.flow.taker, [instructions.place_and_take_ix(net.exchange, net.flow.taker.pubkey(),
                                                                                       take, [maker])])
    except TxFailed as exc:
        return exc.error or str(exc)
    return "ok"


async def _until(predicate, seconds: float = 60):
    for _ in range(int(seconds * 20)):
        if value := predicate():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.fault("process", run=True)
async def test_after_sigkill_and_the_ttl_no_keeper_quote_can_fill(chain, tmp_path, tally, monkeypatch):
    net, url, path, wallet = chain
    live = ["--network", url, "--keypair", str(path)]
    await _keeper(tmp_path, "init", "--yes", *live)
    await _keeper(tmp_path, "deposit", "10000", *live)
    keeper = await _keeper(tmp_path, "run", *live, "--strategy", "fixed_spread", "--param", "floating=false",
                           "--param", "spread_bps=0.5", "--param", "requote_bps=50", "--markets", "SOL-PERP", "--interval", "0.3",
                           "--quote-ttl", str(TTL), "--subscription", "polling", "--archive-dir", "sessions",
                           wait=False)
    try:
        orders = await _until(lambda: len(_ours(net, wallet)[0]) == 2 and _ours(net, wallet)[0])
        now = net.chain.unix_timestamp
        # +1: the chain clock steps to whole seconds once a slot; the keeper stamps from its own clock
        assert all(now < o.max_ts <= now + TTL + 1 for o in orders), [(o.max_ts, now) for o in orders]

        # While they are live, a taker at our price does fill us: the take reaches our orders. (Not
        # in the slot they were placed in: the program fills a maker order from the next slot on.)
        orders = await _until(lambda: [o for o in _ours(net, wallet)[0] if o.slot < net.chain.slot])
        before = _ours(net, wallet)[1]
        assert _take(net, wallet, orders[0]) == "ok"
        assert _ours(net, wallet)[1] != before, "a live keeper quote is fillable"
    finally:
        # The background takers hold off until `keeper status` has shown the dead quotes: at our
        # price a taker may fill one before its TTL, and after it the program cancels an expired
        # maker order a taker names, so which quotes `status` lists would depend on the takers'
        # timing (and under load the wait for the status child is long enough for both).
        monkeypatch.setattr(net.flow, "_take", lambda *args: None)
        keeper.send_signal(signal.SIGKILL)
        await keeper.wait()

    left, _ = _ours(net, wallet)
    assert left, "the dead keeper's quotes still rest"
    expiry = max(o.max_ts for o in left)
    await _until(lambda: net.chain.unix_timestamp > expiry, seconds=TTL + 30)
    status = await _keeper(tmp_path, "status", *live, "--archive-dir", "sessions", wait=False)
    shown, _ = await asyncio.wait_for(status.communicate(), 120)
    assert shown.decode().count("(no longer fillable)") == len(left), shown.decode()
    monkeypatch.undo()  # the takers are back, and try the dead quotes below
    _, base = _ours(net, wallet)
    fillable, answers = 0, []
    for order in left:  # one take per dead quote, each checked on its own
        before = _ours(net, wallet)[1]
        answers.append(_take(net, wallet, order))
        fillable += _ours(net, wallet)[1] != before
    slot = net.chain.slot
    await _until(lambda: net.chain.slot > slot + 30)  # the background takers try too, slot after slot
    tally.fillable_after_ttl(fillable)
    assert fillable == 0, answers
    assert _ours(net, wallet)[1] == base, "no expired quote filled"
