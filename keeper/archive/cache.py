"""A binary copy of a session's decoded records in SESSION/.cache/, so that repeat replays and
sweeps skip gzip and JSON. The JSON segments stay the archive of record: the cache is built
from them on the first replay, and is used only while they are the ones it was built from
(each segment's name, size and mtime), by this model (keeper/model.py's source).

Why msgpack of the records, not columns (Arrow, numpy): what a replay costs after decoding
is building the model's objects (a Book of Level tuples, the Trades) that the strategy and
the sim read. msgspec builds them from msgpack in C (~8 us for a 1-market 20x20 snapshot);
rebuilding the same objects from numpy columns costs ~0.4 us per Level in Python, about 16 us
for the levels alone. The frames keep the reader's own verdicts: the records it yielded, in
its order, and the problems it reported.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Iterator, Optional

import msgspec

from keeper import model
from keeper.archive.reader import Problem, Record, Session
from keeper.model import Execution, Snapshot

CACHE_DIR = ".cache"
RECORDS = "records.msgpack"
KEY = "key.json"  # written last: a cache without it is unfinished
VERSION = 1
_LENGTH = struct.Struct("<I")


class _Frame(msgspec.Struct, array_like=True):
    seq: int
    ts: int
    slot: int
    where: str
    snapshot: Optional[Snapshot] = None
    execution: Optional[Execution] = None


def records(session: Session) -> Iterator[Record]:
    """session.records(), from the cache when it is current, else from JSON (building the cache)."""
    key = _key(session)
    folder = session.path / CACHE_DIR
    found = _load(folder, key)
    if found is not None:
        yield from _read(session, folder / RECORDS, found)
    else:
        yield from _build(session, folder, key)


def _key(session: Session) -> dict:
    segments = []
    for path in session.segments():
        try:
            st = path.stat()
        except OSError:
            continue  # records() reports it
        segments.append([path.name, st.st_size, st.st_mtime_ns])
    return {"version": VERSION, "model": _model_hash(), "segments": segments}


def _model_hash() -> str:
    return hashlib.sha256(Path(model.__file__).read_bytes()).hexdigest()


def _load(folder: Path, key: dict) -> Optional[dict]:
    try:
        found = json.loads((folder / KEY).read_bytes())
        size = (folder / RECORDS).stat().st_size
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or {k: found.get(k) for k in key} != key or found.get("bytes") != size:
        return None
    return found


def _read(session: Session, path: Path, found: dict) -> Iterator[Record]:
    data = memoryview(path.read_bytes())
    session._problems = [Problem(**p) for p in found["problems"]]
    decode = msgspec.msgpack.Decoder(_Frame).decode
    unpack, step = _LENGTH.unpack_from, _LENGTH.size
    total, json_bytes, at = len(data), found["json_bytes"], 0
    while at < total:
        (length,) = unpack(data, at)
        at += step
        frame = decode(data[at:at + length])
        at += length
        session.bytes_read = json_bytes * at // total
        if frame.snapshot is not None:
            yield Record("snapshot", frame.seq, frame.ts, frame.slot, frame.snapshot, frame.where)
        else:
            yield Record("execution", frame.seq, frame.ts, frame.slot, frame.execution, frame.where)


def _build(session: Session, folder: Path, key: dict) -> Iterator[Record]:
    try:
        folder.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=RECORDS + ".", suffix=".tmp", dir=folder)
    except OSError:  # a read-only session folder: replay from JSON, every time
        yield from session.records()
        return
    encode = msgspec.msgpack.Encoder().encode
    failed = False  # a full disk: the replay goes on from JSON; the next one reads JSON again
    f = os.fdopen(fd, "wb")
    try:
        for record in session.records():
            if not failed:
                snapshot = record.value if record.kind == "snapshot" else None
                execution = record.value if record.kind == "execution" else None
                blob = encode(_Frame(record.seq, record.ts, record.slot, record.where, snapshot, execution))
                try:
                    f.write(_LENGTH.pack(len(blob)) + blob)
                except OSError:
                    failed = True
            yield record
        try:
            size = f.tell()
            f.close()
            if not failed and _key(session) == key:  # unchanged while read (a live writer would have moved it)
                _remove(folder / KEY)
                os.replace(tmp, folder / RECORDS)
                _write_key(folder, {**key, "bytes": size, "json_bytes": session.bytes_read,
                                    "problems": [dataclasses.asdict(p) for p in session.issues]})
        except OSError:
            pass
    finally:
        f.close()
        _remove(tmp)  # gone already once renamed


def _write_key(folder: Path, value: dict) -> None:
    tmp = folder / f"{KEY}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, folder / KEY)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
