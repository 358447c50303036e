import pytest

from keeper.model import Intent
from keeper.snap import snap_intents, snap_price, snap_size
from tests.conftest import market


def test_bids_snap_down_and_asks_snap_up():
    assert snap_price(85_123_456, 100, "bid") == 85_123_400
    assert snap_price(85_123_456, 100, "ask") == 85_123_500
    assert snap_price(85_123_400, 100, "ask") == 85_123_400
    # offsets follow the same rule: a bid never gets closer to the oracle
    assert snap_price(-1_050, 100, "bid") == -1_100
    assert snap_price(1_050, 100, "ask") == 1_100


def test_sizes_snap_down_to_the_step():
    assert snap_size(1_234_567_890, 10_000_000) == 1_230_000_000
    assert snap_size(9_999_999, 10_000_000) == 0


def test_snap_intents_drops_below_minimum_and_explains():
    markets = {"SOL-PERP": market()}
    kept, dropped = snap_intents([
        Intent("SOL-PERP", "bid", 1_234_567_890, price=84_999_999),
        Intent("SOL-PERP", "ask", 9_000_000, price=85_100_001),
        Intent("ETH-PERP", "bid", 10**9, price=2_000_000_000),
        Intent("SOL-PERP", "ask", 10**9, oracle_offset=12_345),
    ], markets)
    assert kept[0].price == 84_999_900 and kept[0].size == 1_230_000_000
    assert kept[1].oracle_offset == 12_400
    assert len(kept) == 2
    assert any("below min order size" in d for d in dropped)
    assert any("ETH-PERP" in d and "not in snapshot" in d for d in dropped)


def test_intents_refuse_floats_on_the_order_path():
    with pytest.raises(TypeError):
        Intent("SOL-PERP", "bid", 1.5, price=85_000_000)
    with pytest.raises(TypeError):
        Intent("SOL-PERP", "bid", 10**9, price=85.0)
    with pytest.raises(ValueError):
        Intent("SOL-PERP", "bid", 10**9)
    with pytest.raises(ValueError):
        Intent("SOL-PERP", "buy", 10**9, price=1)
