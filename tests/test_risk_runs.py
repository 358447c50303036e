"""The risk gate in whole runs on the local market: the crash path with breakers on and off,
the kill switch by file and by signal, a 30% oracle jump, SIGKILL mid-run, a full disk."""
from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.crash_path import run as crash_run
from keeper.archive.reader import open_session
from keeper.model import Execution
from tests.conftest import KEEPER


def executions(session: Path) -> list[Execution]:
    return [r.value for r in open_session(session).records() if isinstance(r.value, Execution)]


@pytest.mark.fault("data", run=True)
def test_crash_path_breakers_bound_the_drawdown(tmp_path, tally):
    code_on, on, session_on = crash_run(tmp_path, breakers=True)
    code_off, off, _ = crash_run(tmp_path, breakers=False)
    budget = 10_000 * 10**6
    # on: the drawdown cover shrinks the position as the hard limit (20%) nears, so the limit holds
    assert on["max_drawdown_quote"] <= budget * 20 // 100
    assert code_on in (0, 3) and on["risk_state"] in ("ACTIVE", "HALTED")
    assert off["risk_state"] == "ACTIVE" and code_off == 0
    assert off["max_drawdown_quote"] > 2 * on["max_drawdown_quote"]
    states = [r.risk_state for r in tally.archive(session_on) if isinstance(r, Execution)]
    notes = [n for r in tally.archive(session_on) if isinstance(r, Execution) for n in r.plan.dropped]
    assert any(n.startswith("risk drawdown_cover") for n in notes), "the cover bound on the way down"
    # a stateful gate still replays exactly: same snapshots, same limits, same plans
    verify = subprocess.run([*KEEPER, "replay", str(session_on), "--verify"], capture_output=True, text=True, timeout=300)
    assert f"reproduced {len(states)} of {len(states)} recorded plans" in verify.stdout, verify.stdout


def _start(tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([*KEEPER, "run", "--strategy", "fixed_spread", "--interval", "0.05", "--ticks", "2000",
                             "--archive-dir", "sessions"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for_quotes(tmp_path: Path, child, ticks: int = 5) -> Path:
    """The session, once its archive holds `ticks` executions and our quotes went out. (Read
    from the archive, not keeper.log: the log writes a tick line only every 10 s.)"""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sessions = list((tmp_path / "sessions").glob("*/manifest.json")) if (tmp_path / "sessions").exists() else []
        if sessions:
            done = executions(sessions[0].parent)
            if len(done) >= ticks and any(o.ok for e in done for o in e.outcomes if o.action == "place"):
                return sessions[0].parent
        assert child.poll() is None, child.communicate()
        time.sleep(0.1)
    raise AssertionError("the keeper never quoted")


def _assert_halted(child, session: Path, reason: str) -> None:
    out, err = child.communicate(timeout=60)
    assert child.returncode == 3, err
    assert f"halted by the risk gate: {reason}" in err and "Traceback" not in err
    last = executions(session)[-1]
    assert last.risk_state == "HALTED"
    assert not last.plan.places and last.plan.cancels, "the halting tick cancelled our quotes and placed nothing"


@pytest.mark.fault("process", run=True)
def test_kill_file_cancels_everything_and_halts(tmp_path, tally):
    child = _start(tmp_path)
    session = _wait_for_quotes(tmp_path, child)
    (tmp_path / "KILL").touch()
    _assert_halted(child, session, "kill switch: file KILL exists")
    tally.archive(session)


@pytest.mark.fault("process", run=True)
def test_sigusr1_cancels_everything_and_halts(tmp_path, tally):
    child = _start(tmp_path)
    session = _wait_for_quotes(tmp_path, child)
    child.send_signal(signal.SIGUSR1)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 3, err
    assert "halted by the risk gate: kill switch: SIGUSR1" in err
    summary = json.loads((session / "summary.json").read_text())
    # the signal stops the loop between ticks; the shutdown cancel takes our resting quotes
    assert summary["risk_state"] == "HALTED" and summary["cancelled_on_shutdown"] >= 1
    tally.archive(session)


@pytest.mark.fault("data", run=True)
def test_an_oracle_jump_of_30_percent_pulls_the_quotes_for_that_tick(tmp_path, tally):
    path = tmp_path / "jump.csv"
    path.write_text("timestamp,price\n" + "".join(f"{1_700_000_000 + t},{100 if t < 60 else 70}\n" for t in range(120)))
    result = subprocess.run([*KEEPER, "run", "--strategy", "fixed_spread", "--markets", "SOL-PERP", "--fast",
                             "--ticks", "100", "--seed", "2", "--price-path", str(path), "--archive-dir", "s"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    runs = [r for r in tally.archive(next((tmp_path / "s").iterdir())) if isinstance(r, Execution)]
    jumped = [i for i, e in enumerate(runs) if any("oracle jumped" in n for n in e.plan.dropped)]
    assert len(jumped) == 1, "one tick saw the jump"
    at = runs[jumped[0]]
    assert at.plan.places == () and at.plan.cancels, "our quotes were pulled, none placed"
    assert any(e.plan.places for e in runs[jumped[0] + 1:]), "quoting resumed at the new level"


@pytest.mark.fault("process", run=True)
def test_sigkill_mid_run_leaves_an_archive_readable_to_its_last_complete_record(tmp_path, tally):
    child = _start(tmp_path)
    session = _wait_for_quotes(tmp_path, child)
    child.kill()
    child.communicate(timeout=60)
    records = tally.archive(session)
    assert len(records) >= 10
    verify = subprocess.run([*KEEPER, "archive", "verify", str(session)], capture_output=True, text=True, timeout=120)
    assert "0 invalid" in verify.stdout, verify.stdout
    replayed = subprocess.run([*KEEPER, "replay", str(session)], capture_output=True, text=True, timeout=120)
    assert replayed.returncode == 0 and "Traceback" not in replayed.stderr, replayed.stderr


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB filesystem to archive on, so the disk fills during the run (needs mount rights,
    which CI has here; elsewhere the test skips rather than fake a disk)."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.mark.fault("process", run=True)
def test_a_full_disk_cancels_everything_and_halts(tmp_path, small_disk, tally):
    result = subprocess.run([*KEEPER, "run", "--strategy", "fixed_spread", "--markets", "SOL-PERP", "--fast",
                             "--ticks", "5000", "--seed", "4", "--archive-dir", str(small_disk)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr
    assert "halted by the risk gate: the archive cannot be written" in result.stderr
    assert "No space left on device" in result.stderr
    session = next(small_disk.iterdir())
    last = [r for r in tally.archive(session) if isinstance(r, Execution)][-1]  # all complete records readable
    assert last.risk_state in ("ACTIVE", "HALTED")
    assert "keeper order(s) cancelled on shutdown" in result.stdout
