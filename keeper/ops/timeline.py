"""A session read back as time series per market: what `keeper report` plots.

Every figure comes from keeper.report.Report fed the archived snapshots in order, the same
book-keeping the run's own summary used, so the last point of each PnL line is the figure in
summary.json. Floats appear here because this is the reporting edge.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Optional

from keeper.archive.reader import Session
from keeper.model import PRICE_PRECISION, QUOTE_PRECISION, Fill, Snapshot
from keeper.report import Report

NAN = float("nan")


@dataclass
class MarketSeries:
    name: str
    base_precision: int
    ts: array = field(default_factory=lambda: array("q"))  # unix ms
    oracle: array = field(default_factory=lambda: array("d"))  # USD
    mid: array = field(default_factory=lambda: array("d"))  # NaN where a side of the book is empty
    our_bid: array = field(default_factory=lambda: array("d"))  # our best resting bid, NaN when none
    our_ask: array = field(default_factory=lambda: array("d"))
    inventory: array = field(default_factory=lambda: array("d"))  # base units
    pnl: array = field(default_factory=lambda: array("d"))  # USD: realized + unrealized - fees + funding
    drawdown: array = field(default_factory=lambda: array("d"))  # USD below the session's peak PnL so far
    fills: list[Fill] = field(default_factory=list)


@dataclass
class Timeline:
    markets: dict[str, MarketSeries]
    report: Report
    problems: list[str]  # archive lines skipped while reading, "file:line: reason"

    @property
    def snapshots(self) -> int:
        return self.report.snapshots


def read_timeline(session: Session) -> Timeline:
    report = Report()
    markets: dict[str, MarketSeries] = {}
    for record in session.records():
        if record.kind == "snapshot":
            _observe(record.value, report, markets)
    return Timeline(markets, report, session.problems())


def _observe(snap: Snapshot, report: Report, markets: dict[str, MarketSeries]) -> None:
    report.observe(snap)
    for name, market in snap.markets.items():
        series = markets.get(name)
        if series is None:
            series = markets[name] = MarketSeries(name, market.spec.base_precision)
        oracle = market.oracle_price
        ledger = report.ledgers[name]
        bids = [o.price_at(oracle) for o in snap.user.open_orders if o.market == name and o.side == "bid"]
        asks = [o.price_at(oracle) for o in snap.user.open_orders if o.market == name and o.side == "ask"]
        book = market.book
        series.ts.append(snap.ts)
        series.oracle.append(oracle / PRICE_PRECISION)
        series.mid.append(_mid(book.best_bid, book.best_ask))
        series.our_bid.append(max(bids) / PRICE_PRECISION if bids else NAN)
        series.our_ask.append(min(asks) / PRICE_PRECISION if asks else NAN)
        series.inventory.append(ledger.base / ledger.base_precision)
        pnl = ledger.total_pnl(oracle)
        series.pnl.append(pnl / QUOTE_PRECISION)
        series.drawdown.append((report.peak[name] - pnl) / QUOTE_PRECISION)
    for fill in snap.user.fills:
        if fill.market in markets:
            markets[fill.market].fills.append(fill)


def _mid(bid: Optional[int], ask: Optional[int]) -> float:
    return (bid + ask) / 2 / PRICE_PRECISION if bid is not None and ask is not None else NAN
