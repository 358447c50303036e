"""Record lines, written and read by msgspec straight from and into the model's Structs, in C.

One envelope type per record kind says what a line is: `{"kind", "seq", "ts", "slot", <kind>}`.
The writer encodes a line in one call; the reader decodes one in one call, checking every
field's type against the model's own hints. Reading is the fast path only: a line it refuses
(any error at all) goes the codec's way, which decides and words the report. So it may be
stricter than the codec, never looser: ints are ints of any size (no float, no bool), strings
are strings, Literals are checked, unknown keys are ignored as the codec ignores them.
"""
from __future__ import annotations

import functools
from typing import Literal, Optional, Union

import msgspec

from keeper.model import Execution, Snapshot, enc_hook


class _SnapshotLine(msgspec.Struct):
    kind: Literal["snapshot"]
    seq: int
    ts: int
    slot: int
    snapshot: Snapshot


class _ExecutionLine(msgspec.Struct):
    kind: Literal["execution"]
    seq: int
    ts: int
    slot: int
    execution: Execution


# The writer always puts "kind" first; any other line is left to the slow path.
_PREFIXES = ((b'{"kind":"snapshot"', "snapshot", _SnapshotLine), (b'{"kind":"execution"', "execution", _ExecutionLine))


_ENCODE = msgspec.json.Encoder(enc_hook=enc_hook).encode


def line(kind: str, seq: int, value: Union[Snapshot, Execution]) -> bytes:
    """The record line (newline included) the writer appends; raises TypeError or
    UnicodeEncodeError for a value JSON cannot hold as is (a foreign type, a lone surrogate)."""
    envelope = (_SnapshotLine if kind == "snapshot" else _ExecutionLine)(kind, seq, value.ts, value.slot, value)
    return _ENCODE(envelope) + b"\n"


@functools.cache
def _decoders() -> tuple[tuple[bytes, str, msgspec.json.Decoder], ...]:
    return tuple((prefix, kind, msgspec.json.Decoder(line_type)) for prefix, kind, line_type in _PREFIXES)


def record(line: bytes) -> Optional[tuple[str, int, int, int, Union[Snapshot, Execution]]]:
    """(kind, seq, ts, slot, value) of a well-formed record line; None for anything the codec
    must judge (including a value whose ts/slot differ from the envelope's, or seq < 1)."""
    for prefix, kind, decoder in _decoders():
        if line.startswith(prefix):
            break
    else:
        return None
    try:
        doc = decoder.decode(line)
    except Exception:  # noqa: BLE001 (invalid, too deep, a __post_init__ refusal...): the slow path words it
        return None
    value = doc.snapshot if kind == "snapshot" else doc.execution
    if doc.seq < 1 or value.ts != doc.ts or value.slot != doc.slot:
        return None
    return kind, doc.seq, doc.ts, doc.slot, value
