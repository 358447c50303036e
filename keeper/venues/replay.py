"""A venue that plays an archived session back: archived flow in, the sim out.

Two modes:
- verify: the archived snapshots are served as recorded, user state included, and each plan
  the loop makes is compared with the plan recorded for that snapshot.
- what-if (default): the one simulated exchange (keeper/venues/sim/) holds the replayed
  strategy's account and orders under Drift's rules (tick, step, post-only against the AMM,
  the order cap, margin with open orders, max_ts, reduce-only, fees and their rounding). Each
  archived snapshot moves its oracles, AMM quote and funding rate. Our resting orders fill from
  the archived trades and books through a named queue model (keeper/venues/sim/queue.py) with
  a latency in slots (keeper/venues/sim/fills.py); an order that crosses takes the archived
  liquidity as a taker. Only what the tape printed fills a resting order. The snapshot served is the archived market data with the sim's account.

The queue ahead of our order is what others had resting at its price: the recorded session's
own quotes are taken out of the archived book first (they were the recorded strategy's, not
flow), so replaying a session with its own strategy does not queue behind itself.

It reads the session's columns (keeper/archive/columns.py) one snapshot at a time, through
views that make model objects only for what is looked at (keeper/archive/tape.py).
"""
from __future__ import annotations

from typing import Iterator, Optional

from keeper.archive import tape
from keeper.archive.columns import Block
from keeper.drift_errors import ORDER_NOT_FOUND
from keeper.model import Execution, MarketState, Outcome, Plan, Snapshot
from keeper.venues.base import VenueExhausted
from keeper.venues.sim import AmmSpec, Exchange, MarketConfig, PostOnly, intent_request, settle, user_state
from keeper.venues.sim.fills import DEFAULT_LATENCY_SLOTS, RestingFill, check_latency_slots
from keeper.venues.sim.queue import DEFAULT_QUEUE_MODEL, make_queue_model

AMM_DEPTH = 10**15  # base: the archive shows the AMM's price, not its depth; it is deep


class ReplayVenue:
    network = "replay"

    def __init__(self, ticks: Iterator[tuple[Block, int]], verify: bool = False, collateral: int = 0,
                 fill_model: str = DEFAULT_QUEUE_MODEL, latency_slots: int = DEFAULT_LATENCY_SLOTS,
                 drift_flow: bool = True) -> None:
        self.ticks = ticks  # keeper.archive.tape.ticks(): (block, index) per archived snapshot
        self.verify = verify
        self.collateral = collateral
        self.fill_model = fill_model
        self.latency_slots = check_latency_slots(latency_slots)
        make_queue_model(fill_model)  # an unknown name is refused before the first tick
        # Drift's flow (live or local): a crossed DLOB fills no maker, only a taker or the AMM does.
        # Imported data from elsewhere (a CEX book) is taken as crossing-fills-us.
        self.drift_flow = drift_flow
        self.recorded: Optional[Execution] = None
        self.plans_compared = 0
        self.plans_matched = 0
        self.mismatches: list[str] = []
        self.trades_seen = 0
        self.l3_seen = False
        # what-if state
        self.exchange: Optional[Exchange] = None
        self._resting: dict[int, RestingFill] = {}  # our order id -> its queue and latency
        self._cancelling: dict[int, int] = {}  # our order id -> slot its cancel lands
        self._books: dict[str, tape.OthersBook] = {}  # others' book per market at the previous snapshot

    async def snapshot(self) -> Snapshot:
        for block, i in self.ticks:
            if not block.flatten[i]:  # a tick of the stop's flatten, not of the strategy: not replayed
                break
        else:
            raise VenueExhausted
        b = block
        for r in range(b.rows[i], b.rows[i + 1]):
            self.trades_seen += b.trades_n[r]
            self.l3_seen = self.l3_seen or not b.l3_null[r]
        markets = tape.markets(b, i)
        book_slot = None if b.book_slot_null[i] else b.book_slot[i]
        if self.verify:
            self.recorded = tape.execution(b, i)
            return Snapshot(b.ts[i], b.slot[i], markets, tape.user(b, i), book_slot, tape.last_plan(b, i))
        self._advance(b, i, markets)
        return Snapshot(b.ts[i], b.slot[i], markets, user_state(self.exchange), book_slot, tape.last_plan(b, i))

    async def execute(self, plan: Plan, snapshot: Snapshot) -> Execution:
        if self.verify:
            return self._compare(plan, snapshot)
        ex = self.exchange
        outcomes = []
        for order in plan.cancels:
            if order.order_id in self._cancelling:
                outcomes.append(Outcome("cancel", order.user_order_id, True, "", order.order_id))
            elif order.order_id not in ex.account.orders:
                outcomes.append(Outcome("cancel", order.user_order_id, False, ORDER_NOT_FOUND, order.order_id))
            else:  # it stays fillable until the cancel lands
                self._cancelling[order.order_id] = snapshot.slot + self.latency_slots
                outcomes.append(Outcome("cancel", order.user_order_id, True, "", order.order_id))
        self._land_cancels(snapshot.slot)  # with no latency, at once
        for placement in plan.places:
            outcomes.append(self._place(placement, snapshot))
        outcomes += settle(ex, plan)
        return Execution(snapshot.ts, snapshot.slot, plan, tuple(outcomes))

    async def cancel_all(self) -> int:
        if self.exchange is None:
            return 0
        self._resting.clear()
        self._cancelling.clear()
        return self.exchange.cancel_all()

    async def close(self) -> None:
        pass

    # verify -------------------------------------------------------------------------------
    def _compare(self, plan: Plan, snapshot: Snapshot) -> Execution:
        if self.recorded is None:
            self.mismatches.append(f"slot {snapshot.slot}: no recorded plan for this snapshot")
            return Execution(snapshot.ts, snapshot.slot, plan, ())
        self.plans_compared += 1
        if plan == self.recorded.plan:
            self.plans_matched += 1
        else:
            self.mismatches.append(
                f"slot {snapshot.slot}: recorded {len(self.recorded.plan.cancels)} cancel(s)/{len(self.recorded.plan.places)} place(s), "
                f"replayed {len(plan.cancels)}/{len(plan.places)}"
            )
        return self.recorded

    # what-if ------------------------------------------------------------------------------
    def _open(self, markets: dict[str, MarketState], ts: int, slot: int) -> Exchange:
        configs = []
        for market in markets.values():
            spec = market.spec
            amm = AmmSpec(0, 0, spec.step_size) if spec.kind == "perp" else None
            configs.append(MarketConfig(spec, amm))
        ex = Exchange(configs, self.collateral, ts, {n: m.oracle_price for n, m in markets.items()}, slot=slot)
        for m in ex.markets.values():
            m.amm_fed = True
        return ex

    def _advance(self, block: Block, i: int, markets: dict[str, MarketState]) -> None:
        ts, slot = block.ts[i], block.slot[i]
        if self.exchange is None:
            self.exchange = self._open(markets, ts, slot)
        ex = self.exchange
        for name, market in markets.items():
            if name not in ex.markets:
                continue
            ex.set_oracle(name, market.oracle_price, market.oracle_slot)
            self._amm(name, market)
        others = tape.others(block, i)
        # a cancel that landed by this snapshot's slot keeps its order out of this snapshot's
        # flow; one still on its way leaves the order fillable, as on chain
        self._land_cancels(slot)
        self._fill(slot, markets, others)
        ex.advance(ts, slot)  # funding for the time passed, then expiry
        ex.end_tick(0)  # liquidation, should the account have fallen below maintenance
        for name, market in markets.items():
            if name in ex.markets:
                ex.markets[name].funding_rate = market.funding_rate
        self._books = others
        for oid in [oid for oid in self._resting if oid not in ex.account.orders]:
            del self._resting[oid]

    def _amm(self, name: str, market: MarketState, depth_of=None) -> None:
        """The archived AMM quote, deep; with `depth_of` (a book of others' orders), the archived
        DLOB levels beside it, so an order that crosses can take them."""
        vamm = self.exchange.markets[name].vamm
        if vamm is None:
            return
        bids = [(market.vamm_bid, AMM_DEPTH)] if market.vamm_bid else []
        asks = [(market.vamm_ask, AMM_DEPTH)] if market.vamm_ask else []
        if depth_of is not None:
            bids = sorted(bids + [(lv.price, lv.size) for lv in depth_of.bids], key=lambda lv: -lv[0])
            asks = sorted(asks + [(lv.price, lv.size) for lv in depth_of.asks], key=lambda lv: lv[0])
        vamm.set_quote(bids, asks)

    def _fill(self, slot: int, markets: dict[str, MarketState], others: dict[str, tape.OthersBook]) -> None:
        """The interval's trades meet our orders where they stood when it began (a floating order
        at the previous oracle: informed takers hit quotes before the oracle moves them); then
        floating orders follow the new oracle. Only what printed fills us: on Drift a crossed book,
        or an AMM quote through ours, fills no maker by itself (two makers never match), and a
        stale quote is taken only by a taker whose trade the tape shows."""
        ex = self.exchange
        for oid, resting in list(self._resting.items()):
            name = ex.account.market_of.get(oid)
            if name is None or name not in markets:
                continue
            book = others[name]
            trades_price = resting.price
            got = resting.advance(slot, book, markets[name].trades, crossing=None, crossing_known=self.drift_flow)
            self._apply(oid, resting, got, trades_price)
            price = ex.price_of(oid) if oid in ex.account.orders else resting.price
            if price != resting.price:
                resting.reprice(price, self._books.get(name, book))

    def _apply(self, oid: int, resting: RestingFill, got: int, price: int) -> None:
        if got:
            self.exchange.fill_ours(oid, got, price)  # the sim's rules (a reduce-only cap) may fill less
            if oid in self.exchange.account.orders:
                resting.remaining = self.exchange.account.orders[oid].remaining

    def _land_cancels(self, slot: int) -> None:
        for oid, lands in list(self._cancelling.items()):
            if slot >= lands:
                del self._cancelling[oid]
                self._resting.pop(oid, None)
                self.exchange.cancel(oid)

    def _place(self, placement, snapshot: Snapshot) -> Outcome:
        ex, intent = self.exchange, placement.intent
        takes = not intent.post_only
        market = snapshot.markets.get(intent.market)
        if takes and market is not None:  # it may cross: the archived liquidity is there to take
            self._amm(intent.market, market, self._books.get(intent.market, market.book))
        err, oid = ex.place(intent_request(placement, ex.now_s, PostOnly.MUST))
        if takes and market is not None:
            self._amm(intent.market, market)
        if err:
            return Outcome("place", placement.user_order_id, False, err)
        if oid and oid in ex.account.orders:
            o = ex.account.orders[oid]
            self._resting[oid] = RestingFill(make_queue_model(self.fill_model), intent.side, ex.price_of(oid),
                                             o.remaining, snapshot.slot, self.latency_slots,
                                             self._books.get(intent.market, market.book))
        return Outcome("place", placement.user_order_id, True, "", oid)
