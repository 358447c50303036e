"""Market rules and simulator parameters, read from the shipped market_specs.json.

The file is generated from real account dumps by make_specs.py; MarketSpec carries what the
program enforces, Params the extra real values the simulator is calibrated with.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from keeper.errors import UserError
from keeper.model import MarketSpec
from keeper.venues.sim.interest import SpotRates

_DIR = Path(__file__).resolve().parent
_SPEC_FIELDS = MarketSpec.__struct_fields__


@dataclass(frozen=True, slots=True)
class Params:
    reference_price: int  # last oracle price in the dump; the simulation's start price
    oracle_conf_ppm: int
    base_spread: int  # vAMM, per PERCENTAGE_PRECISION (1e6)
    max_spread: int
    last_funding_rate: int  # FUNDING_RATE_PRECISION, quote per base per hour
    annual_vol_bps: int
    takers_per_hour: int
    taker_size_ppm: int  # taker sizes are real near-touch order sizes scaled by this
    source: str


@functools.cache
def _raw() -> dict[str, dict]:
    return json.loads((_DIR / "market_specs.json").read_text())


@functools.cache
def shapes() -> dict[str, dict]:
    return json.loads((_DIR / "book_shapes.json").read_text())


def names() -> tuple[str, ...]:
    return tuple(_raw())


def _entry(name: str) -> dict:
    raw = _raw()
    if name not in raw:
        raise UserError(f"unknown market {name!r}; the local market has: {', '.join(raw)}")
    return raw[name]


@functools.cache
def spec(name: str) -> MarketSpec:
    e = _entry(name)
    return MarketSpec(**{k: e[k] for k in _SPEC_FIELDS})


@functools.cache
def params(name: str) -> Params:
    e = _entry(name)
    return Params(**{k: e[k] for k in Params.__slots__})


def specs() -> dict[str, MarketSpec]:
    return {n: spec(n) for n in names()}


@functools.cache
def spot_rates() -> dict[str, SpotRates]:
    """The borrow-rate curves of USDC and SOL, with each market's utilisation, from real
    SpotMarket dumps in ../shared/data/real/drift_account_dumps.jsonl (SOL: the dump its spec
    comes from, e0d87f0bf9523474; USDC: a3ed52653acbafbe). Utilisation is borrows over deposits,
    each scaled by its cumulative interest."""
    return {
        "USDC": SpotRates(optimal_utilization=800_000, optimal_borrow_rate=85_000, max_borrow_rate=1_500_000,
                          utilization=_utilization(75090460977343094, 13267987656, 137836323986761462, 11583068761),
                          insurance_factor=50_000),
        "SOL": SpotRates(optimal_utilization=800_000, optimal_borrow_rate=100_000, max_borrow_rate=1_500_000,
                         utilization=_utilization(135734183536337, 11605890567, 246991204540850, 10620222934),
                         insurance_factor=200_000),
    }


def _utilization(borrow: int, borrow_interest: int, deposit: int, deposit_interest: int) -> int:
    return borrow * borrow_interest * 1_000_000 // (deposit * deposit_interest)
