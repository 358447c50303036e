"""`keeper archive verify SESSION_DIR`: check every document of a session against the schemas.

Exit codes for the CLI: 0 all valid, 1 anything invalid or truncated, 2 (UserError from
verify_session) when the folder is not a session at all.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from keeper.archive.reader import Session, check_folder, load_manifest
from keeper.archive.writer import SUMMARY
from keeper.ui.progress import Progress


@dataclass
class VerifyReport:
    path: Path
    manifest_ok: bool = False
    records: int = 0  # valid records read
    snapshots: int = 0
    executions: int = 0
    invalid: list[str] = field(default_factory=list)  # "file:line: reason"
    truncated: list[str] = field(default_factory=list)
    finished: bool = False  # summary.json present: the run ended cleanly

    @property
    def ok(self) -> bool:
        return self.manifest_ok and not self.invalid and not self.truncated

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def verify_session(path, progress: Optional[Callable[[int], Progress]] = None) -> VerifyReport:
    """Raises UserError when `path` is no session folder; a present but broken manifest is
    reported (and the records still checked), since verify is how one finds out what broke.

    `progress(total_bytes)` makes the progress display, updated as the segments are read."""
    folder = check_folder(path)
    report = VerifyReport(folder)
    manifest, problem = load_manifest(folder)
    if problem is None:
        report.manifest_ok = True
    else:
        report.invalid.append(problem)
    session = Session(folder, manifest or {})
    with progress(session.size()) if progress is not None else contextlib.nullcontext() as shown:
        for record in session.records(validate=True):
            report.records += 1
            if record.kind == "snapshot":
                report.snapshots += 1
            else:
                report.executions += 1
            if shown is not None:
                shown.update(session.bytes_read, report.snapshots)
    for issue in session.issues:
        (report.truncated if issue.truncated else report.invalid).append(str(issue))
    report.finished = session.summary is not None
    if not report.finished and (folder / SUMMARY).exists():
        report.invalid.append(f"{SUMMARY}: not a readable JSON object")
    return report


def format_report(report: VerifyReport) -> str:
    """One line per problem, then one summary line."""
    lines = [*report.invalid, *report.truncated]
    verdict = "OK" if report.ok else "INVALID"
    manifest = "manifest ok" if report.manifest_ok else "manifest INVALID"
    ended = "finished" if report.finished else "no summary (run did not finish cleanly)"
    lines.append(
        f"{verdict}: {report.path}: {manifest}, {report.records} valid records "
        f"({report.snapshots} snapshots, {report.executions} executions), "
        f"{len(report.invalid)} invalid, {len(report.truncated)} truncated; {ended}"
    )
    return "\n".join(lines)
