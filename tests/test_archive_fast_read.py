"""The fast read path gives exactly what the codec gives: msgspec's typed decoding of each line.
(A replay's columns, SESSION/.cache/, are tested in test_archive_columns.py.)"""
from __future__ import annotations

import gzip

import orjson
import pytest

from keeper.archive import codec, typed
from keeper.archive.reader import KINDS, open_session
from keeper.research.real import build_session


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
