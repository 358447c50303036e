"""Every real account dump through the keeper's loading path (../shared/data/real/drift_account_dumps.jsonl).

Drift accounts decode with keeper.drift_idl.decode (what the keeper's venue and market loader use), oracle
accounts with driftpy's oracle decoders. PerpMarkets and SpotMarkets become MarketSpecs through
keeper.venues.drift.accounts (perp_spec, spot_spec, market_name), Users become OpenOrders (open_orders),
each checked against the record's own summary and, for Users, against driftpy's separate decoder.
"""
from __future__ import annotations

import base64
import csv
import json
import re
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from driftpy.accounts.oracle import decode_pyth_price_info, decode_swb_on_demand_price_info, decode_swb_price_info
from driftpy.decode.user import decode_user
from driftpy.decode.user_stat import decode_user_stat
from driftpy.types import OracleSource, is_variant

from keeper import drift_idl
from keeper.model import MARGIN_PRECISION, MarketSpec, OpenOrder
from keeper.venues.drift.accounts import SPOT_WEIGHT_PRECISION, market_name, open_orders, perp_spec, spot_spec

TOTAL = 175
COUNTS = {"User": 106, "UserStats": 27, "PerpMarket": 23, "SpotMarket": 12, "pyth_legacy_price_account": 3,
          "switchboard_on_demand_pull_feed": 3, "switchboard_v2_aggregator": 1}
DRIFT_ACCOUNTS = ("User", "UserStats", "PerpMarket", "SpotMarket")
# The drift-rs devnet fixture res/spot_market_1_76_0.hex: a SpotMarket with a zeroed name, no min order size
# and no oracle reading, as the Rust tests build it.
BLANK_SPOT_FIXTURE = "84076ae49ee7259a"


@pytest.fixture
def records(shared_data: Path) -> list[dict]:
    with open(shared_data / "drift_account_dumps.jsonl") as f:
        return [json.loads(line) for line in f]


@pytest.fixture
def fee_tiers(shared_data: Path) -> dict[str, tuple[int, int]]:
    """Tier 0 (taker fee, maker rebate numerators) of the State's perp and spot fee structures, 2023-12-05."""
    tiers = {}
    with open(shared_data / "drift_v2_market_state_2022-11_2023-04" / "raw_state_2023-12-05.csv", newline="") as f:
        for row in csv.reader(f):
            if row and row[0] in ("perp_fee_structure", "spot_fee_structure"):
                tier = re.search(r"FeeTier\(fee_numerator=(\d+), fee_denominator=100000, "
                                 r"maker_rebate_numerator=(\d+)", row[1])
                tiers[row[0].split("_")[0]] = (int(tier.group(1)), int(tier.group(2)))
    assert tiers == {"perp": (100, 20), "spot": (50, 20)}
    return tiers


def data(record: dict) -> bytes:
    raw = base64.b64decode(record["data_base64"])
    assert len(raw) == record["bytes"], record["id"]
    return raw


def of_type(records: list[dict], account_type: str) -> list[tuple[dict, object]]:
    return [(r, drift_idl.decode(data(r))) for r in records if r["account_type"] == account_type]


def oracle_sources(records: list[dict]) -> dict[str, OracleSource]:
    """Oracle pubkey -> the source a market in the dumps reads it as."""
    sources = {}
    for _, market in of_type(records, "PerpMarket"):
        sources[str(market.amm.oracle)] = market.amm.oracle_source
    for _, market in of_type(records, "SpotMarket"):
        sources[str(market.oracle)] = market.oracle_source
    return sources


def decode_oracle(record: dict, sources: dict[str, OracleSource]):
    raw = data(record)
    kind = record["account_type"]
    if kind == "pyth_legacy_price_account":
        # Two of the three are 1MBONK-PERP's oracle (Pyth1M) by pubkey; the third was stored without its
        # address, and its price at the 1M scale (14.82) is 1MBONK's too.
        return decode_pyth_price_info(raw, sources.get(record["pubkey"], OracleSource.Pyth1M()))
    if kind == "switchboard_on_demand_pull_feed":
        return decode_swb_on_demand_price_info(raw)
    if kind == "switchboard_v2_aggregator":
        return decode_swb_price_info(raw)
    raise AssertionError(f"{record['id']}: no decoder for {kind}")


def assert_ints(value, text=("name", "kind", "market", "side"), flags=("post_only", "reduce_only"),
                optional=("oracle_offset",)) -> None:
    """Every number field a plain int (never a bool, float or driftpy type); flags bools."""
    for f in msgspec.structs.fields(value):
        x = getattr(value, f.name)
        if f.name in text:
            assert type(x) is str, (value, f.name)
        elif f.name in flags:
            assert type(x) is bool, (value, f.name)
        elif not (f.name in optional and x is None):
            assert type(x) is int, (value, f.name)


def assert_clean(name: str) -> None:
    assert isinstance(name, str) and name == name.strip() and name.isprintable() and "\0" not in name, repr(name)


# --- every record -------------------------------------------------------------------------------

def test_every_record_decodes(records):
    sources = oracle_sources(records)
    counts: Counter[str] = Counter()
    for record in records:
        kind = record["account_type"]
        if kind in DRIFT_ACCOUNTS:
            account = drift_idl.decode(data(record))
            assert type(account).__name__ == kind, record["id"]
        else:
            price = decode_oracle(record, sources)
            assert type(price.price) is int and price.price > 0 and price.slot > 0, record["id"]
        counts[kind] += 1
    assert sum(counts.values()) == len(records) == TOTAL
    assert counts == COUNTS


def test_oracle_prices(records):
    sources = oracle_sources(records)
    prices = {r["id"]: decode_oracle(r, sources) for r in records if r["account_type"] not in DRIFT_ACCOUNTS}
    assert len(prices) == 7
    # PROVENANCE.md: 1MBONK at 14.5975 (slot 234897842); the Switchboard v2 aggregator at 0.133873 (slot 252778507)
    assert (prices["12467a0ac3dce308"].price, prices["12467a0ac3dce308"].slot) == (14_597_500, 234_897_842)
    assert (prices["163a378ceddc1809"].price, prices["163a378ceddc1809"].slot) == (133_873, 252_778_507)
    pyth = [r for r in records if r["account_type"] == "pyth_legacy_price_account" and r["pubkey"]]
    assert pyth and all(is_variant(sources[r["pubkey"]], "Pyth1M") for r in pyth)


# --- markets ------------------------------------------------------------------------------------

def test_perp_markets_become_market_specs(records, fee_tiers):
    markets = of_type(records, "PerpMarket")
    assert len(markets) == COUNTS["PerpMarket"]
    for record, account in markets:
        spec = perp_spec(account, *fee_tiers["perp"])
        summary = record["summary"]
        assert isinstance(spec, MarketSpec)
        assert_ints(spec)
        assert spec.name == market_name(account) == summary["name"].strip()
        assert (spec.kind, spec.market_index, spec.base_precision) == ("perp", summary["market_index"], 10**9)
        assert (spec.tick_size, spec.step_size) == (summary["order_tick_size"], summary["order_step_size"])
        assert spec.tick_size > 0 and spec.step_size > 0 and spec.min_order_size > 0, record["id"]
        assert spec.min_order_size % spec.step_size == 0, record["id"]
        assert MARGIN_PRECISION >= spec.margin_ratio_initial > spec.margin_ratio_maintenance > 0, record["id"]
        # the market's fee adjustment (-100..) scales the State's tier; -100 makes a market fee-free
        assert 0 <= spec.maker_rebate <= spec.taker_fee <= fee_tiers["perp"][0], record["id"]
        assert (spec.taker_fee == 0) == (account.fee_adjustment == -100), record["id"]
        assert spec.asset_weight == 0


def test_spot_markets_become_market_specs(records, fee_tiers):
    markets = of_type(records, "SpotMarket")
    assert len(markets) == COUNTS["SpotMarket"]
    quote = 0
    for record, account in markets:
        spec = spot_spec(account, *fee_tiers["spot"])
        summary = record["summary"]
        assert_ints(spec)
        assert spec.name == market_name(account)
        assert (spec.kind, spec.market_index) == ("spot", summary["market_index"])
        assert spec.base_precision == 10**account.decimals == 10**summary["decimals"]
        assert spec.margin_ratio_initial >= spec.margin_ratio_maintenance >= 0, record["id"]
        assert 0 < spec.asset_weight <= SPOT_WEIGHT_PRECISION, record["id"]
        assert spec.taker_fee == fee_tiers["spot"][0] and spec.maker_rebate == fee_tiers["spot"][1]
        if spec.market_index == 0:
            # USDC, the quote market: no order book, so no tick, step or minimum; weights of exactly 1
            quote += 1
            assert spec.name == "USDC" and spec.base_precision == 10**6
            assert (spec.tick_size, spec.step_size, spec.min_order_size) == (0, 0, 0)
            assert (spec.margin_ratio_initial, spec.margin_ratio_maintenance, spec.asset_weight) == (0, 0, 10_000)
        elif record["id"] == BLANK_SPOT_FIXTURE:
            assert spec.name == "" and spec.tick_size > 0 and spec.step_size > 0 and spec.min_order_size == 0
        else:
            assert spec.name == summary["name"].strip()
            assert spec.tick_size > 0 and spec.step_size > 0 and spec.min_order_size > 0, record["id"]
            assert spec.min_order_size % spec.step_size == 0, record["id"]
            assert spec.margin_ratio_initial > spec.margin_ratio_maintenance > 0, record["id"]
            assert spec.asset_weight < SPOT_WEIGHT_PRECISION
    assert quote == 4


def test_market_names_are_clean(records):
    names = Counter()
    for kind in ("PerpMarket", "SpotMarket"):
        for record, account in of_type(records, kind):
            name = market_name(account)
            assert_clean(name)
            assert name or record["id"] == BLANK_SPOT_FIXTURE
            names[name] += 1
    assert {"SOL-PERP", "BTC-PERP", "ETH-PERP", "1MBONK-PERP", "USDC", "SOL", "wBTC"} <= set(names)
    assert all(n.endswith(("-PERP", "-BET", "-PREDICT")) or n in ("USDC", "SOL", "wBTC", "wETH", "JitoSOL-3", "")
               for n in names), names


# --- users --------------------------------------------------------------------------------------

def test_users_become_open_orders(records):
    users = of_type(records, "User")
    assert len(users) == COUNTS["User"]
    names = {("perp", m.market_index): market_name(m) for _, m in of_type(records, "PerpMarket")}
    names.update({("spot", m.market_index): market_name(m) for _, m in of_type(records, "SpotMarket")
                  if market_name(m)})  # not the nameless devnet fixture
    # every market an open order is on, named (markets without a dump get a made-up name)
    present = {("perp" if is_variant(o.market_type, "Perp") else "spot", o.market_index)
               for _, user in users for o in user.orders if is_variant(o.status, "Open")}
    for key in present - set(names):
        names[key] = f"{key[0]} {key[1]}"
    total = 0
    for record, user in users:
        orders = open_orders(user, names)
        reference = [o for o in decode_user(data(record)).orders if is_variant(o.status, "Open")]
        assert len(orders) == len(reference) == record["summary"]["n_open_orders"] == user.open_orders, record["id"]
        assert user.has_open_order == bool(orders)
        by_id = {o.order_id: o for o in reference}
        for o in orders:
            assert isinstance(o, OpenOrder)
            assert_ints(o)
            ref = by_id[o.order_id]
            kind = "perp" if is_variant(ref.market_type, "Perp") else "spot"
            assert o.market == names[(kind, ref.market_index)]
            assert o.side == ("bid" if is_variant(ref.direction, "Long") else "ask")
            assert (o.size, o.filled, o.user_order_id, o.max_ts) == (
                ref.base_asset_amount, ref.base_asset_amount_filled, ref.user_order_id, ref.max_ts)
            assert (o.post_only, o.reduce_only) == (ref.post_only, ref.reduce_only)
            if ref.oracle_price_offset:
                assert (o.price, o.oracle_offset) == (0, ref.oracle_price_offset)
            else:
                assert (o.price, o.oracle_offset) == (ref.price, None)
            assert 0 < o.size and 0 <= o.filled < o.size
        assert [o.order_id for o in orders] == sorted(by_id)
        total += len(orders)
    assert total == 19


def test_user_stats_decode(records):
    stats = of_type(records, "UserStats")
    assert len(stats) == COUNTS["UserStats"]
    for record, account in stats:
        assert str(account.authority) == record["summary"]["authority"]
        assert decode_user_stat(data(record)).authority == account.authority
