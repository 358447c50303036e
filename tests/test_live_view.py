"""What `keeper run` shows while it runs and when it stops: the live view in a real 80x24
pseudo-terminal, the plain lines without a terminal, the summary, and --on-stop flatten."""
from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys

import pexpect

from keeper.archive.reader import open_session
from keeper.model import Execution, Snapshot
from keeper.ui.logs import SessionLog
from tests.conftest import KEEPER, terminal

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RAW_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (INFO|WARNING|ERROR) ")
# rich's Live moves back over its last frame before drawing the next: one "erase line, up" per line
FRAME_RESET = re.compile(r"(?:\x1b\[2K\x1b\[1A)+")


def crash_path(tmp_path):
    """SOL falls 0.2% a second: mean_reversion keeps buying the dip (a long builds) and bids
    toward its moving average, above the AMM's ask, which the post-only rule refuses."""
    path = tmp_path / "crash.csv"
    path.write_text("timestamp,price\n" + "".join(f"{1_700_000_000 + t},{100 * 0.998 ** t:.4f}\n" for t in range(400)))
    return path


def run_args(tmp_path, *extra):
    return ["run", "--strategy", "mean_reversion", "--markets", "SOL-PERP", "--price-path", str(crash_path(tmp_path)),
            "--fast", "--ticks", "300", "--seed", "1", "--archive-dir", str(tmp_path / "sessions"), *extra]


def session_of(tmp_path):
    (session,) = (tmp_path / "sessions").iterdir()
    return session, json.loads((session / "summary.json").read_text())


def rejections(session) -> int:
    return sum(1 for r in open_session(session).records() if isinstance(r.value, Execution)
               for o in r.value.outcomes if o.error == "PlacePostOnlyLimitFailure")


def test_the_live_view_fits_80_columns_keeps_its_height_and_shows_warnings_in_its_panel(tmp_path):
    child = terminal(run_args(tmp_path), rows=24, cols=80)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    screen = child.before
    session, summary = session_of(tmp_path)
    assert rejections(session) > 100, "the scenario must reject quotes tick after tick"

    view, after = screen.split("300 ticks of mean_reversion")  # the live view's frames, then what run prints
    lines = re.split(r"[\r\n]+", ANSI.sub("", view))
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    assert not [line for line in lines if RAW_LOG_LINE.match(line)], "a log line was written under the live view"
    heights = {len(reset) for reset in FRAME_RESET.findall(view)}
    assert len(heights) == 1, f"the frame changed height: {heights}"
    panel = [line for line in lines if line.startswith("│ ") and "PlacePostOnlyLimitFailure" in line]
    assert any(re.search(r"PlacePostOnlyLimitFailure x\d+ in the last minute", line) for line in panel), panel
    header = [line for line in lines if line.startswith("mean_reversion ")]
    assert header and all(" tick " in line and " risk " in line for line in header), "the header is one line"
    assert len(heights) == 1 and len(FRAME_RESET.findall(view)) > 1
    assert after.count("end positions") == 1 and "end positions" not in view
    assert not [line for line in after.splitlines() if RAW_LOG_LINE.match(line)]
    end = summary["markets"]["SOL-PERP"]["end_position"]
    assert end > 0 and f"SOL-PERP: +{end:,.2f} SOL" in after


def test_without_a_terminal_ticks_are_a_line_per_100_and_rejections_a_line_per_minute(tmp_path):
    result = subprocess.run([*KEEPER, *run_args(tmp_path)], capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    session, summary = session_of(tmp_path)
    ticks = re.findall(r" tick (\d+) slot ", result.stderr)
    assert ticks == ["1", "100", "200", "300"], result.stderr
    first = [line for line in result.stderr.splitlines() if "rejected: PlacePostOnlyLimitFailure" in line]
    assert len(first) == 1 and "SOL-PERP bid" in first[0] and " SOL at " in first[0], first
    # each later one is counted in a line a (simulated) minute, and none is lost
    counts = [int(n) for n in re.findall(r"PlacePostOnlyLimitFailure x(\d+) in the last", result.stderr)]
    assert 1 < len(counts) <= 300 // 60 + 1
    assert 1 + sum(counts) == rejections(session)
    assert not re.search(r"\b\d{7,}\b", "\n".join(first)), "a raw 1e6/1e9 integer in a log line"

    # the summary once, on stdout, with the end position; keeper.log keeps a copy
    assert "end positions" not in result.stderr and result.stdout.count("end positions") == 1
    end = summary["markets"]["SOL-PERP"]["end_position"]
    assert end > 0 and f"SOL-PERP: +{end:,.2f} SOL" in result.stdout
    assert "summary after 300 ticks" in (session / "keeper.log").read_text()


def test_flatten_closes_the_position_with_reduce_only_ioc_orders(tmp_path):
    result = subprocess.run([*KEEPER, *run_args(tmp_path, "--on-stop", "flatten")], capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    session, summary = session_of(tmp_path)
    assert summary["on_stop"]["left"] == {"SOL-PERP": "flat"}
    assert summary["markets"]["SOL-PERP"]["end_position"] == 0
    assert "SOL-PERP: flat" in result.stdout

    records = [r.value for r in open_session(session).records()]
    snapshots = [r for r in records if isinstance(r, Snapshot)]
    flatten = [r for r in records if isinstance(r, Execution)][-summary["on_stop"]["ticks"]:]
    held = snapshots[-len(flatten)].user.positions["SOL-PERP"].base
    assert held > 0, "the stop found a long to close"
    closing = [p.intent for e in flatten for p in e.plan.places]
    assert closing and all(i.reduce_only and i.ioc and i.side == "ask" for i in closing)
    assert "SOL-PERP" not in snapshots[-1].user.positions or snapshots[-1].user.positions["SOL-PERP"].base == 0
    assert not snapshots[-1].user.open_orders
    # its last tick settles what it closed, so the PnL is in USDC, ready to withdraw
    assert flatten[-1].plan.settles == ("SOL-PERP",)
    assert [(o.action, o.market, o.ok) for o in flatten[-1].outcomes] == [("settle", "SOL-PERP", True)]


def test_flatten_that_cannot_trade_says_what_is_left_and_why(tmp_path):
    """Closing orders may cross the oracle by at most reduce_cross_bps; at 0 no bid is there."""
    risk = tmp_path / "risk.toml"
    risk.write_text("[account]\nreduce_cross_bps = 0\n")
    result = subprocess.run([*KEEPER, *run_args(tmp_path, "--on-stop", "flatten", "--risk", str(risk))],
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    _, summary = session_of(tmp_path)
    left = summary["on_stop"]["left"]["SOL-PERP"]
    assert re.fullmatch(r"\d+\.\d\d SOL left: 5 reduce-only IOC orders within 0 bps of the oracle did not close it", left), left
    assert summary["markets"]["SOL-PERP"]["end_position"] > 0
    assert f"SOL-PERP: {left}" in result.stdout


def test_early_warnings_and_library_prints_reach_keeper_log_and_the_screen_once_a_minute(tmp_path):
    logs = SessionLog(interactive=False)
    screen = logs.screen.stream = io.StringIO()
    logging.getLogger("keeper.venues.drift.connect").warning("keypair k.json is readable by group or others")
    logs.open_file(tmp_path / "keeper.log")
    with logs.capture():
        for _ in range(3):
            print("Websocket closed, reconnecting...")
        print("request timed out", file=sys.stderr)
    text = (tmp_path / "keeper.log").read_text()
    assert "keypair k.json is readable" in text
    assert text.count("stdout: Websocket closed, reconnecting...") == 3
    assert "stderr: request timed out" in text
    shown = screen.getvalue()
    assert shown.count("Websocket closed") == 2, shown  # once, then the count at the end
    assert "stdout: Websocket closed, reconnecting... (x2 more in the last" in shown


def test_replay_verify_leaves_out_the_stops_flatten_ticks(tmp_path):
    """The flatten after the last tick is the stop's, not the strategy's: --verify reproduces every
    plan the strategy made and does not count the closing ones as mismatches."""
    import json
    import subprocess

    from tests.conftest import KEEPER

    path = tmp_path / "p.csv"
    path.write_text("timestamp,price\n" + "".join(f"{1701790320 + t},{85 * (1 + 0.001 * t):.4f}\n" for t in range(400)))
    run = subprocess.run([*KEEPER, "run", "--fast", "--ticks", "300", "--seed", "2", "--markets", "SOL-PERP",
                          "--strategy", "mean_reversion", "--price-path", str(path), "--on-stop", "flatten",
                          "--archive-dir", "s"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (session,) = (tmp_path / "s").iterdir()
    assert json.loads((session / "summary.json").read_text())["on_stop"]["ticks"] > 0
    verify = subprocess.run([*KEEPER, "replay", str(session), "--verify"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert "reproduced 300 of 300 recorded plans" in verify.stdout, verify.stdout
