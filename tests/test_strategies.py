from decimal import Decimal

import pytest

import strategies
from keeper.model import PRICE_PRECISION, OpenOrder, Position
from strategies.base import Param, PerMarket
from tests.conftest import snapshot


def test_discovery_finds_both_shipped_strategies_with_prompts():
    found = strategies.discover()
    assert {"fixed_spread", "mean_reversion"} <= set(found)
    for cls in found.values():
        assert cls.description and "\n" not in cls.description
        for p in cls.params:
            assert p.prompt and p.type in (int, float, Decimal, bool, str)
            assert cls.params and isinstance(p.default, p.type)


def test_dropping_a_file_into_strategies_adds_a_strategy():
    module = strategies.__path__[0] + "/zz_test_only.py"
    try:
        with open(module, "w") as f:
            f.write(
                "from strategies.base import Strategy\n"
                "class Quiet(Strategy):\n"
                "    name = 'quiet'\n"
                "    description = 'Rests nothing.'\n"
                "    def quote(self, snapshot):\n"
                "        return []\n"
            )
        assert "quiet" in strategies.discover()
        assert strategies.build("quiet").quote(snapshot()) == []
    finally:
        import os
        import sys
        os.remove(module)
        sys.modules.pop("strategies.zz_test_only", None)
    assert "quiet" not in strategies.discover()


def test_build_rejects_unknown_and_ill_typed_parameters():
    with pytest.raises(ValueError, match="unknown strategy"):
        strategies.build("nope")
    with pytest.raises(ValueError, match="no parameter 'width'"):
        strategies.build("fixed_spread", {"width": "3"})
    with pytest.raises(ValueError, match="spread_bps wants float"):
        strategies.build("fixed_spread", {"spread_bps": "wide"})
    with pytest.raises(ValueError, match="spread_bps must be above 0 and below 10,000; got -1.0"):
        strategies.build("fixed_spread", {"spread_bps": "-1"})
    with pytest.raises(ValueError, match="window wants int"):
        strategies.build("mean_reversion", {"window": "2.5"})
    with pytest.raises(ValueError, match="sizes"):
        strategies.build("fixed_spread", {"sizes": "SOL-PERP"})


def test_param_parsing_per_type():
    assert Param("x", bool, True, "p").parse("no") is False
    assert Param("x", Decimal, Decimal(1), "p").parse(" 0.10 ") == Decimal("0.10")
    with pytest.raises(ValueError):
        Param("x", float, 1.0, "p").parse("nan")
    with pytest.raises(ValueError):
        Param("x", Decimal, Decimal(1), "p").parse("Infinity")
    sizes = Param("sizes", Decimal, Decimal(0), "p", low=0, per_market=True).parse("SOL-PERP=1, BTC-PERP=0.002")
    assert sizes == PerMarket(Decimal(0), (("SOL-PERP", Decimal("1")), ("BTC-PERP", Decimal("0.002"))))
    assert sizes["BTC-PERP"] == Decimal("0.002") and sizes["ETH-PERP"] == 0


def test_fixed_spread_quotes_symmetric_floating_orders():
    s = strategies.build("fixed_spread", {"spread_bps": "10", "size_usd": "85"})
    bid, ask = s.quote(snapshot())
    assert (bid.side, ask.side) == ("bid", "ask")
    assert bid.oracle_offset == -85_000 and ask.oracle_offset == 85_000  # 10 bps of $85
    assert bid.size == ask.size == 10**9  # $85 at $85 = 1 SOL
    assert bid.post_only and ask.post_only and bid.price is None


def test_fixed_spread_fixed_prices_and_per_market_sizes():
    s = strategies.build("fixed_spread", {"floating": "false", "sizes": "SOL-PERP=2.5", "spread_bps": "20"})
    bid, ask = s.quote(snapshot())
    assert bid.price == 85 * PRICE_PRECISION - 170_000 and ask.price == 85 * PRICE_PRECISION + 170_000
    assert bid.size == 2_500_000_000


def test_fixed_spread_keeps_a_resting_quote_within_tolerance():
    s = strategies.build("fixed_spread", {"spread_bps": "10", "size_usd": "85", "requote_bps": "2"})
    resting = (OpenOrder(1, 1, "SOL-PERP", "bid", 0, 10**9, 0, -80_000),)  # 0.6 bps from target
    bid, _ = s.quote(snapshot(orders=resting))
    assert bid.oracle_offset == -80_000
    far = (OpenOrder(1, 1, "SOL-PERP", "bid", 0, 10**9, 0, -50_000),)  # 4 bps away
    bid, _ = s.quote(snapshot(orders=far))
    assert bid.oracle_offset == -85_000


def test_mean_reversion_skews_toward_the_average_and_respects_inventory():
    s = strategies.build("mean_reversion", {"window": "3", "skew": "1", "spread_bps": "10", "size_usd": "85"})
    from tests.conftest import market
    s.quote(snapshot({"SOL-PERP": market(oracle=100 * PRICE_PRECISION)}))
    bid, ask = s.quote(snapshot({"SOL-PERP": market(oracle=90 * PRICE_PRECISION)}))
    centre = (bid.price + ask.price) / 2
    assert centre > 90 * PRICE_PRECISION  # pulled up toward the higher average
    long = {"SOL-PERP": Position("SOL-PERP", 20 * 10**9, 85 * PRICE_PRECISION, 0, 0)}
    s2 = strategies.build("mean_reversion", {"max_position_usd": "1000"})
    sides = [i.side for i in s2.quote(snapshot(positions=long))]
    assert sides == ["ask"]  # 20 SOL ($1,700) is past the limit: only reduce
