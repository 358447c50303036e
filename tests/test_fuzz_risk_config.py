"""Fuzzing the risk config (`keeper run --risk FILE.toml`): any file is read into limits in
Drift's integer precisions or refused in one line, and `keeper run` never tracebacks on it.

Run with --hypothesis-show-statistics to see how many cases each test tried.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from keeper.cli import main
from keeper.errors import UserError
from keeper.risk.config import AccountLimits, MarketLimits, RiskConfig, from_dict, read
from tests.fuzzing import fuzz, quiet_keeper_log

MARKET_KEYS = ["max_order_usd", "max_position_usd", "max_position_base", "band_bps", "max_oracle_lag_slots",
               "max_conf_bps", "max_reference_deviation_bps", "max_mid_deviation_bps", "max_jump_bps"]
ACCOUNT_KEYS = ["max_total_usd", "max_leverage", "min_free_collateral_usd", "max_book_lag_slots", "budget_usd",
                "soft_drawdown_pct", "hard_drawdown_pct", "soft_widen_bps", "soft_size_pct", "reduce_cross_bps",
                "breakers", "kill_file", "max_tx_per_s"]

_scalar = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30),
    st.integers(min_value=0, max_value=100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=1e6),
    st.booleans(),
    st.text(max_size=8),
)
_value = st.one_of(_scalar, _scalar, st.lists(_scalar, max_size=3), st.dictionaries(st.text(max_size=4), _scalar, max_size=2))


def _table(keys: list[str]):
    return st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=6)), _value, max_size=6)


_config = st.fixed_dictionaries({}, optional={
    "defaults": st.one_of(_table(MARKET_KEYS), _value),
    "markets": st.one_of(st.dictionaries(st.sampled_from(["SOL-PERP", "BTC-PERP", "", "X" * 40]),
                                         st.one_of(_table(MARKET_KEYS), _value), max_size=2), _value),
    "account": st.one_of(_table(ACCOUNT_KEYS), _value),
    "extra": _value,
})


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(v), repr(v))
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').encode("unicode_escape").decode() + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(x)}' for k, x in v.items() if "\"" not in k and "\\" not in k) + "}"
    return str(v)


def _check(config: RiskConfig) -> None:
    """Money and counts are integers; drawdown levels are ordered."""
    for limits in (config.defaults, *config.markets.values(), config.account):
        for f in dataclasses.fields(limits):
            if f.type == "int":
                assert type(getattr(limits, f.name)) is int, (f.name, getattr(limits, f.name))
    assert config.account.soft_drawdown_pct < config.account.hard_drawdown_pct


@fuzz(500)
@given(data=_config)
@example(data={"defaults": {"max_order_usd": float("inf")}})
@example(data={"defaults": {"max_position_base": float("nan")}})
@example(data={"account": {"max_leverage": 1e308}})
@example(data={"account": {"max_tx_per_s": 1e-300}})
@example(data={"markets": {"SOL-PERP": {"max_order_usd": 10**30}}})
def test_a_config_gives_integer_limits_or_one_line(data):
    try:
        config = from_dict(data, "risk file f.toml")
    except UserError as exc:
        assert len(str(exc).splitlines()) == 1 and str(exc).startswith("risk file f.toml: ")
        return
    _check(config)


@fuzz(200)
@given(data=_config, junk=st.sampled_from(["", "[defaults\n", "x = \n", "= 1\n", "\x00", "[[account]]\n", "a = 1\na = 2\n"]))
def test_a_risk_file_is_read_or_refused_in_one_line(data, junk):
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            lines.append(f'["{name}"]')
            lines += [f'"{k}" = {_toml_value(v)}' for k, v in table.items() if "\"" not in k and "\\" not in k]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "risk.toml"
        path.write_text("\n".join(lines) + "\n" + junk, encoding="utf-8")
        try:
            _check(from_dict(read(str(path)), f"risk file {path}"))
        except UserError as exc:
            assert len(str(exc).splitlines()) == 1 and str(exc).startswith(f"risk file {path}")


@fuzz(12)
@given(data=_config)
@example(data={"defaults": {"max_order_usd": float("inf")}})
def test_keeper_run_with_a_fuzzed_risk_file_never_tracebacks(data, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "risk.toml"
        path.write_text("\n".join(f'[{k}]\n' + "\n".join(f'"{a}" = {_toml_value(b)}' for a, b in v.items()
                                                           if "\"" not in a and "\\" not in a)
                                  for k, v in data.items() if isinstance(v, dict) and k != "markets"), encoding="utf-8")
        capsys.readouterr()
        try:
            code = main(["run", "--risk", str(path), "--ticks", "3", "--fast", "--seed", "1", "--markets", "SOL-PERP",
                         "--archive-dir", str(Path(tmp) / "archive")])
        finally:
            quiet_keeper_log()
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert code in (0, 2, 3), err
        if code == 2:
            assert len([line for line in err.splitlines() if "keeper: error:" in line]) == 1, err


def test_defaults_are_the_documented_ones():
    config = from_dict({})
    assert config.defaults == MarketLimits() and config.account == AccountLimits()


KNOWN = ("BTC-PERP", "ETH-PERP", "SOL", "SOL-PERP")


@fuzz(300)
@given(name=st.one_of(st.sampled_from(KNOWN), st.sampled_from(["sol-perp", "SOL_PERP", "SOLPERP", "Sol-Perp", ""]),
                      st.text(max_size=12)))
@example(name="sol-perp")
@example(name="line\nbreak")
def test_a_limit_for_an_unknown_market_is_refused_naming_it(name):
    """A misspelt market would leave the real one on the defaults: only known names pass."""
    config = from_dict({"markets": {name: {"max_position_usd": 1000}}})
    if name in KNOWN:
        config.check_markets(KNOWN)
        return
    try:
        config.check_markets(KNOWN, "risk file r.toml")
    except UserError as exc:
        text = str(exc)
        assert "\n" not in text and text.startswith("risk file r.toml: [markets.")
        assert "no market named" in text and "valid: BTC-PERP, ETH-PERP, SOL, SOL-PERP" in text
    else:
        raise AssertionError(f"{name!r} was accepted")
