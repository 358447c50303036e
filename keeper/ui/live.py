"""Showing the loop: a compact live table on a terminal, plain log lines otherwise."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Callable

from rich.console import Console
from rich.live import Live
from rich.table import Table

from keeper.model import PRICE_PRECISION, QUOTE_PRECISION, Execution, Snapshot
from keeper.report import Report

log = logging.getLogger("keeper")


def _price(p: int | None) -> str:
    return "-" if p is None else f"{p / PRICE_PRECISION:,.4f}"


def our_quotes(snapshot: Snapshot, execution: Execution) -> dict[str, tuple[int | None, int | None]]:
    """Our best bid and ask per market once the plan has run."""
    cancelled = {o.order_id for o, r in zip(execution.plan.cancels, execution.outcomes) if r.ok}
    resting = [(o.market, o.side, o.price, o.oracle_offset) for o in snapshot.user.open_orders
               if o.user_order_id and o.order_id not in cancelled]
    placed = execution.outcomes[len(execution.plan.cancels):]
    resting += [(p.intent.market, p.intent.side, p.intent.price, p.intent.oracle_offset)
                for p, r in zip(execution.plan.places, placed) if r.ok]
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


def rows(snapshot: Snapshot, execution: Execution, report: Report) -> list[dict]:
    quotes = our_quotes(snapshot, execution)
    out = []
    for name, market in snapshot.markets.items():
        ledger = report.ledgers.get(name)
        position = snapshot.user.positions.get(name)
        bid, ask = quotes.get(name, (None, None))
        out.append({
            "market": name,
            "oracle": _price(market.oracle_price),
            "book": f"{_price(market.book.best_bid)} / {_price(market.book.best_ask)}",
            "ours": f"{_price(bid)} / {_price(ask)}",
            "position": f"{(position.base if position else 0) / market.spec.base_precision:,.4f}",
            "pnl": f"{(ledger.total_pnl(market.oracle_price) if ledger else 0) / QUOTE_PRECISION:,.2f}",
            "fills": str(ledger.fills if ledger else 0),
        })
    return out


def _header(strategy: str, snapshot: Snapshot, execution: Execution, ticks: int, endpoint: str = "") -> str:
    when = datetime.fromtimestamp(snapshot.ts / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    rejected = sum(1 for r in execution.outcomes if not r.ok)
    return (f"{strategy} | tick {ticks} | slot {snapshot.slot}{f' | rpc {endpoint}' if endpoint else ''} | {when} UTC | collateral "
            f"${snapshot.user.total_collateral / QUOTE_PRECISION:,.2f} (free ${snapshot.user.free_collateral / QUOTE_PRECISION:,.2f}) | "
            f"risk {execution.risk_state} | plan -{len(execution.plan.cancels)} +{len(execution.plan.places)}"
            + (f" ({rejected} rejected)" if rejected else ""))


class LiveView:
    """A rich Live table, rebuilt only when the screen refreshes (not on every fast tick)."""

    def __init__(self, report: Report, strategy: str, endpoint: Callable[[], str] | None = None) -> None:
        self.report = report
        self.strategy = strategy
        self.endpoint = endpoint  # live venues: the RPC endpoint in use, its URL redacted
        self.latest: tuple[Snapshot, Execution] | None = None
        self.ticks = 0
        self.live = Live(self, console=Console(), refresh_per_second=4, transient=False)

    def __rich__(self) -> Table | str:
        if self.latest is None:
            return "starting…"
        snapshot, execution = self.latest
        endpoint = self.endpoint() if self.endpoint else ""
        table = Table(title=_header(self.strategy, snapshot, execution, self.ticks, endpoint), title_justify="left")
        for column in ("market", "oracle", "best bid / ask", "our bid / ask", "position", "PnL $", "fills"):
            table.add_column(column, justify="left" if column == "market" else "right")
        for row in rows(snapshot, execution, self.report):
            table.add_row(*row.values())
        return table

    def on_tick(self, snapshot: Snapshot, execution: Execution) -> None:
        self.latest = (snapshot, execution)
        self.ticks += 1

    def __enter__(self) -> "LiveView":
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)


class LogView:
    """Plain log lines; in --fast runs at most one a second, so logs stay readable."""

    def __init__(self, report: Report, strategy: str, min_gap_s: float = 0.0) -> None:
        self.report = report
        self.strategy = strategy
        self.min_gap_s = min_gap_s
        self.last = 0.0
        self.ticks = 0

    def on_tick(self, snapshot: Snapshot, execution: Execution) -> None:
        self.ticks += 1
        for outcome in execution.outcomes:
            if not outcome.ok:
                log.warning("%s of user_order_id %d rejected: %s", outcome.action, outcome.user_order_id, outcome.error)
        now = time.monotonic()
        if now - self.last < self.min_gap_s:
            return
        self.last = now
        markets = "; ".join(
            f"{r['market']} oracle {r['oracle']} book {r['book']} ours {r['ours']} pos {r['position']} pnl ${r['pnl']} fills {r['fills']}"
            for r in rows(snapshot, execution, self.report)
        )
        log.info("tick %d slot %d plan -%d +%d | %s", self.ticks, snapshot.slot,
                 len(execution.plan.cancels), len(execution.plan.places), markets)

    def __enter__(self) -> "LogView":
        return self

    def __exit__(self, *exc) -> None:
        pass


def make_views(interactive: bool, report: Report, strategy: str, fast: bool = False,
               endpoint: Callable[[], str] | None = None) -> list:
    """The log lines always (the session's log file keeps them); the live table on a terminal."""
    views: list = [LogView(report, strategy, min_gap_s=1.0 if fast else 0.0)]
    if interactive:
        views.append(LiveView(report, strategy, endpoint))
    return views
