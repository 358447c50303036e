"""Progress of replay (and the display every long command shares): plain lines at every 10%
that follow the work, each with its count and rate, without a terminal; a rich bar with a rate
and an ETA on one (a real pseudo-terminal)."""
from __future__ import annotations

import io
import re
import subprocess

import pytest

from keeper.ui.progress import Progress
from tests.conftest import KEEPER, ROOT, shows_then_exits, terminal

TICKS = 1000


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> str:
    parent = tmp_path_factory.mktemp("progress")
    subprocess.run([*KEEPER, "run", "--fast", "--ticks", str(TICKS), "--seed", "3", "--markets", "SOL-PERP",
                    "--archive-dir", str(parent)], check=True, capture_output=True, timeout=300)
    (found,) = parent.iterdir()
    return str(found)


def _lines(stderr: str, label: str) -> list[tuple[int, int]]:
    """(percent, count) of each plain progress line."""
    return [(int(m.group(1)), int(m.group(2).replace(",", "")))
            for m in re.finditer(rf"^{label}: +(\d+)% ([\d,]+) \w+, [\d,.]+ \w+/s", stderr, re.M)]


def test_the_last_line_says_the_final_count():
    """The total may be reached (the last bytes read) before the last items are counted."""
    out = io.StringIO()
    with Progress("job", 100, "items", stream=out, terminal=False) as shown:
        shown.update(5, 4)
        shown.update(100, 97)
        shown.update(100, 120)
    assert _lines(out.getvalue(), "job") == [(100, 120)]


def test_an_update_past_several_marks_says_the_last_one_once():
    """A line per update at most, each with the count it had: never nine lines of one count."""
    out = io.StringIO()
    with Progress("job", 100, "items", stream=out, terminal=False) as shown:
        for done in (5, 12, 15, 47, 51, 99):
            shown.update(done, done)
    assert _lines(out.getvalue(), "job") == [(10, 12), (40, 47), (50, 51), (90, 99), (100, 99)]


def test_a_slow_job_s_rate_is_not_rounded_to_nothing():
    out = io.StringIO()
    shown = Progress("sweep", 4, "replays", stream=out, terminal=False)
    shown.started -= 10  # ten seconds for the first replay
    shown.update(1, 1)
    assert re.search(r"1 replays, 0\.\d\d replays/s", out.getvalue()), out.getvalue()


@pytest.mark.parametrize("run", ["first (builds the columns)", "second (reads them)"])
def test_replay_lines_follow_the_replay_not_the_read_ahead(session, run):
    """A first replay reads a whole block (4,096 snapshots) before its first tick: its lines
    must still move with the ticks replayed, not say 100% after the first few."""
    done = subprocess.run([*KEEPER, "replay", session, "--strategy", "fixed_spread"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = _lines(done.stderr, "replay")
    assert [p for p, _ in lines] == list(range(10, 101, 10)), done.stderr
    counts = [c for _, c in lines]
    assert counts == sorted(set(counts)) and counts[-1] == TICKS, done.stderr
    for percent, count in lines[:-1]:
        assert abs(count - TICKS * percent / 100) <= TICKS * 0.15, done.stderr
    assert "replay:" not in done.stdout


def test_replay_on_a_terminal_is_a_bar_with_a_rate_and_an_eta(session):
    child = terminal(["replay", session, "--strategy", "fixed_spread"], timeout=300)
    assert shows_then_exits(child, "replay", "━", r"[\d,]+ snapshots [\d,.]+ snapshots/s", r"eta",
                            rf"{TICKS:,} snapshots [\d,.]+ snapshots/s",  # the bar ends on the final count
                            "what-if: fixed_spread") == 0
