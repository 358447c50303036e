"""`keeper archive import --format tardis`: a seeded stream written as Tardis CSVs by
../shared/perf/to_tardis.py comes back as a session whose books and trades are the stream's
to the unit; bad rows are skipped and named; a wrong file is one line and exit 2; memory
stays bounded whatever the file's length."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest

from keeper.archive.importer import Options, import_tardis
from keeper.archive.reader import open_session
from keeper.archive.verify import verify_session
from keeper.cli import main
from keeper.model import BASE_PRECISION, PRICE_PRECISION
from tests.conftest import KEEPER, ROOT, shows_then_exits, terminal

PERF = ROOT.parent / "shared" / "perf"
FEED_US = 5000  # to_tardis's default feed latency: local_timestamp - timestamp


def make_stream(folder: Path, ticks: int, gz: bool) -> tuple[Path, Path, Path]:
    """(stream prefix, book CSV, trades CSV) of a seeded gen_stream run, as to_tardis writes them."""
    if not (PERF / "gen_stream.py").exists():
        pytest.skip(f"../shared/perf not found at {PERF}")
    prefix = folder / "stream"
    subprocess.run([sys.executable, str(PERF / "gen_stream.py"), "-T", str(ticks), "--seed", "42", "--out", str(prefix)],
                   check=True, capture_output=True)
    out = folder / "csv"
    done = subprocess.run([sys.executable, str(PERF / "to_tardis.py"), str(prefix), str(out), *(["--gzip"] if gz else [])],
                          check=True, capture_output=True, text=True)
    info = json.loads(done.stdout)
    (book,), (trades,) = info["books"], info["trades"]
    return prefix, Path(book), Path(trades)


def keeper(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def imported(book: Path, trades: Path, out: Path, *extra: str) -> list[str]:
    return ["archive", "import", "--format", "tardis", "--book", str(book), "--trades", str(trades), str(out), *extra]


def drift(value: float, precision: int) -> int:
    """The stream's float (printed with 4 or 1 decimals) in Drift units, exactly."""
    exact = Decimal(repr(value)) * precision
    assert exact == exact.to_integral_value()
    return int(exact)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_round_trip_books_and_trades_equal_the_stream(tmp_path, capsys, gz):
    prefix, book, trades = make_stream(tmp_path, 400, gz)
    out = tmp_path / "session"
    code, stdout, _ = keeper(imported(book, trades, out, "--symbol", "SOL-PERP"), capsys)
    assert code == 0, stdout
    assert "400 snapshots" in stdout and "bad rows: 0 book, 0 trades" in stdout

    session = open_session(out)
    assert session.manifest["network"] == "import:tardis:drift" and session.manifest["markets"] == ["SOL-PERP"]
    records = list(session.records())
    lines = [json.loads(line) for line in prefix.with_suffix(".jsonl").read_text().splitlines()]
    assert len(records) == len(lines) == 400 and not session.problems()
    for record, line in zip(records, lines):
        market = record.value.markets["SOL-PERP"]
        assert record.value.ts == (line["ts"] // 1000 + FEED_US) // 1000
        assert [(lv.price, lv.size) for lv in market.book.bids] == \
            [(drift(p, PRICE_PRECISION), drift(s, BASE_PRECISION)) for p, s in line["bids"]]
        assert [(lv.price, lv.size) for lv in market.book.asks] == \
            [(drift(p, PRICE_PRECISION), drift(s, BASE_PRECISION)) for p, s in line["asks"]]
        assert [(t.price, t.size, t.taker_side) for t in market.trades] == \
            [(drift(p, PRICE_PRECISION), drift(s, BASE_PRECISION), "bid" if side > 0 else "ask") for p, s, side in line["trades"]]
        assert market.oracle_price == (market.book.bids[0].price + market.book.asks[0].price) // 2
    assert sum(len(line["trades"]) for line in lines) > 100  # the comparison saw trades

    report = verify_session(out)
    assert report.ok and report.finished and report.snapshots == 400
    code, stdout, _ = keeper(["replay", str(out), "--strategy", "fixed_spread", "--param", "floating=false"], capsys)
    assert code == 0 and "over 400 archived snapshots" in stdout
    fills = int(next(line for line in stdout.splitlines() if line.startswith("TOTAL")).split()[1])
    assert fills > 0


def test_every_ms_thins_books_and_keeps_every_trade(tmp_path, capsys):
    prefix, book, trades = make_stream(tmp_path, 120, False)
    out = tmp_path / "session"
    code, stdout, _ = keeper(imported(book, trades, out, "--symbol", "SOL-PERP", "--every-ms", "3000"), capsys)
    assert code == 0 and "40 snapshots" in stdout, stdout
    records = list(open_session(out).records())
    stream_trades = sum(len(json.loads(line)["trades"]) for line in prefix.with_suffix(".jsonl").read_text().splitlines())
    summary = json.loads((out / "summary.json").read_text())["import"]
    assert sum(len(r.value.markets["SOL-PERP"].trades) for r in records) + summary["trades_after_last_book"] == stream_trades


def test_bad_rows_are_skipped_counted_and_named(tmp_path, capsys):
    _, book, trades = make_stream(tmp_path, 12, False)
    rows = book.read_text().splitlines()
    cells = [row.split(",") for row in rows]
    cells[2][4] = "abc"  # line 3: asks[0].price not a number
    cells[4][3] = str(int(cells[3][3]) - 1)  # line 5: earlier than line 4
    cells[6][6] = cells[6][4]  # line 7: best bid = best ask
    cells[8][8] = str(Decimal(cells[8][8]) + Decimal("0.00005"))  # line 9: asks[1].price off the 0.0001 tick
    book.write_text("\n".join(",".join(row) for row in cells) + "\n")
    trade_rows = trades.read_text().splitlines()
    fields = trade_rows[1].split(",")
    fields[5] = "unknown"  # line 2 of trades: no taker side
    trade_rows[1] = ",".join(fields)
    trades.write_text("\n".join(trade_rows) + "\n")

    out = tmp_path / "session"
    code, stdout, _ = keeper(imported(book, trades, out, "--symbol", "SOL-PERP"), capsys)
    assert code == 1
    name = book.name
    assert f"{name}:3: asks[0].price 'abc' is not a number" in stdout
    assert f"{name}:5: local_timestamp {cells[4][3]} is earlier than line 4's {cells[3][3]}" in stdout
    assert f"{name}:7: crossed book" in stdout
    assert f"{name}:9: asks[1].price {cells[8][8]} is finer than 1e-6" in stdout or \
        f"{name}:9: asks[1].price {cells[8][8]} is not a multiple of the tick 0.0001" in stdout
    assert f"{trades.name}:2: taker side 'unknown'" in stdout
    assert "8 snapshots" in stdout and "bad rows: 4 book, 1 trades" in stdout  # 12 rows, 4 bad
    assert len((out / "import-problems.txt").read_text().splitlines()) == 5
    kept = [r.value.ts for r in open_session(out).records()]
    bad_ts = {int(cells[i][3]) // 1000 for i in (2, 4, 6, 8)}
    assert len(kept) == 8 and not bad_ts & set(kept[1:])  # line 5 shares no ts with the rest either
    assert verify_session(out).ok


@pytest.mark.parametrize("what, expected", [
    ("unknown column", "unknown column 'foo'"),
    ("trades as book", "is a Tardis trades file, not book_snapshot_25"),
    ("garbage gzip", "unreadable: "),
    ("empty", "is empty"),
    ("missing level", "102 columns, no 'bids[24].price'"),
    ("binary", "is not a CSV text file"),
])
def test_a_wrong_file_is_one_line_and_exit_2_and_leaves_nothing(tmp_path, capsys, what, expected):
    _, book, trades = make_stream(tmp_path, 3, False)
    header, *rows = book.read_text().splitlines()
    if what == "unknown column":
        book.write_text(header.replace("exchange", "foo", 1) + "\n" + "\n".join(rows) + "\n")
    elif what == "trades as book":
        book = trades
    elif what == "garbage gzip":
        book.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)  # gzip's magic, then no gzip
    elif what == "empty":
        book.write_text("")
    elif what == "binary":
        book.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))  # a picture given as the book
    else:
        book.write_text(",".join(header.split(",")[:-2]) + "\n")
    out = tmp_path / "session"
    code, stdout, stderr = keeper(imported(book, trades, out, "--symbol", "SOL-PERP"), capsys)
    assert code == 2 and stdout == ""
    (line,) = stderr.strip().splitlines()
    assert line.startswith("keeper: error:") and expected in line, line
    assert not out.exists()


def test_market_parameters_come_from_flags_or_a_known_market(tmp_path, capsys):
    _, book, trades = make_stream(tmp_path, 5, False)
    code, _, stderr = keeper(imported(book, trades, tmp_path / "a", "--market", "JUP-PERP"), capsys)
    assert code == 2 and "pass --tick-size and --step-size" in stderr
    code, _, stderr = keeper(imported(book, trades, tmp_path / "b", "--market", "NOPE-PERP"), capsys)
    assert code == 2 and "no Drift market named 'NOPE-PERP'" in stderr
    code, stdout, _ = keeper(imported(book, trades, tmp_path / "c", "--market", "JUP-PERP", "--tick-size", "0.0001",
                                      "--step-size", "0.1"), capsys)
    assert code == 0, stdout
    spec = next(open_session(tmp_path / "c").records()).value.markets["JUP-PERP"].spec
    assert (spec.kind, spec.tick_size, spec.step_size, spec.base_precision) == ("perp", 100, 10**8, BASE_PRECISION)
    code, _, stderr = keeper(imported(book, trades, tmp_path / "d", "--symbol", "SOL-PERP", "--tick-size", "0.01"), capsys)
    assert code == 2 and "no book row could be imported (5 bad" in stderr  # the stream's 0.0001 prices don't fit
    assert "is not a multiple of the tick 0.01" in stderr and not (tmp_path / "d").exists()


def test_peak_memory_does_not_grow_with_the_file(tmp_path):
    """Ten times the rows, about the same peak: the import holds no more than a row at a time."""
    def run(ticks: int, traced: bool) -> int:
        folder = tmp_path / f"{ticks}-{traced}"
        folder.mkdir()
        _, book, trades = make_stream(folder, ticks, True)
        options = Options(str(book), str(trades), str(folder / "session"), symbol="SOL-PERP")
        if traced:
            tracemalloc.start()
        try:
            report = import_tardis(options, [])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert report.snapshots == ticks and report.bad_rows == 0
        return peak

    run(100, traced=False)  # what any import loads once (modules, market specs) is not the rows' cost
    small, large = run(1_000, traced=True), run(10_000, traced=True)
    assert large < 1.5 * small + 256 * 1024, (small, large)
    assert large < 8 * 1024 * 1024, (small, large)


def test_progress_is_a_line_every_ten_percent_without_a_terminal(tmp_path):
    _, book, trades = make_stream(tmp_path, 300, True)
    done = subprocess.run([*KEEPER, *imported(book, trades, tmp_path / "session", "--symbol", "SOL-PERP")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    percents = [int(m.group(1)) for m in re.finditer(r"^import: +(\d+)% [\d,]+ snapshots, [\d,]+ snapshots/s", done.stderr, re.M)]
    assert percents == list(range(10, 101, 10)), done.stderr
    assert "import:" not in done.stdout


def test_progress_is_a_bar_with_a_rate_on_a_terminal(tmp_path):
    _, book, trades = make_stream(tmp_path, 300, True)
    child = terminal(imported(book, trades, tmp_path / "session", "--symbol", "SOL-PERP"), timeout=300)
    assert shows_then_exits(child, "import", "━", r"300 snapshots [\d,]+ snapshots/s", "imported: ") == 0


def test_the_market_is_the_files_symbol_unless_a_flag_names_it(tmp_path, capsys):
    _, book, trades = make_stream(tmp_path, 5, False)
    code, stdout, _ = keeper(imported(book, trades, tmp_path / "a"), capsys)  # no --symbol, no --market
    assert code == 0, stdout
    assert open_session(tmp_path / "a").manifest["markets"] == ["SOL-PERP"]
    other = tmp_path / "other.csv"  # as Binance's files name it: no Drift market
    other.write_text(book.read_text().replace("drift,SOL-PERP,", "binance-futures,SOLUSDT,"))
    code, _, stderr = keeper(imported(other, trades, tmp_path / "b"), capsys)
    (line,) = stderr.strip().splitlines()
    assert code == 2 and "the market, from the files' symbol: no Drift market named 'SOLUSDT'" in line
    assert "--market" in line and not (tmp_path / "b").exists()


def test_trades_of_another_market_are_bad_rows_not_merged(tmp_path, capsys):
    _, book, trades = make_stream(tmp_path, 20, False)
    other = tmp_path / "other-trades.csv"
    other.write_text(trades.read_text().replace("drift,SOL-PERP,", "binance-futures,SOLUSDT,"))
    code, stdout, _ = keeper(imported(book, other, tmp_path / "s", "--market", "SOL-PERP"), capsys)
    rows = len(trades.read_text().splitlines()) - 1
    assert code == 1 and f"bad rows: 0 book, {rows} trades" in stdout
    assert f"{other.name}:2: exchange/symbol binance-futures/SOLUSDT, not drift/SOL-PERP" in stdout
    assert not any(r.value.markets["SOL-PERP"].trades for r in open_session(tmp_path / "s").records())


def test_the_session_s_interval_is_the_data_s_cadence(tmp_path, capsys):
    """A sweep scales Sharpe to an hour by the manifest's interval: it must be the snapshots' own."""
    _, book, trades = make_stream(tmp_path, 100, False)
    header, *rows = book.read_text().splitlines()
    cells = [row.split(",") for row in rows]
    t0 = int(cells[0][3])
    for i, row in enumerate(cells):  # a book every 100 ms, as Tardis serves some exchanges
        row[2] = row[3] = str(t0 + i * 100_000)
    fast = tmp_path / "fast.csv"
    fast.write_text("\n".join([header, *(",".join(row) for row in cells)]) + "\n")
    cases = [(book, (), 1000), (book, ("--every-ms", "3000"), 3000), (fast, (), 100)]
    for n, (file, extra, interval_ms) in enumerate(cases):
        code, stdout, _ = keeper(imported(file, trades, tmp_path / f"s{n}", *extra), capsys)
        assert code == 0, stdout
        assert open_session(tmp_path / f"s{n}").manifest["interval_ms"] == interval_ms, (file, extra)
