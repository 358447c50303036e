"""Damaged sessions: bad lines are skipped and reported, never fatal; disk errors stop the writer."""
from __future__ import annotations

import errno
import gzip
import json

import pytest

from keeper.archive import writer as writer_module
from keeper.archive.reader import open_session
from keeper.archive.verify import format_report, verify_session
from keeper.archive.writer import ArchiveError, SessionWriter
from keeper.errors import UserError
from test_archive_data import execution, manifest, snapshot


def write_session(parent, ticks: int, **kw):
    writer = SessionWriter.create(parent, manifest(), **kw)
    for tick in range(ticks):
        writer.write_snapshot(snapshot(tick))
        writer.write_execution(execution(tick))
    writer.close()
    return writer.path


def expected(ticks: int) -> list:
    return [v for t in range(ticks) for v in (snapshot(t), execution(t))]


def edit_lines(path, change) -> None:
    lines = path.read_bytes().split(b"\n")[:-1]
    path.write_bytes(change(lines))


# -- damaged records ----------------------------------------------------------------------


def test_truncated_last_line_is_reported_and_earlier_records_intact(tmp_path):
    folder = write_session(tmp_path, 3)
    segment = folder / "records-000001.jsonl"
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 700])  # crash in the middle of the last record
    session = open_session(folder)
    assert [r.value for r in session.records()] == expected(3)[:5]
    assert session.problems() == ["records-000001.jsonl:6: truncated record (%d bytes, no end of line)" % (len(data.split(b"\n")[5]) - 699)]
    report = verify_session(folder)
    assert (report.records, report.invalid, len(report.truncated), report.exit_code) == (5, [], 1, 1)


def test_complete_last_line_without_newline_is_kept(tmp_path):
    folder = write_session(tmp_path, 2)
    segment = folder / "records-000001.jsonl"
    segment.write_bytes(segment.read_bytes()[:-1])
    session = open_session(folder)
    assert [r.value for r in session.records()] == expected(2)
    assert session.problems() == []


def test_garbage_line_in_the_middle_is_reported_and_later_records_read(tmp_path):
    folder = write_session(tmp_path, 3)
    edit_lines(folder / "records-000001.jsonl", lambda ls: b"\n".join(ls[:2] + [b"\x00\x00garbage{"] + ls[2:]) + b"\n")
    session = open_session(folder)
    assert [r.value for r in session.records()] == expected(3)
    problems = session.problems()
    assert len(problems) == 1 and problems[0].startswith("records-000001.jsonl:3: not valid JSON")


def test_schema_violations_and_decode_errors_are_skipped_with_reasons(tmp_path):
    folder = write_session(tmp_path, 3)

    def damage(lines):
        second = json.loads(lines[1])
        second["execution"]["outcomes"][0]["action"] = "modify"  # decode error: not a Literal value
        third = json.loads(lines[2])
        third["snapshot"]["markets"]["SOL-PERP"]["oracle_price"] = 150.5  # a float price
        return b"\n".join([lines[0], json.dumps(second).encode(), json.dumps(third).encode(), *lines[3:]]) + b"\n"

    edit_lines(folder / "records-000001.jsonl", damage)
    session = open_session(folder)
    values = [r.value for r in session.records()]
    assert values == [expected(3)[i] for i in (0, 3, 4, 5)]
    problems = session.problems()
    assert problems[0].startswith("records-000001.jsonl:2: cannot decode: Execution.outcomes[0].action: 'modify'")
    assert problems[1].startswith("records-000001.jsonl:3: cannot decode: Snapshot.markets.SOL-PERP.oracle_price")
    assert len(problems) == 2  # the gap of two seqs is explained by the two bad lines

    report = verify_session(folder)
    assert report.records == 4 and report.exit_code == 1
    assert report.invalid == [
        "records-000001.jsonl:2: execution/outcomes/0/action: 'modify' is not one of ['cancel', 'place', 'settle']",
        "records-000001.jsonl:3: snapshot/markets/SOL-PERP/oracle_price: 150.5 is not of type 'integer'",
    ]


def test_record_glued_behind_a_torn_write_is_recovered(tmp_path):
    folder = write_session(tmp_path, 2)
    edit_lines(folder / "records-000001.jsonl", lambda ls: b"\n".join([ls[0], ls[1][:300] + ls[2], ls[3]]) + b"\n")
    session = open_session(folder)
    values = [r.value for r in session.records()]
    assert values == [expected(2)[i] for i in (0, 2, 3)]
    assert session.problems() == ["records-000001.jsonl:2: 300 bytes of garbage before a record"]


def test_duplicate_and_missing_seqs_are_reported(tmp_path):
    folder = write_session(tmp_path, 3, segment_records=2)  # 3 segments of 2
    segment2 = folder / "records-000002.jsonl.gz"
    (folder / "records-000002.jsonl").write_bytes(gzip.decompress(segment2.read_bytes()))
    # segment 1 repeats at the end of segment 2 (as if copied twice); segment 3 is lost
    segment2.unlink()
    first = gzip.decompress((folder / "records-000001.jsonl.gz").read_bytes())
    with open(folder / "records-000002.jsonl", "ab") as f:
        f.write(first)
    (folder / "records-000003.jsonl").rename(folder / "elsewhere.jsonl")
    session = open_session(folder)
    assert [r.seq for r in session.records()] == [1, 2, 3, 4]
    assert session.problems() == [
        "records-000002.jsonl:3: seq 1 does not follow seq 4; skipped as a duplicate",
        "records-000002.jsonl:4: seq 2 does not follow seq 4; skipped as a duplicate",
    ]
    # a lost segment in the middle shows as a gap
    (folder / "elsewhere.jsonl").rename(folder / "records-000004.jsonl")
    (folder / "records-000002.jsonl").unlink()
    session = open_session(folder)
    assert [r.seq for r in session.records()] == [1, 2, 5, 6]
    assert session.problems() == ["records-000004.jsonl:1: records 3..4 are missing"]


def test_damaged_gzip_segment_keeps_what_it_can(tmp_path):
    folder = write_session(tmp_path, 6, segment_records=6)
    gz = folder / "records-000001.jsonl.gz"
    gz.write_bytes(gz.read_bytes()[:-200])
    session = open_session(folder)
    seqs = [r.seq for r in session.records()]
    assert seqs[-6:] == list(range(7, 13)) and seqs[0] == 1  # the next segment is read in full
    assert any("compressed segment is damaged" in p for p in session.problems())


# -- not a session --------------------------------------------------------------------------


def one_line_user_error(call) -> str:
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2
    return message


def test_missing_folder_or_manifest_is_a_one_line_user_error(tmp_path):
    assert one_line_user_error(lambda: open_session(tmp_path / "nope")).startswith("no such session folder")
    (tmp_path / "file").write_text("x")
    assert "is a file" in one_line_user_error(lambda: open_session(tmp_path / "file"))
    assert "has no manifest.json" in one_line_user_error(lambda: open_session(tmp_path))
    assert "has no manifest.json" in one_line_user_error(lambda: verify_session(tmp_path))


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"{\"format\": ", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({**manifest(), "format": "drift-keeper-archive/9"}).encode(), "unsupported archive format 'drift-keeper-archive/9'"),
        (json.dumps({**manifest(), "format": "drift-keeper-archive/1", "seed": 1.5}).encode(), "seed: 1.5 is not of type"),
    ],
)
def test_invalid_manifest_is_a_one_line_user_error(tmp_path, content, expected):
    folder = write_session(tmp_path, 1)
    (folder / "manifest.json").write_bytes(content)
    assert expected in one_line_user_error(lambda: open_session(folder))
    # verify still checks the records, and reports the manifest as the problem
    report = verify_session(folder)
    assert not report.manifest_ok and report.records == 2 and report.exit_code == 1
    assert expected in report.invalid[0]


def test_verify_clean_session_and_format(tmp_path):
    path = SessionWriter.create(tmp_path, manifest(), segment_records=4)
    for tick in range(5):
        path.write_snapshot(snapshot(tick))
        path.write_execution(execution(tick))
    path.finish({"ticks": 5})
    report = verify_session(path.path)
    assert (report.ok, report.exit_code, report.records, report.snapshots, report.executions) == (True, 0, 10, 5, 5)
    text = format_report(report)
    assert text.count("\n") == 0
    assert text == f"OK: {path.path}: manifest ok, 10 valid records (5 snapshots, 5 executions), 0 invalid, 0 truncated; finished"


def test_format_report_lists_each_problem_then_a_summary(tmp_path):
    folder = write_session(tmp_path, 2)
    segment = folder / "records-000001.jsonl"
    segment.write_bytes(b"nonsense\n" + segment.read_bytes()[:-10])
    lines = format_report(verify_session(folder)).splitlines()
    assert lines[0].startswith("records-000001.jsonl:1: not valid JSON")
    assert lines[1].startswith("records-000001.jsonl:5: truncated record")
    assert lines[2].startswith("INVALID: ") and "3 valid records" in lines[2] and "1 invalid, 1 truncated" in lines[2]
    assert "no summary" in lines[2]


# -- disk errors ------------------------------------------------------------------------------


class FullDisk:
    """Wraps the segment file: writes part of the data, then fails like a full disk."""

    def __init__(self, real, allow: int):
        self.real, self.allow = real, allow

    def write(self, data):
        if self.allow <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = self.real.write(bytes(data[: self.allow]))
        self.allow -= n
        return n

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_disk_full_raises_archive_error_and_leaves_whole_records(tmp_path):
    writer = SessionWriter.create(tmp_path, manifest())
    writer.write_snapshot(snapshot(0))
    writer._file = FullDisk(writer._file, allow=100)  # the next record gets 100 bytes in, then ENOSPC
    with pytest.raises(ArchiveError) as info:
        writer.write_execution(execution(0))
    message = str(info.value)
    assert "\n" not in message and "No space left on device" in message and str(writer.path) in message
    assert isinstance(info.value, UserError)
    with pytest.raises(ArchiveError, match="No space left"):  # stays failed: no trading unrecorded
        writer.write_snapshot(snapshot(1))
    writer.close()
    session = open_session(writer.path)
    assert [r.value for r in session.records()] == [snapshot(0)]
    assert session.problems() == []  # the partial line was cut off again


def test_failed_compression_surfaces_and_keeps_the_plain_segment(tmp_path, monkeypatch):
    def no_space(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer_module, "compress_segment", no_space)
    writer = SessionWriter.create(tmp_path, manifest(), segment_records=2)
    writer.write_snapshot(snapshot(0))
    writer.write_execution(execution(0))
    writer.write_snapshot(snapshot(1))  # rotates: segment 1 goes to the (failing) compressor
    with pytest.raises(ArchiveError, match="No space left"):
        writer.close()
    session = open_session(writer.path)
    assert [r.value for r in session.records()] == [snapshot(0), execution(0), snapshot(1)]


def test_disk_error_creating_the_session_is_an_archive_error(tmp_path):
    (tmp_path / "blocked").write_text("a file where the parent folder should be")
    with pytest.raises(ArchiveError, match="cannot write the session archive"):
        SessionWriter.create(tmp_path / "blocked" / "sessions", manifest())
