"""Interface v2: every parameter's bounds and choices, per-market overrides checked against the
run's markets, the markets a strategy needs, and a frozen config, through build() as flags,
the picker and config files all use it."""
from __future__ import annotations

from decimal import Decimal

import pytest

import strategies
from strategies.params import Param, PerMarket

MARKETS = ["SOL-PERP", "BTC-PERP", "SOL"]
ALL = strategies.discover()
NEEDS_FILE = {"ev_maker"}  # refuses to build without its model file (tested in test_strategy_library)


def _cases():
    for name, cls in sorted(ALL.items()):
        for p in cls.params:
            yield pytest.param(name, p, id=f"{name}.{p.name}")


def _outside(p: Param) -> list:
    """Values just outside each declared bound, and a bad choice."""
    out = []
    step = 1 if p.type is int else Decimal("0.001") if p.type is Decimal else 0.001
    if p.low is not None:
        out.append(p.low - step)
    if p.gt is not None:
        out.append(p.gt)
    if p.high is not None:
        out.append(p.high + step)
    if p.lt is not None:
        out.append(p.lt)
    if p.choices:
        out.append("no-such-choice")
    return out


def _edges(p: Param) -> list:
    """Values on the inclusive bounds, which must pass."""
    return [b for b in (p.low, p.high) if b is not None] + list(p.choices)


def _build(name, raw):
    extra = {"model": "/nonexistent"} if name in NEEDS_FILE else {}
    return strategies.build(name, {**extra, **raw}, markets=MARKETS)


@pytest.mark.parametrize("name,param", list(_cases()))
def test_every_bound_and_choice_is_enforced_in_one_line_naming_the_parameter(name, param):
    assert param.check(param.initial, MARKETS) == param.initial  # the default is valid
    for value in _outside(param):
        with pytest.raises(ValueError) as err:
            param.parse(str(value), MARKETS)
        message = str(err.value)
        assert len(message.splitlines()) == 1 and f"parameter {param.name}" in message
        assert param.valid in message  # names the valid range
        if name not in NEEDS_FILE:  # and build() refuses it the same way
            with pytest.raises(ValueError, match=f"parameter {param.name}"):
                _build(name, {param.name: str(value)})
    for value in _edges(param):
        param.parse(str(value), MARKETS)


@pytest.mark.parametrize("name,param", [c for c in _cases() if c.values[1].per_market])
def test_per_market_overrides_must_name_the_runs_markets(name, param):
    good = str(param.default)
    parsed = param.parse(f"{good},SOL-PERP={good}", MARKETS)
    assert isinstance(parsed, PerMarket) and parsed["SOL-PERP"] == param.default
    with pytest.raises(ValueError) as err:
        param.parse(f"FOO-PERP={good}", MARKETS)
    message = str(err.value)
    assert "FOO-PERP" in message and "BTC-PERP, SOL, SOL-PERP" in message and "the run's markets" in message
    with pytest.raises(ValueError, match="given twice"):
        param.parse(f"SOL-PERP={good},SOL-PERP={good}", MARKETS)


def test_sizes_for_a_market_not_in_the_run_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError) as err:
        strategies.build("fixed_spread", {"sizes": "FOO-PERP=1"}, markets=["SOL-PERP", "BTC-PERP"])
    assert str(err.value) == ("parameter sizes: no market named 'FOO-PERP' (did you mean SOL-PERP?); "
                              "valid: BTC-PERP, SOL-PERP (the run's markets)")


def test_per_market_values_read_per_market():
    s = strategies.build("fixed_spread", {"spread_bps": "5,SOL-PERP=3", "sizes": "BTC-PERP=0.01"},
                         markets=["SOL-PERP", "BTC-PERP"])
    assert s.spread_bps["SOL-PERP"] == 3.0 and s.spread_bps["BTC-PERP"] == 5.0
    assert s.sizes["BTC-PERP"] == Decimal("0.01") and s.sizes["SOL-PERP"] == 0
    assert str(s.spread_bps) == "5.0,SOL-PERP=3.0"  # the text form parses back to the same value
    assert s.params[0].parse(str(s.spread_bps)) == s.spread_bps


def test_a_strategy_names_the_markets_it_needs():
    with pytest.raises(ValueError) as err:
        strategies.build("spot_hedge", markets=["SOL-PERP", "BTC-PERP"])
    assert str(err.value) == "strategy spot_hedge needs a spot market; the markets given are SOL-PERP, BTC-PERP"
    with pytest.raises(ValueError, match="needs a perp and its spot market, e.g. SOL-PERP,SOL"):
        strategies.build("spot_hedge", markets=["BTC-PERP", "SOL"])
    with pytest.raises(ValueError, match="strategy avellaneda_stoikov needs a perp market; the markets given are SOL"):
        strategies.build("avellaneda_stoikov", markets=["SOL"])
    strategies.build("spot_hedge", markets=["SOL-PERP", "SOL"])


def test_the_config_is_frozen_once_built():
    s = strategies.build("fixed_spread", markets=["SOL-PERP"])
    with pytest.raises(AttributeError, match="frozen"):
        s.spread_bps = PerMarket(1.0)
    with pytest.raises(TypeError):
        s.values["spread_bps"] = 1.0
    s.scratch = 1  # a strategy's own state is its business


def test_cross_parameter_checks_and_order_slots():
    with pytest.raises(ValueError, match="min_spread_bps .* must not exceed max_spread_bps"):
        strategies.build("avellaneda_stoikov", {"min_spread_bps": "50", "max_spread_bps": "10"}, markets=MARKETS)
    with pytest.raises(ValueError, match="parameter levels: 8 per side on 3 markets is 48 orders"):
        strategies.build("ladder", {"levels": "8"}, markets=MARKETS)
    strategies.build("ladder", {"levels": "16"}, markets=["SOL-PERP"])


def test_choices_parse_and_show():
    p = Param("anchor", str, "oracle", "p", choices=("oracle", "grid"))
    assert p.parse("grid") == "grid" and p.valid == "one of: oracle, grid"
    with pytest.raises(ValueError, match="parameter anchor must be one of: oracle, grid; got 'fixed'"):
        p.parse("fixed")
