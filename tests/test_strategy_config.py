"""keeper run --config FILE.toml / --save-config FILE.toml, and the strategy file's hash in
the manifest that keeper replay checks."""
from __future__ import annotations

import hashlib
import json
import subprocess
import tomllib

import pytest
from jsonschema import Draft202012Validator

from keeper import strategy_config
from tests.conftest import KEEPER, ROOT

CONFIG = '''strategy = "fixed_spread"
markets = ["SOL-PERP", "BTC-PERP"]

[params]
spread_bps = 6.5
size_usd = "120"
floating = false

[overrides."SOL-PERP"]
spread_bps = 3
sizes = 0.5

[risk.account]
max_leverage = 2
'''


def keeper(*args, cwd=ROOT):
    return subprocess.run([*KEEPER, *args], cwd=cwd, capture_output=True, text=True, timeout=180)


def run(tmp_path, *args):
    return keeper("run", "--fast", "--ticks", "5", "--seed", "2", "--archive-dir", str(tmp_path / "sessions"), *args)


def manifest_of(tmp_path) -> dict:
    (session,) = sorted((tmp_path / "sessions").iterdir())[-1:]
    return json.loads((session / "manifest.json").read_text())


def test_the_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(strategy_config.SCHEMA)


def test_a_config_file_sets_strategy_params_overrides_markets_and_risk(tmp_path):
    path = tmp_path / "mm.toml"
    path.write_text(CONFIG)
    result = run(tmp_path, "--config", str(path))
    assert result.returncode == 0, result.stderr
    m = manifest_of(tmp_path)
    assert m["strategy"] == "fixed_spread" and m["markets"] == ["SOL-PERP", "BTC-PERP"]
    assert m["params"]["spread_bps"] == "6.5,SOL-PERP=3.0" and m["params"]["sizes"] == "0,SOL-PERP=0.5"
    assert m["params"]["size_usd"] == "120"
    assert m["params"]["floating"] is False
    assert m["risk"] == {"account": {"settle_pnl_s": 3600, "max_leverage": 2}}  # the settle interval always
    sha = hashlib.sha256((ROOT / "strategies" / "fixed_spread.py").read_bytes()).hexdigest()
    assert m["strategy_sha256"] == sha
    # flags win over the file
    assert run(tmp_path, "--config", str(path), "--markets", "SOL-PERP", "--param", "spread_bps=9").returncode == 0
    m = manifest_of(tmp_path)
    assert m["markets"] == ["SOL-PERP"] and m["params"]["spread_bps"] == "9.0"


def test_a_risk_file_named_by_the_config_is_read_relative_to_it(tmp_path):
    (tmp_path / "risk.toml").write_text("[defaults]\nmax_order_usd = 500\n")
    path = tmp_path / "mm.toml"
    path.write_text('strategy = "inventory_skew"\nmarkets = ["SOL-PERP"]\nrisk = "risk.toml"\n')
    assert run(tmp_path, "--config", str(path)).returncode == 0
    assert manifest_of(tmp_path)["risk"] == {"defaults": {"max_order_usd": 500}, "account": {"settle_pnl_s": 3600}}


@pytest.mark.parametrize("text,message", [
    (CONFIG.replace("spread_bps = 3", "spread_bps = -3"),
     "parameter spread_bps for SOL-PERP must be above 0 and below 10,000; got -3.0"),
    (CONFIG.replace('[overrides."SOL-PERP"]', '[overrides."FOO-PERP"]'),
     "parameter spread_bps: no market named 'FOO-PERP'"),
    (CONFIG.replace("floating = false", "floating = false\n[overrides.BTC-PERP]\nfloating = true"),
     "floating is not per market (per-market parameters of fixed_spread: spread_bps, size_usd, sizes)"),
    (CONFIG.replace("size_usd", "size_dollars"), "no parameter of fixed_spread named 'size_dollars'"),
    (CONFIG.replace("strategy =", "stratgy = 1\nstrategy ="), "no key named 'stratgy' (did you mean strategy?)"),
    (CONFIG.replace('"fixed_spread"', '"fixed"'), "unknown strategy 'fixed'"),
    (CONFIG.replace("max_leverage = 2", "max_levrage = 2"), "no key named 'max_levrage'"),
    (CONFIG.replace('markets = ["SOL-PERP", "BTC-PERP"]', 'markets = "SOL-PERP"'), "at markets: 'SOL-PERP' is not of type 'array'"),
    (CONFIG.replace("spread_bps = 6.5", "spread_bps = nan"), "at params.spread_bps: not a finite number"),
    ("strategy = ", "not valid TOML"),
    ('strategy = "spot_hedge"\nmarkets = ["SOL-PERP"]\n', "strategy spot_hedge needs a spot market; the markets given are SOL-PERP"),
])
def test_bad_config_files_are_one_line_and_exit_2(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run(tmp_path, "--config", str(path))
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "sessions").exists()  # refused before anything started


def test_config_and_strategy_flags_conflict(tmp_path):
    path = tmp_path / "mm.toml"
    path.write_text(CONFIG)
    result = run(tmp_path, "--config", str(path), "--strategy", "ladder")
    assert result.returncode == 2 and "both name the strategy" in result.stderr
    result = run(tmp_path, "--config", str(path), "--risk", str(path))
    assert result.returncode == 2 and "both set the risk limits" in result.stderr


def test_save_config_writes_what_config_reads_back(tmp_path):
    saved = tmp_path / "saved.toml"
    (tmp_path / "risk.toml").write_text("[account]\nmax_leverage = 2\n")
    result = run(tmp_path, "--strategy", "ladder", "--markets", "SOL-PERP,ETH-PERP", "--param", "levels=2",
                 "--param", "first_bps=4,ETH-PERP=6", "--param", "anchor=grid", "--risk", str(tmp_path / "risk.toml"),
                 "--save-config", str(saved))
    assert result.returncode == 0, result.stderr
    assert f"config saved to {saved}" in result.stdout
    data = tomllib.loads(saved.read_text())
    assert Draft202012Validator(strategy_config.SCHEMA).is_valid(data)
    first = manifest_of(tmp_path)
    assert run(tmp_path, "--config", str(saved)).returncode == 0
    second = manifest_of(tmp_path)
    for key in ("strategy", "params", "markets", "risk"):
        assert first[key] == second[key], key


def test_replay_warns_in_one_line_when_the_strategy_file_changed(tmp_path):
    assert run(tmp_path, "--strategy", "fixed_spread", "--markets", "SOL-PERP").returncode == 0
    (session,) = (tmp_path / "sessions").iterdir()
    same = keeper("replay", str(session))
    assert same.returncode == 0 and "changed since" not in same.stderr
    manifest = json.loads((session / "manifest.json").read_text())
    manifest["strategy_sha256"] = "0" * 64  # as if recorded with other code
    (session / "manifest.json").write_text(json.dumps(manifest))
    changed = keeper("replay", str(session))
    assert changed.returncode == 0
    (line,) = [l for l in changed.stderr.splitlines() if "changed since" in l]
    assert "fixed_spread.py changed since this session was recorded (sha256 000000000000 then" in line
    other = keeper("replay", str(session), "--strategy", "ladder")  # another strategy: nothing to compare
    assert "changed since" not in other.stderr
