"""A session's ticks as numpy columns: what a replay reads, cached in SESSION/.cache/.

The JSON segments are the archive of record. The first replay of a session reads them once,
with the reader's verdicts (its records, in its order, and the problems it reported), into
blocks of columns; each block is written to SESSION/.cache/ as it fills, and a key written
last names what they were built from: each segment's sha256, and the source of the model and
of this module. Later replays and sweeps read the blocks instead: no gzip, no JSON, and model
objects are made only for what the replay looks at (keeper/archive/tape.py).

A block holds up to BLOCK snapshots:
- a row per snapshot: seq, ts, slot, book_slot, whether its execution was the stop's flatten
  (a replay skips those), and msgpack blobs of what only some replays read: the recorded user
  state and execution (--verify), and the recorded last_plan;
- a row per (snapshot, market), in the snapshot's order: the market's scalars, where its
  books are, and its trades (a msgpack blob: a tick has few);
- L2 levels, each side best first, as recorded (what the strategy sees) and as others left
  them: the recorded run's own quotes taken out, the queue a replayed order joins;
- L3 orders twice: as recorded (what the strategy sees), and others' alone grouped by side and
  price, best first, the recorded order kept within a price (the queue a replayed order joins).
A value beyond 64 bits leaves the session uncached: it is replayed from the JSON every time.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import mmap
import os
from pathlib import Path
from typing import Iterator, Optional

import msgspec
import numpy as np

from keeper import model
from keeper.archive.reader import Problem, Session
from keeper.model import Snapshot

CACHE_DIR = ".cache"
KEY = "key.json"  # written last: blocks without it are unfinished
VERSION = 2
BLOCK = 4096  # snapshots per block: a few MB of columns, read and dropped as the replay moves on
_NULL = 0  # the stored value of a None; its mask column says it was None

# Columns per snapshot, per (snapshot, market) row, per level, per L3 order. Blob columns are
# NAME_off (row offsets, one more than rows) and NAME (the bytes).
TICK = ("seq", "ts", "slot", "book_slot", "book_slot_null", "flatten", "rows")  # rows: one more (where they end)
TICK_ROW = ("seq", "ts", "slot", "book_slot", "book_slot_null", "rows")  # as the builder collects them
ROW = ("market", "spec", "oracle", "oracle_slot", "conf", "mark", "funding", "vbid", "vbid_null", "vask", "vask_null",
       "ref", "ref_null", "trades_n", "b0", "b1", "b2", "o0", "o1", "o2", "l0", "l1", "l3_null", "q0", "q1", "q2")
LEVEL = ("lv_price", "lv_size", "ov_key", "ov_size")  # ov_key: -price for a bid, price for an ask (ascending)
L3 = ("l3_side", "l3_price", "l3_size", "l3_user", "l3_oid", "l3_offset", "l3_offset_null", "l3_post_only",
      "o3_key", "o3_price", "o3_size", "o3_user", "o3_oid", "o3_offset", "o3_offset_null", "o3_post_only")
BLOBS = ("user", "last_plan", "execution", "trades")


def _encoder() -> msgspec.msgpack.Encoder:
    return msgspec.msgpack.Encoder()


class Block:
    """One block's columns: numpy arrays for the levels and L3 orders (sliced when looked at),
    Python lists for the per-snapshot and per-row scalars (read on every tick)."""

    def __init__(self, arrays: dict, strings: dict) -> None:
        self.n = len(arrays["seq"])
        for name in TICK + ROW:
            setattr(self, name, arrays[name].tolist())
        self.columns = arrays  # by name, as the arrays below
        for name in LEVEL + L3:
            setattr(self, name, arrays[name])
        self.blobs = {b: (arrays[f"{b}_off"].tolist(), memoryview(arrays[b])) for b in BLOBS}
        self._lists: dict[str, list] = {}
        self.names: list[str] = strings["names"]
        self.users: list[str] = strings["users"]
        self.specs: list[model.MarketSpec] = [msgspec.convert(s, model.MarketSpec) for s in strings["specs"]]

    def list(self, name: str) -> list:
        """A whole column as a Python list, made on first use: for columns a replay searches on
        most ticks (a replayed order's level and queue), where numpy's per-element access costs
        more than converting the block once."""
        found = self._lists.get(name)
        if found is None:
            found = self._lists[name] = self.columns[name].tolist()
        return found

    def blob(self, name: str, index: int) -> memoryview:
        offsets, data = self.blobs[name]
        return data[offsets[index]:offsets[index + 1]]


class Tape:
    """The columns of an open session: blocks(), and how many snapshots it holds once known."""

    def __init__(self, session: Session, key: dict, folder: Path, found: Optional[dict]) -> None:
        self.session, self.key, self.folder, self.found = session, key, folder, found
        self.manifest = session.manifest
        self.ticks: Optional[int] = found["ticks"] if found else None

    @property
    def warm(self) -> bool:
        return self.found is not None

    def total(self) -> int:
        """What progress counts to: snapshots when the cache is read, else the segments' bytes."""
        return self.ticks if self.found is not None else self.session.size()

    def blocks(self, start: int = 0) -> Iterator[tuple[int, Block]]:
        """(index of its first snapshot, block) in order, from the block holding snapshot `start`."""
        if self.found is not None:
            self.session._problems = [Problem(**p) for p in self.found["problems"]]
            first = 0
            for index, count in enumerate(self.found["blocks"]):
                if first + count > start:
                    yield first, Block(*_read_block(self.folder / _block_name(index)))
                first += count
            return
        yield from _Builder(self).run()


def open_tape(session: Session) -> Tape:
    """The session's columns: its cache when current, else built from the JSON as it is read."""
    key = _key(session)
    folder = session.path / CACHE_DIR
    return Tape(session, key, folder, _load(folder, key))


def _key(session: Session) -> dict:
    segments = []
    for path in session.segments():
        try:
            segments.append([path.name, hashlib.sha256(path.read_bytes()).hexdigest()])
        except OSError:
            continue  # records() reports it
    code = hashlib.sha256(Path(model.__file__).read_bytes() + Path(__file__).read_bytes()).hexdigest()
    return {"version": VERSION, "code": code, "user": session.manifest.get("user"), "segments": segments}


def _load(folder: Path, key: dict) -> Optional[dict]:
    try:
        found = json.loads((folder / KEY).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or {k: found.get(k) for k in key} != key:
        return None
    if not all((folder / _block_name(i)).is_file() for i in range(len(found.get("blocks", ())))):
        return None
    return found


def _price(order: model.BookOrder) -> int:
    return order.price


def _minus_price(order: model.BookOrder) -> int:
    return -order.price


def _block_name(index: int) -> str:
    return f"block-{index:06d}.bin"


# A block file: an 8-byte little-endian header length, a JSON header (the strings, and each
# array's dtype, length and offset), then the arrays' bytes, each 8-byte aligned: read back
# through one mmap, without a copy.
_ALIGN = 8


def _write_block(path: Path, arrays: dict[str, np.ndarray], strings: dict) -> None:
    layout, at = {}, 0
    for name, array in arrays.items():
        layout[name] = [array.dtype.str, len(array), at]
        at += -(-array.nbytes // _ALIGN) * _ALIGN
    header = json.dumps({"strings": strings, "arrays": layout}).encode()
    header += b" " * (-len(header) % _ALIGN)
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        for array in arrays.values():
            data = array.tobytes()
            f.write(data + b"\0" * (-len(data) % _ALIGN))


def _read_block(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    with open(path, "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    base = 8 + size
    arrays = {name: np.frombuffer(data, dtype=np.dtype(dtype), count=count, offset=base + at)
              for name, (dtype, count, at) in header["arrays"].items()}
    return arrays, header["strings"]


class _TooBig(Exception):
    """A number beyond 64 bits: numpy cannot hold it, the block stays in Python lists."""


class _Builder:
    """Reads the session's records once, yielding each block as it fills and writing it to the cache."""

    def __init__(self, tape: Tape) -> None:
        from keeper.loop import FLATTEN_NOTE
        from keeper.venues.sim import AUTHORITY

        self.tape = tape
        self.flatten_note = FLATTEN_NOTE
        recorded_user = tape.manifest.get("user")
        self.own = {AUTHORITY, *([recorded_user] if recorded_user else [])}  # the recorded run's book entries
        self.encode = _encoder().encode
        self.saved: list[int] = []  # snapshots per block written
        self.writable = True
        self._new()

    def _new(self) -> None:
        # per snapshot and per row: a tuple each, turned into columns when the block is full
        self.tick_rows: list[tuple] = []
        self.market_rows: list[tuple] = []
        self.flatten: list[bool] = []
        self.cols: dict[str, list] = {name: [] for name in LEVEL + L3}
        for blob in BLOBS:
            self.cols[blob] = []
        self.names: dict[str, int] = {}
        self.users: dict[str, int] = {}
        self.specs: dict[model.MarketSpec, int] = {}

    def run(self) -> Iterator[tuple[int, Block]]:
        session = self.tape.session
        folder = self.tape.folder
        try:
            folder.mkdir(exist_ok=True)
            (folder / KEY).unlink(missing_ok=True)
        except OSError:
            self.writable = False  # a read-only session: replayed from JSON every time
        first, count = 0, 0
        previous = None
        for record in session.records():
            if record.kind == "execution":
                if previous == "snapshot":
                    self._execution(record.value)
                previous = record.kind
                continue
            previous = record.kind
            if count == BLOCK:
                yield first, self._finish()
                first, count = first + count, 0
            self._snapshot(record.seq, record.value)
            count += 1
        if count:
            yield first, self._finish()
        self.tape.ticks = first + count
        if self.writable and _key(session) == self.tape.key:  # unchanged while read (a live writer would have moved it)
            self._write_key(session)

    # -- a record into the columns ------------------------------------------------------------------
    def _snapshot(self, seq: int, snap: Snapshot) -> None:
        c, encode = self.cols, self.encode
        no_book_slot = snap.book_slot is None
        self.tick_rows.append((seq, snap.ts, snap.slot, _NULL if no_book_slot else snap.book_slot, no_book_slot,
                               len(self.market_rows)))
        self.flatten.append(False)
        c["user"].append(encode(snap.user))
        c["last_plan"].append(encode(snap.last_plan))
        c["execution"].append(b"")
        ours = snap.user.open_orders
        for name, market in snap.markets.items():
            self._market(name, market, [o for o in ours if o.market == market.spec.name] if ours else ())

    def _execution(self, execution: model.Execution) -> None:
        self.cols["execution"][-1] = self.encode(execution)
        self.flatten[-1] = execution.plan.dropped[:1] == (self.flatten_note,)

    def _market(self, name: str, m: model.MarketState, ours) -> None:
        c = self.cols
        book = m.book
        lv_price, lv_size = c["lv_price"], c["lv_size"]
        b0 = len(lv_price)
        lv_price.extend([lv.price for lv in book.bids])
        b1 = b0 + len(book.bids)
        lv_price.extend([lv.price for lv in book.asks])
        lv_size.extend([lv.size for lv in book.bids])
        lv_size.extend([lv.size for lv in book.asks])
        b2 = len(lv_price)
        # the recorded run's own quotes are taken out of what others offer (they were not flow)
        remove: dict[tuple[str, int], int] = {}
        for o in ours:
            key = (o.side, o.price_at(m.oracle_price))
            remove[key] = remove.get(key, 0) + o.remaining
        ov_key, ov_size = c["ov_key"], c["ov_size"]
        o0 = len(ov_key)
        if remove:
            bids = [(lv.price, lv.size - remove.get(("bid", lv.price), 0)) for lv in book.bids]
            asks = [(lv.price, lv.size - remove.get(("ask", lv.price), 0)) for lv in book.asks]
            bids, asks = [lv for lv in bids if lv[1] > 0], [lv for lv in asks if lv[1] > 0]
            ov_key.extend([-p for p, _ in bids] + [p for p, _ in asks])
            ov_size.extend([q for _, q in bids] + [q for _, q in asks])
            o1 = o0 + len(bids)
        else:
            ov_key.extend([-lv.price for lv in book.bids])
            ov_key.extend(lv_price[b1:b2])
            ov_size.extend(lv_size[b0:b2])
            o1 = o0 + b1 - b0
        o2 = len(ov_key)
        l0, l1, q0, q1, q2 = self._l3(book.l3)
        vbid, vask, ref = m.vamm_bid, m.vamm_ask, m.reference_price
        c["trades"].append(self.encode(m.trades) if m.trades else b"")
        self.market_rows.append((
            self.names.setdefault(name, len(self.names)), self.specs.setdefault(m.spec, len(self.specs)),
            m.oracle_price, m.oracle_slot, m.oracle_conf, m.mark_price, m.funding_rate,
            _NULL if vbid is None else vbid, vbid is None, _NULL if vask is None else vask, vask is None,
            _NULL if ref is None else ref, ref is None, len(m.trades), b0, b1, b2, o0, o1, o2, l0, l1, book.l3 is None,
            q0, q1, q2))

    def _l3(self, l3: Optional[tuple[model.BookOrder, ...]]) -> tuple[int, int, int, int, int]:
        """Append the L3 as recorded, then others' orders by side and price; (l0, l1, q0, q1, q2)."""
        c = self.cols
        orders = l3 or ()
        l0 = len(c["l3_price"])
        self._orders("l3", orders)
        c["l3_side"].extend([o.side == "ask" for o in orders])
        own = self.own
        theirs = [o for o in orders if o.user not in own] if orders else ()
        bids = sorted((o for o in theirs if o.side == "bid"), key=_minus_price)  # stable: the queue stays
        asks = sorted((o for o in theirs if o.side == "ask"), key=_price)
        q0 = len(c["o3_price"])
        self._orders("o3", bids)
        self._orders("o3", asks)
        c["o3_key"].extend([-o.price for o in bids] + [o.price for o in asks])
        return l0, l0 + len(orders), q0, q0 + len(bids), len(c["o3_price"])

    def _orders(self, prefix: str, orders) -> None:
        if not orders:
            return
        c, users = self.cols, self.users
        c[prefix + "_price"].extend([o.price for o in orders])
        c[prefix + "_size"].extend([o.size for o in orders])
        c[prefix + "_user"].extend([users.setdefault(o.user, len(users)) for o in orders])
        c[prefix + "_oid"].extend([o.order_id for o in orders])
        c[prefix + "_offset"].extend([_NULL if o.oracle_offset is None else o.oracle_offset for o in orders])
        c[prefix + "_offset_null"].extend([o.oracle_offset is None for o in orders])
        c[prefix + "_post_only"].extend([o.post_only for o in orders])

    # -- a full block: to arrays, to the cache ------------------------------------------------------
    def _finish(self) -> Block:
        cols = self.cols
        for names, rows in ((TICK_ROW, self.tick_rows), (ROW, self.market_rows)):
            columns = list(zip(*rows)) if rows else [()] * len(names)
            cols.update({name: list(column) for name, column in zip(names, columns)})
        cols["flatten"] = self.flatten
        cols["rows"].append(len(self.market_rows))  # where the last snapshot's rows end
        strings = {"names": list(self.names), "users": list(self.users),
                   "specs": [msgspec.to_builtins(s) for s in self.specs]}
        arrays: dict[str, np.ndarray] = {}
        too_big = False
        for name in TICK + ROW + LEVEL + L3:
            try:
                arrays[name] = np.fromiter(cols[name], dtype=np.int64, count=len(cols[name]))
            except OverflowError:
                arrays[name] = np.array(cols[name], dtype=object)
                too_big = True
        for blob in BLOBS:
            parts = cols[blob]
            arrays[f"{blob}_off"] = np.cumsum([0] + [len(p) for p in parts], dtype=np.int64)
            arrays[blob] = np.frombuffer(b"".join(parts), dtype=np.uint8)
        if too_big:
            self.writable = False
        if self.writable:
            self._save(arrays, strings)
        self._new()
        return Block(arrays, strings)

    def _save(self, arrays: dict, strings: dict) -> None:
        folder = self.tape.folder
        tmp = folder / f"{_block_name(len(self.saved))}.{os.getpid()}.tmp"
        try:
            _write_block(tmp, arrays, strings)
            os.replace(tmp, folder / _block_name(len(self.saved)))
        except OSError:  # a full disk: this replay goes on from JSON, the next one reads JSON again
            self.writable = False
            tmp.unlink(missing_ok=True)
            return
        self.saved.append(len(arrays["seq"]))

    def _write_key(self, session: Session) -> None:
        folder = self.tape.folder
        value = {**self.tape.key, "ticks": self.tape.ticks, "blocks": self.saved,
                 "problems": [dataclasses.asdict(p) for p in session.issues]}
        tmp = folder / f"{KEY}.{os.getpid()}.tmp"
        try:
            tmp.write_text(json.dumps(value), encoding="utf-8")
            os.replace(tmp, folder / KEY)
        except OSError:
            tmp.unlink(missing_ok=True)

