"""`keeper sessions` and `keeper fills`, checked against the archive's own records and summary.json."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest

from keeper.archive.reader import open_session
from tests.conftest import KEEPER
from tests.test_ops_report import keeper

HOUR = 3600


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _snapshots(session: Path) -> int:
    return sum(r.kind == "snapshot" for r in open_session(session).records())


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> dict[str, Path]:
    """Four sessions: two finished, one halted by the kill switch, one crashed (SIGKILL)."""
    home = tmp_path_factory.mktemp("sessions")
    keeper("run", "--fast", "--ticks", 150, "--seed", 5, "--archive-dir", "arch", cwd=home)
    keeper("run", "--fast", "--ticks", 120, "--seed", 6, "--strategy", "mean_reversion", "--archive-dir", "arch", cwd=home)
    halted_home = home / "halting"
    halted_home.mkdir()
    (halted_home / "KILL").touch()
    result = keeper("run", "--fast", "--ticks", 50, "--seed", 7, "--archive-dir", home / "arch", cwd=halted_home, ok=False)
    assert result.returncode == 3, result.stderr
    before = set((home / "arch").iterdir())
    child = subprocess.Popen([*KEEPER, "run", "--fast", "--seed", "8", "--markets", "SOL-PERP", "--archive-dir", "arch"],
                             cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len(set((home / "arch").iterdir()) - before) == 1, "the crashing run's session folder")
        (crashed,) = set((home / "arch").iterdir()) - before
        # the folder is made before its manifest is written
        _wait_for(lambda: (crashed / "manifest.json").is_file() and _snapshots(crashed) >= 30, "records of the crashing run")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    for path in crashed.iterdir():  # an hour quiet: crashed, not still running
        os.utime(path, (time.time() - HOUR, time.time() - HOUR))
    sessions = {}
    for folder in (home / "arch").iterdir():
        manifest = json.loads((folder / "manifest.json").read_text())
        summary_file = folder / "summary.json"
        kind = "crashed" if not summary_file.exists() else (
            "halted" if json.loads(summary_file.read_text())["risk_state"] == "HALTED" else manifest["strategy"])
        sessions[kind] = folder
    assert set(sessions) == {"fixed_spread", "mean_reversion", "halted", "crashed"}
    return sessions


def _rows(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    assert lines[0].split()[:2] == ["started", "(UTC)"] and set(lines[1]) == {"-"}
    return [line.split() for line in lines[2:]]


def test_sessions_lists_every_session_newest_first_with_its_figures(archive):
    parent = archive["crashed"].parent
    rows = _rows(keeper("sessions", "--archive-dir", parent, cwd=parent).stdout)
    by_name = {row[-1]: row for row in rows}
    assert set(by_name) == {p.name for p in archive.values()}
    started = [(json.loads((parent / row[-1] / "manifest.json").read_text())["started_at"],
                (parent / row[-1] / "manifest.json").stat().st_mtime) for row in rows]
    assert started == sorted(started, reverse=True)
    for kind, folder in archive.items():
        row = by_name[folder.name]
        manifest = json.loads((folder / "manifest.json").read_text())
        assert row[2:4] == [manifest["network"], manifest["strategy"]]
        if kind == "crashed":
            session = open_session(folder)
            fills = sum(len(r.value.user.fills) for r in session.records() if r.kind == "snapshot")
            assert row[4:6] == [str(_snapshots(folder)), str(fills)]
            assert row[7] == "crashed"
            continue
        summary = json.loads((folder / "summary.json").read_text())
        assert row[4:7] == [str(summary["ticks"]), str(summary["total"]["fills"]), f"{summary['total']['total_pnl_usd']:,.2f}"]
        assert row[7] == ("halted" if kind == "halted" else "finished")
    assert "(kill switch: file KILL exists)" in keeper("sessions", "--archive-dir", parent, cwd=parent).stdout


def test_a_session_still_being_written_is_running(archive, tmp_path):
    from keeper.ops.sessions import list_sessions

    crashed = archive["crashed"]
    newest = max(p.stat().st_mtime for p in crashed.iterdir())
    rows = {r.path.name: r for r in list_sessions(crashed.parent, now=newest + 5)}
    assert rows[crashed.name].status == "running"
    assert (rows[crashed.name].ticks, rows[crashed.name].fills, rows[crashed.name].pnl_usd) == (None, None, None)
    statuses = {r.path.name: r.status for r in list_sessions(crashed.parent, now=newest + HOUR)}
    assert statuses[crashed.name] == "crashed"


def test_an_unreadable_folder_is_listed_as_such(archive, tmp_path):
    parent = tmp_path / "arch"
    parent.mkdir()
    (parent / "not-a-session").mkdir()
    (parent / "broken").mkdir()
    (parent / "broken" / "manifest.json").write_text("{")
    out = keeper("sessions", "--archive-dir", parent, cwd=tmp_path).stdout
    assert "unreadable (not a session folder: " in out and "has no manifest.json)" in out
    assert "manifest.json: not valid JSON" in out


@pytest.mark.parametrize("args, words", [
    (["sessions", "--archive-dir", "nowhere"], "--archive-dir nowhere: no such folder"),
    (["fills", "nowhere"], "no such session folder: nowhere"),
    (["fills", "{session}", "--csv", "no/such/dir/f.csv"], "--csv no/such/dir/f.csv: cannot write it"),
])
def test_bad_input_is_one_line(archive, tmp_path, args, words):
    result = keeper(*[a.format(session=archive["fixed_spread"]) for a in args], cwd=tmp_path, ok=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr


def test_fills_csv_adds_up_to_the_summary(archive, tmp_path):
    session = archive["fixed_spread"]
    summary = json.loads((session / "summary.json").read_text())
    assert summary["total"]["fills"] > 0, "a check of sums needs fills to sum"
    out = tmp_path / "fills.csv"
    result = keeper("fills", session, "--csv", out, cwd=tmp_path)
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert f"{len(rows)} fill(s) written to {out}" in result.stdout
    assert len(rows) == summary["total"]["fills"]
    for name, figures in summary["markets"].items():
        mine = [r for r in rows if r["market"] == name]
        assert len(mine) == figures["fills"]
        assert round(sum(Decimal(r["fee"]) for r in mine), 6) == Decimal(str(figures["fees_usd"]))
        # the archive truncates each fill's quote value to a micro-dollar
        volume = sum(Decimal(r["price"]) * Decimal(r["size"]) for r in mine)
        assert abs(volume - Decimal(str(figures["volume_usd"]))) <= Decimal("0.000001") * (len(mine) + 1)
        bought = sum(Decimal(r["size"]) for r in mine if r["side"] == "buy")
        sold = sum(Decimal(r["size"]) for r in mine if r["side"] == "sell")
        assert float(bought - sold) == figures["position"]
    assert {r["liquidity"] for r in rows} <= {"maker", "taker"}
    assert all(r["time"].endswith("Z") for r in rows)


def test_fills_table_is_the_csv_in_columns(archive, tmp_path):
    session = archive["fixed_spread"]
    keeper("fills", session, "--csv", tmp_path / "f.csv", cwd=tmp_path)
    with (tmp_path / "f.csv").open() as f:
        rows = [list(r.values()) for r in csv.DictReader(f)]
    lines = keeper("fills", session, cwd=tmp_path).stdout.splitlines()
    assert lines[0].split() == ["time", "market", "side", "price", "size", "fee", "liquidity", "order_id", "user_order_id"]
    assert [line.split() for line in lines[2:]] == rows


def test_fills_of_a_session_without_fills(tmp_path):
    # one tick: quotes are placed, and fills can only show in a later snapshot
    keeper("run", "--fast", "--ticks", 1, "--seed", 9, "--archive-dir", "arch", cwd=tmp_path)
    (session,) = (tmp_path / "arch").iterdir()
    assert json.loads((session / "summary.json").read_text())["total"]["fills"] == 0
    assert keeper("fills", session, cwd=tmp_path).stdout.strip() == "no fills"
