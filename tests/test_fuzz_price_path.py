"""Fuzzing price-path CSVs: load_price_path gives a valid path or one UserError line, and a
valid path drives `keeper run` on the local market without a traceback.

Run with --hypothesis-show-statistics to see how many cases each test tried.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from keeper.cli import main
from keeper.errors import UserError
from keeper.venues.local import load_price_path
from tests.fuzzing import fuzz, quiet_keeper_log

# -- generated CSV text ----------------------------------------------------------------------------

_numbers = st.one_of(
    st.integers(min_value=-10**20, max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=1e-9, max_value=1e9).map(lambda f: f"{f:.6f}"),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "-1e400", "1e306", "1e-300", "0", "-0", "0.0000001", "1_000",
                     "0x10", "", " ", "١٢", "1,5", "1e", "+7", "-5", "9" * 400, "1" + "0" * 5000]),
)
_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
_cell = st.one_of(_numbers, _numbers, _text)
_row = st.one_of(
    st.tuples(_cell, _cell).map(",".join),
    st.lists(_cell, min_size=0, max_size=4).map(",".join),
    st.sampled_from(["timestamp,price", "# a comment", "", "ts;price", "time,price,volume"]),
)
_newline = st.sampled_from(["\n", "\r\n", "\r", "\x0b", "\x1c", "\u2028", "\x85"])


@st.composite
def csv_text(draw) -> bytes:
    rows = draw(st.lists(st.tuples(_row, _newline), max_size=8))
    text = "".join(r + nl for r, nl in rows)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()) and draw(st.booleans()):  # now and then, bytes that are not UTF-8 at all
        data = draw(st.binary(max_size=40)) + data
    return data


def increasing_path() -> st.SearchStrategy[bytes]:
    """Valid CSVs: increasing timestamps, prices from a micro-dollar to absurdly high."""
    prices = st.floats(min_value=1e-6, max_value=1e12, allow_nan=False)
    return st.lists(st.tuples(st.integers(1, 10_000), prices), min_size=1, max_size=6).map(
        lambda rows: ("timestamp,price\n" + "".join(
            f"{1_700_000_000 + sum(d for d, _ in rows[:i + 1])},{p!r}\n" for i, (_, p) in enumerate(rows))).encode())


def check_result(path: Path, data: bytes) -> str:
    """Load `path`; a valid path is well-formed, a refusal one line naming the file. Returns what happened."""
    try:
        rows = load_price_path(str(path))
    except UserError as exc:
        message = str(exc)
        assert message.startswith(str(path)), message
        assert len(message.splitlines()) == 1 and "\n" not in message and "\r" not in message, message
        assert "Traceback" not in message and len(message) <= len(str(path)) + 200, message
        return "refused"
    assert rows, data
    for ts, price in rows:
        assert type(ts) is int and type(price) is int and price > 0
        assert -2**63 < ts < 2**63 and price < 2**64  # Drift's i64 timestamps and u64 prices
    assert all(a[0] < b[0] for a, b in zip(rows, rows[1:]))
    return "loaded"


# -- load_price_path -----------------------------------------------------------------------------

@fuzz(400)
@given(data=csv_text())
@example(data=b"1e306,1\n")  # ts * 1000 overflows to inf (was an OverflowError traceback)
@example(data=b"1,1e306\n")  # price * 1e6 overflows to inf
@example(data=b"1700000000,1e300\n")  # finite but beyond a u64 price
@example(data=b"\xff\xfe,1\n")  # not UTF-8 (was AttributeError: UnicodeDecodeError has no strerror)
@example(data=b"ts,price\n1,2\n")
@example(data=b"1,2\n1,3\n")
@example(data=b"")
def test_price_path_csv_is_loaded_or_refused_in_one_line(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "path.csv"
        path.write_bytes(data)
        check_result(path, data)


@fuzz(100)
@given(data=increasing_path())
def test_increasing_paths_load(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "path.csv"
        path.write_bytes(data)
        rows = load_price_path(str(path))
        assert len(rows) == data.count(b"\n") - 1
        assert all(math.isfinite(p) and p > 0 for _, p in rows)


@pytest.mark.parametrize("make", ["directory", "missing"])
def test_unreadable_price_path_is_one_line(tmp_path, make):
    path = tmp_path / "path.csv"
    if make == "directory":
        path.mkdir()
    with pytest.raises(UserError) as info:
        load_price_path(str(path))
    assert len(str(info.value).splitlines()) == 1 and str(path) in str(info.value)


# -- keeper run --price-path ---------------------------------------------------------------------

@fuzz(15)
@given(data=st.one_of(increasing_path(), csv_text()))
def test_run_with_a_fuzzed_price_path_never_tracebacks(data, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "path.csv"
        path.write_bytes(data)
        capsys.readouterr()
        try:
            code = main(["run", "--price-path", str(path), "--ticks", "3", "--fast", "--seed", "1",
                         "--markets", "SOL-PERP,BTC-PERP", "--archive-dir", str(Path(tmp) / "archive")])
        finally:
            quiet_keeper_log()
        err = capsys.readouterr().err
        assert isinstance(code, int)
        assert "Traceback" not in err
        if code == 3:  # a valid path whose jumps (informed takers trade on them) halted the risk gate
            assert "halted by the risk gate" in err and "keeper: error:" not in err, err
        elif code != 0:
            assert code == 2
            errors = [line for line in err.splitlines() if "keeper: error:" in line]
            assert len(errors) == 1 and errors[0].startswith("keeper: error:"), err

