"""Fuzzing the Node DLOB helper's replies: DlobHelper talking to a real subprocess (a tiny Python
script given as the helper command) that answers one request with a generated line: a damaged
book, a wrong id, a value of the wrong type, bytes that are no JSON, or an exit.

Every bad reply must end in the module's DlobError (HelperFailed, or RequestRejected for a
well-formed error reply), which the venue turns into a skipped tick; never another exception,
and never a book with a value of the wrong type in it (the archive could not read it back).
After a HelperFailed the next request starts a new helper and is answered.

Run with --hypothesis-show-statistics to see how many cases each test tried.
"""
from __future__ import annotations

import asyncio
import base64
import copy
import json
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from keeper.model import Book, BookOrder, Level
from keeper.venues.drift.dlob import DlobBook, DlobError, DlobHelper, HelperFailed
from tests.fuzzing import fuzz

USER = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
COLUMNS = ["price", "size", "fillable", "user", "order_id", "oracle_price_offset", "post_only", "reduce_only", "slot", "max_ts"]
GOOD = {
    "ping": {"ok": True, "sdk": "fake", "accounts": "0", "orders": "0", "builds": "0"},
    "upsert": {"ok": True, "accounts": "1", "rejected": []},
    "remove": {"ok": True, "removed": "1", "accounts": "0"},
    "reset": {"ok": True},
    "book": {
        "ok": True, "market_type": "perp", "market_index": "0", "slot": "300000000",
        "bids": [{"price": "59990000", "size": "1000000000"}, {"price": "59980000", "size": "500000000"}],
        "asks": [{"price": "60010000", "size": "2000000000", "vamm": True}],
        "vamm_bid": "59970000", "vamm_ask": "60030000",
        "l3": {"columns": COLUMNS,
               "bids": [["59990000", "1000000000", "1000000000", USER, "7", "0", True, False, "299999990", "0"]],
               "asks": [["60010000", "2000000000", "0", USER, "8", "-5000", False, True, "299999991", "1700000000"]]},
    },
}

# The helper: answers each request from the plan file (op -> base64 line, or "exit"), else well.
FAKE = textwrap.dedent("""
    import base64, json, sys
    plan_path, good = sys.argv[1], json.loads(sys.argv[2])
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"] if request["op"] in good else "book"
        with open(plan_path) as f:
            plan = json.load(f)
        step = plan.get(request["op"])
        if step == "exit":
            sys.exit(3)
        if step is None:
            sys.stdout.write(json.dumps({"id": request["id"], **good[op]}) + "\\n")
        else:
            raw = base64.b64decode(step["line"]).replace(b"ID", str(request["id"]).encode())
            sys.stderr.buffer.write(base64.b64decode(step["stderr"]) + b"\\n")
            sys.stdout.buffer.write(raw + b"\\n")
            if step["stale"]:  # a reply to an older request came first: the real one follows
                sys.stdout.write(json.dumps({"id": request["id"], **good[op]}) + "\\n")
        sys.stdout.flush()
""")


class Rig:
    """One event loop and one DlobHelper for a whole test: restarts are what is tested."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="fuzz-dlob-")
        self.plan = Path(self.tmp.name) / "plan.json"
        self.plan.write_text("{}")
        script = Path(self.tmp.name) / "helper.py"
        script.write_text(FAKE)
        self.loop = asyncio.new_event_loop()
        self.helper = DlobHelper(timeout=5.0, startup_timeout=15.0, sync_timeout=5.0,
                                 command=[sys.executable, "-I", "-S", str(script), str(self.plan), json.dumps(GOOD)])

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.helper.close())
        self.loop.close()
        self.tmp.cleanup()


@pytest.fixture(scope="module")
def rig():
    r = Rig()
    yield r
    r.close()


# -- generated replies -----------------------------------------------------------------------------

_wrong = st.one_of(
    st.floats(allow_nan=False), st.integers(), st.sampled_from([2**64, -(2**70), 10**40]), st.text(max_size=8),
    st.sampled_from(["1.5", "1e3", " 12", "0x10", "-", "", "١٢", "9" * 60, "💥"]), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                     max_leaves=15)


@st.composite
def reply_line(draw, op: str) -> tuple[bytes, bool]:
    """(a reply line for `op`, whether a stale reply is sent before the real one)."""
    doc = {"id": "ID", **copy.deepcopy(GOOD["book" if op == "l2" else op])}
    how = draw(st.sampled_from(["mutate", "mutate", "mutate", "mutate", "id", "bytes", "json", "error", "cut"]))
    if how == "bytes":
        return draw(st.binary(max_size=80)).replace(b"\n", b" "), False
    if how == "json":
        value = draw(_json)
        if isinstance(value, dict) and draw(st.booleans()):
            value["id"] = "ID"
        return json.dumps(value).encode(), False
    if how == "error":  # a well-formed refusal: RequestRejected, the helper stays
        doc = {"id": "ID", "error": draw(st.one_of(st.text(max_size=30), _wrong))}
    elif how == "id":
        doc["id"] = draw(st.one_of(_wrong.filter(lambda v: not (type(v) is int and v < 1)), st.just("ID")))
    elif how == "mutate":
        parent, key, node = None, None, doc
        while isinstance(node, (dict, list)) and node and (parent is None or draw(st.integers(0, 3))):
            keys = [k for k in (node if isinstance(node, dict) else range(len(node))) if k != "id"]
            if not keys:
                break
            parent, key = node, draw(st.sampled_from(keys))
            node = parent[key]
        if parent is not None:
            if draw(st.integers(0, 4)) == 0 and isinstance(parent, dict):
                del parent[key]
            else:
                parent[key] = draw(_wrong)
    line = json.dumps(doc).replace('"ID"', "ID").encode()
    if how == "cut":
        line = line[: draw(st.integers(0, len(line) - 1))]
    stale = how == "id" and type(doc["id"]) is int
    return line, stale


def assert_int(value) -> None:
    assert type(value) is int, f"{value!r} is not an int"


def assert_typed_book(detail: DlobBook, l3: bool) -> None:
    """A book the keeper can trust, and archive: every field of the type the model says."""
    assert isinstance(detail, DlobBook) and isinstance(detail.book, Book)
    assert_int(detail.slot)
    for value in (detail.vamm_bid, detail.vamm_ask):
        assert value is None or type(value) is int, value
    for level in detail.book.bids + detail.book.asks:
        assert isinstance(level, Level)
        assert_int(level.price)
        assert_int(level.size)
    if not l3:
        assert detail.book.l3 is None
        return
    for order in detail.book.l3:
        assert isinstance(order, BookOrder) and order.side in ("bid", "ask")
        for value in (order.price, order.size, order.order_id):
            assert_int(value)
        assert type(order.user) is str, order
        assert order.oracle_offset is None or type(order.oracle_offset) is int, order
        assert type(order.post_only) is bool, order


async def request(helper: DlobHelper, op: str):
    if op in ("book", "l2"):
        return await helper.book_detail("perp", 0, 300_000_000, 60_000_000, l3=op == "book")
    if op == "upsert":
        return await helper.upsert({USER: b"\x01" * 64})
    if op == "remove":
        return await helper.remove([USER])
    if op == "reset":
        return await helper.reset()
    return await helper.ping()


def check_result(op: str, result) -> None:
    if op in ("book", "l2"):
        assert_typed_book(result, op == "book")
    elif op == "upsert":
        assert isinstance(result, dict) and all(type(k) is str and type(v) is str for k, v in result.items()), result
    elif op == "remove":
        assert_int(result)
    elif op == "ping":
        assert isinstance(result, dict)


def exchange(rig: Rig, op: str, step, record: bool = True) -> None:
    """One request answered by `step`, then a well-answered one: a failure restarts the helper."""
    helper = rig.helper
    rig.plan.write_text("{}")
    rig.run(helper.start())  # settle any restart owed by the previous case
    starts = helper.starts
    rig.plan.write_text(json.dumps({"book" if op == "l2" else op: step}))
    try:
        result = rig.run(request(helper, op))
    except HelperFailed as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)
        outcome = "HelperFailed"
    except DlobError as exc:  # RequestRejected: a well-formed error reply; the helper stays
        assert len(str(exc).splitlines()) == 1, str(exc)
        outcome = type(exc).__name__
    else:
        check_result(op, result)
        outcome = "answered"
    if record:  # for --hypothesis-show-statistics
        event(f"{op}: {outcome}")
    rig.plan.write_text("{}")
    check_result(op, rig.run(request(helper, op)))
    assert helper.starts == starts + (outcome == "HelperFailed"), (outcome, helper.starts, starts)


# -- the tests -------------------------------------------------------------------------------------

def _step(line: bytes, stale: bool, stderr: bytes = b"") -> dict:
    return {"line": base64.b64encode(line).decode(), "stale": stale, "stderr": base64.b64encode(stderr).decode()}


@fuzz(120)
@given(op=st.sampled_from(["book", "book", "l2"]), reply=st.data(), stderr=st.binary(max_size=40))
def test_book_replies(rig, op, reply, stderr):
    line, stale = reply.draw(reply_line(op), label="reply")
    exchange(rig, op, _step(line, stale, stderr))


@fuzz(80)
@given(op=st.sampled_from(["upsert", "remove", "reset", "ping"]), reply=st.data())
def test_other_replies(rig, op, reply):
    line, stale = reply.draw(reply_line(op), label="reply")
    exchange(rig, op, _step(line, stale))


@pytest.mark.parametrize("op,line", [
    # found by the tests above (each was an AttributeError, or a book that could not be archived)
    ("book", b'{"id": ID, "ok": true, "l3": {"columns": {}, "bids": [], "asks": []}, "bids": [], "asks": [], "slot": "1"}'),
    ("book", b'{"id": ID, "ok": true, "l3": {"columns": ["price", "size", "fillable", "user", "order_id", '
             b'"oracle_price_offset", "post_only", "reduce_only", "slot", "max_ts"], "bids": [["1", "2", "2", 5, "7", "0", '
             b'true, false, "1", "0"]], "asks": []}, "bids": [], "asks": [], "slot": "1"}'),  # user is no pubkey
    ("book", b'{"id": ID, "ok": true, "bids": [{"price": 1.5, "size": "1"}], "asks": [], "slot": "1"}'),
    ("book", b'{"id": ID, "error": ""}'),  # a refusal without a reason
    ("upsert", b'{"id": ID, "ok": true, "rejected": [1, 2]}'),
    ("upsert", b'{"id": ID, "ok": true, "rejected": 7}'),
    ("remove", b'{"id": ID, "ok": true}'),
])
def test_known_bad_replies(rig, op, line):
    exchange(rig, op, _step(line, False), record=False)


@pytest.mark.parametrize("op", ["book", "upsert", "ping"])
def test_a_helper_that_exits_instead_of_answering(rig, op):
    exchange(rig, op, "exit", record=False)
