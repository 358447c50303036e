"""Informed flow on the local market: a symmetric maker loses on a crash, not on a calm walk
without informed takers; SOL spot follows SOL-PERP's oracle; --toxicity is checked and recorded."""
from __future__ import annotations

import json
import statistics
import subprocess

from bench.local_flow import CRASH_SECONDS, crash_csv, pnl, run, spot_gap
from keeper.venues.local import DEFAULT_TOXICITY
from tests.conftest import KEEPER


def test_symmetric_maker_loses_on_a_crash_with_the_default_flow(tmp_path):
    path = str(crash_csv(tmp_path / "crash.csv"))
    runs = [run(tmp_path, seed, CRASH_SECONDS, "--price-path", path) for seed in range(1, 9)]
    losses = [s for s in runs if pnl(s) < 0]
    assert statistics.mean(map(pnl, runs)) < 0
    assert len(losses) >= 5, [pnl(s) for s in runs]
    assert all(s["max_drawdown_quote"] / 1e6 >= -pnl(s) - 0.01 for s in losses)  # the loss shows as drawdown
    assert max(s["max_drawdown_quote"] for s in runs) > 100 * 10**6


def test_symmetric_maker_does_not_lose_systematically_on_a_calm_walk_without_informed_takers(tmp_path):
    runs = [pnl(run(tmp_path, seed, 1800, "--toxicity", "0")) for seed in range(1, 7)]
    mean, se = statistics.mean(runs), statistics.stdev(runs) / len(runs) ** 0.5
    assert mean + 2 * se > 0, runs  # within two standard errors of breaking even, or better
    assert any(r > 0 for r in runs)


async def test_sol_spot_follows_the_sol_perp_oracle():
    assert await spot_gap(600) < 100  # bps: the oracle is shared; the books stay within 1%


def test_toxicity_is_recorded_and_bad_values_are_one_line(tmp_path):
    args = [*KEEPER, "run", "--strategy", "fixed_spread", "--fast", "--ticks", "3", "--seed", "1",
            "--archive-dir", str(tmp_path / "a")]
    done = subprocess.run([*args, "--toxicity", "0.7"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (session,) = (tmp_path / "a").iterdir()
    assert json.loads((session / "manifest.json").read_text())["toxicity"] == 0.7
    done = subprocess.run([*args, "--seed", "2"], capture_output=True, text=True, cwd=tmp_path)
    manifests = [json.loads((s / "manifest.json").read_text()) for s in (tmp_path / "a").iterdir()]
    assert sorted(m["toxicity"] for m in manifests) == sorted([0.7, DEFAULT_TOXICITY])
    for bad in ("1.5", "-0.1", "nan", "lots"):
        done = subprocess.run([*args, "--toxicity", bad], capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 2 and "--toxicity" in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    live = subprocess.run([*KEEPER, "run", "--network", "localnet", "--toxicity", "0.2"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert live.returncode == 2 and "--toxicity" in live.stderr


def test_cli_help_states_the_default():
    help_text = subprocess.run([*KEEPER, "run", "--help"], capture_output=True, text=True).stdout
    assert f"default {DEFAULT_TOXICITY}" in " ".join(help_text.split())
