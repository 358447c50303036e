"""Tardis.dev CSV files: the columns, the rows, and the one conversion to Drift integers.

Format (docs.tardis.dev, "Downloadable CSV files"): comma-separated, LF line ends, a dot
decimal mark, timestamps in microseconds since the epoch (UTC), an empty cell where there is
no value; files gzip-compressed as served, or plain. The columns:

    book_snapshot_25 / _5: exchange,symbol,timestamp,local_timestamp,
                           asks[0].price,asks[0].amount,bids[0].price,bids[0].amount,asks[1].price,...
    trades:                exchange,symbol,timestamp,local_timestamp,id,side,price,amount

`side` is the taker's (the aggressor): buy, sell, or unknown. Rows are read one at a time,
so memory does not grow with the file. A row that can't be used raises BadRow with the reason;
the caller counts and reports it with its line number.
"""
from __future__ import annotations

import csv
import gzip
import io
import zlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterator, Optional

from keeper.errors import UserError
from keeper.model import Level, Trade

BASE = ("exchange", "symbol", "timestamp", "local_timestamp")
TRADE_COLUMNS = (*BASE, "id", "side", "price", "amount")
TAKER_SIDE = {"buy": "bid", "sell": "ask"}  # the model's taker_side: the side the aggressor took from


def book_columns(levels: int) -> tuple[str, ...]:
    return (*BASE, *(f"{side}[{i}].{field}" for i in range(levels) for side in ("asks", "bids")
                     for field in ("price", "amount")))


BOOK_LEVELS = {book_columns(25): 25, book_columns(5): 5}


class BadRow(ValueError):
    pass


def units(text: str, decimals: int, what: str) -> int:
    """A positive decimal in human units ("85.1234") as an integer with `decimals` decimals
    (6 for a price, 9 for perp base): the one conversion from Tardis numbers to Drift ones.
    Exact or refused: a value finer than the precision is a BadRow, never rounded."""
    whole, _, fraction = text.partition(".")
    if whole.isascii() and whole.isdigit() and (not fraction or (fraction.isascii() and fraction.isdigit())):
        if len(fraction) > decimals and fraction[decimals:].strip("0"):
            raise BadRow(f"{what} {text} is finer than 1e-{decimals}")
        value = int(whole) * 10**decimals + int(fraction[:decimals].ljust(decimals, "0"))
    else:  # "1e-05", "+3", " 2": rare shapes; Decimal is exact for them too
        try:
            exact = Decimal(text) * 10**decimals
        except InvalidOperation:
            raise BadRow(f"{what} {text!r} is not a number") from None
        if not exact.is_finite() or exact != exact.to_integral_value():
            raise BadRow(f"{what} {text!r} is not a number with at most {decimals} decimals")
        value = int(exact)
    if value <= 0:
        raise BadRow(f"{what} {text} is not positive")
    return value


def micros(text: str, what: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise BadRow(f"{what} {text!r} is not a whole number of microseconds")
    return int(text)


@dataclass(frozen=True, slots=True)
class BookRow:
    line: int
    local_us: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class TradeRow:
    line: int
    local_us: int
    trade: Trade


@dataclass(frozen=True)
class Grid:
    """What a row's numbers must fit: the market's precisions and tick/step, and its source."""

    base_decimals: int
    tick: int  # price precision (1e6)
    step: int  # base precision
    exchange: Optional[str] = None  # None: whatever the first row says
    symbol: Optional[str] = None


class CsvFile:
    """One Tardis CSV file, plain or gzip (told by its first bytes), read a row at a time."""

    def __init__(self, path: str | Path, kind: str) -> None:
        self.path = Path(path)
        try:
            self._raw = open(self.path, "rb")
        except OSError as exc:
            raise UserError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        zipped = self._raw.read(2) == b"\x1f\x8b"
        self._raw.seek(0)
        stream = gzip.GzipFile(fileobj=self._raw, mode="rb") if zipped else self._raw
        self._text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        self._reader = csv.reader(self._text)
        self.size = self.path.stat().st_size
        header = tuple(self._next_row() or ())
        if kind == "book":
            self.levels = BOOK_LEVELS.get(header) or self._wrong(header, book_columns(25), "book_snapshot_25 (or _5)")
        elif header != TRADE_COLUMNS:
            self._wrong(header, TRADE_COLUMNS, "trades")
        self.width = len(header)

    @property
    def position(self) -> int:
        """Bytes of the file (compressed, if it is) read so far: progress against `size`."""
        return self._raw.tell()

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, cells) of each row after the header; a row csv can't split is a BadRow."""
        while True:
            try:
                row = self._next_row()
            except BadRow as exc:
                yield self._reader.line_num, exc
                continue
            if row is None:
                return
            yield self._reader.line_num, row

    def _next_row(self) -> Optional[list[str]]:
        try:
            return next(self._reader, None)
        except csv.Error as exc:
            raise BadRow(f"not a CSV row: {exc}") from None
        except UnicodeDecodeError as exc:
            if not self._reader.line_num:  # the first bytes: not a text file at all (a PNG, a zip, a .npz)
                raise UserError(f"{self.path} is not a CSV text file (byte {exc.start} is not UTF-8): "
                                f"not a Tardis file") from None
            raise UserError(f"{self.path}: unreadable after line {self._reader.line_num}: {exc}") from None
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            where = f" after line {self._reader.line_num}" if self._reader.line_num else ""
            raise UserError(f"{self.path}: unreadable{where}: {exc}") from None

    def _wrong(self, header: tuple, expected: tuple, name: str):
        if not header:
            raise UserError(f"{self.path} is empty: not a Tardis {name} file")
        other = "trades" if header == TRADE_COLUMNS else "book_snapshot" if header in BOOK_LEVELS else None
        if other:
            raise UserError(f"{self.path} is a Tardis {other} file, not {name}")
        unknown = [c for c in header if c not in expected]
        if unknown:
            raise UserError(f"{self.path}: unknown column {unknown[0][:40]!r}: not a Tardis {name} file "
                            f"(columns {','.join(expected[:6])},...)")
        missing = [c for c in expected if c not in header]
        if missing and name == "trades":
            raise UserError(f"{self.path}: no column {missing[0]!r}: not a Tardis {name} file")
        if missing:
            raise UserError(f"{self.path}: {len(header)} columns, no {missing[0]!r}: a Tardis {name} file has "
                            f"{len(book_columns(25))} (or {len(book_columns(5))})")
        raise UserError(f"{self.path}: the columns are out of order for a Tardis {name} file")

    def close(self) -> None:
        self._text.close()
        self._raw.close()


def first_source(path: str | Path) -> Optional[tuple[str, str]]:
    """(exchange, symbol) of a book file's first whole row: what the rows of both files must
    hold when --exchange or --symbol don't say, and the market's name by default."""
    file = CsvFile(path, "book")
    try:
        for _, row in file.rows():
            if not isinstance(row, BadRow) and len(row) == file.width:
                return row[0], row[1]
        return None
    finally:
        file.close()


class Rows:
    """Checks the rows of one file: source, time order, numbers. Remembers only the last good row."""

    def __init__(self, file: CsvFile, grid: Grid) -> None:
        self.file, self.grid = file, grid
        self.exchange, self.symbol = grid.exchange, grid.symbol
        self.last_local, self.last_line = -1, 0

    def _common(self, line: int, row: list[str]) -> int:
        if len(row) != self.file.width:
            raise BadRow(f"{len(row)} fields, the header has {self.file.width}")
        if self.exchange is None:
            self.exchange, self.symbol = row[0], self.symbol or row[1]
        if row[0] != self.exchange or row[1] != self.symbol:
            raise BadRow(f"exchange/symbol {row[0]}/{row[1]}, not {self.exchange}/{self.symbol}")
        micros(row[2], "timestamp")
        local = micros(row[3], "local_timestamp")
        if local < self.last_local:
            raise BadRow(f"local_timestamp {local} is earlier than line {self.last_line}'s {self.last_local}")
        return local

    def _accept(self, line: int, local: int) -> None:
        self.last_local, self.last_line = local, line

    def book(self, line: int, row: list[str]) -> BookRow:
        local = self._common(line, row)
        asks = self._side(row, 4, "asks")
        bids = self._side(row, 6, "bids")
        if any(a.price >= b.price for a, b in zip(asks, asks[1:])):
            raise BadRow("asks are not in rising price order")
        if any(a.price <= b.price for a, b in zip(bids, bids[1:])):
            raise BadRow("bids are not in falling price order")
        if asks and bids and bids[0].price >= asks[0].price:
            raise BadRow(f"crossed book: best bid {row[6]} >= best ask {row[4]}")
        self._accept(line, local)
        return BookRow(line, local, bids, asks)

    def _side(self, row: list[str], start: int, name: str) -> tuple[Level, ...]:
        levels = []
        for i in range(self.file.levels):
            price, amount = row[start + 4 * i], row[start + 1 + 4 * i]
            if not price and not amount:
                if any(row[start + 4 * j] or row[start + 1 + 4 * j] for j in range(i + 1, self.file.levels)):
                    raise BadRow(f"{name}[{i}] is empty but a deeper level is not")
                break
            levels.append(Level(self._price(price, f"{name}[{i}].price"), self._size(amount, f"{name}[{i}].amount")))
        return tuple(levels)

    def trade(self, line: int, row: list[str]) -> TradeRow:
        local = self._common(line, row)
        side = TAKER_SIDE.get(row[5])
        if side is None:
            raise BadRow(f"taker side {row[5]!r} (a trade needs buy or sell)")
        trade = Trade(self._price(row[6], "price"), self._size(row[7], "amount"), side)
        self._accept(line, local)
        return TradeRow(line, local, trade)

    def _price(self, text: str, what: str) -> int:
        value = units(text, 6, what)
        if value % self.grid.tick:
            raise BadRow(f"{what} {text} is not a multiple of the tick {_human(self.grid.tick, 6)}")
        return value

    def _size(self, text: str, what: str) -> int:
        value = units(text, self.grid.base_decimals, what)
        if value % self.grid.step:
            raise BadRow(f"{what} {text} is not a multiple of the step {_human(self.grid.step, self.grid.base_decimals)}")
        return value


def _human(value: int, decimals: int) -> str:
    return str(Decimal(value).scaleb(-decimals).normalize())
