"""Settling perp PnL: the schedule (which markets, how often), the sim's settle (the program's
side is tests/test_conformance.py and tests/test_live_flatten.py), and a local session that
settles, replayed both ways."""
from __future__ import annotations

import json
import subprocess

from keeper.archive.reader import open_session
from keeper.model import BASE_PRECISION, PRICE_PRECISION, QUOTE_PRECISION, Execution, Fill, Position, replace
from keeper.risk.settle import SettleSchedule
from keeper.venues.local.specs import spec
from keeper.venues.sim import Exchange, MarketConfig
from tests.conftest import KEEPER, market, snapshot

T0 = 1_700_000_000_000
MARKETS = {"SOL-PERP": market(spec("SOL-PERP")), "BTC-PERP": market(spec("BTC-PERP")), "SOL": market(spec("SOL"))}


def at(seconds: int, positions=None, fills=()):
    s = snapshot(MARKETS, positions=positions, ts=T0 + seconds * 1000)
    return replace(s, user=replace(s.user, fills=tuple(fills)))


def fill(market_name: str, seconds: int) -> Fill:
    return Fill(market_name, "bid", 85 * PRICE_PRECISION, BASE_PRECISION, 0, 1, 1, True, T0 + seconds * 1000)


def test_every_interval_the_perps_held_or_traded_since_the_last_settle_are_settled():
    schedule = SettleSchedule(60)
    held = {"SOL-PERP": Position("SOL-PERP", BASE_PRECISION, 0, 0, 0), "SOL": Position("SOL", BASE_PRECISION, 0, 0, 0)}
    assert schedule.due(at(0, held)) == ()  # the first one an interval in
    assert schedule.due(at(30, held, [fill("BTC-PERP", 30), fill("SOL", 30)])) == ()
    assert schedule.due(at(60, held)) == ("BTC-PERP", "SOL-PERP")  # traded, held; spot has no PnL to settle
    assert schedule.due(at(61, held)) == ()
    assert schedule.due(at(120, {})) == ()  # nothing held, nothing traded since
    assert schedule.due(at(150, {}, [fill("SOL-PERP", 150)])) == ()
    assert schedule.due(at(185, {})) == ("SOL-PERP",)  # closed since, its PnL still unsettled


def test_zero_never_settles():
    schedule = SettleSchedule(0)
    held = {"SOL-PERP": Position("SOL-PERP", BASE_PRECISION, 0, 0, 0)}
    assert all(schedule.due(at(s, held)) == () for s in range(0, 100_000, 3600))


def test_on_the_sim_a_settled_gain_frees_margin_and_leaves_equity_where_it_was():
    sol = spec("SOL-PERP")
    ex = Exchange([MarketConfig(sol)], 1_000 * QUOTE_PRECISION, T0, {"SOL-PERP": 85 * PRICE_PRECISION})
    ex.account.fill("SOL-PERP", "bid", 85 * PRICE_PRECISION, 10 * BASE_PRECISION, False, T0, 1, 1)
    ex.set_oracle("SOL-PERP", 90 * PRICE_PRECISION)
    oracles = ex.oracles()
    total, _, equity, _ = ex.account.margin(oracles)
    gain = ex.account.unsettled_pnl("SOL-PERP", 90 * PRICE_PRECISION)
    # $50 up less the $0.85 taker fee: unsettled, the gain counts 0 in initial margin
    assert (gain, total) == (49_150_000, 1_000 * QUOTE_PRECISION)
    assert ex.settle_pnl("SOL-PERP") == gain
    after, _, equity_after, _ = ex.account.margin(oracles)
    assert (after - total, equity_after) == (gain, equity)
    assert ex.settle_pnl("SOL-PERP") == 0 and ex.account.unsettled_pnl("SOL-PERP", 90 * PRICE_PRECISION) == 0


def test_a_local_session_that_settles_verifies_and_replays_to_the_same_settles(tmp_path):
    risk = tmp_path / "risk.toml"
    risk.write_text("[account]\nsettle_pnl_s = 60\n")
    archive = tmp_path / "s"
    run = subprocess.run([*KEEPER, "run", "--fast", "--ticks", "400", "--seed", "3", "--markets", "SOL-PERP,BTC-PERP",
                          "--risk", str(risk), "--archive-dir", str(archive)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    (session,) = archive.iterdir()
    assert "settled PnL into USDC: SOL-PERP" in run.stderr
    verify = subprocess.run([*KEEPER, "replay", str(session), "--verify"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert verify.returncode == 0 and "reproduced 400 of 400 recorded plans" in verify.stdout, verify.stdout + verify.stderr
    whatif = subprocess.run([*KEEPER, "replay", str(session), "--archive-dir", str(tmp_path / "w")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert whatif.returncode == 0, whatif.stderr
    (replayed,) = (tmp_path / "w").iterdir()
    # the risk config is the session's: the what-if settles on the same clock, on the sim
    recorded, again = (settles(s) for s in (session, replayed))
    assert recorded and [ts for ts, _ in again] == [ts for ts, _ in recorded]
    assert all(markets for _, markets in again)


def settles(session) -> list[tuple[int, tuple[str, ...]]]:
    """(ts, markets) of every settle a session's executions made, each outcome accepted."""
    out = []
    for record in open_session(session).records():
        if isinstance(record.value, Execution) and record.value.plan.settles:
            e = record.value
            assert [(o.market, o.ok) for o in e.outcomes if o.action == "settle"] == [(m, True) for m in e.plan.settles]
            out.append((e.ts, e.plan.settles))
    return out


def test_a_session_recorded_before_settling_replays_without_it(tmp_path):
    """Its manifest has no settle interval: a replay must not settle (on the default hour), or
    --verify could not reproduce a session longer than an hour."""
    risk = tmp_path / "risk.toml"
    risk.write_text("[account]\nsettle_pnl_s = 0\n")
    archive = tmp_path / "s"
    run = subprocess.run([*KEEPER, "run", "--fast", "--ticks", "3700", "--markets", "SOL-PERP", "--risk", str(risk),
                          "--archive-dir", str(archive)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (session,) = archive.iterdir()
    manifest = json.loads((session / "manifest.json").read_text())
    assert manifest["risk"] == {"account": {"settle_pnl_s": 0}}
    del manifest["risk"]  # as a session recorded before the keeper settled
    (session / "manifest.json").write_text(json.dumps(manifest))
    verify = subprocess.run([*KEEPER, "replay", str(session), "--verify"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert verify.returncode == 0 and "reproduced 3700 of 3700 recorded plans" in verify.stdout, verify.stdout + verify.stderr
