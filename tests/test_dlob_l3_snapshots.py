"""The DLOB helper on real mainnet order books: Drift's L3 as dlob.drift.trade served it in Dec 2023.

../shared/data/real/drift_dlob_l3_snapshots_2023-12 holds one CSV row per resting limit order, ~20 min
apart (PROVENANCE.md). Each snapshot's orders are written into Drift User accounts (keeper.drift_idl:
blank/put/encode), one account per real user (a user with more than 32 orders is split over several),
upserted into the helper, and the book requested at the snapshot's slot and oracle price.

The expected book is computed here in plain Python from the CSV rows, not from the SDK or driftpy:
- the resting book holds every limit order whose auction is over (or that is post-only); an order still
  in its auction takes, and is not in it;
- fixed orders sit at their price, floating ones at max(oracle + offset, 1): what the SDK's getLimitPrice
  gives and what the recorder stored (no rounding to the tick: see test_floating_prices_are_not_on_the_tick);
- the L3 is best first; at one price floating orders come before fixed ones (DLOB.getBestNode keeps the
  later list on a tie, and the floating list comes after the fixed one), and within a list the older order
  (lower slot) comes first (NodeList.prependNode); orders equal in all three may come in any order;
- L3 sizes are unfilled base; the L2 sums per price what can fill: reduce-only orders clamped to the
  account's perp position in the order's market index (OrderSubscriber.getDLOB's rule, applied to spot
  orders too: see test_spot_reduce_only_orders_are_left_out_of_the_l2).
Prices are 1e6 and sizes 1e9 integers (SOL spot has 9 decimals too).
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import gzip
import hashlib
import shutil
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Optional

import pytest
from solders.pubkey import Pubkey

from keeper import drift_idl
from keeper.model import BookOrder, Level, replace
from keeper.venues.drift.dlob import DlobHelper

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not (ROOT / "node_modules" / "@drift-labs" / "sdk").exists() or shutil.which("node") is None,
    reason="node or node_modules/@drift-labs/sdk is absent (run npm ci)",
)

SNAPSHOTS = "drift_dlob_l3_snapshots_2023-12"
MAX_ORDERS = 32  # a User account's order slots
MAX_PERP_POSITIONS = MAX_SPOT_POSITIONS = 8
DEPTH = 10_000  # every L2 level

# market: (CSV file, market type, market index)
MARKETS = {
    "SOL-PERP": ("perp0_SOL-PERP.csv.gz", "perp", 0),
    "BTC-PERP": ("perp1_BTC-PERP.csv.gz", "perp", 1),
    "ETH-PERP": ("perp2_ETH-PERP.csv.gz", "perp", 2),
    "SOL": ("spot1_SOL-spot.csv.gz", "spot", 1),
}
# Snapshots picked for what is in them (found by scanning all 143 of each market).
CROSSED = ("SOL-PERP", 234323073)  # post-only bid 62.9905 over post-only ask 62.95: both fixed-price orders
# A user with 32 orders over the four markets, the most any had (SOL-PERP, BTC-PERP and ETH-PERP).
FULL_ACCOUNT_SLOT = 234545382
SPECIAL = {
    CROSSED: "post-only orders crossed",
    ("SOL-PERP", 234528585): "two limit orders still in their auction",
    ("BTC-PERP", 234488510): "floating and fixed bids at one price",
    ("SOL", 234265255): "a spot limit order still in its auction",
}


# --- the CSV rows, in Drift's integers --------------------------------------------------------

def units(text: str, decimals: int) -> int:
    value = Decimal(text).scaleb(decimals)
    assert value == value.to_integral_value(), f"{text} has more than {decimals} decimals"
    return int(value)


@dataclasses.dataclass(frozen=True)
class Row:
    user: str
    market_type: str
    market_index: int
    order_id: int
    user_order_id: int
    side: str  # bid | ask
    price: int  # as recorded: oracle + offset for floating orders
    offset: int
    base: int
    filled: int
    quote_filled: int
    slot: int
    post_only: bool
    reduce_only: bool
    immediate_or_cancel: bool
    existing_long: bool
    auction_duration: int
    auction_start: int
    auction_end: int
    trigger_price: int
    oracle: int

    @classmethod
    def parse(cls, r: dict) -> "Row":
        assert (r["status"], r["orderType"], r["triggerCondition"]) == ("open", "limit", "above"), r
        return cls(
            user=r["user"], market_type=r["marketType"], market_index=int(r["marketIndex"]),
            order_id=int(r["orderId"]), user_order_id=int(r["userOrderId"]),
            side={"long": "bid", "short": "ask"}[r["direction"]],
            price=units(r["price"], 6), offset=units(r["oraclePriceOffset"], 6),
            base=units(r["baseAssetAmount"], 9), filled=units(r["baseAssetAmountFilled"], 9),
            quote_filled=units(r["quoteAssetAmountFilled"], 6), slot=int(r["slot"]),
            post_only=r["postOnly"] == "True", reduce_only=r["reduceOnly"] == "True",
            immediate_or_cancel=r["immediateOrCancel"] == "True",
            existing_long=r["existingPositionDirection"] == "long",
            # auction prices and the trigger price were recorded raw (1e6)
            auction_duration=int(r["auctionDuration"]), auction_start=int(r["auctionStartPrice"]),
            auction_end=int(r["auctionEndPrice"]), trigger_price=int(r["triggerPrice"]),
            oracle=units(r["oraclePrice"], 6),
        )

    @property
    def remaining(self) -> int:
        return self.base - self.filled


@functools.cache
def _load(path: Path) -> dict[int, tuple[Row, ...]]:
    snapshots: dict[int, list[Row]] = defaultdict(list)
    with gzip.open(path, "rt", newline="") as f:
        for r in csv.DictReader(f):
            snapshots[int(r["snapshot_slot"])].append(Row.parse(r))
    return {slot: tuple(rows) for slot, rows in sorted(snapshots.items())}


def snapshots(shared_data: Path, market: str) -> dict[int, tuple[Row, ...]]:
    return _load(shared_data / SNAPSHOTS / MARKETS[market][0])


def pick(shared_data: Path, market: str, which) -> tuple[int, tuple[Row, ...], int]:
    """(slot, rows, oracle) of the first, median or last snapshot of a market, or of a given slot."""
    books = snapshots(shared_data, market)
    slots = list(books)
    slot = {"first": slots[0], "median": slots[len(slots) // 2], "last": slots[-1]}.get(which, which)
    rows = books[slot]
    oracles = {r.oracle for r in rows}
    assert len(oracles) == 1, f"{market} at {slot}: one oracle price per snapshot"
    return slot, rows, oracles.pop()


@functools.cache
def _tick_sizes(shared_data: Path) -> dict[tuple[str, int], int]:
    """Order tick sizes from the raw market accounts of 2023-12-05, two days before the snapshots."""
    raw = shared_data / "drift_v2_market_state_2022-11_2023-04"
    ticks = {}
    for kind, name, key in (("perp", "raw_perp_markets_2023-12-05.csv", "market"),
                            ("spot", "raw_spot_markets_2023-12-05.csv", "spot_market")):
        with open(raw / name, newline="") as f:
            rows = {row[0]: row[1:] for row in csv.reader(f) if row}
        tick = "market.amm.order_tick_size" if kind == "perp" else "spot_market.order_tick_size"
        for index, size in zip(rows[f"{key}.market_index"], rows[tick]):
            ticks[(kind, int(index))] = units(size, 6)
    return ticks


# --- User accounts from the rows --------------------------------------------------------------

def derived(seed: str) -> str:
    return str(Pubkey(hashlib.sha256(seed.encode()).digest()))


@dataclasses.dataclass
class Account:
    pubkey: str
    owner: str  # the real user the orders belong to
    rows: list[Row]
    # (market type, index) -> base position (perp) or signed token balance (spot) backing reduce-only orders
    positions: dict[tuple[str, int], int] = dataclasses.field(default_factory=dict)
    data: bytes = b""

    def perp_base(self, market_index: int) -> int:
        """The perp position the SDK clamps reduce-only orders to: the one in the order's market index
        that has open orders, whatever the order's market type; none counts as 0."""
        if any(r.market_type == "perp" and r.market_index == market_index for r in self.rows):
            return self.positions.get(("perp", market_index), 0)
        return 0


def reduce_only_position(rows: list[Row], share: tuple[int, int]) -> int:
    """A position the reduce-only orders reduce: as large as the largest of them (times share), long
    under reduce-only asks, short under reduce-only bids. No real user has reduce-only orders on both sides."""
    reducing = [r for r in rows if r.reduce_only]
    if not reducing:
        return 0
    sides = {r.side for r in reducing}
    assert len(sides) == 1, f"{rows[0].user}: reduce-only orders on both sides"
    size = max(r.base for r in reducing) * share[0] // share[1]
    return size if sides == {"ask"} else -size


def variant(enum: str, name: str):
    return drift_idl.variant(enum, name)


def order_fields(r: Row) -> dict:
    floating = r.offset != 0
    return drift_idl.put(
        drift_idl.blank("Order"),
        status=variant("OrderStatus", "Open"), order_type=variant("OrderType", "Limit"),
        market_type=variant("MarketType", r.market_type.capitalize()),
        direction=variant("PositionDirection", "Long" if r.side == "bid" else "Short"),
        existing_position_direction=variant("PositionDirection", "Long" if r.existing_long else "Short"),
        trigger_condition=variant("OrderTriggerCondition", "Above"),
        slot=r.slot, price=0 if floating else r.price, oracle_price_offset=r.offset,
        base_asset_amount=r.base, base_asset_amount_filled=r.filled, quote_asset_amount_filled=r.quote_filled,
        trigger_price=r.trigger_price, auction_duration=r.auction_duration,
        auction_start_price=r.auction_start, auction_end_price=r.auction_end,
        order_id=r.order_id, user_order_id=r.user_order_id, market_index=r.market_index,
        post_only=r.post_only, reduce_only=r.reduce_only, immediate_or_cancel=r.immediate_or_cancel,
        max_ts=0,  # the book requests carry no clock: expiry is not what this test is about
    )


def encode(account: Account, authority: str, sub_account_id: int) -> bytes:
    rows = account.rows
    by_market: dict[tuple[str, int], list[Row]] = defaultdict(list)
    for r in rows:
        by_market[(r.market_type, r.market_index)].append(r)
    perp_positions, spot_positions = [], [drift_idl.blank("SpotPosition")]  # spot slot 0 is always USDC (index 0)
    for (kind, index), market_rows in sorted(by_market.items()):
        bids = sum(r.remaining for r in market_rows if r.side == "bid")
        asks = -sum(r.remaining for r in market_rows if r.side == "ask")
        base = account.positions.get((kind, index), 0)
        if kind == "perp":
            perp_positions.append(drift_idl.put(
                drift_idl.blank("PerpPosition"), market_index=index, open_orders=len(market_rows),
                open_bids=bids, open_asks=asks, base_asset_amount=base))
        else:
            spot_positions.append(drift_idl.put(
                drift_idl.blank("SpotPosition"), market_index=index, open_orders=len(market_rows),
                open_bids=bids, open_asks=asks, scaled_balance=abs(base),
                balance_type=variant("SpotBalanceType", "Borrow" if base < 0 else "Deposit")))
    assert len(perp_positions) <= MAX_PERP_POSITIONS and len(spot_positions) <= MAX_SPOT_POSITIONS
    assert len(rows) <= MAX_ORDERS
    user = drift_idl.blank("User")
    orders = user["orders"]
    orders[: len(rows)] = [order_fields(r) for r in rows]
    user["perp_positions"][: len(perp_positions)] = perp_positions
    user["spot_positions"][: len(spot_positions)] = spot_positions
    auctions = sum(1 for r in rows if r.auction_duration)
    drift_idl.put(
        user, authority=Pubkey.from_string(authority), sub_account_id=sub_account_id,
        name=drift_idl.name_bytes(f"L3 {account.owner[:8]} {sub_account_id}"),
        orders=orders, open_orders=len(rows), has_open_order=bool(rows),
        open_auctions=auctions, has_open_auction=bool(auctions),
        next_order_id=max((r.order_id for r in rows), default=0) + 1,
    )
    return drift_idl.encode("User", user)


def accounts_for(rows, per_account: int = MAX_ORDERS, share: tuple[int, int] = (1, 1)) -> dict[str, Account]:
    """One User account per real user, at its real address; a user with more than `per_account` orders
    gets more accounts (sub-accounts of one authority), at derived addresses, for the rest."""
    return _accounts(tuple(rows), per_account, share)


@functools.cache  # encoding is the slow part (~5 ms an account); tests share snapshots and never change them
def _accounts(rows: tuple[Row, ...], per_account: int, share: tuple[int, int]) -> dict[str, Account]:
    by_user: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_user[r.user].append(r)
    accounts = {}
    for user, user_rows in by_user.items():
        user_rows.sort(key=lambda r: (r.market_type, r.market_index, r.order_id))
        authority = derived(f"authority/{user}")
        for n in range(0, len(user_rows), per_account):
            chunk = user_rows[n : n + per_account]
            pubkey = user if n == 0 else derived(f"{user}/{n // per_account}")
            account = Account(pubkey, user, chunk)
            for key in {(r.market_type, r.market_index) for r in chunk}:
                market_rows = [r for r in chunk if (r.market_type, r.market_index) == key]
                account.positions[key] = reduce_only_position(market_rows, share)
            account.data = encode(account, authority, n // per_account)
            accounts[pubkey] = account
    return accounts


# --- the expected book, from the rows ---------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Expected:
    order: BookOrder
    fillable: int  # what the L2 counts
    slot: int


def rank(side: str, price: int, floating: bool, slot: int) -> tuple:
    """Best first: price, then floating before fixed, then older first."""
    return (-price if side == "bid" else price, not floating, slot)


def expected_book(accounts: dict[str, Account], market_type: str, market_index: int, slot: int,
                  oracle: int) -> dict[str, list[Expected]]:
    sides: dict[str, list[Expected]] = {"bid": [], "ask": []}
    for account in accounts.values():
        for r in account.rows:
            if (r.market_type, r.market_index) != (market_type, market_index):
                continue
            in_auction = r.auction_duration > 0 and slot - r.slot <= r.auction_duration
            if in_auction:
                # A post-only or floating order would rest at its auction price meanwhile; the data has none.
                assert not r.post_only and r.offset == 0, r
                continue  # still taking
            floating = r.offset != 0
            price = max(oracle + r.offset, 1) if floating else r.price
            clamped = r.base
            if r.reduce_only:
                position = account.perp_base(r.market_index)
                clamped = min(max(-position, 0), r.base) if r.side == "bid" else min(max(position, 0), r.base)
            sides[r.side].append(Expected(
                BookOrder(r.side, price, r.remaining, account.pubkey, r.order_id, r.offset or None, r.post_only),
                max(clamped - r.filled, 0), r.slot))
    for side, orders in sides.items():
        orders.sort(key=lambda e: rank(side, e.order.price, e.order.oracle_offset is not None, e.slot))
    return sides


def levels(orders: list[Expected]) -> list[Level]:
    out: list[Level] = []
    for e in orders:
        if e.fillable <= 0:
            continue
        if out and out[-1].price == e.order.price:
            out[-1] = Level(e.order.price, out[-1].size + e.fillable)
        else:
            out.append(Level(e.order.price, e.fillable))
    return out


def best_post_only(orders) -> Optional[int]:
    return next((o.price for o in orders if o.post_only), None)


def assert_book(book, accounts: dict[str, Account], market_type: str, market_index: int, slot: int,
                oracle: int) -> dict[str, list[Expected]]:
    want = expected_book(accounts, market_type, market_index, slot, oracle)
    slots = {(a.pubkey, r.order_id): r.slot for a in accounts.values() for r in a.rows}
    for side in ("bid", "ask"):
        got = [o for o in book.l3 if o.side == side]
        expected = [e.order for e in want[side]]
        # exactly those orders: ids, sizes, prices, offsets, post-only
        assert Counter(got) == Counter(expected), side
        # best first, ties by the SDK's rule; orders equal in rank may come in any order
        assert [rank(side, o.price, o.oracle_offset is not None, slots[(o.user, o.order_id)]) for o in got] == \
               [rank(side, e.order.price, e.order.oracle_offset is not None, e.slot) for e in want[side]], side
    assert list(book.bids) == levels(want["bid"])
    assert list(book.asks) == levels(want["ask"])
    for level in book.bids + book.asks:
        assert type(level.price) is int and type(level.size) is int and level.price > 0 and level.size > 0
    for o in book.l3:
        assert type(o.price) is int and type(o.size) is int and o.price > 0 and o.size > 0
    return want


def assert_units(book, raw: list[dict]) -> None:
    """Prices 1e6, sizes 1e9: the helper's integers against the CSV's decimal text."""
    total = sum(Decimal(r["baseAssetAmount"]) - Decimal(r["baseAssetAmountFilled"]) for r in raw)
    assert Decimal(sum(o.size for o in book.l3)).scaleb(-9) == total
    fixed = {(r["user"], int(r["orderId"])): Decimal(r["price"]) for r in raw if Decimal(r["oraclePriceOffset"]) == 0}
    for o in book.l3:
        if o.oracle_offset is None:
            assert Decimal(o.price).scaleb(-6) == fixed[(o.user, o.order_id)]


@functools.cache
def _raw(path: Path, slot: int) -> list[dict]:
    with gzip.open(path, "rt", newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["snapshot_slot"]) == slot]


# --- fixtures -----------------------------------------------------------------------------------



async def book_of(helper: DlobHelper, accounts: dict[str, Account], market: str, slot: int, oracle: int):
    assert await helper.upsert({k: a.data for k, a in accounts.items()}) == {}
    _, market_type, market_index = MARKETS[market]
    return await helper.book(market_type, market_index, slot, oracle, depth=DEPTH)


CASES = [(m, w) for m in MARKETS for w in ("first", "median", "last")] + list(SPECIAL)


# --- tests --------------------------------------------------------------------------------------

@pytest.mark.parametrize("market,which", CASES, ids=[f"{m}-{SPECIAL.get((m, w), w)}" for m, w in CASES])
async def test_real_snapshot_book_matches_the_rows(helper, shared_data, market, which):
    slot, rows, oracle = pick(shared_data, market, which)
    _, market_type, market_index = MARKETS[market]
    accounts = accounts_for(rows)
    assert len(accounts) == len({r.user for r in rows})  # nobody has more than 32 orders on one market
    book = await book_of(helper, accounts, market, slot, oracle)
    want = assert_book(book, accounts, market_type, market_index, slot, oracle)

    # every row rests, bar those still in their auction
    taking = [r for r in rows if r.auction_duration and slot - r.slot <= r.auction_duration]
    assert len(book.l3) == len(rows) - len(taking)
    if "auction" in SPECIAL.get((market, which), ""):
        assert taking
    # the recorder stored floating orders at oracle + offset: the same price the helper gives them
    for o in book.l3:
        if o.oracle_offset is not None:
            assert o.price == oracle + o.oracle_offset
    taken = {(r.user, r.order_id) for r in taking}
    assert_units(book, [r for r in _raw(shared_data / SNAPSHOTS / MARKETS[market][0], slot)
                        if (r["user"], int(r["orderId"])) not in taken])

    # post-only orders do not cross, except in the one snapshot that has them crossed: the helper
    # passes the book on as it is (Drift matches a resting order only against a taker)
    bids = [o for o in book.l3 if o.side == "bid"]
    asks = [o for o in book.l3 if o.side == "ask"]
    bid, ask = best_post_only(bids), best_post_only(asks)
    if (market, which) == CROSSED:
        assert (bid, ask) == (62_990_500, 62_950_000)
        assert book.bids[0].price > book.asks[0].price
    elif bid is not None and ask is not None:
        assert bid < ask

    # the helper's L2 is its L3 summed per price: the positions given cover every reduce-only perp
    # order (spot ones are another matter: test_spot_reduce_only_orders_are_left_out_of_the_l2)
    if market_type == "perp":
        assert want  # (assert_book checked both against the rows already)
        for side, got in (("bid", book.bids), ("ask", book.asks)):
            sizes: dict[int, int] = defaultdict(int)
            for o in book.l3:
                if o.side == side:
                    sizes[o.price] += o.size
            assert [(level.price, level.size) for level in got] == list(sizes.items())


async def test_spot_reduce_only_orders_are_left_out_of_the_l2(helper, shared_data):
    """OrderSubscriber.getDLOB (and so the helper) clamps every reduce-only order to the PERP position of
    the order's market index: a reduce-only SOL spot ask, backed by a SOL deposit, has no perp position
    in market 1 (BTC-PERP) to reduce, and counts 0 in the L2, though the program would fill it against
    the deposit. It stays in the L3 at its full size."""
    slot, rows, oracle = pick(shared_data, "SOL", "median")
    accounts = accounts_for(rows)
    book = await book_of(helper, accounts, "SOL", slot, oracle)
    assert_book(book, accounts, "spot", 1, slot, oracle)
    reducing = {(r.user, r.order_id) for r in rows if r.reduce_only}
    assert reducing  # each backed by a SOL deposit (or borrow) that covers it
    assert all(a.positions[("spot", 1)] for a in accounts.values() if any(r.reduce_only for r in a.rows))
    in_l3 = [o for o in book.l3 if (o.user, o.order_id) in reducing]
    assert len(in_l3) == len(reducing)
    l2 = sum(level.size for level in book.bids + book.asks)
    assert l2 == sum(o.size for o in book.l3) - sum(o.size for o in in_l3)


async def test_reduce_only_orders_are_clamped_to_the_position(helper, shared_data):
    """Positions half the size of the largest reduce-only order: the L2 counts each reduce-only order up
    to the position, the L3 its unfilled size.

    The SDK clamps the order's whole size to the position and then takes the filled part off; the program
    (Order::get_base_asset_amount_unfilled) clamps what is left. A partly filled reduce-only order so
    shows less in the L2 than it can fill: here one bid, 2.5 SOL with 0.6 filled, under a 1.25 SOL short,
    shows 0.65 where the program fills 1.25."""
    slot, rows, oracle = pick(shared_data, "SOL-PERP", "median")
    accounts = accounts_for(rows, share=(1, 2))
    book = await book_of(helper, accounts, "SOL-PERP", slot, oracle)
    want = assert_book(book, accounts, "perp", 0, slot, oracle)
    l3 = sum(o.size for o in book.l3)
    l2 = sum(level.size for level in book.bids + book.asks)
    assert l2 == sum(e.fillable for side in want.values() for e in side) < l3
    clamped = [e for side in want.values() for e in side if e.fillable < e.order.size]
    assert len(clamped) >= 10
    short = 0
    for account in accounts.values():
        position = account.perp_base(0)
        for r in account.rows:
            if r.reduce_only and r.filled:
                reducible = max(-position, 0) if r.side == "bid" else max(position, 0)
                short += min(r.remaining, reducible) - max(min(r.base, reducible) - r.filled, 0)
    assert short == 600_000_000


async def test_all_markets_in_one_helper(helper, shared_data):
    """One slot, the four markets' orders together: a user's orders across markets share accounts (up to
    32 orders each, the most any real user had), and each market's book is still its own."""
    slot = FULL_ACCOUNT_SLOT
    rows, oracles = [], {}
    for market in MARKETS:
        _, market_rows, oracle = pick(shared_data, market, slot)
        rows += market_rows
        oracles[market] = oracle
    accounts = accounts_for(rows)
    assert max(len(a.rows) for a in accounts.values()) == MAX_ORDERS
    assert any(len({(r.market_type, r.market_index) for r in a.rows}) > 1 for a in accounts.values())
    assert await helper.upsert({k: a.data for k, a in accounts.items()}) == {}
    for market, (_, market_type, market_index) in MARKETS.items():
        book = await helper.book(market_type, market_index, slot, oracles[market], depth=DEPTH)
        assert_book(book, accounts, market_type, market_index, slot, oracles[market])
        assert len(book.l3) > 50


async def test_users_split_over_several_accounts_give_the_same_book(helper, shared_data):
    """At most 5 orders an account (a real user with more than 32 would need this): the same orders,
    prices and levels, only the L3's user is the sub-account that holds the order."""
    slot, rows, oracle = pick(shared_data, "SOL-PERP", "median")
    whole = accounts_for(rows)
    split = accounts_for(rows, per_account=5)
    assert len(split) > len(whole)
    owners = {pubkey: a.owner for pubkey, a in split.items()}
    book = await book_of(helper, split, "SOL-PERP", slot, oracle)
    assert_book(book, split, "perp", 0, slot, oracle)
    assert {owners[o.user] for o in book.l3} == {r.user for r in rows}
    await helper.reset()
    reference = await book_of(helper, whole, "SOL-PERP", slot, oracle)
    assert (book.bids, book.asks) == (reference.bids, reference.asks)
    assert Counter(replace(o, user=owners[o.user]) for o in book.l3) == Counter(reference.l3)


@pytest.mark.parametrize("market", list(MARKETS))
async def test_floating_prices_are_not_on_the_tick(helper, shared_data, market):
    """The helper (the SDK's getLimitPrice, and dlob.drift.trade, which recorded these) puts a floating
    order at oracle + offset. The program fills it at that price standardized to the tick (bids rounded
    down, asks up; Order::get_limit_price in protocol-v2), so the book shows most floating orders up to a
    tick better than they will fill, on levels of their own."""
    slot, rows, oracle = pick(shared_data, market, "median")
    _, market_type, market_index = MARKETS[market]
    tick = _tick_sizes(shared_data)[(market_type, market_index)]
    assert tick == {"SOL-PERP": 100, "BTC-PERP": 100_000, "ETH-PERP": 10_000, "SOL": 100}[market]
    accounts = accounts_for(rows)
    book = await book_of(helper, accounts, market, slot, oracle)
    floating = [o for o in book.l3 if o.oracle_offset is not None]
    assert floating
    off_tick = 0
    for o in floating:
        assert o.price == oracle + o.oracle_offset
        price = max(oracle + o.oracle_offset, tick)
        on_chain = price - price % tick + (tick if o.side == "ask" and price % tick else 0)
        assert (on_chain <= o.price) if o.side == "bid" else (on_chain >= o.price)
        assert abs(on_chain - o.price) < tick
        off_tick += on_chain != o.price
    # the 2023-12 oracles were not on the tick, so nearly every floating order is off it
    assert off_tick >= len(floating) * 3 // 4
