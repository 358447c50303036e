"""keeper scorecard: its figures recomputed from an archived run by plain arithmetic, the crash
ordering the issue asks for, the real DLOB scenario, the command line and its bad input."""
from __future__ import annotations

import json
import math
import statistics

import pytest

from keeper import cli
from keeper.archive.reader import open_session
from keeper.archive.verify import verify_session
from keeper.research import scenarios as S
from keeper.research.real import build_session
from keeper.research.runs import run_local, run_replay
from keeper.research.scorecard import scorecard

REAL = "drift_dlob_l3_snapshots_2023-12"


def recompute(session) -> dict:
    """The figures from the archived snapshots and executions, in float USD, with no keeper
    book-keeping: PnL is cash + position at the oracle + funding, from zero."""
    cash = funding = fees = peak = drawdown = 0.0
    base: dict[str, float] = {}
    pnl, inventory = [], []
    placed = filled = 0.0
    snapshot = None
    for record in session.records():
        if record.kind == "snapshot":
            snapshot = record.value
            for f in snapshot.user.fills:
                units = f.size / snapshot.markets[f.market].spec.base_precision
                sign = 1 if f.side == "bid" else -1
                base[f.market] = base.get(f.market, 0.0) + sign * units
                cash -= sign * units * f.price / 1e6 + f.fee / 1e6
                fees += f.fee / 1e6
                filled += units
            funding += sum(snapshot.user.funding.values()) / 1e6
            continue
        ok = {o.user_order_id for o in record.value.outcomes if o.action == "place" and o.ok}
        placed += sum(p.intent.size / snapshot.markets[p.intent.market].spec.base_precision
                      for p in record.value.plan.places if p.user_order_id in ok)
        oracle = {n: m.oracle_price / 1e6 for n, m in snapshot.markets.items()}
        now = cash + funding + sum(b * oracle[n] for n, b in base.items())
        pnl.append(now)
        inventory.append(sum(abs(b) * oracle[n] for n, b in base.items()))
        peak = max(peak, now)
        drawdown = max(drawdown, peak - now)
    changes = [b - a for a, b in zip([0.0] + pnl, pnl)]
    return {"pnl_usd": pnl[-1], "max_drawdown_usd": drawdown, "max_inventory_usd": max(inventory),
            "mean_abs_inventory_usd": statistics.fmean(inventory), "fees_usd": fees, "fill_ratio": filled / placed,
            "sharpe": statistics.fmean(changes) / statistics.pstdev(changes) * 60,
            "ticks": len(pnl)}


def test_figures_match_a_recomputation_from_the_archive(tmp_path):
    figures = run_local("fixed_spread", {}, S.price_path("crash", 2), seed=2, archive_dir=str(tmp_path))
    session = open_session(next(tmp_path.iterdir()))
    expected = recompute(session)
    assert figures["fills"] > 10 and figures["halted_s"] == 0  # a run with something to check
    assert figures["ticks"] == expected["ticks"] == len(S.price_path("crash", 2))
    for key in ("pnl_usd", "max_drawdown_usd", "max_inventory_usd", "mean_abs_inventory_usd", "fees_usd"):
        # the keeper's integers truncate each fill's quote to a micro-dollar; a cent over a run is plenty
        assert figures[key] == pytest.approx(expected[key], abs=0.01), key
    assert figures["fill_ratio"] == pytest.approx(expected["fill_ratio"], rel=1e-9)
    assert figures["sharpe"] == pytest.approx(expected["sharpe"], rel=1e-3)


def test_scenarios_are_seeded_and_shaped_as_documented():
    crash = S.price_path("crash", 3)
    assert crash == S.price_path("crash", 3) and crash != S.price_path("crash", 4)
    assert len(crash) == S.CRASH_LEAD_S * 2 + S.CRASH_S + 1
    start, bottom = crash[S.CRASH_LEAD_S][1], crash[S.CRASH_LEAD_S + S.CRASH_S][1]
    assert bottom / start == pytest.approx(0.5, abs=0.03)  # the walk's noise over 300 s is ~0.2%
    trend = S.price_path("trend", 1, seconds=600)
    assert trend[-1][1] / trend[0][1] == pytest.approx(1.1, abs=0.03)
    assert all(b[0] - a[0] == 1000 for a, b in zip(trend, trend[1:]))


def test_inventory_aware_strategies_hold_less_and_lose_less_than_fixed_spread_in_a_crash():
    """The issue's requirement, at the same size ($100 a side) for all three, over eight seeds."""
    same = {"size_usd": "100"}
    card = scorecard({"fixed_spread": same, "avellaneda_stoikov": same, "inventory_skew": same}, ["crash"], seeds=8)
    mean = {name: {k: r["crash"][k]["mean"] for k in ("max_inventory_usd", "max_drawdown_usd")}
            for name, r in card["results"].items()}
    for name in ("avellaneda_stoikov", "inventory_skew"):
        assert mean[name]["max_inventory_usd"] < mean["fixed_spread"]["max_inventory_usd"], (name, mean)
        assert mean[name]["max_drawdown_usd"] < mean["fixed_spread"]["max_drawdown_usd"], (name, mean)


def test_a_session_built_from_the_real_dlob_snapshots_replays(shared_data, tmp_path):
    session = build_session(tmp_path / "real", shared_data / REAL, ("SOL-PERP", "SOL"))
    report = verify_session(session)
    assert report.ok, report
    snaps = [r.value for r in open_session(session).records()]
    assert len(snaps) == 143
    book = snaps[0].markets["SOL-PERP"].book
    assert book.bids and book.asks and len(book.l3) > 100
    assert all(a.price < b.price for a, b in zip(book.asks, book.asks[1:]))
    figures = run_replay("spot_hedge", {}, session)
    assert figures["ticks"] == 143 and figures["fills"] > 0
    assert math.isfinite(figures["pnl_usd"])


def test_the_command_writes_a_table_json_and_png(tmp_path, capsys):
    path = tmp_path / "path.csv"
    path.write_text("timestamp,price\n" + "".join(f"{1_701_790_320 + t},{100 - t / 10:.2f}\n" for t in range(121)))
    out, png = tmp_path / "card.json", tmp_path / "card.png"
    code = cli.main(["scorecard", "--strategy", "inventory_skew", "--scenarios", "calm", "--price-path", str(path),
                     "--seeds", "2", "--json", str(out), "--png", str(png)])
    said = capsys.readouterr()
    assert code == 0, said.err
    card = json.loads(out.read_text())
    assert card["scenarios"] == ["calm", "path"] and card["seeds"] == 2
    calm = card["results"]["inventory_skew"]["calm"]
    assert [r["seed"] for r in calm["runs"]] == [1, 2]
    assert calm["max_drawdown_usd"]["min"] <= calm["max_drawdown_usd"]["mean"] <= calm["max_drawdown_usd"]["max"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "inventory_skew" in said.out and "max DD $" in said.out
    assert "scorecard: 100%" in said.err  # not a terminal: plain progress lines


@pytest.mark.parametrize("argv, culprit", [
    (["--strategy", "nope"], "no strategy named 'nope'"),
    (["--scenarios", "calm,storm"], "no scenario named 'storm'"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--param", "colour=red"], "--param colour"),
    (["--strategy", "fixed_spread", "--param", "spread_bps=-1"], "spread_bps"),
    (["--strategy", "ev_maker"], "model"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, culprit):
    code = cli.main(["scorecard", *argv, "--json", str(tmp_path / "c.json"), "--png", str(tmp_path / "c.png")])
    err = capsys.readouterr().err
    assert code == 2
    assert culprit in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "c.json").exists()
