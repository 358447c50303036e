"""Pyth legacy price accounts, written straight into the ledger.

The Dec 2023 Drift program reads an oracle as a `pyth_client::Price` (pyth-client 0.2) and
trusts any account owned by the Pyth program id, so no Pyth program has to run: we encode
the account ourselves and update it every slot. What Drift reads (state/oracle.rs):
- agg.price and agg.conf, scaled by `expo` to PRICE_PRECISION (we use expo -6: no scaling);
- valid_slot, for the oracle delay (clock slot - valid_slot), checked against
  state.oracle_guard_rails.validity (stale for the AMM after 10 slots, for margin after 120);
- twap.val (the EMA price) only when a perp market is initialised, which we skip.
driftpy and pythclient also read the header, the EMA and agg.pub_slot.

Layout (3312 bytes, as in the real 1MBONK mainnet dumps):
  0 magic u32 | 4 version u32 | 8 account type u32 (3 = price) | 12 size u32
 16 price type u32 (1 = price) | 20 expo i32 | 24 num components u32 | 28 num quoters u32
 32 last_slot u64 | 40 valid_slot u64
 48 ema price {val, numer, denom: i64} | 72 ema conf {val, numer, denom: i64}
 96 timestamp i64 | 104 min publishers u8 | 105 message sent u8 | 106 max latency u8 | 107 u8, u32
112 product key | 144 next price key
176 prev slot u64 | 184 prev price i64 | 192 prev conf u64 | 200 prev timestamp i64
208 agg {price i64, conf u64, status u32, corporate action u32, pub_slot u64}
240 32 components of 96 bytes (publisher key, aggregate info, latest info) - left empty
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from solders.account import Account
from solders.pubkey import Pubkey

from keeper.localnet.program import PYTH_PROGRAM_ID

SIZE = 3312
MAGIC = 0xA1B2C3D4
VERSION = 2
ACCOUNT_TYPE_PRICE = 3
PRICE_TYPE_PRICE = 1
STATUS_TRADING = 1
EXPO = -6  # prices are already PRICE_PRECISION (1e6) integers, so Drift and driftpy scale exactly

_HEADER = struct.Struct("<IIIIIiIIQQ")  # magic .. valid_slot, 48 bytes
_EMA = struct.Struct("<qqqqqq")  # ema price and ema conf, each {val, numer, denom}
_INFO = struct.Struct("<qQIIQ")  # price, conf, status, corporate action, pub_slot
MAX_LATENCY = 25  # slots; pythclient calls an older aggregate stale (as Pyth's own feeds do)
_EMA_DENOM = 1  # val = numer / denom; a denominator of 1 keeps the ratio exact


@dataclass(frozen=True, slots=True)
class Quote:
    """One oracle reading, all integers: price and conf in 1e6, slot, unix seconds."""

    price: int
    conf: int
    slot: int
    ts: int
    ema_price: int
    ema_conf: int


def encode(price: int, conf: int, slot: int, ts: int, ema_price: int | None = None, ema_conf: int | None = None,
           prev: Quote | None = None) -> bytes:
    """A Pyth v2 price account, aggregate status Trading, published at `slot`."""
    if price <= 0 or conf < 0:
        raise ValueError(f"oracle price must be positive and conf non-negative, got {price}, {conf}")
    ema_price = price if ema_price is None else ema_price
    ema_conf = conf if ema_conf is None else ema_conf
    prev = prev or Quote(price, conf, slot, ts, ema_price, ema_conf)
    buf = bytearray(SIZE)
    _HEADER.pack_into(buf, 0, MAGIC, VERSION, ACCOUNT_TYPE_PRICE, SIZE, PRICE_TYPE_PRICE, EXPO, 0, 1, slot, slot)
    _EMA.pack_into(buf, 48, ema_price, ema_price * _EMA_DENOM, _EMA_DENOM, ema_conf, ema_conf * _EMA_DENOM, _EMA_DENOM)
    struct.pack_into("<qBBB", buf, 96, ts, 1, 0, MAX_LATENCY)
    struct.pack_into("<QqQq", buf, 176, prev.slot, prev.price, prev.conf, prev.ts)
    _INFO.pack_into(buf, 208, price, conf, STATUS_TRADING, 0, slot)
    return bytes(buf)


def decode(data: bytes) -> Quote:
    """Read back what encode() wrote (and the same fields of a real Pyth v2 price account)."""
    magic, _, atype, _, _, expo, _, _, _, valid_slot = _HEADER.unpack_from(data, 0)
    if magic != MAGIC or atype != ACCOUNT_TYPE_PRICE:
        raise ValueError("not a Pyth price account")
    ema_price, _, _, ema_conf, _, _ = _EMA.unpack_from(data, 48)
    (ts,) = struct.unpack_from("<q", data, 96)
    price, conf, _, _, _ = _INFO.unpack_from(data, 208)
    scale = 10 ** (-expo)
    return Quote(_to_1e6(price, scale), _to_1e6(conf, scale), valid_slot, ts, _to_1e6(ema_price, scale), _to_1e6(ema_conf, scale))


def _to_1e6(value: int, scale: int) -> int:
    return value * 10**6 // scale if scale <= 10**6 else value // (scale // 10**6)


def next_ema(old: int, new: int) -> int:
    """Integer EMA, weight 1/16 on the new value: keeps the EMA near the price, as Pyth's does."""
    return old + (new - old) // 16


def write(svm, pubkey: Pubkey, price: int, conf: int, slot: int, ts: int) -> Quote:
    """Create or update one oracle account; the EMA follows from the account's previous value."""
    old = svm.get_account(pubkey)
    prev = decode(bytes(old.data)) if old is not None and len(old.data) == SIZE else None
    ema_price = next_ema(prev.ema_price, price) if prev else price
    ema_conf = next_ema(prev.ema_conf, conf) if prev else conf
    data = encode(price, conf, slot, ts, ema_price, ema_conf, prev)
    lamports = svm.minimum_balance_for_rent_exemption(SIZE)
    svm.set_account(pubkey, Account(lamports, data, PYTH_PROGRAM_ID, False, 0))
    return Quote(price, conf, slot, ts, ema_price, ema_conf)
