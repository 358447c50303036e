"""`keeper run --config FILE.toml` and `--save-config FILE.toml`: a run's strategy in a file.

    strategy = "fixed_spread"
    markets = ["SOL-PERP", "BTC-PERP"]
    [params]
    spread_bps = 5.0
    [overrides."SOL-PERP"]          # per-market parameters, for one market
    spread_bps = 3.0
    [risk.account]                  # the risk file's sections inline, or: risk = "risk.toml"
    max_leverage = 2

The file's shape is checked against strategy_config.schema.json; its values then go through
the same Params as `--param` text, so a bad bound, choice or market reads the same everywhere.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from jsonschema import Draft202012Validator

from keeper.errors import UserError, unknown
from keeper.risk import read as read_risk
from keeper.risk.config import key_path, not_finite
from strategies.base import Strategy
from strategies.params import PerMarket

SCHEMA = json.loads((Path(__file__).parent / "strategy_config.schema.json").read_text())


@dataclass
class StrategyConfig:
    strategy: str
    raw_params: dict[str, str] = field(default_factory=dict)  # as --param would give them
    markets: Optional[list[str]] = None
    risk: Optional[dict] = None  # the risk settings, read from the inline table or the named file
    risk_source: Optional[str] = None  # the risk file's path when the config names one
    source: str = ""  # this config file's path


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def load(path: str, available: dict[str, type[Strategy]]) -> StrategyConfig:
    where = f"config file {path}"
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{where}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{where}: not valid TOML ({exc})") from None
    found = not_finite(data)
    if found is not None:  # TOML has nan and inf, which no bound can refuse
        raise UserError(f"{where}: at {key_path(found)}: not a finite number")
    errors = sorted(Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        at = key_path(e.absolute_path) or "the top level"
        if e.validator == "additionalProperties" and not e.absolute_path:
            extra = next(k for k in e.instance if k not in SCHEMA["properties"])
            raise UserError(f"{where}: {unknown('key', extra, SCHEMA['properties'])}")
        raise UserError(f"{where}: at {at}: {e.message}")
    name = data["strategy"]
    if name not in available:
        raise UserError(f"{where}: unknown strategy {name!r} (available: {', '.join(sorted(available))})")
    params = {p.name: p for p in available[name].params}
    raw = {}
    for key, value in data.get("params", {}).items():
        if key not in params:
            raise UserError(f"{where}: [params] {unknown('parameter of ' + name, key, params)}")
        raw[key] = _text(value)
    for market, table in data.get("overrides", {}).items():
        for key, value in table.items():
            if key not in params:
                raise UserError(f"{where}: [overrides.{market!r}] {unknown('parameter of ' + name, key, params)}")
            if not params[key].per_market:
                per = [p for p, v in params.items() if v.per_market]
                raise UserError(f"{where}: [overrides.{market!r}] {key} is not per market "
                                f"(per-market parameters of {name}: {', '.join(per) or 'none'})")
            raw[key] = ",".join(filter(None, [raw.get(key, ""), f"{market}={_text(value)}"]))
    risk, source = data.get("risk"), None
    if isinstance(risk, str):
        source = str((Path(path).parent / risk))
        risk = read_risk(source)
    return StrategyConfig(name, raw, data.get("markets"), risk, source, path)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # Decimals as text, so nothing is rounded; JSON strings are TOML strings


def _key(name: str) -> str:
    return name if name.replace("-", "").replace("_", "").isalnum() and name.isascii() else json.dumps(name)


def _table(name: str, values: dict) -> list[str]:
    lines = [f"[{name}]"]
    for key, value in values.items():
        if isinstance(value, dict):
            continue
        lines.append(f"{_key(key)} = {_toml(value)}")
    for key, value in values.items():
        if isinstance(value, dict):
            lines += ["", *_table(f"{name}.{_key(key)}", value)]
    return lines


def dumps(strategy: Strategy, markets: list[str], risk: Optional[dict] = None, risk_path: Optional[str] = None) -> str:
    """The TOML that `load` reads back to this strategy, markets and risk settings."""
    lines = ["# keeper run --config this-file.toml", f"strategy = {_toml(strategy.name)}",
             "markets = [" + ", ".join(_toml(m) for m in markets) + "]"]
    if risk_path:
        lines.append(f"risk = {_toml(str(Path(risk_path).resolve()))}")
    params, overrides = {}, {}
    for name, value in strategy.values.items():
        if isinstance(value, PerMarket):
            params[name] = value.default
            for market, item in value.overrides:
                overrides.setdefault(market, {})[name] = item
        else:
            params[name] = value
    lines += ["", *_table("params", params)]
    for market, values in overrides.items():
        lines += ["", *_table(f"overrides.{_key(market)}", values)]
    if risk and not risk_path:
        lines += ["", *_table("risk", risk)]
    return "\n".join(lines) + "\n"


def save(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
