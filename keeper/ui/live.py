"""Showing the loop: a fixed-width live table with a warnings panel on a terminal, and plain
log lines always (one every N ticks; see make_views), with rejections grouped by Drift error."""
from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone
from typing import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from keeper.model import BPS, QUOTE_PRECISION, Execution, MarketSpec, Snapshot
from keeper.report import Report
from keeper.ui import units
from keeper.ui.logs import GROUPED, PANEL_LINES, Repeats, Screen, span

log = logging.getLogger("keeper")

WIDTH = 80  # the layout fits an 80-column terminal; wider ones get the same layout
# (title, width, align): one space between columns, 79 columns in all
COLUMNS = (("market", 8, "<"), ("oracle", 10, ">"), ("book bid", 10, ">"), ("book ask", 10, ">"),
           ("ours bps", 10, ">"), ("position", 10, ">"), ("PnL $", 9, ">"), ("fills", 5, ">"))
FAST_EVERY = 100  # --fast: a tick line every 100 ticks
EVERY_S = 10.0  # real time: a tick line every 10 s of ticks


def our_quotes(snapshot: Snapshot, execution: Execution) -> dict[str, tuple[int | None, int | None]]:
    """Our best bid and ask per market once the plan has run."""
    cancelled = {o.order_id for o, r in zip(execution.plan.cancels, execution.outcomes) if r.ok}
    resting = [(o.market, o.side, o.price, o.oracle_offset) for o in snapshot.user.open_orders
               if o.user_order_id and o.order_id not in cancelled]
    placed = execution.outcomes[len(execution.plan.cancels):]
    resting += [(p.intent.market, p.intent.side, p.intent.price, p.intent.oracle_offset)
                for p, r in zip(execution.plan.places, placed) if r.ok and not p.intent.ioc]
    quotes: dict[str, list] = {}
    for market, side, price, offset in resting:
        if market not in snapshot.markets:
            continue
        effective = snapshot.markets[market].oracle_price + offset if offset is not None else price
        best = quotes.setdefault(market, [None, None])
        if side == "bid":
            best[0] = effective if best[0] is None else max(best[0], effective)
        else:
            best[1] = effective if best[1] is None else min(best[1], effective)
    return {m: (q[0], q[1]) for m, q in quotes.items()}


def _bps(price: int | None, oracle: int) -> str:
    if price is None or oracle <= 0:
        return "-"
    bps = (price - oracle) * BPS / oracle
    return f"{bps:+.1f}" if abs(bps) < 10 else f"{bps:+.0f}"


def rows(snapshot: Snapshot, execution: Execution, report: Report) -> list[dict]:
    """Per market, in human units: the same figures for the live table and the log lines."""
    quotes = our_quotes(snapshot, execution)
    out = []
    for name, market in snapshot.markets.items():
        spec, oracle = market.spec, market.oracle_price
        ledger = report.ledgers.get(name)
        position = snapshot.user.positions.get(name)
        bid, ask = quotes.get(name, (None, None))
        out.append({
            "market": name,
            "oracle": units.price(oracle, spec),
            "book bid": units.price(market.book.best_bid, spec),
            "book ask": units.price(market.book.best_ask, spec),
            "ours bps": f"{_bps(bid, oracle)}/{_bps(ask, oracle)}",
            "position": units.base(position.base if position else 0, spec, signed=True, unit=False),
            "PnL $": f"{(ledger.total_pnl(oracle) if ledger else 0) / QUOTE_PRECISION:,.2f}",
            "fills": str(ledger.fills if ledger else 0),
        })
    return out


def _cell(text: str, width: int, align: str) -> str:
    text = text if len(text) <= width else text[: width - 1] + "…"
    return f"{text:{align}{width}}"


def table_lines(snapshot: Snapshot, execution: Execution, report: Report) -> list[str]:
    head = " ".join(_cell(title, width, align) for title, width, align in COLUMNS)
    body = [" ".join(_cell(row[title], width, align) for title, width, align in COLUMNS)
            for row in rows(snapshot, execution, report)]
    return [head, *body]


def header_lines(strategy: str, snapshot: Snapshot, execution: Execution, ticks: int, endpoint: str = "") -> list[str]:
    """Three lines of fixed-width fields, so nothing moves as the figures change; the RPC
    endpoint in use (live venues, its URL redacted) ends the third, cropped to fit."""
    when = datetime.fromtimestamp(snapshot.ts / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    rejected = sum(1 for r in execution.outcomes if not r.ok)
    user, plan = snapshot.user, execution.plan
    return [f"{_cell(strategy, 18, '<')} tick {ticks:>9,}  {when} UTC  risk {execution.risk_state:<8}",
            f"equity {units.usd(user.equity):>14}  free {units.usd(user.free_collateral):>14}  "
            f"plan -{len(plan.cancels):<3}+{len(plan.places):<3} rejected {rejected:<3}",
            f"slot {snapshot.slot:>11}" + (f"  rpc {endpoint}" if endpoint else "")]


class LiveView:
    """A rich Live display, rebuilt only when the screen refreshes (not on every fast tick):
    the header, the table, and the warnings panel, which takes the log's screen output while
    the view runs."""

    def __init__(self, report: Report, strategy: str, screen: Screen, markets: int = 1,
                 endpoint: Callable[[], str] | None = None) -> None:
        self.report, self.strategy, self.screen = report, strategy, screen
        self.endpoint = endpoint  # live venues: the RPC endpoint in use, its URL redacted
        self.markets = markets  # rows of the table: the first frame is as tall as the others
        self.latest: tuple[Snapshot, Execution] | None = None
        self.ticks = 0
        # the terminal itself: while the session runs sys.stdout is the capture of library prints
        self.console = Console(file=sys.stdout)
        self.live = Live(self, console=self.console, refresh_per_second=4, transient=False,
                         redirect_stdout=False, redirect_stderr=False)
        self._panel = None

    def __rich__(self) -> Group:
        width = min(WIDTH, self.console.width)
        if self.latest is None:
            lines = ["starting…"] + [""] * (4 + self.markets)
        else:
            snapshot, execution = self.latest
            endpoint = self.endpoint() if self.endpoint else ""
            lines = [*header_lines(self.strategy, snapshot, execution, self.ticks, endpoint), "",
                     *table_lines(snapshot, execution, self.report)]
        shown = [Text(line, no_wrap=True, overflow="crop") for line in lines]
        warnings = self.screen.lines()
        body = [Text(text, style="red" if level >= logging.ERROR else "yellow", no_wrap=True, overflow="ellipsis")
                for level, text in warnings]
        body += [Text("")] * (PANEL_LINES - len(body))
        panel = Panel(Group(*body), title="warnings", title_align="left", width=width, height=PANEL_LINES + 2)
        return Group(*shown, panel)

    def on_tick(self, snapshot: Snapshot, execution: Execution) -> None:
        self.latest = (snapshot, execution)
        self.ticks += 1

    def __enter__(self) -> "LiveView":
        self._panel = self.screen.into_panel()
        self._panel.__enter__()
        # Start from a clear screen: the picker's questions above would leave the view too little
        # room, and a view taller than what is left scrolls a copy of its header up every refresh.
        self.console.clear()
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.screen.flush_repeats()  # the counts not said yet: into the panel's last frame
        self.live.__exit__(*exc)
        self._panel.__exit__(*exc)


class LogView:
    """The log's tick line every `every` ticks (and the first), and each Drift error that
    rejects our actions once, then once a minute of the venue's clock with a count."""

    def __init__(self, report: Report, strategy: str, every: int, screen: Screen | None = None) -> None:
        self.report, self.strategy, self.every, self.screen = report, strategy, every, screen
        self.ticks = 0
        self.rejections = Repeats(self._rejected)
        self._first: dict[str, str] = {}
        self._now = 0.0

    def on_tick(self, snapshot: Snapshot, execution: Execution) -> None:
        self.ticks += 1
        self._now = execution.ts / 1000
        self.rejections.poll(self._now)
        for what, outcome in zip(_actions(execution, snapshot), execution.outcomes):
            if not outcome.ok:
                self._first.setdefault(outcome.error, f"{what} rejected: {outcome.error}")
                self.rejections.note(outcome.error, self._now)
        if execution.plan.settles:
            settled = [o.market for o in execution.outcomes if o.action == "settle" and o.ok]
            if settled:
                log.info("settled PnL into USDC: %s", ", ".join(settled))
        if self.screen is not None:
            self.screen.poll()
        if self.ticks == 1 or self.ticks % self.every == 0:
            markets = "; ".join(
                f"{r['market']} oracle {r['oracle']} book {r['book bid']}/{r['book ask']} ours {r['ours bps']} bps "
                f"pos {r['position']} pnl {r['PnL $']} USD fills {r['fills']}" for r in rows(snapshot, execution, self.report))
            log.info("tick %d slot %d plan -%d +%d | %s", self.ticks, snapshot.slot, len(execution.plan.cancels),
                     len(execution.plan.places), markets)

    def _rejected(self, error: str, count: int, seconds: float) -> None:
        if count:
            log.warning("%s x%d in %s", error, count, span(seconds), extra=GROUPED)
        else:
            log.warning("%s; repeats are counted, once a minute", self._first.pop(error), extra=GROUPED)

    def __enter__(self) -> "LogView":
        return self

    def __exit__(self, *exc) -> None:
        self.rejections.flush(self._now)


def _actions(execution: Execution, snapshot: Snapshot) -> list[str]:
    """Each action of the plan in words and human units, in the outcomes' order."""
    plan = execution.plan
    out = [f"cancel of user_order_id {o.user_order_id} ({o.market} {o.side})" for o in plan.cancels]
    for p in plan.places:
        it = p.intent
        market = snapshot.markets.get(it.market)
        spec: MarketSpec | None = market.spec if market else None
        if spec is None:
            out.append(f"place of {it.market} {it.side} (user_order_id {p.user_order_id})")
            continue
        offset = it.oracle_offset or 0
        price = (units.price(it.price, spec) if it.price is not None
                 else f"oracle {'-' if offset < 0 else '+'} {units.price(abs(offset), spec)}")
        out.append(f"place of {it.market} {it.side} {units.base(it.size, spec)} at {price} "
                   f"(user_order_id {p.user_order_id})")
    return out + [f"settle_pnl of {market}" for market in plan.settles]


def tick_line_every(fast: bool, interval_s: float) -> int:
    """Ticks between log lines: every 100 in --fast, else every 10 s of ticks."""
    return FAST_EVERY if fast else max(1, round(EVERY_S / interval_s))


def make_views(interactive: bool, report: Report, strategy: str, screen: Screen, markets: list[str],
               fast: bool = False, interval_s: float = 1.0, endpoint: Callable[[], str] | None = None) -> list:
    """The log lines always (the session's log file keeps them); the live table on a terminal,
    first, so that it closes last and the log view's final counts still land in its panel."""
    views: list = [LogView(report, strategy, tick_line_every(fast, interval_s), screen)]
    if interactive:
        views.insert(0, LiveView(report, strategy, screen, len(markets), endpoint))
    return views
