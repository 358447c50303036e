"""The shipped spec and book-shape files are exactly what the real data regenerates."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from keeper.errors import UserError
from keeper.venues.local import LocalVenue, spec, specs
from keeper import drift_errors
from keeper.venues.local import make_specs

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def regenerated():
    if not REAL.exists():
        pytest.skip(f"real Drift data not found at {REAL}; cannot regenerate the shipped specs")
    return make_specs.build(REAL)


def test_market_specs_match_regeneration(regenerated):
    specs_, _ = regenerated
    assert make_specs.render_specs(specs_) == make_specs.SPECS_FILE.read_text()


def test_book_shapes_match_regeneration(regenerated):
    _, shapes = regenerated
    assert make_specs.render_shapes(shapes) == make_specs.SHAPES_FILE.read_text()


def test_shipped_files_are_small():
    assert make_specs.SPECS_FILE.stat().st_size < 10_000
    assert make_specs.SHAPES_FILE.stat().st_size < 60_000
    shapes = json.loads(make_specs.SHAPES_FILE.read_text())
    assert set(shapes) == {"SOL-PERP", "BTC-PERP", "ETH-PERP", "SOL"}
    assert 400 <= len(shapes["SOL-PERP"]["orders"]) <= 500  # the real SOL-PERP book rests ~450 orders


def test_real_parameters():
    sol = spec("SOL-PERP")
    assert (sol.tick_size, sol.step_size, sol.min_order_size) == (100, 10_000_000, 10_000_000)
    assert (sol.taker_fee, sol.maker_rebate) == (100, 20)
    assert (sol.margin_ratio_initial, sol.margin_ratio_maintenance) == (500, 300)
    # BTC-PERP's fee_adjustment is -100 in the Jul 2025 dump: Drift scales fees by (100 + adj) / 100.
    btc = spec("BTC-PERP")
    assert (btc.taker_fee, btc.maker_rebate) == (0, 0)
    spot = spec("SOL")
    assert spot.kind == "spot" and spot.market_index == 1
    assert (spot.taker_fee, spot.maker_rebate) == (50, 20)
    assert (spot.margin_ratio_initial, spot.asset_weight) == (2000, 8000)
    assert set(specs()) == {"SOL-PERP", "BTC-PERP", "ETH-PERP", "SOL"}


def test_error_names_exist_in_driftpy_idl():
    import driftpy

    idl = json.loads((Path(driftpy.__file__).parent / "idl" / "drift.json").read_text())
    names = {e["name"] for e in idl["errors"]}
    assert drift_errors.ALL
    missing = [n for n in drift_errors.ALL if n not in names]
    assert not missing


def test_unknown_market_is_one_line_user_error():
    with pytest.raises(UserError) as exc:
        LocalVenue(["SOL-PERP", "DOGE-PERP"])
    msg = str(exc.value)
    assert "DOGE-PERP" in msg and "SOL-PERP" in msg and "BTC-PERP" in msg and "\n" not in msg
    with pytest.raises(UserError):
        spec("XRP-PERP")
