"""The what-if replay on the one sim: a local session replayed with its own strategy reproduces
the run, the fill model and latency are named and change what fills, and bad input or an
archive without trades says so."""
from __future__ import annotations

import json
import subprocess

import pytest

from keeper.errors import UserError
from keeper.venues.replay import ReplayVenue
from tests.conftest import KEEPER


def _run(tmp_path, *args, ticks: int = 1200) -> tuple[dict, str]:
    archive = tmp_path / "s"
    result = subprocess.run([*KEEPER, "run", "--fast", "--ticks", str(ticks), "--archive-dir", str(archive), *args],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    session = sorted(archive.iterdir())[-1]
    return json.loads((session / "summary.json").read_text()), str(session)


def _replay(tmp_path, session: str, *args) -> dict:
    out = tmp_path / f"replay-{len(list(tmp_path.glob('replay-*')))}.json"
    result = subprocess.run([*KEEPER, "replay", session, "--json", str(out), *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return {**json.loads(out.read_text()), "stdout": result.stdout, "stderr": result.stderr}


def _base(summary: dict) -> float:
    """Filled base over the session, in USD notional (the summary's volume), per market summed."""
    return sum(m["volume_usd"] for m in summary["markets"].values())


@pytest.mark.parametrize("args", [
    ("--seed", "7", "--markets", "SOL-PERP,BTC-PERP,ETH-PERP"),
    ("--seed", "5", "--markets", "SOL-PERP,SOL", "--strategy", "inventory_skew"),
    ("--seed", "9", "--markets", "SOL-PERP", "--strategy", "ladder"),
], ids=["fixed_spread-3-perps", "inventory_skew-perp-spot", "ladder"])
def test_replaying_a_local_session_with_its_own_strategy_reproduces_the_run(tmp_path, args):
    run, session = _run(tmp_path, *args)
    replay = _replay(tmp_path, session)
    summary = replay["summary"]
    assert run["total"]["fills"] > 10, "a session with fills to compare"
    assert abs(_base(summary) - _base(run)) <= 0.02 * _base(run)
    pnl, recorded = summary["total"]["total_pnl_usd"], run["total"]["total_pnl_usd"]
    assert abs(pnl - recorded) <= max(0.05 * abs(recorded), 0.50)
    assert replay["fill_model"] == "l3_fifo" and replay["latency_slots"] == 1
    assert "fill model l3_fifo, latency 1 slot(s)" in replay["stdout"]
    assert any(n.startswith("replay vs the run:") and "archived L3 book" in n for n in replay["notes"])


def test_the_fill_model_and_latency_are_honest_knobs(tmp_path):
    _, session = _run(tmp_path, "--seed", "7", "--markets", "SOL-PERP", "--param", "spread_bps=3", ticks=1500)
    fills = {model: _replay(tmp_path, session, "--fill-model", model)["summary"]["total"]["fills"]
             for model in ("naive", "l3_fifo", "risk_averse")}
    # naive fills on any trade at our price; a queue-aware model waits its turn
    assert fills["naive"] >= fills["risk_averse"] and fills["naive"] >= fills["l3_fifo"]
    assert fills["naive"] > fills["l3_fifo"], fills
    slow = _replay(tmp_path, session, "--latency-slots", "25")  # 10 s: quotes land long after the strategy saw the book
    assert slow["summary"]["total"]["fills"] != fills["l3_fifo"]
    assert slow["latency_slots"] == 25


@pytest.mark.parametrize("flag, message", [
    (["--fill-model", "magic"], "invalid choice: 'magic' (choose from 'risk_averse', 'prob', 'l3_fifo', 'naive')"),
    (["--latency-slots", "-1"], "'-1': latency is a whole number of slots, 0 or more"),
])
def test_a_bad_fill_model_or_latency_is_one_line(tmp_path, flag, message):
    result = subprocess.run([*KEEPER, "replay", str(tmp_path), *flag], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr


def test_the_venue_refuses_an_unknown_model_before_the_first_tick():
    with pytest.raises(UserError, match="risk_averse"):
        ReplayVenue(iter(()), fill_model="magic")


def test_an_archive_without_trades_says_fills_cannot_be_simulated(tmp_path):
    """A live session recorded before the trade tape carries no trades: made here by taking the
    trades out of a local session's records, as such an archive looks."""
    _, session = _run(tmp_path, "--seed", "2", "--markets", "SOL-PERP", ticks=200)
    import gzip
    from pathlib import Path

    folder = Path(session)
    for segment in sorted(folder.glob("records-*")):
        opener = gzip.open if segment.suffix == ".gz" else open
        with opener(segment, "rt") as f:
            lines = [json.loads(line) for line in f]
        for record in lines:
            for market in record.get("snapshot", {}).get("markets", {}).values():
                market["trades"] = []
        segment.unlink()
        (folder / segment.name.removesuffix(".gz")).write_text("".join(json.dumps(r) + "\n" for r in lines))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["network"] = "localnet"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    replay = _replay(tmp_path, session)
    warning = "warning: this session's snapshots carry no trades (a live session recorded before the trade tape)"
    assert any(n.startswith(warning) for n in replay["notes"]) and warning in replay["stdout"]
