"""Strategy parameters: typed, bounded or chosen from a list, optionally per market.

One Param drives the picker's prompt and its check, `--param`, the config file and the
manifest alike, so a value refused in one is refused in all, with the same line.

Per-market text: a value for every market, overridden for some, comma-separated:
`5` (all markets), `5,SOL-PERP=3` (SOL-PERP 3, the others 5), `SOL-PERP=3` (SOL-PERP 3, the
others the declared default). A market that is not one of the run's is refused, naming them.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Optional

from keeper.errors import printable, unknown

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}
_TYPE_NAMES = {Decimal: "decimal", float: "float", int: "int", bool: "bool", str: "text"}


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _bound(value: Any) -> str:
    return f"{value:,}" if abs(value) >= 10_000 else str(value)


def _cut(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."  # one readable line, however long the input


def _clip(text: str) -> str:
    return repr(_cut(text))


@dataclass(frozen=True)
class PerMarket:
    """A parameter's value on each market: `default` unless a market has an override."""

    default: Any
    overrides: tuple[tuple[str, Any], ...] = ()

    def __getitem__(self, market: str) -> Any:
        for name, value in self.overrides:
            if name == market:
                return value
        return self.default

    def __str__(self) -> str:  # the text form, which parses back to this value
        return ",".join([_show(self.default), *(f"{m}={_show(v)}" for m, v in self.overrides)])


@dataclass(frozen=True)
class Param:
    name: str
    type: type  # int, float, Decimal, bool or str
    default: Any
    prompt: str  # one line, shown by the picker and by `keeper strategies`
    low: Any = None  # inclusive bounds
    high: Any = None
    gt: Any = None  # exclusive bounds
    lt: Any = None
    choices: tuple = ()
    per_market: bool = False

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES[self.type]

    @property
    def valid(self) -> str:
        """The valid values in words: 'above 0 and below 10000', 'one of: a, b'."""
        if self.choices:
            return "one of: " + ", ".join(_show(c) for c in self.choices)
        low, high = ((f"at least {_bound(self.low)}" if self.low is not None else
                      f"above {_bound(self.gt)}" if self.gt is not None else ""),
                     (f"at most {_bound(self.high)}" if self.high is not None else
                      f"below {_bound(self.lt)}" if self.lt is not None else ""))
        parts = [low, high]
        return " and ".join(p for p in parts if p) or f"any {self.type_name}"

    @property
    def initial(self) -> Any:
        """The default as this parameter's value: per-market ones wrap it."""
        return PerMarket(self.default) if self.per_market else self.default

    def parse(self, text: str, markets: Optional[Iterable[str]] = None) -> Any:
        """User text -> a checked value; ValueError names the parameter and what is valid."""
        if not self.per_market:
            return self.check(self._scalar(text))
        default, overrides = self.default, []
        for part in filter(None, (p.strip() for p in str(text).split(","))):
            market, sep, value = part.partition("=")
            if not sep:
                default = self._scalar(part)
            elif not market.strip():
                raise ValueError(f"parameter {self.name} wants MARKET=VALUE, got {_clip(part)}")
            else:
                overrides.append((market.strip(), self._scalar(value, market.strip())))
        return self.check(PerMarket(default, tuple(overrides)), markets)

    def check(self, value: Any, markets: Optional[Iterable[str]] = None) -> Any:
        """A typed value, bounds and choices checked (and, given the run's markets, the
        per-market overrides' names); returned unchanged."""
        if not self.per_market:
            self._check_one(value)
            return value
        if not isinstance(value, PerMarket):
            value = PerMarket(value)
        self._check_one(value.default)
        known = sorted(markets) if markets is not None else None
        seen = set()
        for market, item in value.overrides:
            if known is not None and market not in known:
                raise ValueError(f"parameter {self.name}: {unknown('market', market, known)} (the run's markets)")
            if market in seen:
                raise ValueError(f"parameter {self.name}: market {printable(market)} given twice")
            seen.add(market)
            self._check_one(item, market)
        return value

    def _check_one(self, value: Any, market: str = "") -> None:
        where = self._where(market)
        if not _typed(value, self.type):
            raise ValueError(f"{where} wants {self.type_name}, got {_clip(_show(value))}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{where} must be {self.valid}; got {_clip(_show(value))}")
        if self.type in (bool, str):
            return
        if ((self.low is not None and value < self.low) or (self.high is not None and value > self.high)
                or (self.gt is not None and value <= self.gt) or (self.lt is not None and value >= self.lt)):
            # a number, unquoted, but maybe thousands of digits long
            raise ValueError(f"{where} must be {self.valid}; got {_cut(_show(value))}")

    def _where(self, market: str) -> str:
        return f"parameter {self.name}" + (f" for {printable(market)}" if market else "")

    def _scalar(self, text: str, market: str = "") -> Any:
        raw = str(text).strip()
        try:
            if self.type is bool:
                if raw.lower() in _TRUE:
                    return True
                if raw.lower() in _FALSE:
                    return False
                raise ValueError
            if self.type is Decimal:
                value = Decimal(raw)
                if not value.is_finite():
                    raise ValueError
                return value
            if self.type is float:
                value = float(raw)
                if value != value or value in (float("inf"), float("-inf")):
                    raise ValueError
                return value
            return self.type(raw)
        except (ValueError, InvalidOperation):
            where = self._where(market)
            raise ValueError(f"{where} wants {self.type_name}, got {_clip(str(text))}") from None

    def show(self, value: Any) -> str:
        return str(value) if isinstance(value, PerMarket) else _show(value)

    def to_json(self, value: Any) -> Any:
        """The manifest's form: JSON scalars as they are, Decimals and per-market values as text."""
        return value if isinstance(value, (bool, int, float, str)) else str(value)


def _typed(value: Any, kind: type) -> bool:
    if kind is float:
        return type(value) in (int, float) and value == value and abs(value) != float("inf")
    if kind is Decimal:
        return type(value) is Decimal and value.is_finite()
    return type(value) is kind
