"""The values one tick passes along: Snapshot in, Intents out, a Plan, an Execution.

Money is integers in Drift's precisions everywhere here: prices 1e6 (PRICE_PRECISION),
perp base 1e9 (BASE_PRECISION), spot base 10**decimals, quote 1e6 (QUOTE_PRECISION),
funding rates 1e9 (FUNDING_RATE_PRECISION). Human units only appear at the edges.

Every value is a frozen msgspec Struct: a tick builds thousands of them (a replay, hundreds of
thousands a second), and a Struct is made in C, about ten times faster than a frozen
dataclass; the archive decodes straight into them. They hold no reference cycles (values in,
values out), so the cyclic collector need not track them (gc=False). `replace(value, **fields)`
is the one way to derive a changed copy.
"""
from __future__ import annotations

from typing import Literal, Optional

import msgspec
from msgspec.structs import replace  # noqa: F401  (the one way to change a field of a model value)

from driftpy.constants.numeric_constants import (  # noqa: F401  (re-exported for the rest of the keeper)
    BASE_PRECISION,
    FUNDING_RATE_PRECISION,
    MARGIN_PRECISION,
    PRICE_PRECISION,
    QUOTE_PRECISION,
)

Side = Literal["bid", "ask"]
Kind = Literal["perp", "spot"]

# Drift's fee tiers are numerator / 100_000 (State.perp_fee_structure).
FEE_DENOMINATOR = 100_000
# Basis points: a rate in bps is amount * bps // BPS.
BPS = 10_000
# Drift stores user_order_id in a u8; 0 means "no id", so the keeper tags its orders 1..255.
MAX_USER_ORDER_ID = 255
# A Drift user account has 32 order slots.
MAX_OPEN_ORDERS = 32


class Value(msgspec.Struct, frozen=True, gc=False):
    """The base of every model value."""


def enc_hook(obj):
    """msgspec's hook for what is not a model value itself: a view standing for one (a replay's
    book over columns) gives the value from `model_value()`, and is written as that."""
    model_value = getattr(obj, "model_value", None)
    if model_value is None:
        raise NotImplementedError(f"cannot encode {type(obj).__name__}")
    return model_value()


def asset_of(market: str) -> str:
    """The asset a market trades, and so the oracle it prices with: SOL-PERP and SOL spot are
    both SOL and share one oracle, as on mainnet."""
    return market.removesuffix("-PERP")


class MarketSpec(Value):
    """The static rules of one market, as the program enforces them."""

    name: str
    kind: Kind
    market_index: int
    base_precision: int  # 1e9 for perps, 10**decimals for spot
    tick_size: int  # price precision
    step_size: int  # base precision
    min_order_size: int  # base precision
    taker_fee: int  # per FEE_DENOMINATOR, market fee adjustment applied
    maker_rebate: int  # per FEE_DENOMINATOR, paid to the maker
    margin_ratio_initial: int  # per MARGIN_PRECISION; spot: initial liability weight - 1
    margin_ratio_maintenance: int
    # per MARGIN_PRECISION: spot, a deposit's initial asset weight; perp, unsettled gains' weight
    # in initial margin (unrealized_pnl_initial_asset_weight: 0 on mainnet)
    asset_weight: int = 0


class Level(Value):
    price: int
    size: int


class BookOrder(Value):
    """One resting order in the L3 book (anyone's)."""

    side: Side
    price: int  # effective price now (oracle + offset for floating orders)
    size: int  # remaining base
    user: str
    order_id: int
    oracle_offset: Optional[int] = None
    post_only: bool = False


class Book(Value):
    bids: tuple[Level, ...] = ()  # best first
    asks: tuple[Level, ...] = ()  # best first
    l3: Optional[tuple[BookOrder, ...]] = None  # None where the venue does not know it

    @property
    def best_bid(self) -> Optional[int]:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Optional[int]:
        return self.asks[0].price if self.asks else None

    # What a queue model asks of the book at one price (keeper/venues/sim/fills.py); a replay's
    # columnar book answers the same questions (keeper/archive/tape.py).
    def size_at(self, side: Side, price: int) -> Optional[int]:
        """Size displayed at `price` on one side: 0 where the book shows nothing there, None
        where the price lies beyond the displayed depth (or the side is empty)."""
        for level in self.bids if side == "bid" else self.asks:
            if level.price == price:
                return level.size
            if (level.price < price) if side == "bid" else (level.price > price):
                return 0
        return None

    def orders_at(self, side: Side, price: int) -> Optional[tuple[BookOrder, ...]]:
        """The L3 orders at `price` in queue order, or None where there is no L3."""
        if self.l3 is None:
            return None
        return tuple(o for o in self.l3 if o.side == side and o.price == price)

    def ids_on(self, side: Side) -> Optional[frozenset[tuple[str, int]]]:
        """(user, order_id) of every L3 order on one side, or None where there is no L3."""
        if self.l3 is None:
            return None
        return frozenset((o.user, o.order_id) for o in self.l3 if o.side == side)


class Trade(Value):
    """A public print since the previous snapshot; taker_side is the aggressor.

    A live venue reads its trades from the program's fill events (OrderActionRecord), and
    fills in the fields after taker_side; they are None where the venue has no such record
    (the local market, archives written before the live tape)."""

    price: int  # quote / size, to the nearest unit
    size: int  # base, market base precision
    taker_side: Side
    quote: Optional[int] = None  # quote filled, exactly as the program booked it
    maker: Optional[str] = None  # the maker's User account; None when the vAMM made the price
    taker: Optional[str] = None  # the taker's User account; None when the vAMM took
    maker_fee: Optional[int] = None  # quote the maker paid; negative: the rebate it earned
    taker_fee: Optional[int] = None  # quote the taker paid
    fill_record_id: Optional[int] = None  # the market's own fill counter: unique per market
    slot: Optional[int] = None
    ts: Optional[int] = None  # unix milliseconds of the block (the program's clock counts whole seconds)


class MarketState(Value):
    spec: MarketSpec
    oracle_price: int
    oracle_slot: int
    oracle_conf: int
    mark_price: int
    funding_rate: int  # quote per base per hour, FUNDING_RATE_PRECISION; >0: longs pay shorts
    book: Book
    vamm_bid: Optional[int] = None
    vamm_ask: Optional[int] = None
    trades: tuple[Trade, ...] = ()
    # A second reading of the oracle by an independent parser (live: pythclient on Pyth v2
    # accounts); None where there is none. The risk gate's deviation check compares the two.
    reference_price: Optional[int] = None


class Position(Value):
    """A perp position, or a spot balance, with our own cost accounting."""

    market: str
    base: int  # signed, market base precision
    entry_price: int  # average entry, price precision; 0 when flat
    realized_pnl: int  # quote, fees and funding excluded
    unrealized_pnl: int  # quote, against the oracle


class OpenOrder(Value):
    order_id: int
    user_order_id: int
    market: str
    side: Side
    price: int  # 0 for floating orders
    size: int  # base, as placed
    filled: int = 0
    oracle_offset: Optional[int] = None
    post_only: bool = True
    reduce_only: bool = False
    max_ts: int = 0  # expiry, unix seconds; 0 = none

    @property
    def remaining(self) -> int:
        return self.size - self.filled

    def price_at(self, oracle: int) -> int:
        """The price it rests at now: its limit, or the oracle plus its offset."""
        return oracle + self.oracle_offset if self.oracle_offset is not None else self.price


class Fill(Value):
    """One of our fills; fee is signed quote we paid (negative: a rebate we earned)."""

    market: str
    side: Side
    price: int
    size: int
    fee: int
    order_id: int
    user_order_id: int
    maker: bool
    ts: int
    fill_record_id: Optional[int] = None  # the print in the market's trades, where the venue records one


class SpotBalance(Value):
    """A spot position of the user: a deposit (amount > 0) or a borrow (amount < 0), interest included."""

    market: str
    market_index: int
    decimals: int
    amount: int  # token units, 10**decimals


class UserState(Value):
    total_collateral: int  # quote
    free_collateral: int  # quote
    positions: dict[str, Position] = {}
    open_orders: tuple[OpenOrder, ...] = ()
    fills: tuple[Fill, ...] = ()  # since the previous snapshot
    funding: dict[str, int] = {}  # quote received since the previous snapshot
    spot_balances: dict[str, SpotBalance] = {}  # by market name; empty where unknown
    # Drift's maintenance margin (quote): below it the account is liquidated. None where unknown.
    maintenance_collateral: Optional[int] = None
    maintenance_requirement: Optional[int] = None

    @property
    def equity(self) -> int:
        """What the account is worth, as the risk gate counts it: maintenance collateral, where
        unsettled PnL counts in full (initial margin, total_collateral, counts unsettled gains
        at the market's weight, 0 on mainnet), else total collateral."""
        return self.total_collateral if self.maintenance_collateral is None else self.maintenance_collateral


class Snapshot(Value):
    ts: int  # unix milliseconds (simulated on the local market)
    slot: int
    markets: dict[str, MarketState]
    user: UserState
    # The slot as of which the order book's users were last known complete; None where the
    # book can't go stale (the local market). slot - book_slot is the book's lag.
    book_slot: Optional[int] = None
    # What became of the previous tick's plan, as this snapshot shows it (the loop fills it in);
    # None on a session's first tick and in archives written before it existed.
    last_plan: Optional["LastPlan"] = None


class PlanOrder(Value):
    """One placement of the previous plan, as the snapshot after it shows it.

    placed: accepted and still resting (filled says how much of it traded already);
    rejected: the venue refused it (error: Drift's error name); filled: traded in full;
    expired: gone with part unfilled (its max_ts passed, an IOC's remainder, or the program
    cancelled it)."""

    market: str
    side: Side
    size: int
    user_order_id: int
    status: Literal["placed", "rejected", "filled", "expired"]
    filled: int = 0
    error: str = ""


class LastPlan(Value):
    ts: int  # when the plan was executed, unix milliseconds
    orders: tuple[PlanOrder, ...] = ()
    dropped: tuple[str, ...] = ()  # intents snapping, the risk gate or the order slots dropped


class Intent(Value):
    """An order a strategy wants resting: a limit price, or an offset from the oracle."""

    market: str
    side: Side
    size: int
    price: Optional[int] = None
    oracle_offset: Optional[int] = None
    post_only: bool = True
    reduce_only: bool = False
    expiry_s: int = 0  # lifetime in seconds from placement (Drift's max_ts); 0 = none
    # Time in force: post_only (the default) rests or is refused; neither flag is GTC (takes
    # what it crosses, rests the rest until expiry_s); ioc takes what it crosses, then is gone.
    ioc: bool = False

    def __post_init__(self) -> None:
        if self.side not in ("bid", "ask"):
            raise ValueError(f"intent side must be 'bid' or 'ask', not {self.side!r}")
        if self.ioc and self.post_only:
            raise ValueError("an intent is post-only or immediate-or-cancel, not both")
        price, offset = self.price, self.oracle_offset
        if (type(self.size) is not int or type(self.expiry_s) is not int or (price is not None and type(price) is not int)
                or (offset is not None and type(offset) is not int)):  # strategies make many: one test on the way
            for name in ("size", "price", "oracle_offset", "expiry_s"):
                value = getattr(self, name)
                if value is not None and (type(value) is not int):
                    raise TypeError(f"intent {name} must be an int in Drift precision, not {type(value).__name__}")
        if (price is None) == (offset is None):
            raise ValueError("an intent has either a limit price or an oracle offset")

    def price_at(self, oracle: int) -> int:
        """The price it would rest at now: its limit, or the oracle plus its offset."""
        return self.price if self.price is not None else oracle + self.oracle_offset

    @property
    def time_in_force(self) -> Literal["post_only", "gtc", "ioc"]:
        return "post_only" if self.post_only else "ioc" if self.ioc else "gtc"


class Placement(Value):
    intent: Intent
    user_order_id: int


class Plan(Value):
    cancels: tuple[OpenOrder, ...] = ()
    places: tuple[Placement, ...] = ()
    dropped: tuple[str, ...] = ()  # why intents were dropped on the way (snapping, risk, slots)
    settles: tuple[str, ...] = ()  # perp markets whose PnL is moved into USDC (settle_pnl), after the orders

    def __bool__(self) -> bool:
        return bool(self.cancels or self.places or self.settles)


class Outcome(Value):
    """What the venue did with one action of a plan."""

    action: Literal["cancel", "place", "settle"]
    user_order_id: int
    ok: bool
    error: str = ""  # Drift's error name when rejected
    order_id: int = 0
    market: str = ""  # a settle's market


class Execution(Value):
    ts: int
    slot: int
    plan: Plan
    outcomes: tuple[Outcome, ...]
    risk_state: str = "ACTIVE"
