"""Fuzzing strategy parameters: every strategy in strategies/ either builds or refuses with a
one-line ValueError, and a built one quotes Intents with integer fields on real local-market
snapshots (never an exception, which the loop would log as a tick that quotes nothing).

Run with --hypothesis-show-statistics to see how many cases each test tried.
"""
from __future__ import annotations

import asyncio
import functools
from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

import strategies
from keeper.model import Intent, Snapshot
from keeper.reconcile import reconcile
from keeper.snap import snap_intents
from keeper.venues.local import LocalVenue
from tests.fuzzing import fuzz

ALL = strategies.discover()
MARKETS = ["SOL-PERP", "BTC-PERP", "ETH-PERP", "SOL"]


@functools.cache
def snapshots() -> list[Snapshot]:
    """Five ticks of the local market with the default strategy's orders resting, so quote()
    meets open orders, positions and fills as well as an empty account."""
    async def record() -> list[Snapshot]:
        venue = LocalVenue(MARKETS, seed=7)
        default = strategies.build(strategies.DEFAULT, {"size_usd": "2000", "spread_bps": "1"})
        out = []
        for _ in range(5):
            snap = await venue.snapshot()
            out.append(snap)
            intents, notes = snap_intents(default.quote(snap), snap.markets)
            await venue.execute(reconcile(intents, snap.user.open_orders, tuple(notes)), snap)
        return out

    return asyncio.run(record())


# -- generated parameter text ----------------------------------------------------------------------

_edge = st.sampled_from([
    "", " ", "0", "-0", "1", "-1", "0.5", "1e-300", "1e300", "1e308", "-1e308", "1e999999", "1e-999999", "nan", "inf",
    "-inf", "sNaN", "1_000", "0x10", "9" * 50, "9" * 5000, "true", "false", "yes", "off", "١٢", "10000", "9999.99",
    "SOL-PERP=1", "SOL-PERP=1,BTC-PERP=0.002", "SOL-PERP=0", "SOL-PERP=-1", "SOL-PERP=1e999999", "SOL-PERP=nan",
    "SOL-PERP", "=1", ",,,", "DOGE-PERP=1", "SOL=1e-30", "BTC-PERP=1e30",
])
_number = st.one_of(st.integers().map(str), st.floats().map(repr), st.decimals(allow_nan=True).map(str),
                    st.floats(0.0001, 100_000).map(lambda f: f"{f:g}"))


_per_market = st.tuples(st.one_of(st.just(""), _number), st.lists(st.tuples(
    st.sampled_from(MARKETS + ["DOGE-PERP", ""]), _number), max_size=4)).map(
    lambda t: ",".join(filter(None, [t[0], *(f"{m}={v}" for m, v in t[1])])))


def text_for(param: strategies.Param) -> st.SearchStrategy[str]:
    if param.per_market:
        return st.one_of(_per_market, _number, _edge, st.text(max_size=12))
    if param.choices:
        return st.one_of(st.sampled_from([str(c) for c in param.choices]), _edge, st.text(max_size=12))
    typed = {
        bool: st.sampled_from(["true", "false", "1", "0", "y", "n", "on", "off", "TRUE", " yes "]),
        int: st.integers(-10**6, 10**6).map(str),
        str: st.lists(st.tuples(st.sampled_from(MARKETS + ["DOGE-PERP", ""]), _number), max_size=4).map(
            lambda pairs: ",".join(f"{m}={v}" for m, v in pairs)),
    }.get(param.type, _number)
    return st.one_of(typed, _edge, st.text(max_size=12))


@st.composite
def strategy_and_params(draw) -> tuple[str, dict[str, str]]:
    name = draw(st.sampled_from(sorted(ALL)))
    params = ALL[name].params
    chosen = draw(st.lists(st.sampled_from(params), unique_by=lambda p: p.name, max_size=len(params))) if params else []
    raw = {p.name: draw(text_for(p)) for p in chosen}
    if draw(st.integers(0, 9)) == 0:
        raw[draw(st.text(max_size=8))] = "1"  # maybe a parameter the strategy does not have
    return name, raw


def assert_intents(intents, snap: Snapshot) -> None:
    assert isinstance(intents, list)
    for intent in intents:
        assert isinstance(intent, Intent)
        assert intent.market in snap.markets and intent.side in ("bid", "ask")
        for field in ("size", "expiry_s"):
            assert type(getattr(intent, field)) is int, intent
        assert (intent.price is None) != (intent.oracle_offset is None), intent
        assert type(intent.price if intent.price is not None else intent.oracle_offset) is int, intent


# -- the tests -------------------------------------------------------------------------------------

def test_every_strategy_is_fuzzed():
    assert {"fixed_spread", "mean_reversion"} <= set(ALL)
    for cls in ALL.values():
        assert all(p.type in (int, float, Decimal, bool, str) for p in cls.params), cls.name


@fuzz(600)
@given(case=strategy_and_params())
@example(case=("avellaneda_stoikov", {"size_usd": "0\x1e0=", "": "1"}))  # a market named with a control character
def test_fuzzed_parameters_build_or_refuse_in_one_line_and_quote_integers(case):
    name, raw = case
    try:
        strategy = strategies.build(name, raw, markets=MARKETS)
    except ValueError as exc:
        message = str(exc)
        assert message and len(message.splitlines()) == 1, message
        assert len(message) < 300, message
        return
    for snap in snapshots():
        assert_intents(strategy.quote(snap), snap)


@fuzz(200)
@given(name=st.sampled_from(sorted(ALL)), unknown=st.text(min_size=1, max_size=20))
def test_unknown_names_and_parameters_are_refused_in_one_line(name, unknown):
    for call in (lambda: strategies.build(unknown), lambda: strategies.build(name, {unknown + "_": "1"})):
        try:
            call()
        except ValueError as exc:
            assert len(str(exc).splitlines()) == 1, str(exc)
        else:
            assert unknown in ALL  # only a real strategy name builds
