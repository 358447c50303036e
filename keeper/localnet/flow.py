"""Background makers and takers, so the book is never empty and resting quotes get filled.

Makers are real Drift users (own keypairs, funded, created by the program's instructions)
keeping post-only limit orders around the oracle on every perp market. Their ladder is the
real DLOB's inner book (book_shapes.json: each level's distance from the oracle and size),
dealt round-robin to the makers. Even-numbered makers quote fixed prices and requote (cancel +
place, one transaction) when the oracle has moved REQUOTE_PPM from where they quoted; odd ones
quote oracle offsets, which float by themselves and are only replaced after fills.

One taker arrives per market at the market's real rate (a seeded Poisson process, sizes from
the local venue's Takers) and crosses the book with an immediate-or-cancel place_and_take.
It names as makers the users whose resting orders its limit crosses, best price first, found
by decoding the User accounts the server indexes (`users_with_orders`); so anyone's resting
orders fill, the keeper's included. The program matches the taker against those orders and
the AMM, whichever is better.

Everything is deterministic given the seed and the ledger: keypairs and random streams come
from the seed, and nothing reads the wall clock. Money is integers (price 1e6, base 1e9).
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Callable

from driftpy import types as dt
from driftpy.decode.user import decode_user
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from keeper.drift_idl import discriminator
from keeper.localnet import genesis, instructions
from keeper.localnet.genesis import Exchange
from keeper.localnet.instructions import TxFailed
from keeper.venues.local.specs import params, shapes, spec
from keeper.venues.local.takers import SLIPPAGE_PPM, Takers

SLOT_MS = 400  # default slot length, for taker arrival rates
MAKERS = 2
LEVELS = 3  # orders per side, per market, per maker
REQUOTE_PPM = 200  # a fixed-price maker requotes once the oracle is 2 bps from its quote anchor
MAX_MAKERS_PER_TAKE = 6  # each maker adds two accounts; more would not fit one transaction
SOL_LAMPORTS = 100 * 10**9  # rent for the user accounts and fees
MAKER_USDC = 10_000_000 * 10**6
TAKER_USDC = 10_000_000 * 10**6
TAKER_CAP_QUOTE = 500_000 * 10**6  # past this position value the taker only trades to reduce it
PPM = 1_000_000


@dataclass(frozen=True, slots=True)
class Level:
    side: str  # "bid" or "ask"
    distance_ppm: int  # from the oracle, > 0
    size: int  # base 1e9


@dataclass
class StepReport:
    requotes: int = 0
    takes: int = 0
    errors: list[str] = field(default_factory=list)


def _keypair(seed: int, role: str) -> Keypair:
    return Keypair.from_seed(hashlib.sha256(f"drift-keeper localnet {role} {seed}".encode()).digest())


def ladder(name: str, makers: int = MAKERS, levels: int = LEVELS) -> list[list[Level]]:
    """Each maker's levels on one market: the real book's nearest orders per side, dealt round-robin."""
    s = spec(name)
    out: list[list[Level]] = [[] for _ in range(makers)]
    for side in ("bid", "ask"):
        near = []
        for side_i, ppm, steps, floating, _post_only, _maker in shapes()[name]["orders"]:
            distance = abs(ppm if floating else ppm - PPM)
            on_side = (ppm < 0 if floating else ppm < PPM) if side == "bid" else (ppm > 0 if floating else ppm > PPM)
            if side_i == (0 if side == "bid" else 1) and on_side and distance > 0:
                near.append((distance, max(steps * s.step_size, s.min_order_size)))
        near.sort()
        for j, (distance, size) in enumerate(near[: makers * levels]):
            out[j % makers].append(Level(side, distance, size))
    return out


def _round(value: int, tick: int, up: bool) -> int:
    return -(-value // tick) * tick if up else value // tick * tick


def order_params(market: int, side: str, size: int, price: int = 0, offset: int | None = None,
                 post_only: bool = True, ioc: bool = False) -> dt.OrderParams:
    """A perp limit order. `ioc` sets bit 0 of bit_flags, which this program reads as immediate_or_cancel."""
    return dt.OrderParams(
        order_type=dt.OrderType.Limit(), market_type=dt.MarketType.Perp(), market_index=market,
        direction=dt.PositionDirection.Long() if side == "bid" else dt.PositionDirection.Short(),
        base_asset_amount=size, price=price, oracle_price_offset=offset,
        post_only=dt.PostOnlyParams.MustPostOnly() if post_only else dt.PostOnlyParams.NONE(),
        bit_flags=1 if ioc else 0)


def quote(name: str, level: Level, oracle: int, floating: bool) -> dt.OrderParams:
    """One maker level as an order: a fixed price, or an oracle offset, rounded away from the oracle."""
    s = spec(name)
    sign = -1 if level.side == "bid" else 1
    away = level.side == "ask"  # round asks up, bids down: never toward the oracle
    if floating:
        offset = _round(sign * oracle * level.distance_ppm // PPM, s.tick_size, away)
        return order_params(s.market_index, level.side, level.size, offset=offset or sign * s.tick_size)
    price = _round(oracle * (PPM + sign * level.distance_ppm) // PPM, s.tick_size, away)
    return order_params(s.market_index, level.side, level.size, price=max(price, s.tick_size))


def effective_price(order, oracle: int) -> int:
    """Where a resting perp limit order stands now: oracle-offset orders float with the oracle."""
    return oracle + order.oracle_price_offset if order.oracle_price_offset else order.price


def is_open_perp(order, market: int) -> bool:
    return (order.base_asset_amount > order.base_asset_amount_filled and "Open" in str(order.status)
            and "Perp" in str(order.market_type) and order.market_index == market)


USER_DISCRIMINATOR = discriminator("User")


class Flow:
    """Call step() once per slot, after the oracles moved; the first step (or setup()) creates the users.

    `users_with_orders` returns the User accounts (address -> data) that may hold resting
    orders; by default every User account the ledger indexes (Chain.program_accounts), or
    only the flow's own makers on a plain LiteSVM.
    """

    def __init__(self, svm, ex: Exchange, users_with_orders: Callable[[], dict[Pubkey, bytes]] | None = None, *,
                 seed: int = 0, slot_ms: int = SLOT_MS, makers: int = MAKERS, levels: int = LEVELS,
                 taker_rate_ppm: int = PPM):
        self.svm, self.ex, self.slot_ms = svm, ex, slot_ms
        self.users_with_orders = users_with_orders or self._indexed_users
        self._ready = False
        self.makers = [_keypair(seed, f"maker {i}") for i in range(makers)]
        self.taker = _keypair(seed, "taker")
        self._ladders = {m.name: ladder(m.name, makers, levels) for m in ex.perps()}
        self._anchors: dict[tuple[int, str], int] = {}  # (maker, market) -> oracle price quoted around
        self._takers = {}
        for m in ex.perps():
            p = params(m.name)
            rate = p.takers_per_hour * taker_rate_ppm // PPM
            self._takers[m.name] = Takers(shapes()[m.name], spec(m.name).step_size, rate, p.taker_size_ppm,
                                          random.Random(f"{seed}/{m.name}/localnet-taker"))

    def _indexed_users(self) -> dict[Pubkey, bytes]:
        index = getattr(self.svm, "program_accounts", None)
        if index is None:
            return {k: bytes(self.svm.get_account(k).data) for k in self.maker_users()}
        return {k: bytes(a.data) for k, a in index(self.ex.program_id) if bytes(a.data[:8]) == USER_DISCRIMINATOR}

    def maker_users(self) -> list[Pubkey]:
        return [self.ex.user(k.pubkey()) for k in self.makers]

    def setup(self) -> None:
        if self._ready:
            return
        self._ready = True
        for kp, usdc in [(k, MAKER_USDC) for k in self.makers] + [(self.taker, TAKER_USDC)]:
            genesis.fund(self.svm, self.ex, kp.pubkey(), SOL_LAMPORTS, usdc)
            instructions.send(self.svm, kp, [*instructions.init_user_ixs(self.ex, kp.pubkey(), "localnet flow"),
                                        instructions.deposit_ix(self.ex, kp.pubkey(), usdc)])

    def step(self, slot: int | None = None) -> StepReport:
        """One slot of activity (`slot` is informational: the ledger's clock is what counts)."""
        self.setup()
        report = StepReport()
        prices = genesis.oracle_prices(self.svm, self.ex)
        for i, kp in enumerate(self.makers):
            self._requote(i, kp, prices, report)
        for m in self.ex.perps():
            for side, size, _informed in self._takers[m.name].arrivals(self.slot_ms):  # no toxicity here
                self._take(m.name, side, size, prices[genesis.asset_of(m.name)], report)
        return report

    # -- makers ------------------------------------------------------------------------------
    def _requote(self, i: int, kp: Keypair, prices: dict[str, int], report: StepReport) -> None:
        user = decode_user(bytes(self.svm.get_account(self.ex.user(kp.pubkey())).data))
        floating = i % 2 == 1
        for m in self.ex.perps():
            levels = self._ladders[m.name][i]
            if not levels:
                continue
            oracle = prices[genesis.asset_of(m.name)]
            live = [o for o in user.orders if is_open_perp(o, m.index)]
            anchor = self._anchors.get((i, m.name))
            stale = anchor is None or (not floating and abs(oracle - anchor) * PPM > REQUOTE_PPM * anchor)
            if not stale and len(live) == len(levels) and not any(o.base_asset_amount_filled for o in live):
                continue
            orders = [quote(m.name, lv, oracle, floating) for lv in levels]
            ixs = [instructions.cancel_orders_ix(self.ex, kp.pubkey(), m.index)] if live else []
            ixs.append(instructions.place_orders_ix(self.ex, kp.pubkey(), orders))
            try:
                instructions.send(self.svm, kp, ixs)
                self._anchors[(i, m.name)] = oracle
                report.requotes += 1
            except TxFailed as exc:
                report.errors.append(f"maker {i} {m.name}: {exc}")

    # -- taker -------------------------------------------------------------------------------
    def _take(self, name: str, side: str, size: int, oracle: int, report: StepReport) -> None:
        s = spec(name)
        me = self.ex.user(self.taker.pubkey())
        position = next((p.base_asset_amount for p in decode_user(bytes(self.svm.get_account(me).data)).perp_positions
                         if p.market_index == s.market_index), 0)
        if abs(position) * oracle // 10**9 > TAKER_CAP_QUOTE:
            side = "ask" if position > 0 else "bid"  # only reduce: a taker with a bounded inventory
        size = _round(max(size, s.min_order_size), s.step_size, True)
        if side == "bid":
            limit = _round(oracle * (PPM + SLIPPAGE_PPM) // PPM, s.tick_size, True)
        else:
            limit = _round(oracle * (PPM - SLIPPAGE_PPM) // PPM, s.tick_size, False)
        makers = self.crossing_makers(s.market_index, side, limit, oracle, exclude=me)
        order = order_params(s.market_index, side, size, price=limit, post_only=False, ioc=True)
        try:
            try:
                instructions.send(self.svm, self.taker, [instructions.place_and_take_ix(self.ex, self.taker.pubkey(), order, makers)])
            except TxFailed as exc:
                # When the AMM's quote sits just inside a maker's price, the program fills the AMM
                # "up to" that price and its rounding can land a few quote units past it, failing
                # the whole fill (seen with 0.0001 BTC orders). The AMM alone then takes the order.
                if exc.error != "InvalidOrderFillPrice" or not makers:
                    raise
                instructions.send(self.svm, self.taker, [instructions.place_and_take_ix(self.ex, self.taker.pubkey(), order)])
            report.takes += 1
        except TxFailed as exc:
            report.errors.append(f"taker {name}: {exc}")

    def crossing_makers(self, market: int, taker_side: str, limit: int, oracle: int,
                        exclude: Pubkey | None = None) -> list[tuple[Pubkey, Pubkey]]:
        """(user, authority) of the users with resting orders the taker's limit crosses, best first."""
        maker_dir = "Short" if taker_side == "bid" else "Long"
        best: dict[Pubkey, int] = {}
        authority: dict[Pubkey, Pubkey] = {}
        for key, data in self.users_with_orders().items():
            if key == exclude:
                continue
            user = decode_user(bytes(data))
            for o in user.orders:
                if not is_open_perp(o, market) or maker_dir not in str(o.direction):
                    continue
                price = effective_price(o, oracle)
                crosses = price <= limit if taker_side == "bid" else price >= limit
                if not crosses:
                    continue
                if key not in best or (price < best[key] if taker_side == "bid" else price > best[key]):
                    best[key] = price
                authority[key] = user.authority
        ranked = sorted(best, key=lambda k: (best[k] if taker_side == "bid" else -best[k], bytes(k)))
        return [(k, authority[k]) for k in ranked[:MAX_MAKERS_PER_TAKE]]
