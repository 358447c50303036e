"""The Node DLOB helper seen from Python, at 5,000 resting orders on one market.

Users are real mainnet User accounts (../shared/data/real) cloned under new pubkeys, each given
20 orders on SOL-PERP: fixed-price and oracle-offset (floating) bids and asks at varied prices.
Reports, as round trips from Python (asyncio pipe, JSON both ways, the reply turned into a Book):
- start-up: spawn until the first ping is answered, and a full restart (spawn + re-sending every account);
- the L2+L3 snapshot (20 levels a side + every resting order), and L2 alone, with an unchanged
  book (the oracle moves every time, so floating orders reprice);
- the same L2+L3 snapshot on a book of 450 orders, about the real SOL-PERP book (418 to 487 resting
  limit orders in the Dec 2023 L3 snapshots), in a helper of its own;
- an incremental upsert of 1 and 10 changed accounts, and the snapshot right after it (the
  market's DLOB is rebuilt then).

    .venv/bin/python bench/dlob_helper.py [ORDERS] [ROUNDS]
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import signal
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import percentile  # noqa: E402

from solders.pubkey import Pubkey  # noqa: E402

from keeper.venues.drift.dlob import DlobHelper, HelperFailed  # noqa: E402

DUMPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "drift_account_dumps.jsonl"
ORDERS_PER_USER = 20
SLOT, ORACLE, TICK = 300_000_000, 85_000_000, 100
REAL_BOOK = 450  # orders: about SOL-PERP's real book
# Order and PerpPosition layouts inside a User account (Drift IDL, 96 bytes each).
ORDER = struct.Struct("<QQQQQQqqqiIHBBBBBBBBBBBBBx")
ORDERS_AT, PERP_POSITIONS_AT = 1192, 424


def users(total_orders: int, seed: int = 7) -> dict[str, bytes]:
    rows = [json.loads(line) for line in DUMPS.open()]
    templates = [base64.b64decode(r["data_base64"]) for r in rows if r["account_type"] == "User"]
    rng = random.Random(seed)
    accounts = {}
    for n in range(-(-total_orders // ORDERS_PER_USER)):
        data = bytearray(templates[n % len(templates)])
        data[PERP_POSITIONS_AT : ORDERS_AT + 32 * 96] = bytes(ORDERS_AT + 32 * 96 - PERP_POSITIONS_AT)
        for i in range(min(ORDERS_PER_USER, total_orders - n * ORDERS_PER_USER)):
            data[ORDERS_AT + 96 * i : ORDERS_AT + 96 * (i + 1)] = order(rng, n * 100 + i, i % 2)
        accounts[str(Pubkey(hashlib.sha256(f"bench-{n}".encode()).digest()))] = bytes(data)
    return accounts


def order(rng: random.Random, order_id: int, direction: int) -> bytes:
    away = rng.randint(1, 2_000) * TICK  # up to $0.20 from the oracle
    floating = rng.random() < 0.3
    price = 0 if floating else ORACLE - away if direction == 0 else ORACLE + away
    offset = (-away if direction == 0 else away) if floating else 0
    base = rng.randint(1, 500) * 10**7
    # slot, price, base, filled, quote filled, trigger, auction start/end, max_ts, offset, id, market,
    # open, limit, perp, user_order_id, existing dir, dir, reduce_only, post_only, ioc, trigger cond, auction...
    return ORDER.pack(SLOT - rng.randint(1, 10**6), price, base, 0, 0, 0, 0, 0, 0, offset, order_id, 0,
                      1, 1, 1, 0, 0, direction, False, True, False, 0, 0, 0, 0)


def changed(account: bytes, rng: random.Random) -> bytes:
    """The same user, having moved its first order."""
    data = bytearray(account)
    data[ORDERS_AT : ORDERS_AT + 96] = order(rng, 99_999, 0)
    return bytes(data)


async def timed(call) -> float:
    start = time.perf_counter()
    await call
    return (time.perf_counter() - start) * 1e3


def summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    return f"{name}: p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms"


async def snapshot_rounds(helper: DlobHelper, rounds: int, rng: random.Random) -> list[float]:
    """L2+L3 snapshots of an unchanged book, the oracle moving every time."""
    times = []
    for i in range(rounds):
        oracle = ORACLE + rng.randint(-50, 50) * TICK
        times.append(await timed(helper.book("perp", 0, SLOT + i, oracle, depth=20)))
    return times


async def real_sized(rounds: int) -> list[float]:
    helper = DlobHelper(timeout=10.0)
    try:
        await helper.upsert(users(REAL_BOOK))
        assert len((await helper.book("perp", 0, SLOT, ORACLE, depth=20)).l3) == REAL_BOOK
        return await snapshot_rounds(helper, rounds, random.Random(13))
    finally:
        await helper.close()


async def main(total_orders: int, rounds: int) -> None:
    accounts = users(total_orders)
    rng = random.Random(11)

    startups = []
    for _ in range(5):
        helper = DlobHelper()
        await helper.start()
        startups.append(helper.startup_s * 1e3)
        await helper.close()

    helper = DlobHelper(timeout=10.0)
    await helper.start()
    initial = await timed(helper.upsert(accounts))
    book = await helper.book("perp", 0, SLOT, ORACLE, depth=20)
    assert len(book.l3) == total_orders, len(book.l3)

    snapshots, l2_only = [], []
    for i in range(rounds):
        oracle = ORACLE + rng.randint(-50, 50) * TICK
        snapshots.append(await timed(helper.book("perp", 0, SLOT + i, oracle, depth=20)))
        l2_only.append(await timed(helper.book("perp", 0, SLOT + i, oracle, depth=20, l3=False)))

    pubkeys = list(accounts)
    upsert_1, upsert_10, after_upsert = [], [], []
    for i in range(rounds):
        one = rng.choice(pubkeys)
        upsert_1.append(await timed(helper.upsert({one: changed(accounts[one], rng)})))
        ten = rng.sample(pubkeys, 10)
        upsert_10.append(await timed(helper.upsert({p: changed(accounts[p], rng) for p in ten})))
        after_upsert.append(await timed(helper.book("perp", 0, SLOT + rounds + i, ORACLE, depth=20)))

    real = await real_sized(rounds)

    os.kill(helper.pid, signal.SIGKILL)
    try:
        await helper.book("perp", 0, SLOT, ORACLE)
    except HelperFailed:
        pass
    restart = await timed(helper.start())
    await helper.close()

    print(f"dlob helper, {total_orders:,} resting orders on one market, {len(accounts):,} users, {rounds} rounds")
    print(f"  {summary('start-up (spawn to first ping)', startups)}; "
          f"restart with re-send of {len(accounts):,} accounts: {restart:.0f} ms; first upsert of all: {initial:.0f} ms")
    print(f"  {summary(f'L2+L3 snapshot at {total_orders:,} orders, unchanged book', snapshots)}")
    print(f"  {summary(f'L2+L3 snapshot at {REAL_BOOK} orders (about the real SOL-PERP book), unchanged book', real)}")
    print(f"  {summary('L2 only (20 levels a side)', l2_only)}")
    print(f"  {summary('upsert 1 changed account', upsert_1)}; {summary('upsert 10', upsert_10)}")
    print(f"  {summary('L2+L3 snapshot right after an upsert (DLOB rebuilt)', after_upsert)}")


if __name__ == "__main__":
    if not DUMPS.exists():
        sys.exit(f"real account dumps not found at {DUMPS}")
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5_000, int(sys.argv[2]) if len(sys.argv) > 2 else 200))
