"""`keeper sessions`: the past sessions under an archive folder, newest first.

A session that ended cleanly has summary.json and its figures come from there. One without
it either still runs (its records were written moments ago; its figures are left blank) or
crashed; a crashed session's figures are counted from its records by the same Report the run
would have summarised with (about a thousand snapshots a second).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional

from keeper.archive.reader import Session, open_session
from keeper.archive.writer import MANIFEST
from keeper.errors import UserError
from keeper.ops.table import text_table

# A session whose newest file is younger than this (or than 3 of its ticks) is taken to be running.
RUNNING_S = 60


@dataclass(frozen=True)
class SessionRow:
    path: Path
    started: str  # ISO 8601 UTC, from the manifest
    network: str
    strategy: str
    ticks: Optional[int]
    fills: Optional[int]
    pnl_usd: Optional[float]
    status: str  # finished, halted, crashed, running, unreadable
    note: str = ""  # why unreadable, or the halt reason


def status_of(session: Session, summary: Optional[dict], now: Optional[float] = None) -> str:
    if summary is not None:
        return "halted" if summary.get("risk_state") == "HALTED" else "finished"
    written = [*session.segments(), session.path / "keeper.log"]  # what a running keeper writes to (not report.png)
    newest = max((p.stat().st_mtime for p in written if p.exists()), default=0.0)
    quiet_for = (time.time() if now is None else now) - newest
    return "running" if quiet_for < max(RUNNING_S, 3 * session.manifest["interval_ms"] / 1000) else "crashed"


def session_row(folder: Path, now: Optional[float] = None) -> SessionRow:
    try:
        session = open_session(folder)
    except UserError as exc:
        return SessionRow(folder, "", "?", "?", None, None, None, "unreadable", str(exc))
    manifest, summary = session.manifest, session.summary
    status = status_of(session, summary, now)
    if summary is not None:
        total = summary.get("total", {})
        ticks, fills, pnl = summary.get("ticks"), total.get("fills"), total.get("total_pnl_usd")
    elif status == "running":  # its figures change by the tick; counting a days-long archive would take minutes
        ticks = fills = pnl = None
    else:
        from keeper.ops.timeline import read_timeline

        timeline = read_timeline(session)
        figures = timeline.report.summary()["total"]
        ticks, fills, pnl = timeline.snapshots, figures["fills"], figures["total_pnl_usd"]
    note = summary.get("risk_reason", "") if status == "halted" else ""
    return SessionRow(folder, manifest["started_at"], manifest["network"], manifest["strategy"], ticks, fills, pnl,
                      status, note)


def list_sessions(archive_dir: str | Path, now: Optional[float] = None) -> list[SessionRow]:
    parent = Path(archive_dir)
    if not parent.is_dir():
        raise UserError(f"--archive-dir {parent}: no such folder" if not parent.exists()
                        else f"--archive-dir {parent}: not a folder")
    rows = [session_row(entry, now) for entry in parent.iterdir() if entry.is_dir() and not entry.name.startswith(".")]
    # Newest first by when they started; started_at has whole seconds, so sessions started in
    # the same second go by when their manifest was written.
    return sorted(rows, key=_sort_key, reverse=True)


def _sort_key(row: SessionRow) -> tuple[float, float, str]:
    try:
        started = datetime.fromisoformat(row.started.replace("Z", "+00:00")).timestamp()
    except ValueError:
        started = 0.0
    try:
        written = (row.path / MANIFEST).stat().st_mtime
    except OSError:
        written = 0.0
    return started, written, row.path.name


def format_sessions(rows: list[SessionRow], archive_dir) -> str:
    if not rows:
        return f"no sessions under {archive_dir}"
    head = ("started (UTC)", "network", "strategy", "ticks", "fills", "PnL $", "status", "session")
    table = [head] + [(
        r.started.replace("T", " ")[:19] or "?", r.network, r.strategy, _n(r.ticks), _n(r.fills),
        "" if r.pnl_usd is None else f"{r.pnl_usd:,.2f}", r.status + (f" ({r.note})" if r.note else ""), r.path.name,
    ) for r in rows]
    return text_table(table, right={3, 4, 5})


def _n(value: Optional[int]) -> str:
    return "" if value is None else str(value)


def sessions_command(args) -> int:
    print(format_sessions(list_sessions(args.archive_dir), args.archive_dir))
    return 0
