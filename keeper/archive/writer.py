"""Writes a session folder: manifest.json, record segments, summary.json.

Layout of <parent>/<yyyymmdd-HHMMSS>-<strategy>-<network>[-N]/:
    manifest.json              how the run was started (schemas/manifest.schema.json)
    records-000001.jsonl.gz    closed segments, compressed
    records-000002.jsonl       the segment being written: one JSON record per line
    summary.json               written by finish() when the run ends cleanly

Crash safety: every record goes to the OS in one write as soon as it is made, so a
crashed process loses nothing but a possibly half-written last line. fsync happens only
when a segment closes (a per-record fsync would cost milliseconds per tick).
"""
from __future__ import annotations

import errno
import gzip
import json
import os
import re
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from keeper.archive import fastcheck, schema, typed
from keeper.archive.codec import decode, encode
from keeper.errors import UserError
from keeper.model import Execution, Snapshot

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
SEGMENT_PREFIX = "records-"
# A snapshot of 4 markets with L3 books is ~10-20 kB; 32 MiB is roughly an hour at 1 s ticks
# and compresses in well under a second on the background thread.
SEGMENT_BYTES = 32 * 1024 * 1024
SEGMENT_RECORDS = 100_000


class ArchiveError(UserError):
    """The archive cannot be written; the keeper must stop trading rather than trade unrecorded."""


def segment_name(index: int) -> str:
    return f"{SEGMENT_PREFIX}{index:06d}.jsonl"


def write_json_atomic(path: Path, value) -> None:
    """Write `value` as JSON to `path` so that a crash leaves the old file or the new one, never half."""
    try:
        data = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"cannot write {path.name}: {exc}") from None
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise ArchiveError(_disk_message(path, exc)) from None


class SessionWriter:
    @classmethod
    def create(
        cls,
        parent_dir: str | Path,
        manifest: dict,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        segment_records: int = SEGMENT_RECORDS,
    ) -> "SessionWriter":
        """Make a new, uniquely named session folder under parent_dir and write its manifest."""
        manifest = _checked(manifest)
        started = datetime.fromisoformat(manifest["started_at"]).astimezone(timezone.utc)
        base = "-".join((started.strftime("%Y%m%d-%H%M%S"), _slug(manifest["strategy"]), _slug(manifest["network"])))
        parent = Path(parent_dir)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            path = _make_unique_dir(parent, base)
        except OSError as exc:
            raise ArchiveError(_disk_message(parent, exc)) from None
        write_json_atomic(path / MANIFEST, manifest)
        return cls(path, segment_bytes=segment_bytes, segment_records=segment_records)

    @classmethod
    def create_at(cls, folder: str | Path, manifest: dict, *, segment_bytes: int = SEGMENT_BYTES,
                  segment_records: int = SEGMENT_RECORDS) -> "SessionWriter":
        """A session in exactly `folder` (made here if need be; it must hold no session yet), as an import names it."""
        manifest = _checked(manifest)
        path = Path(folder)
        try:
            path.mkdir(parents=True, exist_ok=True)
            if any(p.name == MANIFEST or p.name.startswith(SEGMENT_PREFIX) for p in path.iterdir()):
                raise ArchiveError(f"{path} already holds a session")
        except OSError as exc:
            raise ArchiveError(_disk_message(path, exc)) from None
        write_json_atomic(path / MANIFEST, manifest)
        return cls(path, segment_bytes=segment_bytes, segment_records=segment_records)

    def __init__(self, path: Path, *, segment_bytes: int, segment_records: int) -> None:
        self.path = path
        self._segment_bytes = segment_bytes
        self._segment_records = segment_records
        self._seq = 0
        self._index = 0
        self._file = None  # the open segment: unbuffered, so each record is one write to the OS
        self._size = 0
        self._count = 0
        self._closed = False
        self._failed: str | None = None
        # One background thread compresses closed segments; a tick never waits for gzip.
        self._compressor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-gzip")
        self._pending: list[Future] = []
        self._open_segment()

    # -- records -------------------------------------------------------------------------

    def write_snapshot(self, snap: Snapshot) -> None:
        if not isinstance(snap, Snapshot):
            raise TypeError(f"write_snapshot takes a Snapshot, not {type(snap).__name__}")
        self._write("snapshot", snap)

    def write_execution(self, ex: Execution) -> None:
        if not isinstance(ex, Execution):
            raise TypeError(f"write_execution takes an Execution, not {type(ex).__name__}")
        self._write("execution", ex)

    def _write(self, kind: str, value) -> None:
        self._check_usable()
        seq = self._seq + 1
        try:
            line = typed.line(kind, seq, value)
        except UnicodeEncodeError:
            # A lone surrogate (in a strategy's error note, say): the stdlib escapes it, and the reader reads that.
            record = {"kind": kind, "seq": seq, "ts": value.ts, "slot": value.slot, kind: encode(value)}
            try:
                line = json.dumps(record, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"
            except (TypeError, ValueError) as exc:  # a value JSON has no form for (NaN)
                raise ArchiveError(_unreadable(kind, value, f"{type(exc).__name__}: {exc}")) from None
        except TypeError as exc:  # a type JSON has no form for
            raise ArchiveError(_unreadable(kind, value, f"{type(exc).__name__}: {exc}")) from None
        # A value of the wrong type (a float, NaN or inf, which msgspec writes as null, a bool, a
        # Decimal or a string where an int goes) would be written, then skipped by the reader. The
        # schemas' msgspec types check the whole line in C, tens of microseconds; only a line
        # they refuse pays for the exact check (the reader's own decode), which names the field.
        if fastcheck.record(line) is None and _decode_error(value) is not None:
            raise ArchiveError(_unreadable(kind, value, ""))
        if self._count and (self._size + len(line) > self._segment_bytes or self._count >= self._segment_records):
            self._rotate()
        self._append(line)
        self._seq = seq

    def _append(self, line: bytes) -> None:
        view = memoryview(line)
        written = 0
        try:
            while written < len(view):  # FileIO.write may write less than asked; never leave half a line by choice
                written += self._file.write(view[written:])
        except OSError as exc:
            self._failed = _disk_message(self._segment_path(), exc)
            if written:  # cut the partial line off again so the segment ends on a whole record
                try:
                    self._file.truncate(self._size)
                    self._file.seek(self._size)
                except OSError:
                    pass  # the reader reports a truncated last line instead
            raise ArchiveError(self._failed) from None
        self._size += written
        self._count += 1

    # -- segments ------------------------------------------------------------------------

    def _segment_path(self, index: int | None = None) -> Path:
        return self.path / segment_name(self._index if index is None else index)

    def _open_segment(self) -> None:
        self._index += 1
        path = self._segment_path()
        try:
            self._file = open(path, "xb", buffering=0)
            _fsync_dir(self.path)  # so the segment's name survives a power cut along with its data
        except OSError as exc:
            self._failed = _disk_message(path, exc)
            raise ArchiveError(self._failed) from None
        self._size = 0
        self._count = 0

    def _close_segment(self, sync: bool) -> Path:
        path = self._segment_path()
        f, self._file = self._file, None
        try:
            if sync:
                os.fsync(f.fileno())
        except OSError as exc:
            self._failed = _disk_message(path, exc)
            raise ArchiveError(self._failed) from None
        finally:
            f.close()
        return path

    def _rotate(self) -> None:
        # Syncing 32 MiB takes tens of milliseconds: the background job does it before compressing.
        path = self._close_segment(sync=False)
        self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]
        self._pending.append(self._compressor.submit(compress_segment, path))
        self._open_segment()

    def _check_usable(self) -> None:
        if self._closed:
            raise ArchiveError(f"archive {self.path} is already closed")
        if self._failed is None:
            for fut in self._pending:
                if fut.done() and fut.exception() is not None:
                    self._failed = _disk_message(self.path, fut.exception())
        if self._failed is not None:
            raise ArchiveError(self._failed)

    # -- end -----------------------------------------------------------------------------

    def close(self) -> None:
        """Flush and close the open segment and wait for compression. Safe to call twice.

        The last segment stays plain: compressing it would only delay shutdown, and the
        reader takes both forms.
        """
        if self._closed:
            return
        self._closed = True
        problem = None
        if self._file is not None:
            try:
                self._close_segment(sync=True)
            except ArchiveError as exc:
                problem = str(exc)
        self._compressor.shutdown(wait=True)
        for fut in self._pending:
            if problem is None and fut.exception() is not None:
                problem = _disk_message(self.path, fut.exception())
        if problem is not None:
            raise ArchiveError(problem)

    def finish(self, summary: dict) -> None:
        """Close the records and write summary.json: the mark of a session that ended cleanly."""
        self.close()
        write_json_atomic(self.path / SUMMARY, summary)

    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def compress_segment(path: Path) -> Path:
    """path.jsonl -> path.jsonl.gz. Every step leaves at least one complete copy on disk:
    the .gz is written under a tmp name, synced and renamed before the plain file goes."""
    gz = path.with_name(path.name + ".gz")
    tmp = path.with_name(path.name + ".gz.tmp")
    with open(path, "rb") as src, open(tmp, "wb") as raw:
        os.fsync(src.fileno())  # the plain copy is durable even if compressing fails
        # mtime=0: the same records always compress to the same bytes.
        with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, compresslevel=6, mtime=0) as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, gz)
    _fsync_dir(path.parent)
    os.unlink(path)
    return gz


def _checked(manifest: dict) -> dict:
    manifest = {"format": schema.FORMAT, **manifest}
    problem = schema.first_error("manifest", manifest)
    if problem is not None:
        raise ArchiveError(f"invalid session manifest: {problem}")
    return manifest


def _make_unique_dir(parent: Path, base: str) -> Path:
    # mkdir is the atomic test: two keepers started in the same second get different folders.
    for n in range(1, 10_000):
        path = parent / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ArchiveError(f"cannot find a free session folder name for {parent / base}")


def _slug(text: str) -> str:
    # The strategy or network may be a path or an RPC URL; keep folder names one plain component.
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:40] or "x"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _decode_error(value) -> str | None:
    """Why the reader would refuse `value` once written, naming the field; None if it would not."""
    try:
        decode(type(value), encode(value))
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def _unreadable(kind: str, value, fallback: str) -> str:
    reason = " ".join((_decode_error(value) or fallback).split())
    reason = reason if len(reason) <= 200 else reason[:197] + "..."
    return f"refusing to archive a {kind} the reader could not read back: {reason}"


def _disk_message(path: Path, exc: BaseException) -> str:
    if isinstance(exc, OSError):
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno == errno.ENOSPC:
            reason += " (free some space; nothing after this tick is recorded)"
        return f"cannot write the session archive {path}: {reason}"
    return f"cannot write the session archive {path}: {type(exc).__name__}: {exc}"
