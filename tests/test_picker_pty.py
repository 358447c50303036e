"""The picker and live view driven through a real pseudo-terminal, as a user would."""
from __future__ import annotations

import json

import pexpect

from tests.conftest import terminal

DOWN, ENTER, CLEAR_LINE = "\x1b[B", "\r", "\x15"  # arrow down, Enter, Ctrl-U


def spawn(args, tmp_path):
    return terminal([*args, "--archive-dir", str(tmp_path)], timeout=60, rows=40, cols=140, PROMPT_TOOLKIT_NO_CPR="1")


def test_pick_a_strategy_edit_a_parameter_and_run(tmp_path):
    child = spawn(["run", "--fast", "--ticks", "20", "--seed", "4"], tmp_path)
    child.expect("Which strategy")
    child.expect("fixed_spread")
    child.expect("mean_reversion")
    child.send(DOWN * 5)  # the default first, then by name: mean_reversion is the sixth
    child.send(ENTER)
    child.expect("Press Enter to keep a default")
    child.expect(r"Moving-average window.*\(window, int, at least 1 and at most 100,000\)")
    child.send(CLEAR_LINE + "abc" + ENTER)  # rejected: the prompt explains and stays
    child.expect("window wants int")
    child.send(CLEAR_LINE + "12" + ENTER)
    for _ in range(5):  # spread_bps, skew, size_usd, max_position_usd, requote_bps: keep defaults
        child.expect(r"\(\w+, \w+, [^)]*\)")
        child.send(ENTER)
    child.expect("Start the keeper")
    child.send("y")
    child.expect("oracle")  # the live table's header row
    child.expect(r"replay:  \S*keeper replay")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    (session,) = tmp_path.iterdir()
    manifest = json.loads((session / "manifest.json").read_text())
    assert manifest["strategy"] == "mean_reversion"
    assert manifest["params"]["window"] == 12
    assert manifest["params"]["spread_bps"] == "25.0"  # per-market values are recorded as their text
    assert "tick 1 slot" in (session / "keeper.log").read_text()  # the log file keeps ticks on a terminal too


def test_flags_skip_the_picker_on_a_terminal(tmp_path):
    child = spawn(["run", "--fast", "--ticks", "5", "--seed", "4", "--strategy", "fixed_spread"], tmp_path)
    index = child.expect(["Which strategy", r"replay:  \S*keeper replay"])
    assert index == 1
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_a_value_out_of_bounds_or_for_another_market_is_refused_and_asked_again(tmp_path):
    saved = tmp_path / "picked.toml"
    child = spawn(["run", "--fast", "--ticks", "5", "--seed", "4", "--markets", "SOL-PERP,SOL",
                   "--save-config", str(saved)], tmp_path)
    child.expect("Which strategy")
    child.send(DOWN * 6)  # after the default, by name: spot_hedge is the seventh
    child.send(ENTER)
    child.expect("Press Enter to keep a default")
    child.expect(r"\(spread_bps, float, above 0 and below 10,000, per market")
    child.send(CLEAR_LINE + "-2" + ENTER)
    child.expect(r"parameter spread_bps must be above 0 and below 10,000; got -2.0")
    child.send(CLEAR_LINE + "4,SOL-PERP=3" + ENTER)
    child.expect(r"\(size_usd, decimal")
    child.send(CLEAR_LINE + "100,FOO-PERP=5" + ENTER)
    child.expect(r"parameter size_usd: no market named 'FOO-PERP'.*valid: SOL, SOL-PERP")
    child.send(CLEAR_LINE + "100" + ENTER)
    for _ in range(3):  # band_usd, cross_bps, requote_bps
        child.expect(r"\(\w+, \w+, [^)]*\)")
        child.send(ENTER)
    child.expect("Start the keeper")
    child.send("y")
    child.expect(r"replay:  \S*keeper replay")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    (session,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest = json.loads((session / "manifest.json").read_text())
    assert manifest["strategy"] == "spot_hedge" and manifest["params"]["spread_bps"] == "4.0,SOL-PERP=3.0"
    assert 'strategy = "spot_hedge"' in saved.read_text() and "spread_bps = 3.0" in saved.read_text()


def test_a_strategy_whose_markets_are_missing_is_refused_and_asked_again(tmp_path):
    child = spawn(["run", "--fast", "--ticks", "3", "--seed", "4", "--markets", "SOL-PERP"], tmp_path)
    child.expect("Which strategy")
    child.send(DOWN * 6)  # spot_hedge: needs a spot market
    child.send(ENTER)
    child.expect("strategy spot_hedge needs a spot market; the markets given are SOL-PERP")
    child.expect("Which strategy")
    child.send(ENTER)  # the default
    child.expect("Press Enter to keep a default")
    child.sendcontrol("c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
