"""Strategy plug-ins: every module in this folder that defines a Strategy subclass adds one."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Optional, Sequence

from strategies.base import Param, PerMarket, Strategy

DEFAULT = "fixed_spread"
LIBRARY = {"base", "params", "features"}  # shared code, not strategies


def discover() -> dict[str, type[Strategy]]:
    found: dict[str, type[Strategy]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name in LIBRARY or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Strategy) and obj is not Strategy and obj.__module__ == module.__name__:
                found[obj.name] = obj
    return found


def build(name: str, raw: dict[str, str] | None = None, values: dict[str, Any] | None = None,
          markets: Optional[Sequence[str]] = None) -> Strategy:
    """A strategy from its name and text parameters (CLI, config file) or typed values (picker,
    manifest), checked against the run's markets when they are given (they always are at start).

    Raises ValueError with a one-line reason for unknown names, unknown parameters, values
    out of bounds or choices, overrides for markets not in the run, and missing market kinds.
    """
    available = discover()
    if name not in available:
        raise ValueError(f"unknown strategy {name!r} (available: {', '.join(sorted(available))})")
    cls = available[name]
    params = {p.name: p for p in cls.params}
    typed = dict(values or {})
    for key, text in (raw or {}).items():
        if key not in params:
            raise ValueError(f"strategy {name} has no parameter {key!r} (it has: {', '.join(params) or 'none'})")
        typed[key] = params[key].parse(text, markets)
    return cls(markets=markets, **typed)


__all__ = ["DEFAULT", "Param", "PerMarket", "Strategy", "build", "discover"]
