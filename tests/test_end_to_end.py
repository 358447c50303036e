"""A session end to end, as CI and a new user run it: run, verify the archive, replay it."""
from __future__ import annotations

import json
import signal
import subprocess
import time

from tests.conftest import KEEPER, ROOT
from tests.test_cli import keeper


def test_run_archive_verify_and_replay(tmp_path):
    run = keeper("run", "--fast", "--ticks", "300", "--seed", "7", "--markets", "SOL-PERP,BTC-PERP,ETH-PERP,SOL",
                 "--archive-dir", str(tmp_path))
    assert run.returncode == 0, run.stderr
    (session,) = tmp_path.iterdir()
    assert f"keeper replay {session}" in run.stdout  # ".venv/bin/keeper replay" or "keeper replay"
    assert "TOTAL" in run.stdout and str(session) in run.stdout
    assert (session / "keeper.log").read_text().count("tick ") >= 1
    manifest = json.loads((session / "manifest.json").read_text())
    assert manifest["strategy"] == "fixed_spread" and manifest["seed"] == 7 and manifest["network"] == "local"
    summary = json.loads((session / "summary.json").read_text())
    assert summary["ticks"] == 300
    assert summary["total"]["fills"] > 0, "300 ticks of quoting on a simulated book should see fills"

    verify = keeper("archive", "verify", str(session))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "300 snapshot" in verify.stdout and "300 execution" in verify.stdout

    replay = keeper("replay", str(session), "--verify", "--json", str(tmp_path / "verify.json"))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "reproduced 300 of 300 recorded plans" in replay.stdout
    result = json.loads((tmp_path / "verify.json").read_text())
    assert result["verify"] == {"plans": 300, "reproduced": 300, "mismatches": []}
    # verify replays the recorded user state, so its fills are the recorded ones
    assert result["summary"]["total"]["fills"] == summary["total"]["fills"]

    whatif = keeper("replay", str(session), "--strategy", "mean_reversion", "--param", "window=10",
                    "--json", str(tmp_path / "whatif.json"))
    assert whatif.returncode == 0, whatif.stderr
    result = json.loads((tmp_path / "whatif.json").read_text())
    assert result["mode"] == "what-if" and result["strategy"] == "mean_reversion"
    assert set(result["summary"]["markets"]) == {"SOL-PERP", "BTC-PERP", "ETH-PERP", "SOL"}
    for key in ("fills", "volume_usd", "fees_usd", "realized_pnl_usd", "unrealized_pnl_usd", "total_pnl_usd",
                "max_inventory_usd", "max_drawdown_usd"):
        assert key in result["summary"]["total"]


def test_same_seed_same_session(tmp_path):
    outputs = []
    for name in ("a", "b"):
        run = keeper("run", "--fast", "--ticks", "50", "--seed", "3", "--archive-dir", str(tmp_path / name))
        assert run.returncode == 0, run.stderr
        (session,) = (tmp_path / name).iterdir()
        outputs.append(json.loads((session / "summary.json").read_text()))
    assert outputs[0] == outputs[1]


def test_truncated_last_record_is_reported_not_fatal(tmp_path):
    run = keeper("run", "--fast", "--ticks", "20", "--seed", "2", "--archive-dir", str(tmp_path))
    assert run.returncode == 0, run.stderr
    (session,) = tmp_path.iterdir()
    (segment,) = sorted(session.glob("records-*.jsonl"))
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 40])  # cut into the last record, as a crash would
    verify = keeper("archive", "verify", str(session))
    assert verify.returncode == 1
    assert "truncated" in verify.stdout
    replay = keeper("replay", str(session))
    assert replay.returncode == 0, replay.stderr
    assert "truncated" in replay.stdout


def test_sigint_cancels_every_keeper_order(tmp_path):
    proc = subprocess.Popen([*KEEPER, "run", "--seed", "5", "--interval", "0.05", "--archive-dir", str(tmp_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 60
    log = None
    while time.monotonic() < deadline:
        sessions = list(tmp_path.iterdir())
        if sessions and (sessions[0] / "keeper.log").exists() and "tick 1 " in (sessions[0] / "keeper.log").read_text():
            log = sessions[0] / "keeper.log"
            break
        time.sleep(0.1)
    assert log is not None, "the keeper did not start ticking"  # its first tick placed quotes
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    text = log.read_text()
    cancelled = int(text.split("shutdown: cancelled ")[1].split()[0])
    assert cancelled > 0, "fixed_spread rests quotes, so shutdown must have cancelled some"
    assert f"{cancelled} keeper order(s) cancelled on shutdown" in out
