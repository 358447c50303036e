"""The live tape on `keeper localnet`: a keeper session's snapshots carry the fills the program
booked, ours with the program's fee and maker flag, and the tape neither loses a fill across a
dropped websocket nor counts a re-delivered one twice. The chain is the reference: every fill
event is read back by signature and decoded here."""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time

import pytest
from driftpy.types import get_ws_url
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from keeper.archive.reader import open_session
from keeper.drift_idl import decode
from keeper.localnet.program import DRIFT_PROGRAM_ID
from keeper.model import FEE_DENOMINATOR, SpotBalance, Snapshot
from keeper.venues.drift.accounts import perp_base
from keeper.venues.drift.events import events, is_fill, market_of
from keeper.venues.drift.markets import load_deployment, resolve
from keeper.venues.drift.tape import Tape
from tests.conftest import KEEPER
from tests.faulty_rpc import Fault, FaultyRpc
from tests.live import localnet

PORT = 28_979
MARKETS = ["SOL-PERP", "BTC-PERP"]
INDEX = {"SOL-PERP": 0, "BTC-PERP": 1}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with localnet(tmp_path_factory.mktemp("tape"), PORT) as chain:
        yield chain


class ChainFills:
    """Fill events as the chain has them, by (kind, market index, fill_record_id): (slot, record)."""

    def __init__(self, chain):
        self.chain, self._read = chain, {}

    def of(self, address: str, since_slot: int = 0) -> dict:
        before, sigs = None, []
        while True:
            page = self.chain.rpc("getSignaturesForAddress", address, {"limit": 1000, **({"before": before} if before else {})})
            sigs += page
            if len(page) < 1000 or page[-1]["slot"] < since_slot:
                break
            before = page[-1]["signature"]
        out = {}
        for s in sigs:
            if s["err"] is not None or s["slot"] < since_slot:
                continue
            if s["signature"] not in self._read:
                tx = self.chain.rpc("getTransaction", s["signature"], {"encoding": "json", "maxSupportedTransactionVersion": 0})
                self._read[s["signature"]] = (tx["slot"], [e.data for e in events().decode(tx["meta"]["logMessages"])
                                                           if e.name == "OrderActionRecord" and is_fill(e.data)])
            slot, records = self._read[s["signature"]]
            for r in records:
                out[(*market_of(r), r.fill_record_id)] = (slot, r)
        return out

    def mine(self, user: str) -> dict:
        return {k: v for k, v in self.of(user).items() if user in (str(v[1].maker), str(v[1].taker))}


def test_a_live_session_records_the_fills_the_program_booked(chain):
    user = _user_key(chain)
    truth = ChainFills(chain)
    before = set(truth.mine(user))
    child = subprocess.Popen(chain.run_args(markets=",".join(MARKETS)), cwd=chain.home, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # until the flow's takers have hit us on both markets
            new = {k: v for k, v in truth.mine(user).items() if k not in before}
            if len(new) >= 4 and {k[1] for k in new} == {0, 1}:
                break
            time.sleep(1)
        else:
            pytest.fail(f"the taker flow filled us {len(new)} times in 240 s, on markets {sorted({k[1] for k in new})}")
    finally:
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=180)
    assert child.returncode == 0 and "Traceback" not in err, err
    assert "fill events unavailable" not in err and "but our fill events say" not in err, err

    snapshots = [r.value for r in open_session(chain.last_session()).records() if isinstance(r.value, Snapshot)]
    first, last = snapshots[0], snapshots[-1]
    chain_fills = truth.mine(user)
    fills = [f for s in snapshots[1:] for f in s.user.fills]
    assert len(fills) >= 4
    ids = [(INDEX[f.market], f.fill_record_id) for f in fills]
    tags = {o.order_id: o.user_order_id for s in snapshots for o in s.user.open_orders}  # the keeper's tags
    assert len(set(ids)) == len(ids), "a fill counted twice"
    for f in fills:  # each is one the program booked, with its price, size, fee and maker flag
        slot, record = chain_fills[("perp", INDEX[f.market], f.fill_record_id)]
        assert first.slot <= slot <= last.slot
        assert f.maker == (str(record.maker) == user) and f.maker, "post-only quotes fill as makers"
        assert (f.size, f.fee, f.order_id) == (record.base_asset_amount_filled, record.maker_fee, record.maker_order_id)
        quote = record.quote_asset_amount_filled
        assert f.fee == -(quote * first.markets[f.market].spec.maker_rebate // FEE_DENOMINATOR)
        assert f.user_order_id == tags.get(f.order_id, f.user_order_id) != 0 and f.ts == record.ts * 1000
    assert any(f.fee < 0 for f in fills if f.market == "SOL-PERP"), "SOL-PERP pays makers a rebate"
    # None lost: the fills explain the position exactly, and the chain's count brackets theirs
    # (a fill in a first or last snapshot's own slot may land just after that snapshot read us).
    for name in MARKETS:
        signed = sum(f.size if f.side == "bid" else -f.size for f in fills if f.market == name)
        assert signed == _base(last, name) - _base(first, name), name
    inside = [k for k, (slot, _) in chain_fills.items() if first.slot < slot < last.slot]
    edges = [k for k, (slot, _) in chain_fills.items() if first.slot <= slot <= last.slot]
    assert len(inside) <= len(fills) <= len(edges)
    assert set(inside) <= {("perp", *i) for i in ids}

    # The tape: every print on the quoted markets, ours among them, each once.
    trades = {(name, t.fill_record_id): t for s in snapshots for name, m in s.markets.items() for t in m.trades}
    assert len(trades) == sum(len(m.trades) for s in snapshots for m in s.markets.values())
    for f in fills:
        t = trades[(f.market, f.fill_record_id)]
        assert (t.maker, t.price, t.size, t.maker_fee) == (user, f.price, f.size, f.fee)
    assert any(t.maker is None for t in trades.values()), "the vAMM's fills are prints too"
    assert {s.user.spot_balances["USDC"] for s in snapshots} == {SpotBalance("USDC", 0, 6, 10_000 * 10**6)}

    # The tape round trip: replayed with its own strategy, the session fills about as often.
    out = chain.home / "replay.json"
    replay = subprocess.run([*KEEPER, "replay", str(chain.last_session()), "--json", str(out)], cwd=chain.home,
                            capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0, replay.stderr
    replayed = json.loads(out.read_text())["summary"]["total"]["fills"]
    assert abs(replayed - len(fills)) <= max(2, 0.3 * len(fills)), (replayed, len(fills))


def _user_key(chain) -> str:
    from driftpy.addresses import get_user_account_public_key

    from keeper.wallet import load_keypair

    return str(get_user_account_public_key(DRIFT_PROGRAM_ID, load_keypair(chain.wallet).pubkey(), 0))


def _base(snapshot: Snapshot, name: str) -> int:
    p = snapshot.user.positions.get(name)
    return p.base if p else 0


async def _read_user(client: AsyncClient, key: Pubkey):
    reply = await client.get_multiple_accounts([key])
    return reply.context.slot, decode(bytes(reply.value[0].data))


async def _a_taker(chain) -> str:
    """The flow's taker: the user in most of the chain's prints."""
    for _ in range(600):
        found = ChainFills(chain).of(str(DRIFT_PROGRAM_ID), since_slot=chain.rpc("getSlot") - 100)
        takers = [str(r.taker) for _, r in found.values() if r.taker is not None and r.maker is not None]
        if takers:
            return max(set(takers), key=takers.count)
        await asyncio.sleep(0.1)
    raise AssertionError("no fill between two users on the chain")


@pytest.mark.fault("websocket")
@pytest.mark.parametrize("subscription", ["websocket", "polling"])
async def test_the_tape_loses_no_fill_across_a_dropped_websocket_and_counts_none_twice(chain, subscription):
    taker = await _a_taker(chain)
    async with FaultyRpc(chain.url) as proxy:
        client = AsyncClient(proxy.url, commitment=Confirmed, timeout=10)
        deployment = await load_deployment(client, resolve(proxy.url), MARKETS)
        specs = {(m.spec.kind, m.spec.market_index): m.spec for m in deployment.markets.values()}
        tape = Tape(client, taker, specs, subscription=subscription, ws_url=get_ws_url(proxy.url))
        key = Pubkey.from_string(taker)
        drained, reads = [], []

        async def drain_until(done, ticks: int = 0, seconds: float = 120):
            deadline, count = time.monotonic() + seconds, 0
            while count < ticks or not done():
                assert time.monotonic() < deadline, "the tape never got there"
                slot, account = await _read_user(client, key)
                drained.append(await tape.drain(account, slot))
                reads.append((slot, account))
                count += 1
                await asyncio.sleep(0.3)  # a keeper tick

        try:
            await drain_until(lambda: tape.live or subscription == "polling", ticks=3)
            if subscription == "websocket":
                streamed_only = tape.backfilled
                proxy.websockets_down()
                await drain_until(lambda: not tape.live, ticks=8)  # trades go on landing meanwhile
                assert tape.backfilled > streamed_only, "read by signature while the stream was down"
                proxy.websockets_up()
                await drain_until(lambda: tape.live and tape.connects == 2, ticks=3)
            await drain_until(lambda: True, ticks=5)
            # Re-delivered: a transaction already read, again, and its events under another signature.
            sig, slot, logs = _a_read_fill(chain, taker, before_slot=reads[-1][0])
            duplicates = tape.duplicates
            tape.read(sig, slot, logs)
            tape.read("re-delivered " + sig, slot, logs)
            assert tape.duplicates > duplicates
            await drain_until(lambda: True, ticks=1)
        finally:
            await tape.close()
            await client.close()

    assert all(d.fills is not None for d in drained), [d.why for d in drained if d.fills is None]
    (s0, first), (s1, last) = reads[0], reads[-1]
    tape_trades = [(name, t.fill_record_id, t.slot) for d in drained for name, ts in d.trades.items() for t in ts]
    assert len({t[:2] for t in tape_trades}) == len(tape_trades), "a print counted twice"
    truth = {(name, k[2]): slot for k, (slot, _) in ChainFills(chain).of(str(DRIFT_PROGRAM_ID), since_slot=s0).items()
             for name in MARKETS if k[:2] == ("perp", INDEX[name])}
    assert {t[:2] for t in tape_trades} <= set(truth)
    missing = [k for k, slot in truth.items() if s0 < slot < s1 and k not in {t[:2] for t in tape_trades}]
    assert not missing, f"{len(missing)} prints lost"
    # the taker's own fills, exactly what moved its positions
    fills = [f for d in drained[1:] for f in d.fills]
    assert fills and len({(f.market, f.fill_record_id) for f in fills}) == len(fills)
    assert all(not f.maker for f in fills)
    for name in MARKETS:
        signed = sum(f.size if f.side == "bid" else -f.size for f in fills if f.market == name)
        assert signed == perp_base(last, INDEX[name]) - perp_base(first, INDEX[name]), name


def _a_read_fill(chain, user: str, before_slot: int) -> tuple[str, int, list[str]]:
    """A transaction of `user`'s with a fill on our markets, landed before `before_slot`."""
    for s in chain.rpc("getSignaturesForAddress", user, {"limit": 1000}):
        if s["slot"] >= before_slot or s["err"] is not None:
            continue
        tx = chain.rpc("getTransaction", s["signature"], {"encoding": "json", "maxSupportedTransactionVersion": 0})
        logs = tx["meta"]["logMessages"]
        if any(e.name == "OrderActionRecord" and is_fill(e.data) and market_of(e.data) in {("perp", 0), ("perp", 1)}
               for e in events().decode(logs)):
            return s["signature"], tx["slot"], logs
    raise AssertionError("no fill of the taker's on our markets")


async def test_fills_the_tape_could_not_vouch_for_are_never_added_later(chain):
    """An RPC failure leaves one snapshot's fills to the venue's inference; those fills' events,
    read afterwards, go on the tape as prints but never again as our fills."""
    taker = await _a_taker(chain)
    async with FaultyRpc(chain.url) as proxy:
        client = AsyncClient(proxy.url, commitment=Confirmed, timeout=10)
        deployment = await load_deployment(client, resolve(proxy.url), MARKETS)
        specs = {(m.spec.kind, m.spec.market_index): m.spec for m in deployment.markets.values()}
        tape = Tape(client, taker, specs, subscription="polling")
        key = Pubkey.from_string(taker)
        drained = []

        async def drain():
            slot, account = await _read_user(client, key)
            drained.append((slot, await tape.drain(account, slot)))
            accounts.append(account)
            await asyncio.sleep(0.3)  # a keeper tick

        accounts = []
        try:
            for _ in range(5):
                await drain()
            previous_slot = drained[-1][0]
            proxy.plan("getSignaturesForAddress", [], then=Fault.HTTP_503)
            chain_fills = ChainFills(chain)  # the taker's, as the chain has them
            for _ in range(400):  # fail until a fill of the taker's on our markets landed meanwhile, and drain once more
                await drain()
                if any(previous_slot < slot <= drained[-2][0] for k, (slot, _) in chain_fills.of(taker, previous_slot).items()
                       if k[1] in INDEX.values()):
                    break
            proxy.plan("getSignaturesForAddress", [])
            for _ in range(5):
                await drain()
        finally:
            await client.close()
    failed = [(slot, d) for slot, d in drained if d.fills is None]
    assert failed and all("503" in d.why for _, d in failed), [d.why for _, d in failed]
    failed_slot = failed[-1][0]
    # What the failed snapshots' User showed is the inference's; the tape counts the rest, once.
    tape_fills = [f for _, d in drained[1:] if d.fills is not None for f in d.fills]
    assert tape_fills, "the taker kept trading"
    assert len({(f.market, f.fill_record_id) for f in tape_fills}) == len(tape_fills)
    for name, index in INDEX.items():
        counted = sum(f.size if f.side == "bid" else -f.size for f in tape_fills if f.market == name)
        inferred = sum(perp_base(accounts[i], index) - perp_base(accounts[i - 1], index)
                       for i, (_, d) in enumerate(drained) if i and d.fills is None)
        assert counted + inferred == perp_base(accounts[-1], index) - perp_base(accounts[0], index), name
    prints = {(name, t.fill_record_id): t.slot for slot, d in drained for name, ts in d.trades.items() for t in ts}
    assert any(previous_slot < s <= failed_slot for s in prints.values()), "the failed snapshots' prints came in later"
