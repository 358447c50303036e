"""Fuzzing archive documents: sessions whose records-*.jsonl lines are damaged in place,
torn, or have garbage between them, and whose manifest is mangled.

The reader must never raise, must read every intact record before and after a bad line
(no lost record), and must report each bad line as a problem. `keeper replay` and
`keeper archive verify` on the same sessions end with an exit code and, on bad input, one
"keeper: error:" line: never a traceback.

The sessions start from a real `keeper run` on the local market; only their bytes are damaged.
Run with --hypothesis-show-statistics to see how many cases each test tried.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from keeper.archive.reader import Record, open_session
from keeper.archive.verify import verify_session
from keeper.archive.writer import ArchiveError, SessionWriter
from keeper.cli import main
from keeper.errors import UserError
from keeper.model import replace
from tests.fuzzing import fuzz, quiet_keeper_log


@dataclasses.dataclass(frozen=True)
class Pristine:
    folder: Path
    manifest: bytes
    lines: tuple[bytes, ...]  # every record line, without its newline
    records: tuple[Record, ...]


_KEEP: list = []  # the temporary folder lives as long as the module


@functools.cache
def pristine() -> Pristine:
    """A real session: 5 ticks of fixed_spread on two local markets (10 records)."""
    tmp = tempfile.TemporaryDirectory(prefix="fuzz-archive-")
    _KEEP.append(tmp)
    try:
        code = main(["run", "--ticks", "5", "--fast", "--seed", "5", "--markets", "SOL-PERP,SOL",
                     "--param", "size_usd=5000", "--param", "spread_bps=1", "--archive-dir", tmp.name])
    finally:
        quiet_keeper_log()
    assert code == 0
    (folder,) = Path(tmp.name).iterdir()
    lines = tuple((folder / "records-000001.jsonl").read_bytes().split(b"\n")[:-1])
    session = open_session(folder)
    records = tuple(session.records())
    assert [r.seq for r in records] == list(range(1, len(lines) + 1)) and not session.problems()
    return Pristine(folder, (folder / "manifest.json").read_bytes(), lines, records)


@pytest.fixture(scope="module", autouse=True)
def _recorded_first():
    """Record the session before any strategy draws from it (a keeper run is no place for hypothesis' data)."""
    pristine()


# -- damage ----------------------------------------------------------------------------------------

_huge = st.sampled_from([2**63, 2**64, 2**70, -(2**70), 10**30, 2**200, -(2**64)])
_wrong = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), _huge, st.integers(-3, 3), st.text(max_size=10),
    st.sampled_from(["\u202e\u0000\ud7ff", "💥", "é" * 3, "\\", '"']), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.integers(1, 40).map(lambda depth: functools.reduce(lambda inner, _: [inner], range(depth), 0)),
)
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                     max_leaves=20)


@st.composite
def mutated(draw, line: bytes) -> bytes:
    """The record on `line`, damaged at one place: a value of the wrong type (a float where an
    int goes, a huge int, unicode, ...), a field removed, or a byte changed."""
    doc = json.loads(line)
    parent, key = None, None
    node = doc
    while isinstance(node, (dict, list)) and node and (parent is None or draw(st.integers(0, 3))):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, draw(st.sampled_from(keys))
        node = parent[key]
    how = draw(st.sampled_from(["value", "value", "float", "delete", "byte"]))
    if how == "byte" or parent is None:
        at = draw(st.integers(0, len(line) - 1))
        return line[:at] + bytes([draw(st.integers(0, 255).filter(lambda b: b != 10))]) + line[at + 1:]
    if how == "delete" and isinstance(parent, dict):
        del parent[key]
    elif how == "float" and type(node) is int:
        parent[key] = node + draw(st.sampled_from([0.0, 0.5, -0.25]))
    else:
        parent[key] = draw(_wrong)
    return json.dumps(doc, ensure_ascii=draw(st.booleans()), separators=(",", ":")).encode("utf-8", "surrogatepass")


@st.composite
def garbage(draw, lines: tuple[bytes, ...]) -> bytes:
    """A line that holds no valid record (it is never one the reader may keep)."""
    kind = draw(st.sampled_from(["bytes", "json", "prefix", "envelope", "long", "deep", "blank"]))
    if kind == "bytes":
        return draw(st.binary(max_size=120)).replace(b"\n", b"")
    if kind == "json":
        return json.dumps(draw(_json)).encode()
    if kind == "prefix":  # the start of a record: a write cut short
        line = draw(st.sampled_from(lines))
        return line[: draw(st.integers(0, len(line) - 1))]
    if kind == "envelope":  # the right envelope around nonsense
        name = draw(st.sampled_from(["snapshot", "execution", "trade", ""]))
        doc = {"kind": name, "seq": draw(st.one_of(st.integers(), _wrong)), "ts": draw(_wrong),
               "slot": draw(_wrong), name: draw(_json)}
        return json.dumps(doc).encode()
    if kind == "long":  # numbers of 19+ digits take the stdlib parser
        return b'{"kind":"snapshot","seq":%d,"ts":%d,"slot":1,"snapshot":{}}' % (draw(_huge), 10**25)
    if kind == "deep":  # nested past the JSON parsers' recursion limits
        return b"[" * draw(st.integers(1000, 3000)) + draw(st.sampled_from([b"", b"]" * 3000]))
    return draw(st.sampled_from([b"", b" ", b"\t", b"\r"]))


@dataclasses.dataclass
class Damage:
    lines: list[bytes]  # the lines of the damaged session, in order
    must_read: dict[int, int]  # seq -> index into pristine().records: records left intact (or torn but whole)
    bad_lines: int  # lines that hold no valid record: each must be reported
    cuts: list[int]  # segment boundaries (line indexes)
    gzip: list[bool]  # per closed segment
    tail: bytes  # a last line without newline ("" = none)


@st.composite
def damage(draw) -> Damage:
    p = pristine()
    out: list[bytes] = []
    must_read: dict[int, int] = {}
    bad = 0
    for i, (line, record) in enumerate(zip(p.lines, p.records)):
        for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 3)) == 0 else 0):  # garbage between records
            out.append(draw(garbage(p.lines)))
            bad += 1
        action = draw(st.sampled_from(["keep"] * 5 + ["mutate", "garbage", "torn"]))
        if action == "keep":
            out.append(line)
            must_read[record.seq] = i
        elif action == "mutate":  # may still be a valid record: it may be kept, or reported
            out.append(draw(mutated(line)))
        elif action == "garbage":
            out.append(draw(garbage(p.lines)))
            bad += 1
        else:  # a write cut short, then this record on the same line: the record must be recovered
            other = draw(st.sampled_from(p.lines))
            out.append(other[: draw(st.integers(1, len(other) - 1))] + line)
            must_read[record.seq] = i
            bad += 1
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(out) - 1)), max_size=2, unique=True)))
    tail = b""
    if draw(st.integers(0, 3)) == 0:  # the writer crashed mid-record
        line = draw(st.sampled_from(p.lines))
        tail = line[: draw(st.integers(1, len(line) - 1))]
        bad += 1
    return Damage(out, must_read, bad, cuts, [draw(st.booleans()) for _ in cuts], tail)


def build(folder: Path, d: Damage, manifest: bytes | None = None) -> None:
    folder.mkdir()
    (folder / "manifest.json").write_bytes(pristine().manifest if manifest is None else manifest)
    bounds = [0, *d.cuts, len(d.lines)]
    for index, (start, end) in enumerate(zip(bounds, bounds[1:]), 1):
        data = b"".join(line + b"\n" for line in d.lines[start:end])
        last = index == len(bounds) - 1
        if last:
            data += d.tail
        name = f"records-{index:06d}.jsonl"
        if not last and d.gzip[index - 1]:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / name).write_bytes(data)


def check_records(folder: Path, d: Damage) -> list[Record]:
    p = pristine()
    session = open_session(folder)
    got = list(session.records())
    problems = session.problems()
    seqs = [r.seq for r in got]
    assert seqs == sorted(set(seqs)), seqs  # in seq order, each once
    by_seq = {r.seq: r for r in got}
    lost = [seq for seq in d.must_read if seq not in by_seq]
    assert not lost, f"intact records lost: {lost}; problems: {problems}"
    for seq, index in d.must_read.items():
        assert by_seq[seq].value == p.records[index].value
    assert len(problems) >= d.bad_lines, problems
    assert all(len(str(problem).splitlines()) == 1 for problem in problems), problems
    return got


# -- the reader ------------------------------------------------------------------------------------

@fuzz(120)
@given(d=damage())
def test_damaged_records_are_skipped_and_reported_and_no_intact_record_is_lost(d):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "session"
        build(folder, d)
        got = check_records(folder, d)
        report = verify_session(folder)  # the same, against the JSON Schemas
        assert report.records <= len(got) and report.records >= len(d.must_read)
        assert len(report.invalid) + len(report.truncated) >= d.bad_lines
        assert report.ok == (report.records == len(pristine().records) and not report.invalid and not report.truncated)


@pytest.mark.parametrize("seq", [2**70, 10**30, 7, 6])
def test_one_damaged_seq_does_not_lose_the_records_after_it(tmp_path, seq):
    """A record whose seq alone is damaged (to a huge number, or to a later record's) is
    reported; it must not make every record after it look like a duplicate."""
    p = pristine()
    doc = json.loads(p.lines[4])
    doc["seq"] = seq
    lines = list(p.lines)
    lines[4] = json.dumps(doc, separators=(",", ":")).encode()
    d = Damage(lines, {r.seq: i for i, r in enumerate(p.records) if i != 4}, 0, [], [], b"")
    build(tmp_path / "session", d)
    got = check_records(tmp_path / "session", d)
    assert [r.seq for r in got] == [r.seq for i, r in enumerate(p.records) if i != 4]


def test_a_record_after_a_lost_line_stands_even_when_the_next_seq_is_damaged(tmp_path):
    """Line 5 is lost, line 7's seq is damaged: record 6's jump is explained by the lost line,
    so it must not wait on line 7 to confirm it (found by hypothesis)."""
    p = pristine()
    lines = list(p.lines)
    lines[4] = b""
    doc = json.loads(lines[6])
    doc["seq"] = 2**63
    lines[6] = json.dumps(doc, separators=(",", ":")).encode()
    d = Damage(lines, {r.seq: i for i, r in enumerate(p.records) if i not in (4, 6)}, 1, [], [], b"")
    build(tmp_path / "session", d)
    got = check_records(tmp_path / "session", d)
    assert [r.seq for r in got] == [r.seq for i, r in enumerate(p.records) if i not in (4, 6)]


# -- manifests -------------------------------------------------------------------------------------

@st.composite
def manifest_bytes(draw) -> bytes:
    p = pristine()
    kind = draw(st.sampled_from(["mutate", "mutate", "mutate", "json", "bytes", "deep", "truncate"]))
    if kind == "mutate":
        return draw(mutated(p.manifest.replace(b"\n", b"")))
    if kind == "json":
        return json.dumps(draw(_json)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        return b'{"format":' + b"[" * draw(st.integers(1000, 3000))
    return p.manifest[: draw(st.integers(0, len(p.manifest) - 1))]


@fuzz(150)
@given(manifest=manifest_bytes())
@example(manifest=b"[" * 3000)  # deeper than json.loads goes (a RecursionError, not a ValueError)
@example(manifest=b"\xff\xfe{}")
@example(manifest=b"")
def test_a_damaged_manifest_opens_or_is_one_line(manifest):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "session"
        build(folder, Damage(list(pristine().lines[:2]), {}, 0, [], [], b""), manifest)
        try:
            session = open_session(folder)
        except UserError as exc:
            assert len(str(exc).splitlines()) == 1 and "Traceback" not in str(exc), str(exc)
        else:
            assert len(list(session.records())) == 2
        report = verify_session(folder)
        assert report.records == 2
        assert all(len(line.splitlines()) == 1 for line in report.invalid)


@fuzz(40)
@given(summary=st.one_of(st.binary(max_size=60), st.just(b"[" * 3000), _json.map(lambda v: json.dumps(v).encode())))
def test_a_damaged_summary_is_no_summary(summary):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "session"
        build(folder, Damage(list(pristine().lines[:2]), {}, 0, [], [], b""))
        (folder / "summary.json").write_bytes(summary)
        session = open_session(folder)
        assert session.summary is None or isinstance(session.summary, dict)
        verify_session(folder)


# -- keeper replay / keeper archive verify -------------------------------------------------------

def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    finally:
        quiet_keeper_log()
    out, err = capsys.readouterr()
    assert isinstance(code, int)
    assert "Traceback" not in err and "Traceback" not in out
    errors = [line for line in err.splitlines() if "keeper: error:" in line]
    if code == 2:
        assert len(errors) == 1 and errors[0].startswith("keeper: error:"), err
    else:
        assert not errors, err
    return code, out, err


@fuzz(60)
@given(d=damage(), manifest=st.one_of(st.none(), manifest_bytes()), verify=st.booleans(),
       command=st.sampled_from(["replay", "verify"]))
def test_replay_and_verify_of_a_damaged_session_exit_cleanly(d, manifest, verify, command, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "session"
        build(folder, d, manifest)
        if command == "verify":
            code, out, _ = run_cli(["archive", "verify", str(folder)], capsys)
            assert code in (0, 1, 2)
            if code != 2:
                assert out.splitlines()[-1].startswith(("OK", "INVALID"))
        else:
            code, _, _ = run_cli(["replay", str(folder), *(["--verify"] if verify else [])], capsys)
            assert code in (0, 1, 2)


# -- the writer ------------------------------------------------------------------------------------

def _ints_replaced(value, make):
    """`value` (a model value) with its first int field replaced by make(int)."""
    for name in value.__struct_fields__:
        current = getattr(value, name)
        if type(current) is int:
            return replace(value, **{name: make(current)})
    raise AssertionError(f"{type(value).__name__} has no int field")


@fuzz(60)
@given(make=st.sampled_from([float, lambda v: v + 0.5, lambda v: float(v) * 1e10]),
       where=st.sampled_from(["oracle_price", "ts", "level", "total_collateral"]))
def test_the_writer_refuses_a_float_where_an_int_goes(make, where):
    """A float in an int field would be written and then skipped by the reader: refused at once, with
    the field named, and the session stays readable."""
    snap = pristine().records[0].value
    name, market = next(iter(snap.markets.items()))
    if where == "oracle_price":
        bad = replace(snap, markets={**snap.markets, name: _ints_replaced(market, make)})
    elif where == "ts":
        bad = replace(snap, ts=make(snap.ts))
    elif where == "level":
        book = market.book
        bids = (_ints_replaced(book.bids[0], make), *book.bids[1:]) if book.bids else ()
        bad = replace(snap, markets={**snap.markets, name: replace(
            market, book=replace(book, bids=bids))})
        if not bids:
            return
    else:
        bad = replace(snap, user=replace(snap.user, total_collateral=make(snap.user.total_collateral)))
    manifest = json.loads(pristine().manifest)
    manifest.pop("format")
    with tempfile.TemporaryDirectory() as tmp:
        writer = SessionWriter.create(tmp, manifest)
        writer.write_snapshot(snap)
        with pytest.raises(ArchiveError) as info:
            writer.write_snapshot(bad)
        assert len(str(info.value).splitlines()) == 1
        writer.write_snapshot(snap)
        writer.close()
        session = open_session(writer.path)
        assert [r.value for r in session.records()] == [snap, snap] and not session.problems()


@pytest.mark.parametrize("value", [math.nan, math.inf, True, "85000000", None, 3e-6])
def test_the_writer_refuses_other_non_ints_in_int_fields(tmp_path, value):
    snap = pristine().records[0].value
    manifest = json.loads(pristine().manifest)
    manifest.pop("format")
    writer = SessionWriter.create(tmp_path, manifest)
    with pytest.raises(ArchiveError):
        writer.write_snapshot(replace(snap, slot=value))
    writer.close()
