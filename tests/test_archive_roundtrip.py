"""Writer -> reader: what goes in comes back equal, across segments and compression."""
from __future__ import annotations

import gzip
import json
import os
import shutil

import msgspec
import pytest

from keeper.archive import schema
from keeper.archive.reader import open_session
from keeper.archive.writer import ArchiveError, SessionWriter, compress_segment
from keeper.model import Execution, Snapshot, replace
from test_archive_data import execution, manifest, snapshot


def write_session(parent, ticks: int, **kw) -> SessionWriter:
    writer = SessionWriter.create(parent, manifest(), **kw)
    for tick in range(ticks):
        writer.write_snapshot(snapshot(tick))
        writer.write_execution(execution(tick))
    writer.close()
    return writer


def expected(ticks: int) -> list:
    return [v for t in range(ticks) for v in (snapshot(t), execution(t))]


def files(path) -> list[str]:
    return sorted(os.listdir(path))


def test_round_trip_equal_and_in_seq_order(tmp_path):
    writer = write_session(tmp_path, 5)
    session = open_session(writer.path)
    records = list(session.records())
    assert [r.value for r in records] == expected(5)
    assert [r.seq for r in records] == list(range(1, 11))
    assert [r.kind for r in records[:2]] == ["snapshot", "execution"]
    assert isinstance(records[0].value, Snapshot) and isinstance(records[1].value, Execution)
    assert (records[0].ts, records[0].slot) == (snapshot(0).ts, snapshot(0).slot)
    assert records[3].where == "records-000001.jsonl:4"
    assert session.problems() == []


def test_session_folder_name_manifest_and_summary(tmp_path):
    writer = SessionWriter.create(tmp_path, manifest())
    assert writer.path.parent == tmp_path
    assert writer.path.name == "20250131-120000-fixed_spread-local"
    writer.write_snapshot(snapshot())
    writer.finish({"ticks": 1, "pnl": "12.5"})
    assert files(writer.path) == ["manifest.json", "records-000001.jsonl", "summary.json"]
    session = open_session(writer.path)
    assert session.manifest == {"format": "drift-keeper-archive/1", **manifest()}
    assert session.summary == {"ticks": 1, "pnl": "12.5"}
    assert not any(name.endswith(".tmp") for name in files(writer.path))


def test_same_second_sessions_get_distinct_folders(tmp_path):
    paths = [SessionWriter.create(tmp_path, manifest(network="https://api.devnet.solana.com")).path for _ in range(3)]
    assert [p.name for p in paths] == [
        "20250131-120000-fixed_spread-https_api.devnet.solana.com",
        "20250131-120000-fixed_spread-https_api.devnet.solana.com-2",
        "20250131-120000-fixed_spread-https_api.devnet.solana.com-3",
    ]


def test_every_written_line_validates_against_its_schema(tmp_path):
    writer = write_session(tmp_path, 4)
    assert schema.errors("manifest", json.loads((writer.path / "manifest.json").read_text())) == []
    lines = (writer.path / "records-000001.jsonl").read_bytes().splitlines()
    assert len(lines) == 8
    for line in lines:
        doc = json.loads(line)
        assert list(doc)[:4] == ["kind", "seq", "ts", "slot"]
        assert schema.errors(doc["kind"], doc) == []


def test_invalid_manifest_is_refused_before_any_folder_is_made(tmp_path):
    with pytest.raises(ArchiveError, match="invalid session manifest: interval_ms"):
        SessionWriter.create(tmp_path, manifest(interval_ms=0.5))
    with pytest.raises(ArchiveError, match="manifest.json"):
        SessionWriter.create(tmp_path, manifest(params={"nan": float("nan")}))
    assert [p for p in tmp_path.iterdir() if (p / "records-000001.jsonl").exists()] == []


def test_rotation_compresses_closed_segments_and_reads_across_them(tmp_path):
    writer = write_session(tmp_path, 10, segment_records=3)  # 20 records -> 7 segments
    names = files(writer.path)
    assert names == ["manifest.json"] + [f"records-{i:06d}.jsonl.gz" for i in range(1, 7)] + ["records-000007.jsonl"]
    with gzip.open(writer.path / "records-000002.jsonl.gz", "rb") as f:
        assert [json.loads(line)["seq"] for line in f] == [4, 5, 6]
    session = open_session(writer.path)
    records = list(session.records())
    assert [r.value for r in records] == expected(10)
    assert records[3].where == "records-000002.jsonl.gz:1"
    assert session.problems() == []


def test_rotation_by_size(tmp_path):
    limit = 3 * len(msgspec.json.encode(snapshot(0)))
    writer = write_session(tmp_path, 6, segment_bytes=limit)
    segments = [writer.path / n for n in files(writer.path) if n.startswith("records-")]
    sizes = [len(gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()) for p in segments]
    assert len(segments) == 3 and all(limit // 2 < size <= limit for size in sizes), sizes
    assert [r.value for r in open_session(writer.path).records()] == expected(6)


def test_compressed_segments_are_much_smaller(tmp_path):
    writer = write_session(tmp_path, 50, segment_records=50)
    raw = sum(len(msgspec.json.encode({"kind": "x", "seq": 1, "ts": 1, "slot": 1, "v": v})) + 1 for v in expected(25))
    gz = (writer.path / "records-000001.jsonl.gz").stat().st_size
    assert gz * 5 < raw


@pytest.mark.parametrize("leftover", ["both", "tmp", "gz_only"])
def test_crash_during_compression_leftovers_read_once(tmp_path, leftover):
    writer = write_session(tmp_path, 6, segment_records=4)  # segments 1, 2 compressed; 3 plain
    folder = writer.path
    plain = folder / "records-000002.jsonl"
    gz = folder / "records-000002.jsonl.gz"
    with gzip.open(gz, "rb") as f:
        plain.write_bytes(f.read())
    if leftover == "both":  # crashed after the rename, before unlinking the plain copy
        pass
    elif leftover == "tmp":  # crashed while writing the .gz: the tmp is half done, the plain is whole
        gz.rename(folder / "records-000002.jsonl.gz.tmp")
        with open(folder / "records-000002.jsonl.gz.tmp", "r+b") as f:
            f.truncate(40)
    else:  # the normal end state, but also the plain copy must not be required
        plain.unlink()
    session = open_session(folder)
    records = list(session.records())
    assert [r.value for r in records] == expected(6)
    assert session.problems() == []
    if leftover == "both":
        assert records[4].where == "records-000002.jsonl:1"  # the plain copy is preferred


def test_plain_segment_compressed_away_while_reading_falls_back_to_gz(tmp_path):
    writer = write_session(tmp_path, 4, segment_records=4)
    folder = writer.path
    session = open_session(folder)
    segments = session.segments()  # lists records-000002.jsonl (the open segment at close)
    assert segments[-1].name == "records-000002.jsonl"
    compress_segment(folder / "records-000002.jsonl")  # what a live writer would do meanwhile
    session.segments = lambda: segments  # the listing taken before the compression
    assert [r.value for r in session.records()] == expected(4)
    assert session.problems() == []


def test_integers_beyond_64_bits_survive(tmp_path):
    huge = 2**70 + 12345
    snap = snapshot(0)
    snap = replace(snap, user=replace(snap.user, total_collateral=huge, funding={"SOL-PERP": -(2**65)}))
    writer = SessionWriter.create(tmp_path, manifest())
    writer.write_snapshot(snap)
    writer.write_execution(execution(0))
    writer.close()
    session = open_session(writer.path)
    values = [r.value for r in session.records()]
    assert values == [snap, execution(0)]
    assert values[0].user.total_collateral == huge and type(values[0].user.total_collateral) is int


def test_close_is_idempotent_and_writing_after_close_fails(tmp_path):
    writer = write_session(tmp_path, 1)
    writer.close()
    with pytest.raises(ArchiveError, match="already closed"):
        writer.write_snapshot(snapshot(1))


def test_writer_rejects_wrong_value_types(tmp_path):
    writer = SessionWriter.create(tmp_path, manifest())
    with pytest.raises(TypeError):
        writer.write_snapshot(execution(0))
    with pytest.raises(TypeError):
        writer.write_execution(snapshot(0))
    writer.close()


def test_records_can_be_read_while_the_writer_is_still_open(tmp_path):
    # Each record reaches the OS at once: a crash (or a reader) sees every completed record.
    writer = SessionWriter.create(tmp_path, manifest())
    for tick in range(4):
        writer.write_snapshot(snapshot(tick))
        writer.write_execution(execution(tick))
    copy = tmp_path / "copy"
    shutil.copytree(writer.path, copy)  # a snapshot of the folder, as a crash would leave it
    writer.close()
    values = [r.value for r in open_session(copy).records()]
    assert values == expected(4)
