"""The command line as a user meets it: real processes, no terminal, exit codes and stderr."""
from __future__ import annotations

import subprocess

import pytest

from tests.conftest import KEEPER, ROOT


def keeper(*args, cwd=ROOT, timeout=120):
    return subprocess.run([*KEEPER, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keeper: error:")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_strategies_lists_descriptions_and_parameters():
    result = keeper("strategies")
    assert result.returncode == 0
    for text in ("fixed_spread", "(default)", "mean_reversion", "spread_bps", "Distance of each quote", "window"):
        assert text in result.stdout


@pytest.mark.parametrize("args,needles", [
    (["run", "--strategy", "nope", "--ticks", "1"], ["unknown strategy 'nope'", "fixed_spread"]),
    (["run", "--param", "nope=1", "--ticks", "1"], ["no parameter 'nope'"]),
    (["run", "--param", "spread_bps=wide", "--ticks", "1"], ["spread_bps wants float"]),
    (["run", "--param", "spread_bps", "--ticks", "1"], ["KEY=VALUE"]),
    (["run", "--ticks", "many"], ["--ticks"]),
    (["run", "--markets", "DOGE-PERP", "--ticks", "1"], ["DOGE-PERP"]),
    (["run", "--network", "mainnet", "--ticks", "1"], ["real money", "--yes-mainnet"]),
    (["run", "--network", "nowhere", "--ticks", "1"], ["--network 'nowhere'", "localnet"]),
    (["run", "--network", "localnet", "--seed", "3", "--ticks", "1"], ["for the local market"]),
    (["run", "--network", "localnet", "--keypair", "/nonexistent/id.json", "--ticks", "1"], ["keypair", "no such file"]),
    (["run", "--priority-fee", "lots"], ["--priority-fee"]),
    (["deposit", "ten", "--keypair", "/nonexistent/id.json"], ["keypair"]),
    (["run", "--price-path", "/nonexistent/path.csv", "--ticks", "1"], ["path.csv"]),
    (["replay", "/nonexistent/session"], ["/nonexistent/session"]),
    (["archive", "verify", "/nonexistent/session"], ["/nonexistent/session"]),
    (["frobnicate"], ["invalid choice"]),
])
def test_bad_input_is_one_line_and_exit_2(args, needles, tmp_path):
    assert_one_line_error(keeper(*args, "--archive-dir", str(tmp_path)) if args[0] == "run" else keeper(*args), *needles)


def test_bad_price_path_csv(tmp_path):
    bad = tmp_path / "path.csv"
    bad.write_text("timestamp,price\n1700000000,85.1\n1700000001,abc\n")
    assert_one_line_error(keeper("run", "--price-path", str(bad), "--ticks", "1", "--archive-dir", str(tmp_path)), "path.csv")


def test_replay_of_a_folder_without_manifest(tmp_path):
    assert_one_line_error(keeper("replay", str(tmp_path)))


def test_replay_verify_refuses_another_strategy(tmp_path):
    run = keeper("run", "--fast", "--ticks", "3", "--seed", "1", "--archive-dir", str(tmp_path))
    assert run.returncode == 0, run.stderr
    (session,) = tmp_path.iterdir()
    assert_one_line_error(keeper("replay", str(session), "--verify", "--strategy", "mean_reversion"), "--verify")
    result = keeper("replay", str(session), "--strategy", "mean_reversion", "--param", "window=0")
    assert_one_line_error(result, "window")
