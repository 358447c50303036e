"""The Node DLOB helper (js_src/dlob_helper.js) and its Python bridge, on real Drift User accounts.

Expected books are derived independently of the SDK: accounts decoded by driftpy, filtered and
priced by the DLOB's rules (resting limit orders; floating ones at oracle + offset; reduce-only
sizes clamped to the position in L2 only).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from driftpy.decode.user import decode_user
from solders.pubkey import Pubkey

from keeper.model import Book, BookOrder, Level
from keeper.venues.drift.dlob import SCRIPT, DlobHelper, HelperFailed, RequestRejected

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not (ROOT / "node_modules" / "@drift-labs" / "sdk").exists() or shutil.which("node") is None,
    reason="node or node_modules/@drift-labs/sdk is absent (run npm ci)",
)

SLOT = 300_000_000  # after every order in the dumps: their auctions are long over
ORACLE = 60_000_000  # $60, near the SOL prices of the 2023 dumps

# --- User accounts with orders we choose, built on real account bytes --------------------------
# Order and PerpPosition as laid out in a User account (Drift IDL; 96 bytes each).
ORDER = struct.Struct("<QQQQQQqqqiIHBBBBBBBBBBBBBx")
ORDERS_AT, PERP_POSITIONS_AT = 1192, 424
MARKET, LIMIT, TRIGGER_MARKET, TRIGGER_LIMIT = 0, 1, 2, 3
SPOT, PERP = 0, 1
LONG, SHORT = 0, 1
ABOVE, BELOW, TRIGGERED_ABOVE = 0, 1, 2


def pubkey(seed: str) -> str:
    return str(Pubkey(hashlib.sha256(seed.encode()).digest()))


def order(order_id: int, direction: int, base: int, *, price: int = 0, offset: int = 0, market_index: int = 0,
          market_type: int = PERP, order_type: int = LIMIT, slot: int = 250_000_000, filled: int = 0,
          post_only: bool = True, reduce_only: bool = False, auction_duration: int = 0,
          trigger_condition: int = ABOVE, status: int = 1) -> bytes:
    return ORDER.pack(slot, price, base, filled, 0, 0, 0, 0, 0, offset, order_id, market_index, status, order_type,
                      market_type, 0, LONG, direction, reduce_only, post_only, False, trigger_condition,
                      auction_duration, 0, 0)


def with_orders(template: bytes, orders: list[bytes], positions: tuple[tuple[int, int, int], ...] = ()) -> bytes:
    """`template` (a real User account) with exactly these orders and perp positions
    (market_index, base, open_orders)."""
    data = bytearray(template)
    data[ORDERS_AT : ORDERS_AT + 32 * 96] = bytes(32 * 96)
    for i, raw in enumerate(orders):
        data[ORDERS_AT + 96 * i : ORDERS_AT + 96 * (i + 1)] = raw
    data[PERP_POSITIONS_AT : PERP_POSITIONS_AT + 8 * 96] = bytes(8 * 96)
    for i, (market_index, base, open_orders) in enumerate(positions):
        at = PERP_POSITIONS_AT + 96 * i
        struct.pack_into("<q", data, at + 8, base)
        struct.pack_into("<HB", data, at + 92, market_index, open_orders)
    return bytes(data)


# --- the expected book, from driftpy's decode ---------------------------------------------------

def _name(variant) -> str:
    return type(variant).__name__


def expected(accounts: dict[str, bytes], market_type: str, market_index: int, slot: int, oracle: int):
    """(bids, asks) of (price, size, fillable, user, order_id, offset, post_only), best first."""
    sides = {"bid": [], "ask": []}
    for user, data in accounts.items():
        account = decode_user(data)
        for o in account.orders:
            if _name(o.status) != "Open" or _name(o.market_type).lower() != market_type or o.market_index != market_index:
                continue
            kind = _name(o.order_type)
            if kind not in ("Limit", "TriggerLimit"):
                continue
            if kind == "TriggerLimit" and _name(o.trigger_condition) not in ("TriggeredAbove", "TriggeredBelow"):
                continue
            floating = o.oracle_price_offset != 0
            if not floating and o.price == 0:
                continue  # no limit price: it only ever takes
            auction_over = o.auction_duration == 0 or slot - o.slot > o.auction_duration
            if not (floating or o.post_only or auction_over):
                continue  # still taking: not in the resting book yet
            if o.base_asset_amount_filled == o.base_asset_amount:
                continue
            side = "bid" if _name(o.direction) == "Long" else "ask"
            clamped = o.base_asset_amount
            if o.reduce_only:  # OrderSubscriber.getDLOB's clamp
                position = next((p.base_asset_amount for p in account.perp_positions
                                 if p.market_index == o.market_index and p.open_orders > 0), 0)
                clamped = min(abs(min(position, 0)), clamped) if side == "bid" else min(max(position, 0), clamped)
            price = max(oracle + o.oracle_price_offset, 1) if floating else o.price
            sides[side].append((price, o.base_asset_amount - o.base_asset_amount_filled,
                                max(clamped - o.base_asset_amount_filled, 0), user, o.order_id,
                                o.oracle_price_offset or None, o.post_only))
    sides["bid"].sort(key=lambda r: -r[0])
    sides["ask"].sort(key=lambda r: r[0])
    return sides["bid"], sides["ask"]


def l3_of(rows, side: str) -> list[BookOrder]:
    return [BookOrder(side, price, size, user, order_id, offset, post_only)
            for price, size, _, user, order_id, offset, post_only in rows]


def aggregate(rows) -> list[Level]:
    levels: list[Level] = []
    for price, _, fillable, *_ in rows:
        if fillable <= 0:
            continue
        if levels and levels[-1].price == price:
            levels[-1] = Level(price, levels[-1].size + fillable)
        else:
            levels.append(Level(price, fillable))
    return levels


def assert_book_matches(book: Book, accounts: dict[str, bytes], market_type: str, market_index: int,
                        slot: int = SLOT, oracle: int = ORACLE) -> None:
    bids, asks = expected(accounts, market_type, market_index, slot, oracle)
    got_bids = [o for o in book.l3 if o.side == "bid"]
    got_asks = [o for o in book.l3 if o.side == "ask"]
    # The same orders, best first (orders at one price may come in either list's order).
    assert sorted(got_bids, key=repr) == sorted(l3_of(bids, "bid"), key=repr)
    assert sorted(got_asks, key=repr) == sorted(l3_of(asks, "ask"), key=repr)
    assert [o.price for o in got_bids] == [r[0] for r in bids]
    assert [o.price for o in got_asks] == [r[0] for r in asks]
    assert list(book.bids) == aggregate(bids)
    assert list(book.asks) == aggregate(asks)


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture
def dumps(shared_data: Path) -> list[dict]:
    with open(shared_data / "drift_account_dumps.jsonl") as f:
        return [json.loads(line) for line in f]


@pytest.fixture
def real_users(dumps) -> dict[str, bytes]:
    """Every real User dump; most were stored without their address, so they get stable made-up ones."""
    return {row["pubkey"] or pubkey(row["id"]): base64.b64decode(row["data_base64"])
            for row in dumps if row["account_type"] == "User"}


@pytest.fixture
def synthetic(real_users) -> dict[str, bytes]:
    """120 users cloned from the real accounts, each with a mix of orders on SOL-PERP (and elsewhere)."""
    templates = list(real_users.values())
    accounts = {}
    for n in range(120):
        oid = 100 + n * 10
        tick = 100
        bid = 59_000_000 - (n % 40) * 250 * tick
        ask = 61_000_000 + (n % 40) * 250 * tick
        orders = [
            order(oid, LONG, (1 + n % 7) * 10**8, price=bid, slot=250_000_000 + n),
            order(oid + 1, SHORT, (2 + n % 5) * 10**8, price=ask, slot=250_000_000 + n, post_only=n % 2 == 0),
            # floating: oracle offset, priced at oracle + offset
            order(oid + 2, LONG, 3 * 10**8, offset=-(1 + n % 9) * 10_000),
            order(oid + 3, SHORT, 4 * 10**8, offset=(1 + n % 11) * 10_000),
            # partially filled
            order(oid + 4, SHORT, 10 * 10**8, price=ask + 5 * tick, filled=(n % 10) * 10**8),
            # never in the resting book: market and untriggered trigger orders, another market, spot
            order(oid + 5, LONG, 10**9, order_type=MARKET, post_only=False, auction_duration=10),
            order(oid + 6, SHORT, 10**9, price=50_000_000, order_type=TRIGGER_LIMIT, trigger_condition=BELOW),
            order(oid + 7, LONG, 10**9, price=bid, market_index=1),
            order(oid + 8, SHORT, 10**9, price=ask, market_type=SPOT, market_index=1),
        ]
        positions = ()
        if n % 6 == 0:
            # reduce-only asks against a 0.5 long: the L2 counts at most 0.5 of them, the L3 all
            orders.append(order(oid + 9, SHORT, 2 * 10**9, price=ask, reduce_only=True, post_only=False))
            positions = ((0, 5 * 10**8, 2),)
        if n % 15 == 1:
            # a reduce-only bid with no short to reduce: in the L3, not in the L2
            orders.append(order(oid + 9, LONG, 10**9, price=bid, reduce_only=True))
        if n % 20 == 2:
            # a triggered trigger-limit rests like a limit
            orders.append(order(oid + 9, LONG, 10**9, price=bid - tick, order_type=TRIGGER_LIMIT,
                                trigger_condition=TRIGGERED_ABOVE))
        accounts[pubkey(f"synthetic-{n}")] = with_orders(templates[n % len(templates)], orders, positions)
    return accounts




# --- books --------------------------------------------------------------------------------------

async def test_real_accounts_give_the_orders_driftpy_decodes(helper, real_users):
    assert await helper.upsert(real_users) == {}
    seen = 0
    for market_type, market_index in (("perp", 0), ("perp", 18), ("spot", 1), ("perp", 1), ("perp", 5)):
        book = await helper.book(market_type, market_index, SLOT, ORACLE, depth=100)
        assert_book_matches(book, real_users, market_type, market_index)
        seen += len(book.l3)
    # SOL-PERP's real resting orders: 4 bids (one reduce-only, clamped to the 5.5 SOL short) and an ask
    sol = await helper.book("perp", 0, SLOT, ORACLE)
    assert [o.price for o in sol.l3] == [69_007_500, 67_990_000, 61_169_000, 50_000_000, 900_000_000]
    assert sol.bids[0] == Level(69_007_500, 5_500_000_000)
    assert seen == 10  # 5 on SOL-PERP, 2 on perp 18, 3 on spot 1


async def test_many_kinds_of_orders_match_driftpy(helper, synthetic):
    assert await helper.upsert(synthetic) == {}
    book = await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
    assert_book_matches(book, synthetic, "perp", 0)
    assert len(book.l3) == 120 * 5 + 20 + 8 + 6
    # reduce-only clamping really happened: the L2 holds less than the L3 at those prices
    assert sum(level.size for level in book.asks) < sum(o.size for o in book.l3 if o.side == "ask")
    floating = [o for o in book.l3 if o.oracle_offset is not None]
    assert len(floating) == 240 and all(o.price == ORACLE + o.oracle_offset for o in floating)
    # the oracle moves: floating orders move with it, fixed ones stay
    moved = await helper.book("perp", 0, SLOT, ORACLE + 1_000_000, depth=1000)
    assert_book_matches(moved, synthetic, "perp", 0, oracle=ORACLE + 1_000_000)
    # depth limits the L2, not the L3; l3=False leaves it out
    shallow = await helper.book("perp", 0, SLOT, ORACLE, depth=3, l3=False)
    assert shallow.bids == book.bids[:3] and shallow.asks == book.asks[:3] and shallow.l3 is None
    # the other markets hold their own orders only
    assert_book_matches(await helper.book("perp", 1, SLOT, ORACLE, depth=1000), synthetic, "perp", 1)
    assert_book_matches(await helper.book("spot", 1, SLOT, ORACLE, depth=1000), synthetic, "spot", 1)


async def test_limit_orders_join_the_resting_book_when_their_auction_ends(helper, real_users):
    template = next(iter(real_users.values()))
    user = pubkey("taker")
    account = with_orders(template, [order(1, LONG, 10**9, price=59_000_000, slot=SLOT, post_only=False,
                                           auction_duration=20)])
    await helper.upsert({user: account})
    assert (await helper.book("perp", 0, SLOT + 5, ORACLE)).l3 == ()
    later = await helper.book("perp", 0, SLOT + 21, ORACLE)
    assert later.l3 == (BookOrder("bid", 59_000_000, 10**9, user, 1, None, False),)
    # an earlier slot again: the book is rebuilt for it, not left with the later view
    assert (await helper.book("perp", 0, SLOT + 5, ORACLE)).l3 == ()


async def test_upserts_and_removals_are_reflected(helper, synthetic, real_users):
    await helper.upsert(synthetic)
    users = list(synthetic)
    template = next(iter(real_users.values()))
    # one account changes: new orders replace its old ones
    changed = with_orders(template, [order(7, LONG, 3 * 10**9, price=59_995_000), order(8, SHORT, 10**9, price=60_005_000)])
    state = dict(synthetic, **{users[0]: changed})
    await helper.upsert({users[0]: changed})
    book = await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
    assert_book_matches(book, state, "perp", 0)
    assert book.bids[0] == Level(59_995_000, 3 * 10**9) and book.asks[0] == Level(60_005_000, 10**9)
    # an account cancels everything
    emptied = with_orders(template, [])
    state[users[1]] = emptied
    await helper.upsert({users[1]: emptied})
    assert_book_matches(await helper.book("perp", 0, SLOT, ORACLE, depth=1000), state, "perp", 0)
    # accounts go away
    assert await helper.remove(users[:10] + ["never-seen"]) == 10
    for user in users[:10]:
        del state[user]
    book = await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
    assert_book_matches(book, state, "perp", 0)
    assert not {o.user for o in book.l3} & set(users[:10])
    assert helper.accounts == len(state)
    # and a reset empties the book
    await helper.reset()
    assert await helper.book("perp", 0, SLOT, ORACLE) == Book((), (), ())


async def test_only_order_changes_rebuild_the_book(helper, synthetic):
    await helper.upsert(synthetic)
    before = await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
    builds = int((await helper.ping())["builds"])
    user = next(iter(synthetic))
    # total_deposits and last_active_slot move all the time; the book does not care
    busy = bytearray(synthetic[user])
    struct.pack_into("<Q", busy, 4272, 123_456_789)
    struct.pack_into("<Q", busy, 4328, SLOT)
    await helper.upsert({user: bytes(busy)})
    assert await helper.book("perp", 0, SLOT, ORACLE, depth=1000) == before
    assert int((await helper.ping())["builds"]) == builds
    # an order fill does
    filled = with_orders(synthetic[user], [order(1, LONG, 10**9, price=59_999_900, filled=4 * 10**8)])
    await helper.upsert({user: filled})
    book = await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
    assert book.bids[0] == Level(59_999_900, 6 * 10**8)
    assert_book_matches(book, dict(synthetic, **{user: filled}), "perp", 0)
    assert int((await helper.ping())["builds"]) == builds + 1


async def test_unreadable_accounts_are_rejected_and_dropped(helper, dumps, synthetic):
    user = next(iter(synthetic))
    await helper.upsert(synthetic)
    perp_market = base64.b64decode(next(r for r in dumps if r["account_type"] == "PerpMarket")["data_base64"])
    rejected = await helper.upsert({user: perp_market, pubkey("short"): b"\0" * 100})
    assert set(rejected) == {user, pubkey("short")}
    assert "discriminator" in rejected[user] or "bytes" in rejected[user]
    # the account that turned unreadable lost its old orders too, on both sides of the pipe
    book = await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
    assert user not in {o.user for o in book.l3}
    assert helper.accounts == len(synthetic) - 1


async def test_odd_orders_do_not_break_the_book(helper, synthetic, real_users):
    template = next(iter(real_users.values()))
    odd = {
        # a limit order with neither price nor offset: the SDK prices it `undefined` once its auction ends
        pubkey("no-price"): with_orders(template, [order(1, LONG, 10**9, price=0),
                                                   order(2, SHORT, 10**9, price=0, post_only=False,
                                                         auction_duration=10, slot=SLOT)]),
        # an order type this SDK does not know: the account cannot be read
        pubkey("unknown-type"): with_orders(template, [order(1, LONG, 10**9, price=59_000_000, order_type=9)]),
    }
    state = dict(synthetic, **odd)
    assert set(await helper.upsert(state)) == {pubkey("unknown-type")}
    del state[pubkey("unknown-type")]
    for slot in (SLOT, SLOT + 20):
        assert_book_matches(await helper.book("perp", 0, slot, ORACLE, depth=1000), state, "perp", 0, slot=slot)


# --- bad input ----------------------------------------------------------------------------------

def test_bad_requests_get_one_line_errors_and_the_helper_survives(tmp_path):
    bad = [
        b"not json",
        b"\xff\xfe\x00 binary",
        b"[1, 2, 3]",
        b'"a string"',
        b"{}",
        b'{"id": 1, "op": "nope"}',
        b'{"id": 2, "op": "book"}',
        b'{"id": 3, "op": "book", "market_type": "perp", "market_index": 0, "slot": 1.5, "oracle_price": "1"}',
        b'{"id": 4, "op": "book", "market_type": "perp", "market_index": 0, "slot": "1", "oracle_price": "-5"}',
        b'{"id": 5, "op": "book", "market_type": "perp", "market_index": 99999, "slot": "1", "oracle_price": "1"}',
        b'{"id": 6, "op": "book", "market_type": "spot", "market_index": 0, "slot": "1", "oracle_price": "1", "perp_market": "AAAA"}',
        b'{"id": 7, "op": "book", "market_type": "perp", "market_index": 0, "slot": "1", "oracle_price": "1", "perp_market": "AAAA"}',
        b'{"id": 8, "op": "upsert", "accounts": "x"}',
        b'{"id": 9, "op": "remove", "pubkeys": {"a": 1}}',
        b'{"id": 10, "op": "book", "market_type": "perp", "market_index": 0, "slot": "99999999999999999999", "oracle_price": "1"}',
        b'{"id": 11, "op": "__proto__"}',
        b'{"id": 12, "op": "toString"}',
        b'{"id": 13, "op": "book", "market_type": "perp", "market_index": 0, "slot": "1", "oracle_price": "1", "depth": 0}',
        b"[" * 100_000,
    ]
    proc = subprocess.run(["node", str(SCRIPT)], input=b"\n".join(bad) + b'\n{"id": "last", "op": "ping"}\n',
                          capture_output=True, cwd=ROOT, timeout=30)
    assert proc.returncode == 0, proc.stderr.decode()
    replies = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(replies) == len(bad) + 1
    for raw, reply in zip(bad, replies):
        assert set(reply) == {"id", "error"}, (raw, reply)
        assert reply["error"] and "\n" not in reply["error"] and len(reply["error"]) <= 300
    assert [r["id"] for r in replies[6:18]] == list(range(2, 14))
    assert replies[-1]["id"] == "last" and replies[-1]["ok"] is True


async def test_rejected_requests_raise_and_do_not_restart(helper, real_users):
    await helper.upsert(real_users)
    before = await helper.book("perp", 0, SLOT, ORACLE)
    pid = helper.pid
    with pytest.raises(RequestRejected, match="market_index"):
        await helper.book("perp", 70_000, SLOT, ORACLE)
    with pytest.raises(RequestRejected, match="PerpMarket"):
        await helper.book("perp", 0, SLOT, ORACLE, perp_market_bytes=b"\1" * 1216)
    with pytest.raises(TypeError):
        await helper.book("perp", 0, SLOT, 60.5)
    assert helper.pid == pid and helper.starts == 1
    assert await helper.book("perp", 0, SLOT, ORACLE) == before


# --- failures: the request fails, the next one finds a new helper with the whole state -----------

@pytest.mark.fault("helper")
async def test_killed_helper_is_restarted_with_its_accounts(helper, synthetic):
    await helper.upsert(synthetic)
    before = await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
    pid = helper.pid
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(HelperFailed, match="exited") as failure:
        await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
    assert "\n" not in str(failure.value)
    after = await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
    assert after == before and len(after.l3) > 600
    assert helper.pid != pid and helper.starts == 2
    # killed between requests again, then an upsert: it still reaches the new helper
    os.kill(helper.pid, signal.SIGKILL)
    user = next(iter(synthetic))
    with pytest.raises(HelperFailed):
        await helper.upsert({user: with_orders(synthetic[user], [])})
    book = await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
    assert user not in {o.user for o in book.l3} and len(book.l3) < len(before.l3)


@pytest.mark.fault("helper")
async def test_hung_helper_times_out_and_is_replaced(helper, synthetic):
    await helper.upsert(synthetic)
    before = await helper.book("perp", 0, SLOT, ORACLE)
    pid = helper.pid
    helper.timeout = 0.5
    os.kill(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises(HelperFailed, match="no answer"):
            await helper.book("perp", 0, SLOT, ORACLE)
        assert time.monotonic() - start < 3
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGCONT)
    assert not _alive(pid)  # killed and reaped, not left stopped
    assert await helper.book("perp", 0, SLOT, ORACLE) == before
    assert helper.pid != pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


FAKE_HELPER = """
import json, os, sys
# First run: a helper that answers ping and upsert, then prints {garbage!r} (ID: the request's id)
# instead of a book. Later runs: the real helper.
marker, script = sys.argv[1], sys.argv[2]
if os.path.exists(marker):
    os.execvp("node", ["node", script])
open(marker, "w").close()
for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "ping":
        print(json.dumps({{"id": request["id"], "ok": True}}), flush=True)
    elif request["op"] == "upsert":
        print(json.dumps({{"id": request["id"], "ok": True, "rejected": []}}), flush=True)
    else:
        print({garbage!r}.replace("ID", str(request["id"])), flush=True)
"""


@pytest.mark.parametrize("garbage", [
    "price is zero",  # what the SDK's console.log would have put on stdout
    '{"id": 99999, "ok": true}',  # a reply to some other request
    '{"id": ID, "ok": true, "bids": "nonsense"}',  # the right id, a malformed book
])
@pytest.mark.fault("helper")
async def test_garbage_on_stdout_fails_the_request_and_restarts(tmp_path, synthetic, garbage):
    fake = tmp_path / "fake_helper.py"
    fake.write_text(textwrap.dedent(FAKE_HELPER.format(garbage=garbage)))
    helper = DlobHelper(timeout=5.0, command=[sys.executable, str(fake), str(tmp_path / "ran"), str(SCRIPT)])
    try:
        await helper.upsert(synthetic)
        with pytest.raises(HelperFailed, match="garbage|reply"):
            await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
        book = await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
        assert_book_matches(book, synthetic, "perp", 0)
        assert helper.starts == 2
    finally:
        await helper.close()


async def test_a_cancelled_request_leaves_no_mess(helper, synthetic, caplog):
    await helper.upsert(synthetic)
    with pytest.raises(asyncio.TimeoutError):
        # sent, then abandoned: its reply arrives later and must not be taken for the next one's
        await asyncio.wait_for(helper.book("perp", 0, SLOT, ORACLE + 1, depth=1000), 0.001)
    with caplog.at_level("DEBUG", logger="keeper.venues.drift.dlob"):
        book = await helper.book("perp", 0, SLOT, ORACLE, depth=1000)
    assert "abandoned request" in caplog.text
    assert_book_matches(book, synthetic, "perp", 0)
    assert helper.starts == 1


async def test_close_ends_the_helper(synthetic):
    helper = DlobHelper()
    await helper.upsert(synthetic)
    pid = helper.pid
    await helper.close()
    assert helper.pid is None and not _alive(pid)
    with pytest.raises(HelperFailed, match="closed"):
        await helper.book("perp", 0, SLOT, ORACLE)


async def test_concurrent_requests_each_get_their_own_reply(helper, synthetic):
    await helper.upsert(synthetic)
    oracles = [ORACLE + i * 10_000 for i in range(8)]
    books = await asyncio.gather(*(helper.book("perp", 0, SLOT, o, depth=1000) for o in oracles))
    for oracle, book in zip(oracles, books):
        assert_book_matches(book, synthetic, "perp", 0, oracle=oracle)


# --- vAMM levels from a real PerpMarket account ---------------------------------------------------

@pytest.fixture(scope="module")
def perp_coder():
    import driftpy
    from anchorpy import Idl
    from anchorpy.coder.accounts import AccountsCoder

    return AccountsCoder(Idl.from_json((Path(driftpy.__file__).parent / "idl" / "drift.json").read_text()))


def _perp_markets(dumps) -> list[tuple[str, bytes]]:
    return [(row["id"], base64.b64decode(row["data_base64"])) for row in dumps
            if row["account_type"] == "PerpMarket" and row["summary"]["name"] in ("SOL-PERP", "BTC-PERP")]


def _vamm_request(market) -> dict:
    """The market's own last oracle reading, slot and time: the state its bytes were dumped in."""
    amm = market.amm
    return {"market_index": market.market_index, "slot": amm.last_update_slot,
            "oracle_price": amm.historical_oracle_data.last_oracle_price, "oracle_slot": amm.last_update_slot,
            "oracle_conf": amm.historical_oracle_data.last_oracle_conf, "now": amm.last_mark_price_twap_ts}


async def test_vamm_levels_match_driftpy_amm_math(helper, dumps, perp_coder):
    from driftpy.math.amm import calculate_price, calculate_spread_reserves, calculate_updated_amm
    from driftpy.types import OraclePriceData

    markets = _perp_markets(dumps)
    assert len(markets) >= 8
    for dump_id, data in markets:
        m = perp_coder.decode(data)
        r = _vamm_request(m)
        detail = await helper.book_detail("perp", r["market_index"], r["slot"], r["oracle_price"], r["oracle_slot"],
                                          oracle_conf=r["oracle_conf"], perp_market_bytes=data, now=r["now"], depth=5)
        book, tick = detail.book, m.amm.order_tick_size
        assert len(book.bids) == len(book.asks) == 5, dump_id
        assert all(a.price > b.price for a, b in zip(book.bids, book.bids[1:])), dump_id
        assert all(a.price < b.price for a, b in zip(book.asks, book.asks[1:])), dump_id
        assert all(level.size > 0 and level.price % tick == 0 for level in book.bids + book.asks), dump_id
        assert (detail.vamm_bid, detail.vamm_ask) == (book.bids[0].price, book.asks[0].price)
        assert book.l3 == ()
        # driftpy's marginal vAMM prices; the first level is a swap's average price, so a little worse
        oracle = OraclePriceData(r["oracle_price"], r["slot"], r["oracle_conf"], 0, 0, True)
        updated = calculate_updated_amm(m.amm, oracle)
        bid_reserves, ask_reserves = calculate_spread_reserves(updated, oracle, now=r["now"], latest_slot=r["slot"])
        bid = calculate_price(*bid_reserves, updated.peg_multiplier)
        ask = calculate_price(*ask_reserves, updated.peg_multiplier)
        assert bid - r["oracle_price"] // 500 <= detail.vamm_bid <= bid, dump_id
        assert ask <= detail.vamm_ask <= ask + r["oracle_price"] // 500, dump_id


async def test_vamm_levels_merge_with_user_orders(helper, dumps, real_users, perp_coder):
    # SOL-PERP as of slot 405286914 (March 2026)
    data = next(d for i, d in _perp_markets(dumps) if i == "d9d0c2d53a6e510f")
    m = perp_coder.decode(data)
    r = _vamm_request(m)
    tick = m.amm.order_tick_size

    async def book(**kw):
        return await helper.book_detail("perp", 0, r["slot"], r["oracle_price"], r["oracle_slot"],
                                        oracle_conf=r["oracle_conf"], perp_market_bytes=data, now=r["now"], depth=6,
                                        **kw)

    vamm = await book()
    assert vamm.vamm_ask - vamm.vamm_bid > 2 * tick
    inside = vamm.vamm_bid + tick
    user = pubkey("maker")
    await helper.upsert({user: with_orders(next(iter(real_users.values())), [
        order(1, LONG, 10**9, price=inside),
        order(2, LONG, 2 * 10**9, price=vamm.vamm_bid),  # joins the vAMM's level
        order(3, SHORT, 3 * 10**9, price=vamm.book.asks[-1].price + tick),  # behind every vAMM ask shown
    ])})
    merged = await book()
    assert merged.book.bids[0] == Level(inside, 10**9)
    assert merged.book.bids[1] == Level(vamm.vamm_bid, vamm.book.bids[0].size + 2 * 10**9)
    assert merged.book.bids[2:] == vamm.book.bids[1:5]
    assert merged.book.asks == vamm.book.asks  # the user's ask is beyond depth
    assert (merged.vamm_bid, merged.vamm_ask) == (vamm.vamm_bid, vamm.vamm_ask)
    assert [o.order_id for o in merged.book.l3] == [1, 2, 3]
    # without the PerpMarket: the orders alone
    alone = await helper.book("perp", 0, r["slot"], r["oracle_price"], depth=6)
    assert alone.bids == (Level(inside, 10**9), Level(vamm.vamm_bid, 2 * 10**9)) and len(alone.asks) == 1
