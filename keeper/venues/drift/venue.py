"""DriftVenue: the Venue protocol on a real Drift deployment (devnet, mainnet, localnet, any RPC).

driftpy subscribes to the chosen markets, their oracles and our User; the Node helper holds
the DLOB. A plan goes out as one transaction when it fits (cancel_orders_by_ids, then
place_orders), signed and confirmed by the TxSender, which never re-signs on its own: if a
transaction's fate is unknown when its blockhash expires, the next snapshot shows what landed
and the reconciler plans from there, so a retry can't double an order.

Each snapshot carries the tape (tape.py): every fill on the quoted markets since the previous
snapshot, from the program's fill events, and ours among them with the program's price, fee
and maker flag; our funding payments; our spot balances. When the events can't be read, our
fills are inferred from our orders' filled amounts instead (at the limit price, as makers),
and that is logged.
"""
from __future__ import annotations

import logging
import time

from anchorpy.program.context import Context
from driftpy.accounts.types import DataAndSlot
from driftpy.addresses import get_user_stats_account_public_key
from driftpy.math.margin import MarginCategory
from driftpy.math.perp_position import is_available
from driftpy.math.spot_position import is_spot_position_available
from driftpy.types import MarketType, OrderParams, OrderType, PositionDirection, PostOnlyParams
from solders.instruction import AccountMeta
from solders.pubkey import Pubkey

from keeper.accounting import quote_value
from keeper.backoff import Backoff
from keeper.drift_idl import as_fields, decode, encode
from keeper.model import (
    Execution,
    Fill,
    MarketState,
    OpenOrder,
    Outcome,
    Plan,
    Position,
    Snapshot,
    SpotBalance,
    UserState,
    replace,
)
from keeper.ui import units
from keeper.venues.base import SkipTick
from keeper.venues.drift.accounts import keeper_orders, market_name, open_orders, token_amount
from keeper.venues.drift.client import KeeperDriftClient
from keeper.venues.drift.dlob import DlobError, DlobHelper
from keeper.venues.drift.endpoints import Endpoints
from keeper.venues.drift.markets import QUOTE_SPOT_INDEX, Deployment
from keeper.venues.drift.orderbook import BookUsers
from keeper.venues.drift.reference import PythReference
from keeper.venues.drift.sender import Sent, Status, TxSender, is_parser_panic, split_to_fit
from keeper.venues.drift.tape import Drained, Tape
from keeper.venues.drift.watch import StreamWatch
from keeper.venues.sim.fees import fee_for

log = logging.getLogger(__name__)
BOOK_DEPTH = 20
# Per instruction, so any one of them fits a transaction with room to spare; the sender then
# packs as many instructions into each transaction as fit.
CANCELS_PER_IX = 16
PLACES_PER_IX = 6
# OrderParams.bit_flags: this program build reads bit 0 as immediate_or_cancel (post-only off)
IMMEDIATE_OR_CANCEL = 1
TAKE_MAKERS = 4  # DLOB makers an IOC order is matched against, each adding two accounts to its transaction


class DriftVenue:
    def __init__(self, deployment: Deployment, client: KeeperDriftClient, sender: TxSender, helper: DlobHelper,
                 book_users: BookUsers, reference: PythReference, post_only: str = "must", *,
                 endpoints: Endpoints | None = None, watch: StreamWatch | None = None):
        self.network = deployment.network.name
        self.deployment, self.client, self.sender, self.helper, self.book_users, self.reference = (
            deployment, client, sender, helper, book_users, reference)
        self._post_only = PostOnlyParams.MustPostOnly() if post_only == "must" else PostOnlyParams.TryPostOnly()
        self._user_key = client.get_user_account_public_key()
        self.user = str(self._user_key)  # recorded in the session manifest
        self._names = deployment.by_index()
        self._seen: dict[int, OpenOrder] = {}  # our orders at the previous snapshot, by order id
        self._cancelled: set[int] = set()
        self._last_base: dict[str, int] = {}
        self._encoded: dict[str, tuple[object, bytes]] = {}  # key -> (decoded account, its bytes)
        self._user_bytes = b""
        self.placing = PlaceBackoff()
        specs = {(m.spec.kind, m.spec.market_index): m.spec for m in deployment.markets.values()}
        self.tape = Tape(client.connection, self.user, specs, subscription=book_users.subscription)
        self.endpoints = endpoints  # the RPC endpoints; `endpoints.in_use` names the one in use
        self.watch = watch  # driftpy's websockets, checked for silence every tick
        if endpoints is not None:
            endpoints.on_switch(self.tape.reopen)  # the tape's stream follows the endpoint in use

    # -- snapshot ------------------------------------------------------------------------
    async def snapshot(self) -> Snapshot:
        try:
            return await self._snapshot()
        except SkipTick:
            raise
        except DlobError as exc:
            raise SkipTick(f"order book unavailable: {exc}") from None
        except Exception as exc:  # an RPC fault or a nonsense answer: skip the tick, don't die with orders out
            raise SkipTick(f"data unavailable: {type(exc).__name__}: {str(exc)[:200]}") from None
        except BaseException as exc:  # solders' parser panic is a BaseException; nothing else here is caught
            if is_parser_panic(exc):
                raise SkipTick("data unavailable: the RPC's answer broke solders' parser") from None
            raise

    async def _snapshot(self) -> Snapshot:
        user = self.client.get_user()
        slot, references = await self._read_fresh(user)
        if self.watch is not None:
            await self.watch.check(slot)
        missing = self.client.missing_data()  # driftpy's maths below would trip over it
        if missing:
            raise SkipTick(f"data unavailable: {missing}")
        account = user.get_user_account()
        ts = int(time.time() * 1000)
        await self.book_users.refresh({self.user: self._raw("User", self.user, account)}, slot)
        markets = {name: await self._market(name, slot, ts, references.get(name)) for name in self.deployment.markets}
        orders = open_orders(account, self._names)
        positions = self._positions(account, markets)
        ours = keeper_orders(orders)
        self.tape.note_orders(ours)
        tape = await self.tape.drain(account, slot)  # after reading our User: what moved it is in by now
        markets = {name: replace(m, trades=tuple(tape.trades.get(name, ()))) for name, m in markets.items()}
        fills = self._fills(tape, self._inferred_fills(ours, markets, ts), positions, markets)
        # driftpy's margin maths can hand back floats (a division inside); money stays integer here.
        total, free = int(user.get_total_collateral()), max(0, int(user.get_free_collateral()))
        maintenance = (int(user.get_total_collateral(MarginCategory.MAINTENANCE)),
                       int(user.get_margin_requirement(MarginCategory.MAINTENANCE)))
        state = UserState(total, free, positions, orders, fills, tape.funding, self._spot_balances(account), *maintenance)
        return Snapshot(ts, slot, markets, state, book_slot=self.book_users.book_slot(slot))

    async def _read_fresh(self, user) -> tuple[int, dict]:
        """Our User and the Pyth accounts in one getMultipleAccounts: the RPC's slot, a User that
        holds the orders our last plan placed (a polled or streamed copy can lag behind them,
        and planning from it would reuse their ids), and the reference prices."""
        key = self._user_key
        reply = await self.client.connection.get_multiple_accounts([key, *self.reference.keys])
        slot, (info, *oracles) = reply.context.slot, reply.value
        if info is None:
            raise ValueError(f"our User account {key} is gone")
        data = bytes(info.data)
        if data != self._user_bytes:  # decoding a User costs ~8 ms: only when it changed
            account = decode(data)
            self._user_bytes = data
            self._encoded[self.user] = (account, data)
            # driftpy keeps whichever copy is newer, ours or its own subscription's
            user.account_subscriber.update_data(DataAndSlot(slot, account))
        return slot, self.reference.prices(oracles, slot)

    async def _market(self, name: str, slot: int, ts: int, reference: int | None) -> MarketState:
        m = self.deployment.markets[name]
        index = m.spec.market_index
        if m.spec.kind == "perp":
            account = self.client.get_perp_market_account(index)
            oracle = self.client.get_oracle_price_data_for_perp_market(index)
            raw = self._raw("PerpMarket", name, account)
            funding = account.amm.last_funding_rate
        else:
            oracle = self.client.get_oracle_price_data_for_spot_market(index)
            raw, funding = None, 0
        detail = await self.helper.book_detail(m.spec.kind, index, slot, oracle.price, oracle.slot,
                                               oracle_conf=oracle.confidence, perp_market_bytes=raw, now=ts // 1000,
                                               depth=BOOK_DEPTH)
        book = detail.book
        bid, ask = book.best_bid, book.best_ask
        mark = (bid + ask) // 2 if bid and ask else oracle.price
        return MarketState(m.spec, oracle.price, oracle.slot, oracle.confidence, mark, funding, book,
                           detail.vamm_bid, detail.vamm_ask, reference_price=reference)

    def _raw(self, account_type: str, key: str, account) -> bytes:
        """The account's bytes for the helper. driftpy keeps only decoded accounts, and encoding a
        User costs ~4 ms, so re-encode only when driftpy has replaced the object with a newer one."""
        cached = self._encoded.get(key)
        if cached is None or cached[0] is not account:
            cached = self._encoded[key] = (account, encode(account_type, as_fields(account)))
        return cached[1]

    def _positions(self, account, markets: dict[str, MarketState]) -> dict[str, Position]:
        out = {}
        for p in account.perp_positions:
            name = self._names.get(("perp", p.market_index))
            if name is None or not p.base_asset_amount:
                continue
            base, entry_quote = p.base_asset_amount, p.quote_entry_amount
            spec = markets[name].spec
            entry = -entry_quote * spec.base_precision // base
            unrealized = quote_value(base, markets[name].oracle_price, spec.base_precision) + entry_quote
            out[name] = Position(name, base, entry, 0, unrealized)
        return out

    def _spot_balances(self, account) -> dict[str, SpotBalance]:
        out = {}
        for p in account.spot_positions:
            market = self.client.get_spot_market_account(p.market_index) if p.scaled_balance else None
            if market is not None:  # driftpy loads every market we held at start, and the chosen ones
                name = market_name(market)
                out[name] = SpotBalance(name, p.market_index, market.decimals, token_amount(p, market))
        return out

    def _fills(self, tape: Drained, inferred: dict[str, list[tuple[Fill, bool]]], positions: dict[str, Position],
               markets: dict[str, MarketState]) -> tuple[Fill, ...]:
        """Ours from the fill events; inferred from our orders only when the events are unavailable."""
        moved = {}
        for name in markets:
            base = positions[name].base if name in positions else 0
            moved[name], self._last_base[name] = base - self._last_base.get(name, 0), base
        if tape.fills is None:
            log.warning("fill events unavailable (%s): our fills are inferred from our orders' filled amounts", tape.why)
            return self._keep_confirmed(inferred, moved)
        for name, m in markets.items():
            explained = sum(f.size if f.side == "bid" else -f.size for f in tape.fills if f.market == name)
            if m.spec.kind == "perp" and explained != moved[name]:
                log.warning("%s: position moved %s but our fill events say %s", name,
                            units.base(moved[name], m.spec, signed=True), units.base(explained, m.spec, signed=True))
        return tuple(tape.fills)

    def _inferred_fills(self, ours: tuple[OpenOrder, ...], markets, ts: int) -> dict[str, list[tuple[Fill, bool]]]:
        """Fills read from our orders' filled amounts since the previous snapshot, each with whether
        its order is still live. Kept up every tick, so the fallback is ready whenever it's needed."""
        now = {o.order_id: o for o in ours}
        seen, cancelled = self._seen, self._cancelled
        self._seen, self._cancelled = now, set()
        fills: dict[str, list[tuple[Fill, bool]]] = {}
        for oid, before in seen.items():
            after = now.get(oid)
            if after is None and oid in cancelled:
                continue
            size = (after.filled if after else before.size) - before.filled
            if size > 0:
                fill = self._fill(before, size, markets[before.market], ts)
                fills.setdefault(before.market, []).append((fill, after is not None))
        return fills

    @staticmethod
    def _keep_confirmed(inferred: dict[str, list[tuple[Fill, bool]]], moved: dict[str, int]) -> tuple[Fill, ...]:
        out = []
        for name, found in inferred.items():
            explained = sum(f.size if f.side == "bid" else -f.size for f, _ in found)
            if explained != moved.get(name, 0):  # a vanished order was cancelled or expired, not filled
                log.info("%s: position moved %d; keeping only fills seen on live orders", name, moved.get(name, 0))
                found = [(f, seen_live) for f, seen_live in found if seen_live]
            out += [f for f, _ in found]
        return tuple(out)

    def _fill(self, order: OpenOrder, size: int, market: MarketState, ts: int) -> Fill:
        price = order.price_at(market.oracle_price)
        fee = fee_for(size, price, market.spec, maker=True)  # the program's rounding: rebates round down
        return Fill(order.market, order.side, price, size, fee, order.order_id, order.user_order_id, True, ts)

    # -- execute -------------------------------------------------------------------------
    async def execute(self, plan: Plan, snapshot: Snapshot) -> Execution:
        """Cancels then places, in as few transactions as fit; each action's outcome is its transaction's."""
        if not plan:
            return Execution(snapshot.ts, snapshot.slot, plan, ())
        makers = await self._makers(plan, snapshot)
        groups, actions = self.instruction_groups(plan, snapshot, makers)
        outcomes, slot = [], snapshot.slot
        if self.placing.paused():
            held = [a for acts in actions if acts[0][0] == "place" for a in acts]
            outcomes += [Outcome(kind, uoid, False, f"paused: {self.placing.reason}", oid) for kind, uoid, oid in held]
            kept = [i for i, acts in enumerate(actions) if acts[0][0] == "cancel"]
            groups, actions = [groups[i] for i in kept], [actions[i] for i in kept]
        start = 0
        for batch in split_to_fit(self.sender.payer, groups, self.sender.config.cu_limit):
            kinds = [acts[0][0] for acts in actions[start:start + len(batch)]]  # one instruction per group
            batch_actions = [a for acts in actions[start:start + len(batch)] for a in acts]
            start += len(batch)
            sent = await self._send(batch, batch_actions)
            slot = sent.slot or slot
            if sent.status is Status.FAILED and "cancel" in kinds and "place" in kinds:
                # The refusal took the batch's cancels with it, and the quotes they were replacing
                # must not outlive it: cancel those on their own now.
                cancels = [ix for ix, kind in zip(batch, kinds) if kind == "cancel"]
                cancel_actions = [a for a in batch_actions if a[0] == "cancel"]
                again = await self._send(cancels, cancel_actions)
                outcomes += self._outcomes(again, cancel_actions)
                outcomes += self._outcomes(sent, [a for a in batch_actions if a[0] == "place"])
                slot = again.slot or slot
            else:
                outcomes += self._outcomes(sent, batch_actions)
            if "place" in kinds:
                failed_at = kinds[sent.instruction] if sent.instruction in range(len(kinds)) else None
                if sent.ok:
                    self.placing.landed()
                elif sent.status is Status.FAILED and failed_at == "place":
                    self.placing.refused(sent.error or str(sent.status))
        if plan.settles:
            outcomes += await self._settle(plan.settles, snapshot)
        return Execution(snapshot.ts, slot, plan, tuple(outcomes))

    async def _settle(self, markets: tuple[str, ...], snapshot: Snapshot) -> list[Outcome]:
        """One settle_pnl per market, in a transaction of their own: a refused settle (an
        invalid oracle, an empty PnL pool) must not take the plan's orders with it."""
        user = self.client.get_user_account()
        markets = tuple(m for m in markets if m in snapshot.markets)
        ixs = [self.client.get_settle_pnl_ix(self._user_key, user, snapshot.markets[m].spec.market_index)
               for m in markets]
        sent = await self.sender.send(ixs, f"settle_pnl {', '.join(markets)}")
        if not sent.ok:
            log.warning("settle transaction failed: %s", sent.describe())
        return [Outcome("settle", 0, sent.ok, self._error(sent), 0, m) for m in markets]

    async def _send(self, batch: list, batch_actions: list[tuple]) -> Sent:
        sent = await self.sender.send(batch, f"{sum(k == 'cancel' for k, _, _ in batch_actions)} cancels, "
                                             f"{sum(k == 'place' for k, _, _ in batch_actions)} places")
        if not sent.ok and sent.error:
            log.warning("plan transaction failed: %s", sent.describe())
        if sent.ok:
            self._cancelled.update(oid for kind, _, oid in batch_actions if kind == "cancel")
        return sent

    @staticmethod
    def _error(sent: Sent) -> str:
        """An outcome's error for every action a transaction carried: its status and Drift error."""
        return "" if sent.ok else ": ".join(str(x) for x in (sent.status, sent.error) if x)

    @classmethod
    def _outcomes(cls, sent: Sent, batch_actions: list[tuple]) -> list[Outcome]:
        error = cls._error(sent)
        return [Outcome(kind, uoid, sent.ok, error, oid) for kind, uoid, oid in batch_actions]

    def instruction_groups(self, plan: Plan, snapshot: Snapshot,
                           makers: dict | None = None) -> tuple[list[list], list[list[tuple]]]:
        """One cancel_orders_by_ids per CANCELS_PER_IX cancels, then one place_orders per
        PLACES_PER_IX places (an IOC one place_and_take_perp_order of its own: the program
        refuses IOC in place_orders), in the plan's order; and for each, its actions as
        (kind, user_order_id, order_id)."""
        groups, actions = [], []
        for chunk in _chunks(list(plan.cancels), CANCELS_PER_IX):
            groups.append([self._cancel_ix([o.order_id for o in chunk])])
            actions.append([("cancel", o.user_order_id, o.order_id) for o in chunk])
        runs: list[list] = []
        for p in plan.places:
            if self._takes(p) or not runs or self._takes(runs[-1][-1]) or len(runs[-1]) == PLACES_PER_IX:
                runs.append([])
            runs[-1].append(p)
        for chunk in runs:
            params = [self._order_params(p, snapshot.ts) for p in chunk]
            groups.append([self._take_ix(params[0], (makers or {}).get(chunk[0].user_order_id, []))
                           if self._takes(chunk[0]) else self._place_ix(params)])
            actions.append([("place", p.user_order_id, 0) for p in chunk])
        return groups, actions

    def _takes(self, placement) -> bool:
        """An IOC perp order goes out as place_and_take_perp_order. A spot one (place_and_take_spot
        needs an external fulfilment market) goes in place_orders as a plain limit without the IOC
        bit, which place_orders refuses: what it does not take rests until the next plan cancels it."""
        return placement.intent.ioc and self.deployment.markets[placement.intent.market].spec.kind == "perp"

    def _order_params(self, placement, now_ms: int) -> OrderParams:
        intent = placement.intent
        spec = self.deployment.markets[intent.market].spec
        return OrderParams(
            order_type=OrderType.Limit(),
            market_type=MarketType.Perp() if spec.kind == "perp" else MarketType.Spot(),
            direction=PositionDirection.Long() if intent.side == "bid" else PositionDirection.Short(),
            base_asset_amount=intent.size, market_index=spec.market_index, user_order_id=placement.user_order_id,
            price=intent.price or 0, oracle_price_offset=intent.oracle_offset,
            post_only=self._post_only if intent.post_only else PostOnlyParams.NONE(), reduce_only=intent.reduce_only,
            max_ts=now_ms // 1000 + intent.expiry_s if intent.expiry_s else None,
            bit_flags=IMMEDIATE_OR_CANCEL if self._takes(placement) else 0,
        )

    def _remaining(self, writable_perp: int | None = None, others: list = ()) -> list:
        """Every configured market plus every market the user holds (the program's margin check
        reads them all). The configured ones are listed outright rather than left to driftpy's
        reading of a cached User, which may lag a slot behind a position just opened."""
        perps = [m.spec.market_index for m in self.deployment.markets.values()
                 if m.spec.kind == "perp" and m.spec.market_index != writable_perp]
        spots = sorted({QUOTE_SPOT_INDEX, *(m.spec.market_index for m in self.deployment.markets.values()
                                            if m.spec.kind == "spot")})
        return self.client.get_remaining_accounts(user_accounts=[self.client.get_user_account(), *others],
                                                  readable_perp_market_indexes=perps,
                                                  writable_perp_market_indexes=[] if writable_perp is None else [writable_perp],
                                                  readable_spot_market_indexes=spots)

    def _accounts(self) -> dict:
        return {"state": self.client.get_state_public_key(), "user": self._user_key,
                "authority": self.client.wallet.public_key}

    def _cancel_ix(self, order_ids: list[int]):
        return self.client.program.instruction["cancel_orders_by_ids"](
            order_ids, ctx=Context(accounts=self._accounts(), remaining_accounts=self._remaining()))

    def _place_ix(self, params: list[OrderParams]):
        accounts = {**self._accounts(), "userStats": self.client.get_user_stats_public_key()}
        return self.client.program.instruction["place_orders"](
            params, ctx=Context(accounts=accounts, remaining_accounts=self._remaining()))

    async def _makers(self, plan: Plan, snapshot: Snapshot) -> dict[int, list[tuple]]:
        """For each IOC placement, the DLOB makers its limit crosses (best first, at most
        TAKE_MAKERS): (User key, UserStats key, decoded User), read fresh, as the program
        wants each maker's User and UserStats to fill against them."""
        wanted: dict[int, list[str]] = {}
        for p in plan.places:
            it, market = p.intent, snapshot.markets.get(p.intent.market)
            if not it.ioc or market is None or market.book.l3 is None:
                continue
            crossing = sorted((o for o in market.book.l3 if o.user != self.user and o.side != it.side
                               and (o.price <= it.price if it.side == "bid" else o.price >= it.price)),
                              key=lambda o: o.price if it.side == "bid" else -o.price)
            wanted[p.user_order_id] = list(dict.fromkeys(o.user for o in crossing))[:TAKE_MAKERS]
        keys = list(dict.fromkeys(k for ks in wanted.values() for k in ks))
        if not keys:
            return {}
        reply = await self.client.connection.get_multiple_accounts([Pubkey.from_string(k) for k in keys])
        found = {}
        for key, info in zip(keys, reply.value):
            account = decode(bytes(info.data)) if info is not None else None
            if account is not None and self._knows_markets_of(account):
                found[key] = (Pubkey.from_string(key),
                              get_user_stats_account_public_key(self.client.program_id, account.authority), account)
        return {uoid: [found[k] for k in ks if k in found] for uoid, ks in wanted.items()}

    def _knows_markets_of(self, account) -> bool:
        """Whether every market the maker holds is one driftpy subscribed here: its margin check
        needs them all as accounts, and a maker we cannot pass is left out, not guessed at."""
        perps = {m.spec.market_index for m in self.deployment.markets.values() if m.spec.kind == "perp"}
        spots = {QUOTE_SPOT_INDEX} | {m.spec.market_index for m in self.deployment.markets.values() if m.spec.kind == "spot"}
        return (all(is_available(p) or p.market_index in perps for p in account.perp_positions)
                and all(is_spot_position_available(p) or p.market_index in spots for p in account.spot_positions))

    def _take_ix(self, params: OrderParams, makers: list[tuple]):
        """Filled now against the given makers and the AMM within its limit, the rest dropped
        (the program refuses IOC in place_orders)."""
        accounts = {**self._accounts(), "user_stats": self.client.get_user_stats_public_key()}
        remaining = self._remaining(writable_perp=params.market_index, others=[m[2] for m in makers])
        remaining += [AccountMeta(key, is_signer=False, is_writable=True) for user, stats, _ in makers
                      for key in (user, stats)]
        return self.client.program.instruction["place_and_take_perp_order"](
            params, None, ctx=Context(accounts=accounts, remaining_accounts=remaining))

    # -- shutdown ------------------------------------------------------------------------
    async def cancel_all(self, attempts: int = 5) -> int:
        """Cancel every keeper order and confirm it on chain; read the User fresh each round."""
        cancelled = 0
        for _ in range(attempts):
            ours = await self._fresh_keeper_orders()
            if not ours:
                return cancelled
            for chunk in _chunks(list(ours), CANCELS_PER_IX):
                sent = await self.sender.send([self._cancel_ix([o.order_id for o in chunk])], f"cancel {len(chunk)} orders")
                if sent.status == "dry_run":
                    return 0
                if sent.ok:
                    cancelled += len(chunk)
        left = await self._fresh_keeper_orders()
        if left:
            log.error("%d keeper orders still open after %d attempts to cancel them", len(left), attempts)
        return cancelled

    async def _fresh_keeper_orders(self) -> tuple[OpenOrder, ...]:
        info = await self.client.connection.get_account_info(self._user_key)
        if info.value is None:
            return ()
        return keeper_orders(open_orders(decode(bytes(info.value.data)), self._names))

    async def close(self) -> None:
        try:
            await self.tape.close()
            await self.book_users.close()
            await self.client.unsubscribe()
        finally:
            await self.helper.close()
            await self.client.connection.close()



class PlaceBackoff:
    """After the program refuses a placement (a post-only quote that would cross, too little
    collateral...), new placements pause: FIRST_S, doubling per refusal in a row up to MAX_S.
    Cancels never pause. A placement that lands ends it."""

    FIRST_S = 1.0
    MAX_S = 30.0

    def __init__(self):
        self.backoff = Backoff(self.FIRST_S, self.MAX_S)
        self.reason = ""

    @property
    def refusals(self) -> int:
        return self.backoff.failures

    def paused(self) -> bool:
        return self.backoff.held()

    def refused(self, reason: str) -> None:
        self.reason = reason
        wait = self.backoff.failed()
        log.warning("placements paused for %g s: %s (%d refusal(s) in a row)", wait, reason, self.refusals)

    def landed(self) -> None:
        if self.refusals:
            log.info("placements resumed after %d refusal(s)", self.refusals)
        self.backoff.reset()
        self.reason = ""


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]
