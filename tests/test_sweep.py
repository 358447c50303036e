"""keeper sweep: each row is what `keeper replay` gives for its parameters, a crashing point is
its own row's error, walk-forward runs the best train point out of sample, Ctrl-C keeps the
finished rows, and bad input is one line and exit 2."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import multiprocessing
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pexpect
import pytest

from keeper import cli
from keeper.archive.reader import open_session
from keeper.research import sweep
from keeper.research.metrics import tally_records
from tests.conftest import KEEPER, shows_then_exits, terminal


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> str:
    parent = tmp_path_factory.mktemp("sweep")
    subprocess.run([*KEEPER, "run", "--fast", "--ticks", "400", "--seed", "7", "--markets", "SOL-PERP",
                    "--archive-dir", str(parent)], check=True, capture_output=True, timeout=300)
    (found,) = parent.iterdir()
    return str(found)


def _keeper(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _rows(out: Path) -> list[dict]:
    return json.loads((out / "results.json").read_text())["rows"]


def test_each_row_equals_keeper_replay_with_its_parameters(session, tmp_path):
    out = tmp_path / "out"
    code, said, _ = _keeper("sweep", session, "--strategy", "fixed_spread", "--grid", "spread_bps=3,6",
                            "--grid", "size_usd=50,100", "--workers", "2", "--out", str(out))
    assert code == 0
    rows = _rows(out)
    assert len(rows) == 4 and {(r["spread_bps"], r["size_usd"]) for r in rows} == {
        ("3", "50"), ("3", "100"), ("6", "50"), ("6", "100")}
    with open(out / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert (out / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "top 4 by total_pnl_usd" in said
    assert sum(r["fills"] for r in rows) > 0, "a grid with fills to compare"
    for row in rows:
        replay_json, archived = tmp_path / f"r-{row['spread_bps']}-{row['size_usd']}.json", tmp_path / "archived"
        code, _, _ = _keeper("replay", session, "--strategy", "fixed_spread", "--param", f"spread_bps={row['spread_bps']}",
                             "--param", f"size_usd={row['size_usd']}", "--json", str(replay_json),
                             "--archive-dir", str(archived))
        assert code == 0
        total = json.loads(replay_json.read_text())["summary"]["total"]
        assert (row["fills"], row["volume_usd"], row["fees_usd"], row["total_pnl_usd"], row["max_drawdown_usd"],
                row["max_inv_usd"]) == (total["fills"], total["volume_usd"], total["fees_usd"], total["total_pnl_usd"],
                                        total["max_drawdown_usd"], total["max_inventory_usd"])
        what_if = open_session(sorted(archived.iterdir())[-1])
        figures = tally_records(what_if.records()).figures(400, 1.0)
        assert (row["sharpe"], row["fill_ratio"]) == (figures["sharpe"], figures["fill_ratio"])
        assert row["error"] == ""


def _crashing(real):
    def replay_figures(job):
        value = dict(job.params)["spread_bps"]
        if value == "4":
            raise RuntimeError("the strategy's maths blew up")
        if value == "5":
            os._exit(3)  # the worker process dies outright
        return real(job)
    return replay_figures


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="the patch reaches workers by fork")
def test_a_crashing_point_is_reported_in_its_row_and_the_sweep_goes_on(session, tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "replay_figures", _crashing(sweep.replay_figures))
    out = tmp_path / "out"
    code, said, _ = _keeper("sweep", session, "--strategy", "fixed_spread", "--grid", "spread_bps=3,4,5,6",
                            "--workers", "2", "--out", str(out))
    assert code == 1
    rows = {r["spread_bps"]: r for r in _rows(out)}
    assert set(rows) == {"3", "4", "5", "6"}
    assert rows["4"]["error"] == "RuntimeError: the strategy's maths blew up" and rows["4"]["total_pnl_usd"] is None
    assert rows["5"]["error"].startswith("crashed: its worker process died")
    assert rows["3"]["error"] == rows["6"]["error"] == "" and rows["3"]["fills"] is not None
    assert "failed:" in said and json.loads((out / "results.json").read_text())["finished"] is True


def test_walk_forward_runs_the_best_train_point_on_the_next_test_window(session, tmp_path):
    out = tmp_path / "out"
    code, said, _ = _keeper("sweep", session, "--strategy", "fixed_spread", "--grid", "spread_bps=2,4,8",
                            "--walk-forward", "200:100", "--workers", "2", "--out", str(out))
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    rows, folds = result["rows"], result["walk_forward_folds"]
    assert [(f["train"], f["test"]) for f in folds] == [([0, 200], [200, 300]), ([100, 300], [300, 400])]
    for fold in folds:
        train = [r for r in rows if r["sample"] == f"train {fold['fold']}"]
        assert len(train) == 3
        top = max(train, key=lambda r: r["total_pnl_usd"])
        assert fold["params"] == {"spread_bps": top["spread_bps"]}
        test = fold["test_row"]
        assert test["sample"] == f"test {fold['fold']}" and test["spread_bps"] == top["spread_bps"]
        # the out-of-sample row is that point replayed on the test window alone
        job = sweep.Job(session, "fixed_spread", (("spread_bps", top["spread_bps"]),), "l3_fifo", 1,
                        tuple(fold["test"]), test["sample"], 100)
        assert sweep.run_job(job) == test
    assert "out-of-sample total PnL over 2 test window(s)" in said


def test_windows_roll_by_one_test_window():
    assert sweep.windows(10, 4, 3) == [((0, 4), (4, 7)), ((3, 7), (7, 10))]
    assert sweep.windows(6, 4, 3) == []


def test_ctrl_c_stops_the_sweep_and_keeps_the_finished_rows(session, tmp_path):
    out = tmp_path / "out"
    values = ",".join(str(2 + i / 10) for i in range(40))
    child = subprocess.Popen([*KEEPER, "sweep", session, "--strategy", "fixed_spread", "--grid", f"spread_bps={values}",
                              "--workers", "1", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if (out / "results.json").exists() and _rows(out):
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    said, errors = child.communicate(timeout=120)
    assert child.returncode == 130, errors
    result = json.loads((out / "results.json").read_text())
    assert result["interrupted"] is True and 1 <= len(result["rows"]) < 40
    assert "Traceback" not in errors and "finished row(s) kept" in said
    with open(out / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(result["rows"])


@pytest.mark.parametrize("args, culprit", [
    (("--grid", "nope=1,2"), "no parameter 'nope'"),
    (("--grid", "spread_bps=3,x"), "--grid spread_bps=x"),
    (("--grid", "spread_bps"), "--grid wants KEY=V1,V2"),
    (("--grid", "spread_bps=3", "--walk-forward", "10"), "--walk-forward wants TRAIN:TEST"),
    (("--grid", "spread_bps=3", "--walk-forward", "0:5"), "--walk-forward wants TRAIN:TEST"),
    (("--grid", "spread_bps=3", "--walk-forward", "400:400"), "no session has 800 snapshots"),
    ((), "at least one --grid"),
    (("--grid", "spread_bps=3", "--backend", "ray", "--ray-address", "nonsense"), "--ray-address wants HOST:PORT"),
])
def test_bad_input_is_one_line_and_exit_2(session, tmp_path, args, culprit):
    code, _, errors = _keeper("sweep", session, "--strategy", "fixed_spread", *args, "--out", str(tmp_path / "o"))
    assert code == 2 and culprit in errors and len(errors.strip().splitlines()) == 1


def test_the_ray_backend_gives_the_process_backend_s_rows(session, tmp_path):
    pytest.importorskip("ray")
    by = {}
    for backend in ("process", "ray"):
        out = tmp_path / backend
        result = subprocess.run([*KEEPER, "sweep", session, "--strategy", "fixed_spread", "--grid", "spread_bps=3,6",
                                 "--workers", "2", "--backend", backend, "--out", str(out)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        by[backend] = sorted(_rows(out), key=lambda r: r["spread_bps"])
    assert by["ray"] == by["process"] and len(by["ray"]) == 2 and by["ray"][0]["fills"] is not None


def test_a_strategy_that_raises_on_some_ticks_says_so_in_its_row(session, monkeypatch):
    """The loop quotes nothing new on such a tick and goes on; `keeper replay` says so on stderr,
    which a sweep's worker does not show, so the row must."""
    from strategies.fixed_spread import FixedSpread

    real, calls = FixedSpread.quote, []

    def quote(self, snapshot):
        calls.append(snapshot.slot)
        if len(calls) % 10 == 0:
            raise ZeroDivisionError("the strategy's maths blew up")
        return real(self, snapshot)

    monkeypatch.setattr(FixedSpread, "quote", quote)
    row = sweep.run_job(sweep.Job(session, "fixed_spread", (("spread_bps", "3"),), "l3_fifo", 1, snapshots=400))
    assert row["error"] == "the strategy raised on 40 of 400 ticks (first on tick 9: ZeroDivisionError: the " \
                           "strategy's maths blew up)"
    assert row["fills"] is not None and row["total_pnl_usd"] is not None  # what `keeper replay` reports, kept
    assert sweep.best([row], "total_pnl_usd") is None  # never chosen as the best point


def _figures(session: str, pnl, sharpe, fills, drawdown, error: str = "", **point) -> dict:
    return {**point, "session": session, "sample": "all", "total_pnl_usd": pnl, "sharpe": sharpe, "fills": fills,
            "max_drawdown_usd": drawdown, "error": error}


def test_the_top_points_are_ranked_over_every_session():
    from keeper.research.sweep_output import top_points

    rows = [_figures("a", 5.0, 1.0, 10, 2.0, spread_bps="3"), _figures("b", -4.0, -1.0, 5, 3.0, spread_bps="3"),
            _figures("a", 2.0, 2.0, 4, 1.0, spread_bps="6"), _figures("b", 1.5, 1.0, 3, 0.5, spread_bps="6"),
            _figures("a", 9.0, 3.0, 1, 0.1, spread_bps="9"),
            _figures("b", None, None, None, None, "crashed: its worker process died", spread_bps="9")]
    top = top_points(rows, ["spread_bps"], "total_pnl_usd")
    assert [(p["spread_bps"], p["total_pnl_usd"], p["fills"], p["max_drawdown_usd"]) for p in top] == [
        ("6", 3.5, 7, 1.0), ("3", 1.0, 15, 3.0)]  # 9 failed on one session: not ranked on the other alone
    assert top[0]["sharpe"] == 1.5 and top[0]["session"] == "2 sessions"
    one = top_points([rows[0], rows[2]], ["spread_bps"], "sharpe")  # one session: its rows as they are
    assert one == [rows[2], rows[0]]


def test_the_heatmap_never_colours_a_failed_point(tmp_path):
    import math

    from keeper.research.sweep_output import heatmap, heatmap_cells

    grid = {"spread_bps": ["3", "6"], "size_usd": ["50", "100"]}
    rows = [_figures("a", 1.5, 0.1, 8, 1.0, spread_bps="3", size_usd="50"),
            _figures("a", -2.0, -0.2, 6, 3.0, spread_bps="6", size_usd="50"),
            _figures("a", 9.0, 0.9, 9, 1.0, "the strategy raised on 3 of 400 ticks (...)", spread_bps="3", size_usd="100"),
            _figures("a", None, None, None, None, "crashed: its worker process died", spread_bps="6", size_usd="100")]
    cells, fills, failed = heatmap_cells(rows, grid, "total_pnl_usd")
    assert (cells[0, 0], cells[0, 1], fills[0, 0]) == (1.5, -2.0, 8)
    assert failed == {(1, 0): "error", (1, 1): "crashed"} and math.isnan(cells[1, 0]) and math.isnan(cells[1, 1])
    assert heatmap(rows, grid, "total_pnl_usd", tmp_path / "h.png", "t").read_bytes()[:4] == b"\x89PNG"


def test_a_ray_address_nobody_answers_at_is_one_line_not_minutes_of_retries(session, tmp_path):
    pytest.importorskip("ray")
    import socket

    with socket.socket() as free:  # a port just closed: nothing listens there
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    code, _, errors = _keeper("sweep", session, "--strategy", "fixed_spread", "--grid", "spread_bps=3", "--backend", "ray",
                              "--ray-address", f"127.0.0.1:{port}", "--out", str(tmp_path / "o"))
    assert code == 2 and "Traceback" not in errors
    (line,) = errors.strip().splitlines()
    assert line.startswith(f"keeper: error: --ray-address 127.0.0.1:{port}: no Ray cluster answers there"), line


def test_progress_is_a_line_per_ten_percent_mark_passed_without_a_terminal(session, tmp_path):
    """Two grid points: each replay passes five 10% marks at once, and says the last of them."""
    code, said, errors = _keeper("sweep", session, "--strategy", "fixed_spread", "--grid", "spread_bps=3,6", "--workers", "1",
                                 "--out", str(tmp_path / "o"))
    assert code == 0
    lines = re.findall(r"^sweep: +(\d+)% (\d+) replays, [\d.,]+ replays/s, .* eta \d+ s$", errors, re.M)
    assert lines == [("50", "1"), ("100", "2")], errors
    assert "%" not in said


def test_progress_on_a_terminal_is_a_bar_with_a_rate_and_an_eta(session, tmp_path):
    child = terminal(["sweep", session, "--strategy", "fixed_spread", "--grid", "spread_bps=3,6", "--workers", "1",
                      "--out", str(tmp_path / "o")], timeout=300)
    assert shows_then_exits(child, "━", r"replays [\d,.]+ replays/s", "eta", r"2 replays [\d,.]+ replays/s",
                            "top 2 by total_pnl_usd") == 0


def test_ctrl_c_at_a_terminal_stops_workers_and_all_and_keeps_the_rows(session, tmp_path):
    """A terminal's Ctrl-C signals the whole process group, the pool's workers too."""
    out = tmp_path / "out"
    values = ",".join(str(2 + i / 10) for i in range(40))
    child = terminal(["sweep", session, "--strategy", "fixed_spread", "--grid", f"spread_bps={values}", "--workers", "2",
                      "--out", str(out)])
    child.logfile_read = screen = io.StringIO()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.isalive():
        if (out / "results.json").exists() and _rows(out):
            break
        child.expect([pexpect.TIMEOUT, pexpect.EOF], timeout=0.05)  # drain the bar while waiting
    child.sendintr()
    child.expect("stopped by Ctrl-C")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130 and "Traceback" not in screen.getvalue()
    result = json.loads((out / "results.json").read_text())
    assert result["interrupted"] is True and 1 <= len(result["rows"]) < 40


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="the patch reaches workers by fork")
def test_a_fold_with_no_clean_train_point_says_why_it_has_no_test(session, tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "replay_figures", _crashing(sweep.replay_figures))
    out = tmp_path / "out"
    code, said, _ = _keeper("sweep", session, "--strategy", "fixed_spread", "--grid", "spread_bps=4",
                            "--walk-forward", "200:100", "--workers", "1", "--out", str(out))
    assert code == 1
    folds = json.loads((out / "results.json").read_text())["walk_forward_folds"]
    assert [(f["fold"], f["params"], f["test_row"]) for f in folds] == [(1, None, None), (2, None, None)]
    assert f"{Path(session).name} fold 2: no train point finished without an error" in said


def test_reading_a_session_the_first_time_shows_progress(session, tmp_path):
    """The first read builds the session's columns, seconds for a day of data: not in silence."""
    import shutil

    cold = tmp_path / "cold"
    shutil.copytree(session, cold, ignore=shutil.ignore_patterns(".cache"))
    code, said, errors = _keeper("sweep", str(cold), "--strategy", "fixed_spread", "--grid", "spread_bps=3",
                                 "--out", str(tmp_path / "o"))
    assert code == 0
    assert re.search(r"^reading cold: 100% 400 snapshots, ", errors, re.M), errors
    assert "reading cold" not in said  # progress is stderr's
