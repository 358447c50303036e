"""The fast read path gives exactly what the codec gives: msgspec's typed decoding of each line,
and the session cache (SESSION/.cache/) of a replay, which is used only while the segments are
the ones it was built from."""
from __future__ import annotations

import gzip
import subprocess

import orjson
import pytest

from keeper.archive import cache, codec, typed
from keeper.archive.reader import KINDS, open_session
from keeper.research.real import build_session
from tests.conftest import KEEPER


@pytest.fixture(scope="module")
def local_session(tmp_path_factory) -> str:
    """A local session with L3 books, positions, spot balances, fills and plans of every kind."""
    parent = tmp_path_factory.mktemp("local")
    subprocess.run([*KEEPER, "run", "--fast", "--ticks", "400", "--seed", "5", "--markets", "SOL-PERP,SOL,BTC-PERP",
                    "--strategy", "inventory_skew", "--archive-dir", str(parent)],
                   check=True, capture_output=True, timeout=300)
    (session,) = parent.iterdir()
    return str(session)


def _lines(session: str) -> list[bytes]:
    out = []
    for segment in open_session(session).segments():
        data = gzip.decompress(segment.read_bytes()) if segment.suffix == ".gz" else segment.read_bytes()
        out += data.splitlines()
    return out


def _check_same(lines: list[bytes]) -> None:
    for line in lines:
        doc = orjson.loads(line)
        kind, seq, ts, slot, value = typed.record(line)
        assert (kind, seq, ts, slot) == (doc["kind"], doc["seq"], doc["ts"], doc["slot"])
        assert value == codec.decode(KINDS[kind], doc[kind])
        assert type(value) is KINDS[kind]


def test_typed_decoding_equals_the_codec_on_a_local_session(local_session):
    lines = _lines(local_session)
    assert len(lines) == 800
    _check_same(lines)


def test_typed_decoding_equals_the_codec_on_real_l3_snapshots(tmp_path, shared_data):
    session = build_session(tmp_path / "real", markets=("SOL-PERP", "BTC-PERP"))
    _check_same(_lines(str(session))[:300])


@pytest.mark.parametrize("line", [
    b'{"kind":"snapshot","seq":0,"ts":1,"slot":1,"snapshot":{}}',  # no value the codec accepts either
    b'{"kind":"execution","seq":1,"ts":1,"slot":1,"execution":{"ts":1,"slot":1,"plan":{},"outcomes":[],"risk_state":3}}',
    b'{"kind":"execution","seq":1,"ts":1,"slot":2,"execution":{"ts":1,"slot":1,"plan":{},"outcomes":[]}}',
    b'{"kind":"execution","seq":1.0,"ts":1,"slot":1,"execution":{"ts":1,"slot":1,"plan":{},"outcomes":[]}}',
    b'{"seq":1,"kind":"execution","ts":1,"slot":1,"execution":{"ts":1,"slot":1,"plan":{},"outcomes":[]}}',
])
def test_what_the_fast_path_refuses_goes_the_codec_way(line):
    assert typed.record(line) is None


def test_the_cache_gives_the_same_records_and_problems_and_follows_the_segments(local_session, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(local_session, copy)
    last = open_session(copy).segments()[-1]
    with open(last, "ab") as f:
        f.write(b'{"kind":"snapshot","seq":"x"}\n')  # a bad line: its problem must survive the cache
    plain = open_session(copy)
    expected, problems = list(plain.records()), plain.problems()
    assert problems
    built = open_session(copy)
    assert list(cache.records(built)) == expected and built.problems() == problems
    assert (copy / cache.CACHE_DIR / cache.KEY).is_file()
    warm = open_session(copy)
    assert list(cache.records(warm)) == expected and warm.problems() == problems
    # a changed segment: the cache is stale, and the records are read from JSON again
    with open(last, "ab") as f:
        f.write(b"not json\n")
    stale = open_session(copy)
    again = list(cache.records(stale))
    assert again == expected and len(stale.problems()) == len(problems) + 1
    rebuilt = open_session(copy)
    assert list(cache.records(rebuilt)) == expected and rebuilt.problems() == stale.problems()


def test_a_session_where_no_cache_can_be_written_replays_from_json(local_session, tmp_path):
    import shutil

    copy = tmp_path / "nocache"
    shutil.copytree(local_session, copy)
    (copy / cache.CACHE_DIR).write_text("a file where the cache folder would go")  # as a read-only folder would
    assert list(cache.records(open_session(copy))) == list(open_session(copy).records())
    assert (copy / cache.CACHE_DIR).is_file()
