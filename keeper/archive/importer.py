"""`keeper archive import --format tardis`: Tardis.dev book snapshots and trades -> a keeper session.

One pass over both files, merged by local_timestamp (the time the data was seen, as a
keeper sees a snapshot): each book row becomes a one-market Snapshot carrying the trades
seen since the previous one (a trade at the same microsecond as a book row goes with it).
Nothing is held but the trades between two book rows, so memory does not grow with the
files. Tardis has no oracle, slots or L3: the oracle and mark are the book's mid, a slot is
SLOT_US of local time, the book is L2 only; there are no executions and no strategy
("none"): replay it with --strategy.

A row that can't be used (a number that isn't one, or doesn't fit the tick/step; a time
earlier than the row before; a crossed or disordered book; a trade with no side) is skipped,
counted and reported as FILE:LINE: reason, all of them in OUT_DIR/import-problems.txt.
"""
from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Optional

from keeper.archive.tardis import BadRow, BookRow, CsvFile, Grid, Rows, TradeRow, first_source, units
from keeper.archive.writer import SessionWriter
from keeper.errors import UserError, unknown
from keeper.model import BASE_PRECISION, Book, MarketSpec, MarketState, Snapshot, UserState, replace
from keeper.risk.config import recorded
from keeper.ui.progress import Progress

SLOT_US = 400_000  # Solana's nominal slot time
PROBLEMS = "import-problems.txt"
SHOWN = 20  # bad rows printed; the rest are in PROBLEMS
# A market Drift has but the local specs don't: these, documented in the README.
NO_FEES_MARGINS = dict(taker_fee=0, maker_rebate=0, margin_ratio_initial=1000, margin_ratio_maintenance=500, asset_weight=0)


@dataclass
class Options:
    book: str
    trades: str
    out: str
    exchange: Optional[str] = None
    symbol: Optional[str] = None
    market: Optional[str] = None  # the Drift market the session is of; default: the symbol
    tick_size: Optional[str] = None  # human units, as typed
    step_size: Optional[str] = None
    every_ms: int = 0  # at most one snapshot per this many ms of local time (0: every book row)


@dataclass
class ImportReport:
    path: Path
    market: str
    snapshots: int = 0
    trades: int = 0
    book_rows: int = 0
    trade_rows: int = 0
    skipped_books: int = 0  # good rows left out by --every-ms
    trades_after: int = 0  # good trades later than the last book row: no snapshot to carry them
    bad: dict[str, int] = field(default_factory=lambda: {"book": 0, "trades": 0})
    shown: list[str] = field(default_factory=list)

    @property
    def bad_rows(self) -> int:
        return sum(self.bad.values())


def market_spec(name: str, tick_size: Optional[str], step_size: Optional[str]) -> MarketSpec:
    """The local market's real spec for a name it has; else a Drift market known to driftpy by
    name, whose tick and step must be given; flags override either."""
    from driftpy.constants.perp_markets import mainnet_perp_market_configs
    from driftpy.constants.spot_markets import mainnet_spot_market_configs

    from keeper.venues.local.specs import names as local_names, spec as local_spec

    if name in local_names():
        spec = local_spec(name)
    else:
        perp = {m.symbol: m for m in mainnet_perp_market_configs}
        spot = {m.symbol: m for m in mainnet_spot_market_configs}
        if name not in perp and name not in spot:
            raise UserError(unknown("Drift market", name, [*perp, *spot]) + " (name one with --market)")
        if tick_size is None or step_size is None:
            raise UserError(f"{name}: pass --tick-size and --step-size (only {', '.join(local_names())} are known here in full)")
        config = perp.get(name) or spot[name]
        base = BASE_PRECISION if name in perp else 10**config.decimals
        spec = MarketSpec(name, "perp" if name in perp else "spot", config.market_index, base, 1, 1, 1, **NO_FEES_MARGINS)
    decimals = len(str(spec.base_precision)) - 1
    tick = _flag(tick_size, 6, "--tick-size") if tick_size is not None else spec.tick_size
    step = _flag(step_size, decimals, "--step-size") if step_size is not None else spec.step_size
    return replace(spec, tick_size=tick, step_size=step, min_order_size=max(step, spec.min_order_size) if step_size is None else step)


def _flag(text: str, decimals: int, what: str) -> int:
    try:
        return units(text, decimals, what)
    except BadRow as exc:
        raise UserError(str(exc)) from None


def import_tardis(options: Options, argv: list[str], progress: Optional[Callable[[int], Progress]] = None) -> ImportReport:
    """`progress(total)` makes the progress display: the book file's bytes read, and snapshots written."""
    # What both files' rows must hold, from the flags or else the book's first row, so a trades
    # file of another market is its rows' problem, not merged in.
    exchange, symbol = options.exchange, options.symbol
    if exchange is None or symbol is None:
        found = first_source(options.book)
        if found is None:
            raise UserError(f"{options.book}: no book row could be imported (no rows)")
        exchange, symbol = exchange or found[0], symbol or found[1]
    name = options.market or symbol
    try:
        spec = market_spec(name, options.tick_size, options.step_size)
    except UserError as exc:
        if options.market or options.symbol:
            raise
        raise UserError(f"the market, from the files' symbol: {exc}") from None
    out = Path(options.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} exists and is not an empty folder")
    grid = Grid(len(str(spec.base_precision)) - 1, spec.tick_size, spec.step_size, exchange, symbol)
    report = ImportReport(out, spec.name)
    made = not out.exists()
    with contextlib.ExitStack() as stack:
        books = CsvFile(options.book, "book")
        stack.callback(books.close)
        trades = CsvFile(options.trades, "trades")
        stack.callback(trades.close)
        try:
            out.mkdir(parents=True, exist_ok=True)
            with ProblemLog(out) as problems, progress(books.size) if progress else contextlib.nullcontext() as shown:
                _run(books, trades, grid, spec, options, argv, report, problems, shown)
        except BaseException:
            _remove(out, made)  # a failed import leaves nothing behind that looks like a session
            raise
    return report


class ProblemLog:
    """OUT_DIR/import-problems.txt, made on the first bad row."""

    def __init__(self, out: Path) -> None:
        self.path, self.file = out / PROBLEMS, None

    def write(self, line: str) -> None:
        if self.file is None:
            self.file = open(self.path, "w", encoding="utf-8")
        self.file.write(line + "\n")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()


def _run(books: CsvFile, trades: CsvFile, grid: Grid, spec: MarketSpec, options: Options, argv, report: ImportReport,
         problems: ProblemLog, shown: Optional[Progress]) -> None:
    def bad(file: CsvFile, kind: str, line: int, reason) -> None:
        report.bad[kind] += 1
        text = f"{file.path.name}:{line}: {reason}"
        problems.write(text)
        if len(report.shown) < SHOWN:
            report.shown.append(text)

    def good(file: CsvFile, kind: str, parse) -> Iterator:
        for line, row in file.rows():
            try:
                if isinstance(row, BadRow):
                    raise row
                parsed = parse(line, row)
            except BadRow as exc:
                bad(file, kind, line, exc)
                continue
            if kind == "trades":
                report.trade_rows += 1
            yield parsed

    book_rows = Rows(books, grid)
    trade_iter = good(trades, "trades", Rows(trades, grid).trade)
    pending: Optional[TradeRow] = next(trade_iter, None)
    carried: list = []
    output = _Output(report.path, lambda first_us, interval_ms: _manifest(book_rows, spec, argv, first_us, interval_ms))
    last_emit, oracle = None, None
    every_us = options.every_ms * 1000
    for row in good(books, "book", book_rows.book):
        while pending is not None and pending.local_us <= row.local_us:
            carried.append(pending.trade)
            pending = next(trade_iter, None)
        mid = _mid(row, oracle)
        if mid is None:  # only before the first two-sided book
            bad(books, "book", row.line, "a one-sided book, and no earlier mid to price the market by")
            continue
        report.book_rows += 1
        if last_emit is not None and row.local_us < last_emit + every_us:
            report.skipped_books += 1
            continue
        oracle, last_emit = mid, row.local_us
        output.write(_snapshot(row, mid, tuple(carried), spec), row.local_us)
        report.snapshots += 1
        report.trades += len(carried)
        carried = []
        if shown is not None:
            shown.update(books.position, report.snapshots)
    for _ in trade_iter:  # counted (and checked) all the same: they only come too late
        pass
    report.trades_after = report.trade_rows - report.trades
    if not report.snapshots:
        raise UserError(f"{books.path}: no book row could be imported"
                        + (f" ({report.bad['book']} bad; the first: {report.shown[0]})" if report.shown else " (no rows)"))
    output.finish({"import": {"format": "tardis", "book": str(books.path), "trades": str(trades.path),
                              "exchange": book_rows.exchange, "symbol": book_rows.symbol, "market": spec.name,
                              "snapshots": report.snapshots, "trades_imported": report.trades,
                              "book_rows": report.book_rows, "trade_rows": report.trade_rows,
                              "skipped_book_rows": report.skipped_books, "trades_after_last_book": report.trades_after,
                              "bad_book_rows": report.bad["book"], "bad_trade_rows": report.bad["trades"]}})


def _mid(row: BookRow, previous: Optional[int]) -> Optional[int]:
    if row.bids and row.asks:
        return (row.bids[0].price + row.asks[0].price) // 2
    return previous


def _snapshot(row: BookRow, mid: int, trades: tuple, spec: MarketSpec) -> Snapshot:
    slot = row.local_us // SLOT_US
    market = MarketState(spec, oracle_price=mid, oracle_slot=slot, oracle_conf=0, mark_price=mid, funding_rate=0,
                         book=Book(row.bids, row.asks, None), trades=trades)
    return Snapshot(row.local_us // 1000, slot, {spec.name: market}, UserState(0, 0))


CADENCE_SAMPLE = 64  # snapshots held before the session is written: the median of their gaps is its interval


class _Output:
    """The session's writer, made once the first CADENCE_SAMPLE snapshots have shown the data's
    cadence: the manifest's interval_ms is what a sweep scales Sharpe to an hour by, and a Tardis
    book comes every 100 ms as often as every second. Holds no more than those snapshots."""

    def __init__(self, path: Path, manifest: Callable[[int, int], dict]) -> None:
        self.path, self.manifest = path, manifest
        self.held: list[Snapshot] = []
        self.first_us: Optional[int] = None
        self.writer: Optional[SessionWriter] = None

    def write(self, snapshot: Snapshot, local_us: int) -> None:
        if self.writer is not None:
            self.writer.write_snapshot(snapshot)
            return
        self.first_us = local_us if self.first_us is None else self.first_us
        self.held.append(snapshot)
        if len(self.held) == CADENCE_SAMPLE:
            self._open()

    def _open(self) -> None:
        gaps = sorted(b.ts - a.ts for a, b in zip(self.held, self.held[1:]))
        interval_ms = max(1, gaps[len(gaps) // 2]) if gaps else 1000  # one snapshot: a cadence of nothing
        self.writer = SessionWriter.create_at(self.path, self.manifest(self.first_us, interval_ms))
        for snapshot in self.held:
            self.writer.write_snapshot(snapshot)
        self.held = []

    def finish(self, summary: dict) -> None:
        if self.writer is None:
            self._open()
        self.writer.finish(summary)


def _manifest(rows: Rows, spec: MarketSpec, argv: list[str], first_us: int, interval_ms: int) -> dict:
    from keeper.run import versions

    return {
        "network": f"import:tardis:{rows.exchange}",
        "strategy": "none",
        "params": {},
        "seed": None,
        "markets": [spec.name],
        "interval_ms": interval_ms,
        "price_path": None,
        "started_at": datetime.fromtimestamp(first_us / 1e6, timezone.utc).isoformat(),
        "versions": versions(),
        "argv": ["keeper", *argv],
        "risk": recorded({}),  # a replay of it settles PnL as the keeper would
    }


def _remove(folder: Path, made: bool) -> None:
    if made:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for entry in folder.iterdir():  # it was empty: all of it is ours
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def format_report(report: ImportReport) -> str:
    lines = list(report.shown)
    if report.bad_rows > len(report.shown):
        lines.append(f"... and {report.bad_rows - len(report.shown)} more bad rows: all in {report.path / PROBLEMS}")
    extra = f", {report.skipped_books} book rows thinned out by --every-ms" if report.skipped_books else ""
    after = f", {report.trades_after} trades after the last book row not imported" if report.trades_after else ""
    verdict = "imported" if not report.bad_rows else "imported with bad rows skipped"
    lines.append(f"{verdict}: {report.path}: {report.market}, {report.snapshots} snapshots, {report.trades} trades; "
                 f"bad rows: {report.bad['book']} book, {report.bad['trades']} trades{extra}{after}")
    lines.append(f"replay:  keeper replay {report.path} --strategy fixed_spread")
    return "\n".join(lines)


def import_command(args, argv: list[str]) -> int:
    options = Options(args.book, args.trades, args.out, args.exchange, args.symbol, args.market, args.tick_size,
                      args.step_size, args.every_ms)
    report = import_tardis(options, argv, progress=lambda total: Progress("import", total, "snapshots"))
    print(format_report(report))
    return 1 if report.bad_rows else 0
