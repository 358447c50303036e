"""`keeper report SESSION [--out FILE.png|FILE.html]`: a session's markets over time, plotted.

One column per market, four panels each: oracle and book mid with our best resting bid and
ask and our fills (buys ^, sells v; hollow when we took liquidity); inventory; PnL; drawdown.
The .html form is one self-contained page: the PNG inlined as base64 and the summary table.
Works on any session folder: local, live and replayed ones (`keeper replay --archive-dir`).
"""
from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timezone
from pathlib import Path

from keeper.archive.reader import Session, open_session
from keeper.errors import UserError
from keeper.ops.sessions import status_of
from keeper.ops.timeline import MarketSeries, Timeline, read_timeline
from keeper.model import PRICE_PRECISION

REPORT = "report.png"
PANELS = ("price", "inventory", "PnL", "drawdown")
BUY, SELL = "#1a9850", "#d73027"


def render_png(session: Session, timeline: Timeline, status: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    columns = list(timeline.markets.values())
    figure = Figure(figsize=(max(7.0, 5.5 * len(columns)), 11), dpi=100, layout="constrained")
    axes = figure.subplots(len(PANELS), len(columns), sharex="col", squeeze=False,
                           gridspec_kw={"height_ratios": (3, 1.2, 1.2, 1.2)})
    manifest = session.manifest
    total = timeline.report.summary()["total"]
    figure.suptitle(f"{session.path.name}\n{manifest['strategy']} on {manifest['network']}, {status}: "
                    f"{timeline.snapshots} snapshots, {total['fills']} fills, PnL {_usd(total['total_pnl_usd'])}",
                    fontsize=10)
    for column, series in enumerate(columns):
        times = [_time(ts) for ts in series.ts]
        _price_panel(axes[0][column], series, times)
        _line(axes[1][column], times, series.inventory, "position (base)", "#4d4d4d")
        _line(axes[2][column], times, series.pnl, "PnL $", "#2166ac")
        ax = axes[3][column]
        drawdown = [-d for d in series.drawdown]
        ax.fill_between(times, drawdown, 0, step="post", color=SELL, alpha=0.35, linewidth=0)
        ax.plot(times, drawdown, drawstyle="steps-post", color=SELL, linewidth=0.8)
        ax.set_ylabel("drawdown $")
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        for row in axes:
            row[column].grid(True, alpha=0.3)
            row[column].tick_params(labelsize=8)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _usd(amount: float) -> str:
    return f"{'-' if amount < 0 else ''}${abs(amount):,.2f}"


def _time(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, timezone.utc)


def _price_panel(ax, series: MarketSeries, times) -> None:
    ax.set_title(series.name, fontsize=11)
    # every series is what one snapshot saw, held until the next: steps, not interpolation
    ax.plot(times, series.oracle, drawstyle="steps-post", color="black", linewidth=1.0, label="oracle")
    ax.plot(times, series.mid, drawstyle="steps-post", color="#999999", linewidth=0.8, linestyle="--", label="book mid")
    ax.plot(times, series.our_bid, drawstyle="steps-post", color=BUY, linewidth=0.8, alpha=0.8, label="our bid")
    ax.plot(times, series.our_ask, drawstyle="steps-post", color=SELL, linewidth=0.8, alpha=0.8, label="our ask")
    for side, color, marker, label in (("bid", BUY, "^", "buy"), ("ask", SELL, "v", "sell")):
        for maker in (True, False):
            fills = [f for f in series.fills if f.side == side and getattr(f, "maker", True) is maker]
            if not fills:
                continue
            ax.scatter([_time(f.ts) for f in fills], [f.price / PRICE_PRECISION for f in fills], marker=marker, s=36,
                       zorder=3, facecolors=color if maker else "none", edgecolors=color, linewidths=1.0,
                       label=label if maker else f"{label} (taker)")
    ax.set_ylabel("price $")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.legend(loc="best", fontsize=7, ncol=3, framealpha=0.7)


def _line(ax, times, values, label: str, color: str) -> None:
    ax.plot(times, values, drawstyle="steps-post", color=color, linewidth=1.0)
    ax.axhline(0, color="black", linewidth=0.5, alpha=0.5)
    ax.set_ylabel(label)


def render_html(session: Session, timeline: Timeline, status: str, png: bytes) -> str:
    summary = timeline.report.summary()
    manifest = session.manifest
    head = ("market", "fills", "volume $", "fees $", "realized $", "unrealized $", "total PnL $", "max inventory $",
            "max drawdown $", "end position")
    keys = ("volume_usd", "fees_usd", "realized_pnl_usd", "unrealized_pnl_usd", "total_pnl_usd", "max_inventory_usd",
            "max_drawdown_usd")
    rows = []
    for name, figures in [*summary["markets"].items(), ("TOTAL", summary["total"])]:
        cells = [name, str(figures["fills"]), *(f"{figures[k]:,.2f}" for k in keys),
                 f"{figures['position']:+g}" if "position" in figures else ""]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    facts = [("session", str(session.path)), ("strategy", f"{manifest['strategy']} {manifest['params']}"),
             ("network", manifest["network"]), ("markets", ", ".join(manifest["markets"])),
             ("started", manifest["started_at"]), ("status", status), ("snapshots", str(timeline.snapshots))]
    if timeline.problems:
        facts.append(("archive problems", f"{len(timeline.problems)} line(s) skipped; see `keeper archive verify`"))
    title = html.escape(f"keeper report: {session.path.name}")
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{title}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}td:first-child,th:first-child{text-align:left}"
        "dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}img{max-width:100%}</style>",
        "</head><body>", f"<h1>{title}</h1>",
        "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts) + "</dl>",
        "<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>",
        *rows, "</tbody></table>",
        f'<img alt="{title}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">',
        "</body></html>", ""])


def report_command(args) -> int:
    session = open_session(args.session)
    out = Path(args.out) if args.out else session.path / REPORT
    if out.suffix.lower() not in (".png", ".html"):
        raise UserError(f"--out {out}: the report is a .png or an .html file")
    timeline = read_timeline(session)
    for problem in timeline.problems:
        print(f"archive: {problem}")
    if not timeline.snapshots:
        raise UserError(f"{session.path}: no snapshots to plot")
    status = status_of(session, session.summary)
    png = render_png(session, timeline, status)
    try:
        if out.suffix.lower() == ".png":
            out.write_bytes(png)
        else:
            out.write_text(render_html(session, timeline, status, png), encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write it ({exc.strerror or exc})") from None
    print(f"report written to {out}")
    return 0
