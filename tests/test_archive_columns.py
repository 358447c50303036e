"""A session's columns (keeper/archive/columns.py) give back exactly what the archive's records
hold, through the views a replay reads (keeper/archive/tape.py); the cache is used only while
the segments hash as they did, and a session that can't be cached still replays."""
from __future__ import annotations

import json
import shutil


from keeper.archive import tape
from keeper.archive.columns import BLOCK, CACHE_DIR, KEY, open_tape
from keeper.archive.reader import open_session
from keeper.archive.writer import SessionWriter
from keeper.model import Book, Level, Snapshot, replace
from keeper.research.real import build_session
from keeper.venues.sim import AUTHORITY
from test_archive_data import manifest as data_manifest, snapshot as data_snapshot


def _records(path) -> list[tuple[Snapshot, object]]:
    """(snapshot, the execution right after it or None), as the reader gives them."""
    out, records = [], list(open_session(path).records())
    for k, record in enumerate(records):
        if record.kind == "snapshot":
            following = records[k + 1] if k + 1 < len(records) else None
            out.append((record.value, following.value if following is not None and following.kind == "execution" else None))
    return out


def _others(snapshot: Snapshot, name: str, own: set[str]) -> Book:
    """The recorded book without the recorded run's own quotes, worked out from the values."""
    market = snapshot.markets[name]
    remove: dict[tuple[str, int], int] = {}
    for o in snapshot.user.open_orders:
        if o.market == name:
            key = (o.side, o.price_at(market.oracle_price))
            remove[key] = remove.get(key, 0) + o.remaining
    book = market.book

    def side(levels, which):
        kept = [Level(lv.price, lv.size - remove.get((which, lv.price), 0)) for lv in levels]
        return tuple(lv for lv in kept if lv.size > 0)

    l3 = None if book.l3 is None else tuple(o for o in book.l3 if o.user not in own)
    return Book(side(book.bids, "bid"), side(book.asks, "ask"), l3)


def _check(path) -> int:
    """Every snapshot of the tape equals its record, and others' book answers as the values do."""
    expected = _records(path)
    session = open_session(path)
    own = {AUTHORITY, *([session.manifest["user"]] if session.manifest.get("user") else [])}
    served = list(tape.ticks(open_tape(session)))
    assert len(served) == len(expected)
    for (block, i), (snapshot, execution) in zip(served, expected):
        assert (block.ts[i], block.slot[i]) == (snapshot.ts, snapshot.slot)
        assert tape.markets(block, i) == snapshot.markets
        assert tape.user(block, i) == snapshot.user
        assert tape.last_plan(block, i) == snapshot.last_plan
        assert tape.execution(block, i) == execution
        assert (None if block.book_slot_null[i] else block.book_slot[i]) == snapshot.book_slot
        for name, others in tape.others(block, i).items():
            want = _others(snapshot, name, own)
            assert (others.best_bid, others.best_ask, others.bids, others.asks) == (
                want.best_bid, want.best_ask, want.bids, want.asks)
            for side in ("bid", "ask"):
                assert others.ids_on(side) == want.ids_on(side)
                prices = {lv.price for lv in want.bids + want.asks} | {o.price for o in want.l3 or ()}
                for price in prices | {p + 1 for p in prices} | {p - 1 for p in prices}:
                    assert others.size_at(side, price) == want.size_at(side, price)
                    assert others.orders_at(side, price) == want.orders_at(side, price)
    return len(served)


def test_a_local_session_s_columns_equal_its_records_cold_and_warm(local_session, tmp_path):
    copy = tmp_path / "s"
    shutil.copytree(local_session, copy)
    assert not open_tape(open_session(copy)).warm
    assert _check(copy) == 400
    assert (copy / CACHE_DIR / KEY).is_file()
    assert open_tape(open_session(copy)).warm
    assert _check(copy) == 400


def test_real_l3_snapshots_columns_equal_their_records(tmp_path, shared_data):
    session = build_session(tmp_path / "real", markets=("SOL-PERP", "BTC-PERP"))
    assert _check(session) > 0
    assert _check(session) > 0  # warm


def test_blocks_split_a_long_session_and_a_window_starts_inside_one(tmp_path):
    writer = SessionWriter.create(tmp_path, data_manifest())
    snaps = [replace(data_snapshot(k % 5), ts=1_700_000_000_000 + k, slot=10 + k) for k in range(BLOCK + 7)]
    for snap in snaps:
        writer.write_snapshot(snap)
    writer.close()
    for _ in ("cold", "warm"):
        opened = open_tape(open_session(writer.path))
        served = list(tape.ticks(opened, BLOCK - 2, BLOCK + 3))
        assert [block.ts[i] for block, i in served] == [s.ts for s in snaps[BLOCK - 2:BLOCK + 3]]
        assert [tape.markets(block, i) for block, i in served] == [s.markets for s in snaps[BLOCK - 2:BLOCK + 3]]
    assert json.loads((writer.path / CACHE_DIR / KEY).read_text())["blocks"] == [BLOCK, 7]


def test_a_changed_segment_makes_the_cache_stale_and_problems_survive_it(local_session, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(local_session, copy)
    last = open_session(copy).segments()[-1]
    with open(last, "ab") as f:
        f.write(b'{"kind":"snapshot","seq":"x"}\n')  # a bad line: its problem must survive the cache
    plain = open_session(copy)
    list(plain.records())
    problems = plain.problems()
    assert problems
    for _ in ("cold", "warm"):
        built = open_session(copy)
        assert sum(block.n for _, block in open_tape(built).blocks()) == 400
        assert built.problems() == problems
    # the same size and mtime, other bytes: only the hash can tell
    data = bytearray(last.read_bytes())
    stat = last.stat()
    data[-3:-2] = b"y"
    last.write_bytes(bytes(data))
    import os
    os.utime(last, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert not open_tape(open_session(copy)).warm


def test_a_session_where_no_cache_can_be_written_replays_from_json(local_session, tmp_path):
    copy = tmp_path / "nocache"
    shutil.copytree(local_session, copy)
    (copy / CACHE_DIR).write_text("a file where the cache folder would go")  # as a read-only folder would
    assert _check(copy) == 400
    assert (copy / CACHE_DIR).is_file()


def test_numbers_beyond_64_bits_are_kept_exact_and_the_session_is_not_cached(tmp_path):
    writer = SessionWriter.create(tmp_path, data_manifest())
    snap = data_snapshot(3)
    name = next(iter(snap.markets))
    huge = replace(snap, markets={**snap.markets, name: replace(snap.markets[name], oracle_price=2**70)})
    writer.write_snapshot(huge)
    writer.write_snapshot(replace(data_snapshot(4), ts=huge.ts + 1000))
    writer.close()
    assert _check(writer.path) == 2
    assert not (writer.path / CACHE_DIR / KEY).exists()
    (block, i), _ = list(tape.ticks(open_tape(open_session(writer.path))))
    assert tape.markets(block, i)[name].oracle_price == 2**70
