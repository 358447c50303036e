"""Realistic tick values for the archive tests, built by hand from keeper.model.

Imported by the other test_archive_* modules; the tests here pin codec.encode (msgspec's
to_builtins) to an independent walk of the model's fields, and codec.decode's two paths to each
other.
"""
from __future__ import annotations

import json

import msgspec
import orjson
import pytest

from keeper.archive import codec
from keeper.model import (
    BASE_PRECISION,
    PRICE_PRECISION,
    Book,
    BookOrder,
    Execution,
    Fill,
    Intent,
    Level,
    MarketSpec,
    MarketState,
    OpenOrder,
    Outcome,
    Placement,
    Plan,
    Position,
    Snapshot,
    SpotBalance,
    Trade,
    UserState,
)

ME = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
MARKETS = {  # name -> (kind, index, oracle price in dollars)
    "SOL-PERP": ("perp", 0, 150),
    "BTC-PERP": ("perp", 1, 65_000),
    "ETH-PERP": ("perp", 2, 3_400),
    "SOL": ("spot", 1, 150),
}


def manifest(**overrides) -> dict:
    base = {
        "network": "local",
        "strategy": "fixed_spread",
        "params": {"spread_bps": "12.5", "size": "0.5", "levels": 3, "skew": False},
        "seed": 42,
        "markets": list(MARKETS),
        "interval_ms": 1000,
        "price_path": None,
        "started_at": "2025-01-31T12:00:00+00:00",
        "versions": {"keeper": "0.1.0", "driftpy": "0.8.89", "python": "3.11.7"},
        "argv": ["keeper", "run", "--strategy", "fixed_spread"],
    }
    base.update(overrides)
    return base


def spec(name: str) -> MarketSpec:
    kind, index, _ = MARKETS[name]
    return MarketSpec(
        name=name, kind=kind, market_index=index, base_precision=BASE_PRECISION,
        tick_size=100, step_size=10_000_000, min_order_size=10_000_000,
        taker_fee=100, maker_rebate=-20 if kind == "perp" else 0,
        margin_ratio_initial=1000 if kind == "perp" else 2000, margin_ratio_maintenance=500,
        asset_weight=8000 if kind == "spot" else 0,
    )


def market(name: str, tick: int) -> MarketState:
    _, index, dollars = MARKETS[name]
    oracle = dollars * PRICE_PRECISION + tick * 1_300
    step = oracle // 10_000
    bids = tuple(Level(oracle - (i + 1) * step, (i + 1) * BASE_PRECISION // 4) for i in range(10))
    asks = tuple(Level(oracle + (i + 1) * step, (i + 2) * BASE_PRECISION // 4) for i in range(10))
    l3 = None
    if name != "SOL":  # the spot venue gives no L3 here: the None case
        l3 = tuple(
            BookOrder(side="bid" if i % 2 == 0 else "ask",
                      price=oracle + (-1 if i % 2 == 0 else 1) * (i // 2 + 1) * step,
                      size=BASE_PRECISION // 10 * (i + 1), user=f"{chr(65 + i)}{ME[1:]}", order_id=10_000 + i,
                      oracle_offset=(-1 if i % 2 == 0 else 1) * (i // 2 + 1) * step if i % 3 == 0 else None,
                      post_only=i % 4 == 0)
            for i in range(16)
        )
    return MarketState(
        spec=spec(name), oracle_price=oracle, oracle_slot=300_000_000 + tick, oracle_conf=oracle // 5_000,
        mark_price=oracle + step // 2, funding_rate=-1_250 if index % 2 else 3_400, book=Book(bids, asks, l3),
        vamm_bid=oracle - 3 * step if MARKETS[name][0] == "perp" else None,
        vamm_ask=oracle + 3 * step if MARKETS[name][0] == "perp" else None,
        trades=(Trade(oracle + step, BASE_PRECISION // 2, "bid"), Trade(oracle - step, BASE_PRECISION, "ask"),
                # as the live tape records one: from a fill event, our user the maker
                Trade(oracle + step, BASE_PRECISION // 10, "bid", quote=(oracle + step) // 10, maker=ME,
                      taker=f"T{ME[1:]}", maker_fee=-(oracle + step) // 10 // 5_000, taker_fee=(oracle + step) // 10 // 2_000,
                      fill_record_id=7_000 + tick, slot=300_000_000 + tick, ts=1_738_324_800_000 + tick * 1000)),
    )


def snapshot(tick: int = 0) -> Snapshot:
    ts = 1_738_324_800_000 + tick * 1000
    slot = 300_000_000 + tick * 2
    sol = MARKETS["SOL-PERP"][2] * PRICE_PRECISION
    open_orders = (
        OpenOrder(order_id=501, user_order_id=1, market="SOL-PERP", side="bid", price=sol - 150_000, size=BASE_PRECISION // 2),
        OpenOrder(order_id=502, user_order_id=2, market="SOL-PERP", side="ask", price=sol + 150_000, size=BASE_PRECISION // 2,
                  filled=BASE_PRECISION // 10, max_ts=ts // 1000 + 30),
        # floating orders: price 0, an oracle offset instead
        OpenOrder(order_id=503, user_order_id=3, market="BTC-PERP", side="bid", price=0, size=BASE_PRECISION // 100,
                  oracle_offset=-25 * PRICE_PRECISION),
        OpenOrder(order_id=504, user_order_id=4, market="BTC-PERP", side="ask", price=0, size=BASE_PRECISION // 100,
                  oracle_offset=25 * PRICE_PRECISION, reduce_only=True),
        OpenOrder(order_id=505, user_order_id=0, market="SOL", side="bid", price=sol - 1_000_000, size=BASE_PRECISION,
                  post_only=False),
    )
    user = UserState(
        total_collateral=10_000 * PRICE_PRECISION + tick,
        free_collateral=8_750 * PRICE_PRECISION,
        positions={
            "SOL-PERP": Position("SOL-PERP", base=3 * BASE_PRECISION // 2, entry_price=sol - 40_000,
                                 realized_pnl=12_345, unrealized_pnl=60_000),
            "BTC-PERP": Position("BTC-PERP", base=-BASE_PRECISION // 100, entry_price=65_010 * PRICE_PRECISION,
                                 realized_pnl=-4_200_000, unrealized_pnl=-100_000),
            "SOL": Position("SOL", base=2 * BASE_PRECISION, entry_price=149 * PRICE_PRECISION,
                            realized_pnl=0, unrealized_pnl=2_000_000),
        },
        open_orders=open_orders,
        fills=(
            Fill("SOL-PERP", "ask", sol + 150_000, BASE_PRECISION // 10, fee=-3_001, order_id=502, user_order_id=2,
                 maker=True, ts=ts - 400, fill_record_id=7_000 + tick),
            Fill("ETH-PERP", "bid", 3_401 * PRICE_PRECISION, BASE_PRECISION // 20, fee=170_050, order_id=499,
                 user_order_id=7, maker=False, ts=ts - 900),
        ),
        funding={"SOL-PERP": -1_234, "BTC-PERP": 56},
        spot_balances={"USDC": SpotBalance("USDC", 0, 6, 9_876_543_210), "SOL": SpotBalance("SOL", 1, 9, -250_000_000)},
    )
    return Snapshot(ts=ts, slot=slot, markets={n: market(n, tick) for n in MARKETS}, user=user)


def execution(tick: int = 0) -> Execution:
    snap = snapshot(tick)
    sol = MARKETS["SOL-PERP"][2] * PRICE_PRECISION
    places = (
        Placement(Intent("SOL-PERP", "bid", BASE_PRECISION // 2, price=sol - 200_000, expiry_s=30), user_order_id=5),
        Placement(Intent("ETH-PERP", "ask", BASE_PRECISION // 20, oracle_offset=2 * PRICE_PRECISION,
                         post_only=False, reduce_only=True), user_order_id=6),
    )
    plan = Plan(cancels=snap.user.open_orders[:2], places=places,
                dropped=("SOL bid: size 1000 below min order size 10000000", "risk REDUCING: dropped non-reduce-only BTC-PERP bid"))
    outcomes = (
        Outcome("cancel", 1, True, order_id=501),
        Outcome("cancel", 2, False, error="OrderDoesNotExist", order_id=502),
        Outcome("place", 5, True, order_id=506),
        Outcome("place", 6, False, error="OrderWouldBeLiquidated"),
    )
    return Execution(ts=snap.ts + 35, slot=snap.slot, plan=plan, outcomes=outcomes, risk_state="REDUCING" if tick % 2 else "ACTIVE")


def _plain(value):
    """The JSON form of a model value, by walking its fields: the independent reference for encode."""
    if isinstance(value, msgspec.Struct):
        return {name: _plain(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_encode_writes_every_field_of_every_value():
    for value in (snapshot(3), execution(3), snapshot(4), execution(4), execution(0).plan.places[0]):
        reference = json.loads(json.dumps(_plain(value)))
        assert orjson.loads(orjson.dumps(codec.encode(value))) == reference
        assert json.loads(json.dumps(codec.encode(value))) == reference


def test_data_is_realistic():
    snap = snapshot()
    assert len(snap.markets) == 4
    assert snap.markets["SOL"].book.l3 is None and len(snap.markets["BTC-PERP"].book.l3) == 16
    assert any(o.oracle_offset is not None for o in snap.markets["ETH-PERP"].book.l3)
    assert any(o.price == 0 and o.oracle_offset is not None for o in snap.user.open_orders)
    assert codec.decode(Snapshot, codec.encode(snap)) == snap
    assert codec.decode(Execution, codec.encode(execution())) == execution()


def test_msgspec_decode_agrees_with_the_generic_walk_and_names_bad_fields():
    for value, cls in ((snapshot(3), Snapshot), (execution(3), Execution)):
        data = json.loads(json.dumps(codec.encode(value)))
        assert msgspec.convert(data, cls, strict=True) == codec._decode(cls, data, cls.__name__) == value
    data = json.loads(json.dumps(codec.encode(snapshot(3))))
    name = next(iter(data["markets"]))
    data["markets"][name]["oracle_price"] = 85.5
    with pytest.raises(ValueError, match=r"oracle_price: expected an integer"):
        codec.decode(Snapshot, data)
    data["markets"][name]["oracle_price"] = 85_500_000
    data["user"]["open_orders"] = [{"bogus": 1}]
    with pytest.raises(ValueError, match=r"open_orders\[0\]: missing"):
        codec.decode(Snapshot, data)
