"""Reads a session folder back: the manifest, then every record in seq order.

A bad line never stops the read: it is skipped and reported as "file:line: reason", and
everything valid after it is still returned. A crashed writer can leave a half-written
last line; that is reported as truncated.
"""
from __future__ import annotations

import gzip
import json
import re
import reprlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Optional, Union

import orjson

from keeper.archive import codec, fastcheck, schema, typed
from keeper.archive.writer import MANIFEST, SEGMENT_PREFIX, SUMMARY
from keeper.errors import UserError
from keeper.model import Execution, Snapshot

KINDS = {"snapshot": Snapshot, "execution": Execution}
_SEGMENT = re.compile(re.escape(SEGMENT_PREFIX) + r"(\d{6,})\.jsonl(\.gz)?")
# Any int of 19+ digits may be beyond 64 bits, which orjson would silently turn into a float.
_LONG_NUMBER = re.compile(rb"\d{19}")
# Every record the writer makes starts like this; used to find a record glued behind garbage.
_RECORD_START = b'{"kind":'


@dataclass(frozen=True, slots=True)
class Record:
    kind: str
    seq: int
    ts: int
    slot: int
    value: Union[Snapshot, Execution, None]  # None from records(validate=True), which checks and builds nothing
    where: str  # "records-000001.jsonl:17"


@dataclass(frozen=True, slots=True)
class Problem:
    where: str
    reason: str
    truncated: bool = False
    lossy: bool = False  # the rest of a segment is unreadable: any number of records may be gone
    note: bool = False  # about records missing between others, not about a line

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def open_session(path) -> "Session":
    """Open a session folder; UserError (one line) if it is not a readable session."""
    folder = check_folder(path)
    manifest, problem = load_manifest(folder)
    if problem is not None:
        raise UserError(problem)
    return Session(folder, manifest)


def check_folder(path) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise UserError(f"no such session folder: {folder}")
    if not folder.is_dir():
        raise UserError(f"not a session folder: {folder} is a file")
    if not (folder / MANIFEST).is_file():
        raise UserError(f"not a session folder: {folder} has no {MANIFEST}")
    return folder


def load_manifest(folder: Path) -> tuple[Optional[dict], Optional[str]]:
    """(manifest, None) when valid, else (None, one line saying what is wrong)."""
    where = folder / MANIFEST
    try:
        manifest = json.loads(where.read_bytes())
    except OSError as exc:
        return None, f"{where}: cannot read: {exc.strerror or exc}"
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, nested too deep
        return None, f"{where}: not valid JSON: {_clip(exc)}"
    if not isinstance(manifest, dict):
        return None, f"{where}: not a JSON object"
    if manifest.get("format") != schema.FORMAT:
        return None, f"{where}: unsupported archive format {_short(manifest.get('format'))} (this keeper reads {schema.FORMAT})"
    try:
        problem = schema.first_error("manifest", manifest)
    except RecursionError:
        problem = "nested too deeply"
    if problem is not None:
        return None, f"{where}: {problem}"
    return manifest, None


class Session:
    def __init__(self, path: Path, manifest: dict) -> None:
        self.path = path
        self.manifest = manifest
        self._problems: list[Problem] = []
        self.bytes_read = 0  # of the segments' (uncompressed) lines so far: records() progress, against size()

    @property
    def summary(self) -> Optional[dict]:
        """summary.json, or None when the run did not end cleanly (or the file is unreadable)."""
        try:
            value = json.loads((self.path / SUMMARY).read_bytes())
        except (OSError, ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None

    def segments(self) -> list[Path]:
        """One path per segment, in order: the plain copy when there is one, else the .gz."""
        found: dict[int, dict[bool, Path]] = {}
        for entry in self.path.iterdir():
            m = _SEGMENT.fullmatch(entry.name)  # .gz.tmp leftovers of a crashed compression don't match
            if m:
                found.setdefault(int(m.group(1)), {})[bool(m.group(2))] = entry
        return [copies.get(False) or copies[True] for _, copies in sorted(found.items())]

    def size(self) -> int:
        """The segments' uncompressed bytes, as far as the files say (a .gz's trailer holds its size)."""
        total = 0
        for segment in self.segments():
            try:
                total += _uncompressed_size(segment)
            except OSError:
                pass  # gone or unreadable: records() reports it
        return total

    def problems(self) -> list[str]:
        """After iterating records(): one "file:line: reason" per skipped line."""
        return [str(p) for p in self._problems]

    @property
    def issues(self) -> list[Problem]:
        return list(self._problems)

    def records(self, *, validate: bool = False) -> Iterator[Record]:
        """Every valid record in seq order. validate=True checks each document against its
        JSON Schema instead of decoding it (what `archive verify` does): its records have no value.

        A record whose seq jumps further ahead than the bad lines before it explain is held until
        the next record says why: if the next one carries on from it, records really are missing
        before it; if the next one fits before it (or jumps as well), its own seq is the damaged
        part and it is skipped. So one bad seq can't make every later record look like a duplicate.
        """
        self._problems = []
        self.bytes_read = 0
        last_seq, last_at = 0, 0  # the last record yielded, and len(problems) when it was read
        held: Optional[tuple[Record, int]] = None  # a record that jumped ahead, and len(problems) when read
        for segment in self.segments():
            for where, line, complete in self._lines(segment):
                result = self._parse(where, line, complete, validate)
                if not isinstance(result, Record):
                    continue
                at = len(self._problems)
                if held is not None:
                    record, record_at = held
                    if record.seq < result.seq and (result.seq - record.seq - 1 <= self._explained(record_at, at)
                                                    or self._lossy(record_at, at)):
                        held = None  # the next record carries on from it: the gap before it is real
                        self._note_gap(record, last_seq, self._explained(last_at, record_at))
                        last_seq, last_at = record.seq, record_at
                        yield record
                    elif result.seq > last_seq:
                        held = None  # the next record fits before it (or in its place), or jumps too: its seq is damaged
                        self._problems.append(Problem(record.where, f"seq {record.seq} is out of place (the record after "
                                                                    f"it is seq {result.seq}); skipped"))
                        at = len(self._problems)
                if result.seq <= last_seq:
                    self._problems.append(Problem(where, f"seq {result.seq} does not follow seq {last_seq}; skipped as a duplicate"))
                    continue
                if result.seq > last_seq + 1 and result.seq - last_seq - 1 > self._explained(last_at, at):
                    held = (result, at)  # a jump the bad lines since the last record don't explain: wait for the next
                    continue
                last_seq, last_at = result.seq, at
                yield result
        if held is not None:  # the last record: nothing after it to say otherwise
            record, record_at = held
            self._note_gap(record, last_seq, self._explained(last_at, record_at))
            yield record

    def _explained(self, start: int, end: int) -> int:
        """Bad lines among problems[start:end]: each may have been one of the records a seq gap lacks."""
        return sum(1 for p in self._problems[start:end] if not p.note)

    def _lossy(self, start: int, end: int) -> bool:
        return any(p.lossy for p in self._problems[start:end])

    def _note_gap(self, record: Record, last_seq: int, explained: int) -> None:
        if record.seq - last_seq - 1 > explained:
            self._problems.append(Problem(record.where, f"records {last_seq + 1}..{record.seq - 1} are missing", note=True))

    # -- lines ---------------------------------------------------------------------------

    def _lines(self, segment: Path) -> Iterator[tuple[str, bytes, bool]]:
        """(where, line, ends with a newline) for each line of a segment."""
        try:
            f = _open_segment(segment)
        except FileNotFoundError:
            # A live writer compressed the segment between listing and opening: read the .gz.
            if segment.suffix == ".gz":
                self._problems.append(Problem(segment.name, "segment vanished while reading", lossy=True))
                return
            segment = segment.with_name(segment.name + ".gz")
            try:
                f = _open_segment(segment)
            except OSError as exc:
                self._problems.append(Problem(segment.name, f"cannot read: {exc.strerror or exc}", lossy=True))
                return
        except OSError as exc:
            self._problems.append(Problem(segment.name, f"cannot read: {exc.strerror or exc}", lossy=True))
            return
        number = 0
        with f:
            try:
                for number, line in enumerate(f, 1):
                    self.bytes_read += len(line)
                    complete = line.endswith(b"\n")
                    yield f"{segment.name}:{number}", line[:-1] if complete else line, complete
            except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
                self._problems.append(
                    Problem(f"{segment.name}:{number + 1}", f"compressed segment is damaged, rest of it unreadable ({exc})",
                            truncated=isinstance(exc, EOFError), lossy=True)
                )

    def _parse(self, where: str, line: bytes, complete: bool, validate: bool) -> Union[Record, Problem]:
        try:
            return self._parse_line(where, line, complete, validate)
        except RecursionError:  # nested deeper than the parser, the schema check or the codec go
            problem = Problem(where, "nested too deeply to be a record")
            self._problems.append(problem)
            return problem

    def _parse_line(self, where: str, line: bytes, complete: bool, validate: bool) -> Union[Record, Problem]:
        # msgspec in C: the schema checked (validate), or the record decoded; a line it refuses is
        # judged (and the reason worded) below.
        if validate:
            passed = fastcheck.record(line)
            if passed is not None:
                return Record(*passed, None, where)
        else:
            decoded = typed.record(line)
            if decoded is not None:
                return Record(*decoded, where)
        try:
            doc = _loads(line)
        except (ValueError, RecursionError) as exc:
            start = line.find(_RECORD_START, 1)
            if start > 0:  # a record glued behind garbage (a torn write): report the garbage, keep the record
                self._problems.append(Problem(where, f"{start} bytes of garbage before a record"))
                return self._parse_line(where, line[start:], complete, validate)
            if not complete:
                problem = Problem(where, f"truncated record ({len(line)} bytes, no end of line)", truncated=True)
            elif not line.strip():
                problem = Problem(where, "empty line")
            else:
                problem = Problem(where, f"not valid JSON: {_clip(exc)}")
            self._problems.append(problem)
            return problem
        reason = _check(doc, validate)
        if reason is None:
            kind = doc["kind"]
            try:
                value = codec.decode(KINDS[kind], doc[kind])
            except ValueError as exc:
                reason = f"cannot decode: {_clip(exc)}"
            else:
                if value.ts != doc["ts"] or value.slot != doc["slot"]:
                    reason = _clip(f"record ts/slot {doc['ts']}/{doc['slot']} differ from the {kind}'s {value.ts}/{value.slot}")
                else:
                    return Record(kind, doc["seq"], doc["ts"], doc["slot"], None if validate else value, where)
        problem = Problem(where, reason)
        self._problems.append(problem)
        return problem


def _uncompressed_size(path: Path) -> int:
    if path.suffix != ".gz":
        return path.stat().st_size
    with open(path, "rb") as f:
        f.seek(-4, 2)  # ISIZE: the size mod 2**32, exact for segments (32 MiB at most)
        return int.from_bytes(f.read(4), "little")


def _open_segment(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _loads(line: bytes):
    if not _LONG_NUMBER.search(line):
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass  # maybe a stdlib-written record (escaped lone surrogates); the stdlib decides
    return json.loads(line)


def _check(doc, validate: bool) -> Optional[str]:
    """Why `doc` is not a record, or None. Without validate only the envelope is checked;
    the codec checks the value's shape and types as it decodes."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    kind = doc.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        return f"unknown record kind {_short(kind)}"
    if validate:
        return schema.first_error(kind, doc)
    for key in ("seq", "ts", "slot"):
        if type(doc.get(key)) is not int:
            return f"{key} must be an integer, not {_short(doc.get(key))}"
    if doc["seq"] < 1:
        return f"seq must be 1 or more, not {_short(doc['seq'])}"
    if kind not in doc:
        return f"missing {kind}"
    return None


def _short(value) -> str:
    """A value for a one-line message: reprlib keeps it short, however long or deep it is."""
    return reprlib.repr(value)


def _clip(text, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
