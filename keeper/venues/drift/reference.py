"""A second price per market, for the risk gate's deviation check: pythclient's reading of the
Pyth price account behind the market's oracle.

driftpy decodes the oracle for Drift's own maths; pythclient is an independent parser of the
same account, and it applies Pyth's own status rules (an aggregate that isn't Trading, or
older than the feed's max latency, gives no price). Only Pyth v2 price accounts are covered:
pull (PriceUpdateV2), Lazer, Switchboard and pinned oracles give no reference, and the gate
then has none to compare with.
"""
from __future__ import annotations

import logging
import struct
from typing import Optional

from pythclient.pythaccounts import PythPriceAccount, PythPriceStatus
from solders.pubkey import Pubkey

from keeper.model import PRICE_PRECISION

log = logging.getLogger(__name__)

PYTH_MAGIC = 0xA1B2C3D4
PYTH_VERSION = 2
HEADER = 16  # magic, version, account type, size: pythclient's update_with_rpc_response reads them first
# Drift's OracleSource variants over a Pyth v2 price account, and the factor Drift applies
# (1K/1M markets quote 1,000 or 1,000,000 units of a tiny-priced token).
PYTH_V2 = {"Pyth": 1, "Pyth1K": 1_000, "Pyth1M": 1_000_000, "PythStableCoin": 1}


def pyth_v2_factor(oracle_source) -> Optional[int]:
    return PYTH_V2.get(type(oracle_source).__name__)


def parse(key: Pubkey, data: bytes, slot: int, factor: int = 1) -> Optional[int]:
    """The aggregate price in PRICE_PRECISION, or None when Pyth itself says there is none."""
    if len(data) < HEADER + 200 or int.from_bytes(data[:4], "little") != PYTH_MAGIC:
        return None
    account = PythPriceAccount(str(key), None)  # parsed only: no client needed
    account.slot = slot
    try:
        account.update_from(data, version=PYTH_VERSION, offset=HEADER)
    except (struct.error, ValueError):  # too short, or an unknown enum value: not a price account
        return None
    if account.get_aggregate_price_status_with_slot(slot) != PythPriceStatus.TRADING:
        return None
    info = account.aggregate_price_info
    # pythclient's `price` is a float; scale the raw integer instead so no float reaches an order
    exponent = info.exponent
    scaled = info.raw_price * factor * PRICE_PRECISION
    return scaled * 10 ** exponent if exponent >= 0 else scaled // 10 ** -exponent


class PythReference:
    """Parses the markets' Pyth v2 oracle accounts, read by the venue with its own accounts in
    one getMultipleAccounts per tick."""

    def __init__(self, oracles: dict[str, tuple[Pubkey, object]]):
        """oracles: market name -> (oracle account, driftpy OracleSource)."""
        factors = {name: pyth_v2_factor(source) for name, (_, source) in oracles.items()}
        self.markets = [(name, key, factors[name]) for name, (key, _) in oracles.items() if factors[name] is not None]

    @property
    def keys(self) -> list[Pubkey]:
        return [key for _, key, _ in self.markets]

    def prices(self, infos: list, slot: int) -> dict[str, Optional[int]]:
        """Market name -> reference price or None, from the accounts read for `keys` at `slot`."""
        return {name: parse(key, bytes(info.data), slot, factor) if info is not None else None
                for (name, key, factor), info in zip(self.markets, infos)}
