"""Risk limits: defaults for every market, overrides per market, and account-wide limits.

Read from a TOML file (`keeper run --risk FILE`) checked against risk.schema.json. The file
speaks human units (USD, base units, percent); here they become integers in Drift's
precisions, so the gate never touches a float.
"""
from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Optional

from jsonschema import Draft202012Validator

from keeper.errors import UserError, printable, unknown
from keeper.model import QUOTE_PRECISION

SCHEMA = json.loads((Path(__file__).parent / "risk.schema.json").read_text())


@dataclass(frozen=True)
class MarketLimits:
    """Per market. Quote amounts in QUOTE_PRECISION; max_position_base in human base units."""

    max_order_quote: int = 2_500 * QUOTE_PRECISION
    max_position_quote: int = 5_000 * QUOTE_PRECISION
    max_position_base: Optional[Decimal] = None
    band_bps: int = 500  # a quote further than this from the oracle is dropped
    max_oracle_lag_slots: int = 50  # the oracle's publish slot behind the RPC's slot
    max_conf_bps: int = 100  # the oracle's confidence interval, against its price
    max_reference_deviation_bps: int = 50  # the oracle against an independent reading of the same feed
    max_mid_deviation_bps: int = 300  # the oracle against the book's mid, where there is no such reading
    max_jump_bps: int = 1_000  # the oracle's move since the last snapshot

    def position_base(self, base_precision: int) -> Optional[int]:
        return None if self.max_position_base is None else int(self.max_position_base * base_precision)


@dataclass(frozen=True)
class AccountLimits:
    max_total_quote: int = 15_000 * QUOTE_PRECISION  # gross notional, resting orders filled
    max_leverage_pct: int = 300  # the same against equity, in percent
    min_free_collateral_quote: int = 500 * QUOTE_PRECISION
    max_book_lag_slots: int = 75  # the order book's users last known complete this long ago
    budget_quote: int = 0  # the drawdown budget; 0: the session's starting equity
    soft_drawdown_pct: int = 10  # of the budget: widen quotes and cut their size
    hard_drawdown_pct: int = 20  # of the budget: cancel, reduce only, then halt (well inside 40%)
    soft_widen_bps: int = 10
    soft_size_pct: int = 50
    reduce_cross_bps: int = 50  # how far past the oracle a hard stop's closing order may trade
    # The hard limit holds through one-tick oracle moves up to these (percent of price): worst-case
    # long exposure x down% and short exposure x up% must fit in what is left of the hard limit.
    jump_cover_down_pct: int = 100
    jump_cover_up_pct: int = 200
    # Orders that would leave less than this share of the maintenance collateral above Drift's
    # maintenance requirement (every resting order filled) are refused: the distance to liquidation.
    liquidation_buffer_pct: int = 50
    breakers: bool = True
    kill_file: str = "KILL"
    max_tx_per_s: Decimal = Decimal(5)
    # Drift counts an unsettled perp gain at 0 in initial margin: settle_pnl it this often
    # (Drift's own settler bots settle positive PnL hourly; 0: never)
    settle_pnl_s: int = 3600


@dataclass(frozen=True)
class RiskConfig:
    defaults: MarketLimits = MarketLimits()
    markets: dict[str, MarketLimits] = field(default_factory=dict)
    account: AccountLimits = AccountLimits()

    def limits(self, market: str) -> MarketLimits:
        return self.markets.get(market, self.defaults)

    def check_markets(self, known, where: str = "risk config") -> None:
        """A limit for a market the venue doesn't have is a typo that would leave the real
        market on the defaults: refuse it, naming the valid names."""
        for name in self.markets:
            if name not in known:
                raise UserError(f"{where}: [markets.{name!r}]: {unknown('market', name, known)}")


def _quote(usd) -> int:
    return int(Decimal(str(usd)) * QUOTE_PRECISION)


# file key -> (field, conversion)
_MARKET = {
    "max_order_usd": ("max_order_quote", _quote),
    "max_position_usd": ("max_position_quote", _quote),
    "max_position_base": ("max_position_base", lambda v: Decimal(str(v))),
}
_ACCOUNT = {
    "max_total_usd": ("max_total_quote", _quote),
    "max_leverage": ("max_leverage_pct", lambda v: int(Decimal(str(v)) * 100)),
    "min_free_collateral_usd": ("min_free_collateral_quote", _quote),
    "budget_usd": ("budget_quote", _quote),
    "soft_drawdown_pct": ("soft_drawdown_pct", lambda v: int(Decimal(str(v)))),
    "hard_drawdown_pct": ("hard_drawdown_pct", lambda v: int(Decimal(str(v)))),
    "soft_size_pct": ("soft_size_pct", lambda v: int(Decimal(str(v)))),
    "max_tx_per_s": ("max_tx_per_s", lambda v: Decimal(str(v))),
}


def _apply(base, table: dict, values: dict):
    changes = {}
    for key, value in values.items():
        name, convert = table.get(key, (key, lambda v: v))
        value = convert(value)
        # JSON Schema calls 5.0 an integer; the gate's integer fields must hold an int
        if type(value) is float and type(getattr(base, name)) is int:
            value = int(value)
        changes[name] = value
    return dataclasses.replace(base, **changes)


def from_dict(data: dict, where: str = "risk config") -> RiskConfig:
    found = not_finite(data)
    if found is not None:  # TOML has nan and inf; a schema's bounds can't refuse nan (no comparison holds)
        raise UserError(f"{where}: at {key_path(found) or 'the top level'}: not a finite number")
    errors = sorted(Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        at = key_path(e.absolute_path) or "the top level"
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):  # a misspelt key or section
            valid = e.schema.get("properties", {})
            extra = next(k for k in e.instance if k not in valid)
            what = "section" if not e.absolute_path else "key"
            raise UserError(f"{where}: at {at}: {unknown(what, extra, valid)}")
        raise UserError(f"{where}: at {at}: {e.message}")
    defaults = _apply(MarketLimits(), _MARKET, data.get("defaults", {}))
    markets = {name: _apply(defaults, _MARKET, values) for name, values in data.get("markets", {}).items()}
    account = _apply(AccountLimits(), _ACCOUNT, data.get("account", {}))
    if account.soft_drawdown_pct >= account.hard_drawdown_pct:
        raise UserError(f"{where}: soft_drawdown_pct ({account.soft_drawdown_pct}) must be below "
                        f"hard_drawdown_pct ({account.hard_drawdown_pct})")
    return RiskConfig(defaults, markets, account)


def key_path(parts) -> str:
    # A key may hold any character TOML allows in quotes, newlines included: an error stays one line.
    return ".".join(printable(p) if str(p) else "''" for p in parts)


def not_finite(value, at: tuple = ()) -> Optional[tuple]:
    """The path to the first nan or inf, if any."""
    if isinstance(value, float) and not math.isfinite(value):
        return at
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = not_finite(item, (*at, key))
        if found is not None:
            return found
    return None


def recorded(settings: dict) -> dict:
    """The risk settings a session's manifest keeps: the file's, and the settle interval in
    force even when it is the default, since a manifest without one predates settling."""
    account = {"settle_pnl_s": AccountLimits.settle_pnl_s, **settings.get("account", {})}
    return {**settings, "account": account}


def as_recorded(settings: dict) -> dict:
    """A manifest's risk settings for a replay: a session recorded before the keeper settled
    PnL replays without settling, so that --verify still reproduces its plans."""
    account = settings.get("account", {})
    return settings if "settle_pnl_s" in account else {**settings, "account": {**account, "settle_pnl_s": 0}}


def load(path: str) -> RiskConfig:
    return from_dict(read(path), f"risk file {path}")


def read(path: str) -> dict:
    """The file's TOML as a dict (archived in the session manifest, so a replay uses the same
    limits); from_dict checks it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise UserError(f"risk file {path}: cannot read it ({type(exc).__name__}: {why})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"risk file {path}: not valid TOML ({exc})") from None
    return data
