"""The strategy library's behaviour, each pinned: avellaneda_stoikov, inventory_skew, ladder,
spot_hedge and ev_maker. Expected values are recomputed here from each docstring's formula."""
from __future__ import annotations

import json
import math
import subprocess

import pytest

import strategies
from keeper.archive.reader import open_session
from keeper.model import BASE_PRECISION, PRICE_PRECISION, LastPlan, PlanOrder, Position, Trade, replace
from keeper.venues.local.specs import spec
from tests.conftest import KEEPER, ROOT, market, snapshot

ORACLE = 85 * PRICE_PRECISION
SOL = spec("SOL")


def long(units: float, name: str = "SOL-PERP") -> dict:
    return {name: Position(name, round(units * BASE_PRECISION), ORACLE, 0, 0)}


def by_side(intents, market_name="SOL-PERP"):
    return {i.side: i for i in intents if i.market == market_name}


# -- avellaneda_stoikov ------------------------------------------------------------------------

def test_avellaneda_stoikov_quotes_the_papers_formulas_with_its_initial_estimates():
    s = strategies.build("avellaneda_stoikov", {"requote_bps": "0"}, markets=["SOL-PERP"])
    q_units = 4.0
    quotes = by_side(s.quote(snapshot(positions=long(q_units))))
    gamma, tau, sigma, kappa, size_usd = 0.01, 300.0, 1e-4, 0.5 * 10_000, 100.0
    q_usd = q_units * 85
    shift = -q_usd * gamma * sigma ** 2 * tau  # r = s - q gamma sigma^2 (T - t), as a fraction of s
    g = gamma * size_usd
    half = (g * sigma ** 2 * tau + 2 / g * math.log(1 + g / kappa)) / 2
    assert quotes["bid"].oracle_offset == round(ORACLE * (shift - half))
    assert quotes["ask"].oracle_offset == round(ORACLE * (shift + half))
    assert quotes["bid"].size == quotes["ask"].size == round(100 / 85 * BASE_PRECISION)


@pytest.mark.parametrize("units", [2.0, 8.0])
def test_avellaneda_stoikov_reservation_price_moves_against_inventory(units):
    def centre(positions):
        s = strategies.build("avellaneda_stoikov", {"requote_bps": "0", "gamma": "0.5", "max_inventory_usd": "100000"}, markets=["SOL-PERP"])
        q = by_side(s.quote(snapshot(positions=positions)))
        return (q["bid"].oracle_offset + q["ask"].oracle_offset) / 2

    flat = centre({})
    assert flat == pytest.approx(0, abs=1)
    assert centre(long(units)) < flat < centre(long(-units))  # long: lower quotes, to sell; short: higher
    assert centre(long(2 * units)) < centre(long(units))  # more inventory, further


def test_avellaneda_stoikov_estimates_sigma_and_kappa_and_widens_with_volatility():
    calm = strategies.build("avellaneda_stoikov", {"requote_bps": "0", "vol_halflife_s": "5"}, markets=["SOL-PERP"])
    wild = strategies.build("avellaneda_stoikov", {"requote_bps": "0", "vol_halflife_s": "5"}, markets=["SOL-PERP"])
    for t in range(30):
        calm.quote(snapshot({"SOL-PERP": market(oracle=ORACLE + (t % 2) * 100)}, ts=t * 1000))
        wild.quote(snapshot({"SOL-PERP": market(oracle=ORACLE + (t % 2) * 400_000)}, ts=t * 1000))
    last = snapshot({"SOL-PERP": market(oracle=ORACLE)}, ts=30_000)
    width = lambda s: (lambda q: q["ask"].oracle_offset - q["bid"].oracle_offset)(by_side(s.quote(last)))  # noqa: E731
    assert wild.estimates("SOL-PERP")[0] > 100 * calm.estimates("SOL-PERP")[0]
    assert width(wild) > width(calm)
    # the tape: prints 1 to 5 bps from the oracle give a kappa fitted from them, not the default
    tape = strategies.build("avellaneda_stoikov", {"intensity_window_s": "1000"}, markets=["SOL-PERP"])
    for t in range(20):
        trades = tuple(Trade(ORACLE + ORACLE * d // 10_000, 10**8, "bid") for d in (1, 1, 1, 2, 2, 3, 5))
        tape.quote(snapshot({"SOL-PERP": replace(market(), trades=trades)}, ts=t * 1000))
    assert tape.estimates("SOL-PERP")[1] != 0.5 and tape.estimates("SOL-PERP")[1] > 0


def test_avellaneda_stoikov_stops_adding_past_max_inventory():
    s = strategies.build("avellaneda_stoikov", {"max_inventory_usd": "500"}, markets=["SOL-PERP"])
    assert set(by_side(s.quote(snapshot(positions=long(6))))) == {"ask"}  # $510 long: only sell
    assert set(by_side(s.quote(snapshot(positions=long(-6))))) == {"bid"}


# -- inventory_skew ----------------------------------------------------------------------------

def test_inventory_skew_is_symmetric_when_flat_and_leans_against_a_position():
    s = strategies.build("inventory_skew", {"requote_bps": "0", "spread_bps": "5", "skew_bps": "10",
                                            "size_skew": "0.5", "max_inventory_usd": "850"}, markets=["SOL-PERP"])
    flat = by_side(s.quote(snapshot()))
    size = round(100 / 85 * BASE_PRECISION)
    assert flat["bid"].oracle_offset == -flat["ask"].oracle_offset == -round(ORACLE * 5 / 10_000)
    assert flat["bid"].size == flat["ask"].size == size
    half = by_side(s.quote(snapshot(positions=long(5))))  # $425 of $850: f = 0.5
    assert half["bid"].oracle_offset == round(ORACLE * (-0.5 * 10 - 5) / 10_000)  # centre 5 bps lower
    assert half["ask"].oracle_offset == round(ORACLE * (-0.5 * 10 + 5) / 10_000)
    assert half["bid"].size == int(size * (1 - 0.5 * 0.5)) and half["ask"].size == int(size * (1 + 0.5 * 0.5))
    short = by_side(s.quote(snapshot(positions=long(-5))))
    assert short["ask"].size < size < short["bid"].size and short["bid"].oracle_offset > flat["bid"].oracle_offset
    assert set(by_side(s.quote(snapshot(positions=long(10))))) == {"ask"}  # full: the adding side stops


# -- ladder ------------------------------------------------------------------------------------

def test_ladder_shape_is_geometric_in_distance_and_size():
    s = strategies.build("ladder", {"levels": "4", "first_bps": "2", "spacing": "2", "size_usd": "85",
                                    "size_ratio": "1.5", "requote_bps": "0"}, markets=["SOL-PERP"])
    intents = s.quote(snapshot())
    bids = [i for i in intents if i.side == "bid"]
    asks = [i for i in intents if i.side == "ask"]
    assert [b.oracle_offset for b in bids] == [-round(ORACLE * d / 10_000) for d in (2, 4, 8, 16)]
    assert [a.oracle_offset for a in asks] == [round(ORACLE * d / 10_000) for d in (2, 4, 8, 16)]
    assert [b.size for b in bids] == [a.size for a in asks] == [round(BASE_PRECISION * 1.5 ** k) for k in range(4)]


def test_ladder_as_a_grid_keeps_its_prices_until_the_oracle_leaves_it():
    s = strategies.build("ladder", {"levels": "2", "first_bps": "10", "spacing": "2", "anchor": "grid",
                                    "requote_bps": "0"}, markets=["SOL-PERP"])
    first = sorted(i.price for i in s.quote(snapshot()))
    assert first == [round(ORACLE * (1 + d / 10_000)) for d in (-20, -10, 10, 20)]
    inside = snapshot({"SOL-PERP": market(oracle=ORACLE + ORACLE * 15 // 10_000)})  # moved 15 bps: inside
    assert sorted(i.price for i in s.quote(inside)) == first
    moved = ORACLE + ORACLE * 30 // 10_000  # 30 bps: past the outer level, recentred
    outside = sorted(i.price for i in s.quote(snapshot({"SOL-PERP": market(oracle=moved)})))
    assert outside == [round(moved * (1 + d / 10_000)) for d in (-20, -10, 10, 20)]


# -- spot_hedge --------------------------------------------------------------------------------

def spot_market(oracle=ORACLE):
    return replace(market(oracle=oracle), spec=SOL)


def hedge_snapshot(perp_units, spot_units=0.0, last_plan=None):
    positions = {**long(perp_units), **long(spot_units, "SOL")}
    snap = snapshot({"SOL-PERP": market(), "SOL": spot_market()}, positions=positions)
    return replace(snap, last_plan=last_plan)


def test_spot_hedge_within_the_band_quotes_the_perp_only():
    s = strategies.build("spot_hedge", {"band_usd": "150"}, markets=["SOL-PERP", "SOL"])
    intents = s.quote(hedge_snapshot(1.0, -0.5))  # net 0.5 SOL = $42.50
    assert {(i.market, i.side) for i in intents} == {("SOL-PERP", "bid"), ("SOL-PERP", "ask")}


def test_spot_hedge_outside_the_band_sends_one_ioc_spot_order_in_the_same_plan():
    s = strategies.build("spot_hedge", {"band_usd": "150", "cross_bps": "30"}, markets=["SOL-PERP", "SOL"])
    intents = s.quote(hedge_snapshot(3.0, -0.5))  # net 2.5 SOL = $212.50 long
    (hedge,) = [i for i in intents if i.market == "SOL"]
    assert hedge.side == "ask" and hedge.size == round(2.5 * BASE_PRECISION)
    assert hedge.ioc and not hedge.post_only and hedge.time_in_force == "ioc"
    assert hedge.price == round(ORACLE * (1 - 30 / 10_000))  # crosses the spot book by up to cross_bps
    assert {i.side for i in intents if i.market == "SOL-PERP"} == {"bid", "ask"}
    short = [i for i in s.quote(hedge_snapshot(-3.0)) if i.market == "SOL"]
    assert short[0].side == "bid" and short[0].size == 3 * BASE_PRECISION


def test_spot_hedge_after_margin_trading_disabled_sells_only_what_it_holds():
    refused = LastPlan(0, (PlanOrder("SOL", "ask", 2 * BASE_PRECISION, 3, "rejected",
                                     error="failed: 6157 MarginTradingDisabled"),))
    s = strategies.build("spot_hedge", {"band_usd": "150"}, markets=["SOL-PERP", "SOL"])
    intents = s.quote(hedge_snapshot(3.0, 1.0, last_plan=refused))  # net 4 SOL; 1 SOL held
    (hedge,) = [i for i in intents if i.market == "SOL"]
    assert hedge.size == BASE_PRECISION  # no borrow: only the SOL held
    nothing_held = s.quote(hedge_snapshot(3.0, 0.0))
    assert [i for i in nothing_held if i.market == "SOL"] == []
    # no hedge possible: the perp side that grows the delta is not quoted, the other is
    assert {i.side for i in nothing_held if i.market == "SOL-PERP"} == {"ask"}


def test_spot_hedge_holds_its_band_in_a_local_run(tmp_path):
    """keeper run --fast --markets SOL-PERP,SOL --strategy spot_hedge: the summary reports the
    net delta per asset, and the band holds: a fill may push the delta out for one tick, the
    next tick's hedge brings it back."""
    band, size = 150, 100
    result = subprocess.run([*KEEPER, "run", "--fast", "--ticks", "400", "--seed", "11", "--markets", "SOL-PERP,SOL",
                             "--strategy", "spot_hedge", "--param", f"band_usd={band}", "--param", f"size_usd={size}",
                             "--archive-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "net delta SOL:" in result.stdout
    (session,) = tmp_path.iterdir()
    summary = json.loads((session / "summary.json").read_text())
    sol = summary["assets"]["SOL"]
    assert summary["markets"]["SOL-PERP"]["fills"] > 5 and summary["markets"]["SOL"]["fills"] > 0  # it did hedge
    assert sol["max_abs_net_delta_usd"] <= band + 2 * size  # a tick's fills past the band, at most
    assert sol["net_delta"] == pytest.approx(summary["markets"]["SOL-PERP"]["position"] + summary["markets"]["SOL"]["position"])
    outside = []
    for record in open_session(session).records():
        if record.kind == "snapshot":
            snap = record.value
            units = sum(p.base / BASE_PRECISION for p in snap.user.positions.values())
            outside.append(abs(units * snap.markets["SOL-PERP"].oracle_price / PRICE_PRECISION) > band)
    assert any(outside)  # the band was tested
    assert not any(a and b for a, b in zip(outside, outside[1:]))  # and never left for two ticks in a row


# -- ev_maker ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    home = tmp_path_factory.mktemp("ev")
    run = subprocess.run([*KEEPER, "run", "--fast", "--ticks", "600", "--seed", "5", "--markets", "SOL-PERP",
                          "--archive-dir", str(home / "sessions")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (session,) = (home / "sessions").iterdir()
    model = home / "model.json"
    fit = subprocess.run([*KEEPER, "fit", "ev_maker", str(session), "--out", str(model)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert fit.returncode == 0, fit.stderr
    return session, model


def test_ev_maker_quotes_at_the_distance_with_the_best_positive_expected_value(fitted):
    _, path = fitted
    model = json.loads(path.read_text())
    assert model["format"] == "drift-keeper-ev-model/1" and model["horizon_ticks"] == 5
    s = strategies.build("ev_maker", {"model": str(path), "min_fills": "3", "requote_bps": "0"}, markets=["SOL-PERP"])
    quotes = by_side(s.quote(snapshot()))
    rebate_bps = 20 / 100_000 * 10_000
    for side, sign in (("bid", -1), ("ask", 1)):
        tally = model["markets"]["SOL-PERP"][side]
        evs = [(f / tally["observations"] * (m + rebate_bps), d)
               for d, f, m in zip(model["distances_bps"], tally["fills"], tally["markout_bps"]) if f >= 3]
        best_ev, best_d = max(evs)
        if best_ev > 0:
            assert quotes[side].oracle_offset == round(ORACLE * sign * best_d / 10_000)
        else:
            assert side not in quotes
    # a bar no distance clears: nothing quoted
    strict = strategies.build("ev_maker", {"model": str(path), "min_ev_bps": "100"}, markets=["SOL-PERP"])
    assert strict.quote(snapshot()) == []


def test_fit_recounts_the_archive(fitted):
    """The fill counts recomputed independently from the session's snapshots."""
    session, path = fitted
    model = json.loads(path.read_text())
    snaps = [r.value for r in open_session(session).records() if r.kind == "snapshot"]
    d = model["distances_bps"][1]
    fills = 0
    for then, nxt in zip(snaps[:-5], snaps[1:-4]):
        price = then.markets["SOL-PERP"].oracle_price * (1 - d / 10_000)
        m = nxt.markets["SOL-PERP"]
        fills += (m.book.best_ask is not None and m.book.best_ask <= price) or any(
            t.taker_side == "ask" and t.price <= price for t in m.trades)
    assert model["markets"]["SOL-PERP"]["bid"]["fills"][1] == fills
    assert model["markets"]["SOL-PERP"]["bid"]["observations"] == len(snaps) - 5


def test_a_bad_or_missing_model_is_one_line_and_exit_2(fitted, tmp_path):
    _, path = fitted
    model = json.loads(path.read_text())
    cases = {
        "missing.json": None,
        "notjson.json": "{",
        "oldformat.json": json.dumps({**model, "format": "drift-keeper-ev-model/0"}),
        "short.json": json.dumps({**model, "distances_bps": model["distances_bps"][:-1]}),
        "schema.json": json.dumps({**model, "horizon_ticks": 0}),
    }
    for name, text in cases.items():
        file = tmp_path / name
        if text is not None:
            file.write_text(text)
        result = subprocess.run([*KEEPER, "run", "--fast", "--ticks", "1", "--markets", "SOL-PERP", "--strategy",
                                 "ev_maker", "--param", f"model={file}", "--archive-dir", str(tmp_path / "s")],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and f"model file {file}" in result.stderr, result.stderr
    no_model = subprocess.run([*KEEPER, "run", "--fast", "--ticks", "1", "--strategy", "ev_maker", "--archive-dir",
                               str(tmp_path / "s")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert no_model.returncode == 2 and "keeper fit ev_maker" in no_model.stderr
    empty = subprocess.run([*KEEPER, "fit", "ev_maker", str(tmp_path), "--out", str(tmp_path / "m.json")],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert empty.returncode == 2 and len(empty.stderr.strip().splitlines()) == 1, empty.stderr
