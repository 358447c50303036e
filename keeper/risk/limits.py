"""Position and exposure limits on the intents that survived the guards.

Limits count the worst case: every resting order on one side filled. An intent that would
breach a limit is trimmed to what fits (whole steps, at least the market's minimum size) or
dropped; a reduce-only intent only ever shrinks a position, so it always passes.
"""
from __future__ import annotations

from keeper.accounting import quote_value
from keeper.model import BPS, MARGIN_PRECISION, Intent, MarketSpec, Snapshot, asset_of, replace
from keeper.risk.config import RiskConfig
from keeper.snap import snap_size


def fit(size: int, spec: MarketSpec) -> int:
    """`size` floored to the market's step; 0 when that is below its minimum order size."""
    size = snap_size(size, spec.step_size) if spec.step_size else size
    return size if size >= spec.min_order_size else 0


def base_for(quote: int, price: int, spec: MarketSpec) -> int:
    """The base amount worth `quote` at `price` (rounded down)."""
    return quote * spec.base_precision // price if price > 0 else 0


def collateral_weight(spec: MarketSpec, base: int) -> int:
    """Per MARGIN_PRECISION, the share of a position's value at the oracle that a move of the
    oracle moves equity (UserState.equity, maintenance collateral) by: a perp's PnL and a spot
    borrow in full, a spot deposit at its maintenance asset weight (Drift's, and the sim's)."""
    return MARGIN_PRECISION - spec.margin_ratio_maintenance if spec.kind == "spot" and base > 0 else MARGIN_PRECISION


def net_exposure(snapshot: Snapshot) -> dict[str, int]:
    """Per asset, signed quote: what equity (UserState.equity) gains on a 100% rise of its
    oracle (loses on a 100% fall). A perp and a spot position on one asset share one oracle, so
    they net: a short SOL-PERP hedged by SOL deposits is exposed only by what the deposits'
    weight leaves."""
    net: dict[str, int] = {}
    for name, p in snapshot.user.positions.items():
        if name in snapshot.markets and p.base:
            market = snapshot.markets[name]
            value = quote_value(abs(p.base), market.oracle_price, market.spec.base_precision)
            value = value * collateral_weight(market.spec, p.base) // MARGIN_PRECISION
            asset = asset_of(name)
            net[asset] = net.get(asset, 0) + (value if p.base > 0 else -value)
    return net


class Cover:
    """The drawdown cover, `limits` = (long, short) quote: Drawdown.cover(). Its worst cases as
    orders are kept: per side, every kept order on it filled, each asset's positions netted
    (net_exposure) and its kept orders counted at their full value (a spot bid may cover a
    borrow, counted in full). Assets don't net with each other: they need not move together."""

    def __init__(self, net: dict[str, int], limits: tuple[int, int]) -> None:
        self.net, self.limits = net, limits
        self.orders: dict[str, list[int]] = {}  # per asset: [bids, asks], quote at the oracle
        self.sides = [0, 0]  # [long, short]: what a fall of every oracle, and a rise, would take per 100%
        for v in net.values():
            if v > 0:
                self.sides[0] += v
            else:
                self.sides[1] -= v

    def room(self, asset: str, side: int) -> int:
        """Quote at the oracle that an order on `side` (0 bid, 1 ask) of `asset` may add: what
        the side's cover has left, plus whatever of it only unwinds the asset's net the other way."""
        net, (bids, asks) = self.net.get(asset, 0), self.orders.get(asset, (0, 0))
        unwinds = -(net + bids) if side == 0 else net - asks
        left = self.limits[side] - self.sides[side]
        return (left if left > 0 else 0) + (unwinds if unwinds > 0 else 0)

    def keep(self, asset: str, side: int, value: int) -> None:
        net = self.net.get(asset, 0)
        orders = self.orders.setdefault(asset, [0, 0])
        before = net + orders[0] if side == 0 else orders[1] - net
        orders[side] += value
        after = before + value
        self.sides[side] += (after if after > 0 else 0) - (before if before > 0 else 0)


def apply_limits(intents: list[Intent], snapshot: Snapshot, config: RiskConfig,
                 cover: Cover | None = None) -> tuple[list[Intent], list[str]]:
    """`cover`: the drawdown cover, whose worst cases grow with every order kept.

    Each intent gets the room every rule leaves it (in base); the tightest rule, the first
    in the order below among equals, decides: max_order, max_position, max_position_base,
    max_total or max_leverage, drawdown_cover, liquidation_buffer. (It runs for every intent
    of every tick, so base_for and quote_value are written out: every amount here is >= 0,
    and the oracle of a market that passed the guards is > 0.)"""
    kept, notes = [], []
    account = config.account
    user = snapshot.user
    markets = snapshot.markets
    equity = user.equity
    total_cap = min(account.max_total_quote, max(0, equity) * account.max_leverage_pct // 100)
    total_rule = "max_total" if total_cap == account.max_total_quote else "max_leverage"
    low_collateral = user.free_collateral < account.min_free_collateral_quote
    # worst-case base per market and side once every kept order fills: [long, short]
    exposure = {name: [p.base, 0] if p.base > 0 else [0, -p.base] for name, p in user.positions.items() if p.base}
    # each market's worst side at its oracle, and their sum: the gross the total cap counts
    worst_value = {name: quote_value(max(e), markets[name].oracle_price, markets[name].spec.base_precision)
                   for name, e in exposure.items() if name in markets}
    gross = sum(worst_value.values())
    # Drift's maintenance margin, as orders are kept: what is left above it is the distance to liquidation
    maint = None if user.maintenance_requirement is None or user.maintenance_collateral is None else [
        user.maintenance_requirement,
        max(0, user.maintenance_collateral) * (100 - account.liquidation_buffer_pct) // 100]
    for intent in intents:
        if intent.reduce_only:
            kept.append(intent)
            continue
        name = intent.market
        market = markets[name]
        spec, limits, oracle = market.spec, config.limits(name), market.oracle_price
        bp = spec.base_precision
        price = intent.price if intent.price is not None else oracle + intent.oracle_offset
        if low_collateral:
            notes.append(f"risk min_free_collateral: {name} {intent.side} dropped (free collateral "
                         f"{user.free_collateral} < {account.min_free_collateral_quote})")
            continue
        if abs(price - oracle) * BPS > limits.band_bps * oracle:
            notes.append(f"risk band: {name} {intent.side} at {price} is more than {limits.band_bps} bps "
                         f"from the oracle {oracle}")
            continue
        side = 0 if intent.side == "bid" else 1
        held = exposure.get(name)
        if held is None:
            held = exposure[name] = [0, 0]
        mine = held[side]
        worst = held[0] if held[0] >= held[1] else held[1]
        rule, allowed = "max_order", limits.max_order_quote * bp // price if price > 0 else 0
        room = (limits.max_position_quote * bp // price if price > 0 else 0) - mine
        if room < allowed:
            rule, allowed = "max_position", room
        if limits.max_position_base is not None and (cap := limits.position_base(bp)) - mine < allowed:
            rule, allowed = "max_position_base", cap - mine
        # the gross cap counts this market at its larger side, so growing the smaller side is free up to it
        other = gross - worst * oracle // bp
        room = (total_cap - other if total_cap > other else 0) * bp // oracle - mine
        if room < allowed:
            rule, allowed = total_rule, room
        if cover is not None:
            asset = asset_of(name)
            room = cover.room(asset, side) * bp // oracle
            if room < allowed:
                rule, allowed = "drawdown_cover", room
        grows = mine + intent.size - worst  # what this order adds to the market's worst case, if > 0
        ratio = spec.margin_ratio_maintenance
        if maint is not None and grows > 0 and ratio:
            left = (maint[1] - maint[0] if maint[1] > maint[0] else 0) * MARGIN_PRECISION // ratio
            room = worst - mine + left * bp // oracle
            if room < allowed:
                rule, allowed = "liquidation_buffer", room
        size = intent.size if allowed >= intent.size else fit(max(0, allowed), spec)
        if size == 0:
            notes.append(f"risk {rule}: {name} {intent.side} of {intent.size} dropped (room {max(0, allowed)})")
            continue
        if size < intent.size:
            notes.append(f"risk {rule}: {name} {intent.side} trimmed from {intent.size} to {size}")
            intent = replace(intent, size=size)
        if maint is not None:
            grown = mine + size - worst
            if grown > 0:
                maint[0] += grown * oracle // bp * ratio // MARGIN_PRECISION
        held[side] = mine + size
        value = (held[0] if held[0] >= held[1] else held[1]) * oracle // bp
        gross += value - worst_value.get(name, 0)
        worst_value[name] = value
        if cover is not None:
            cover.keep(asset, side, size * oracle // bp)
        kept.append(intent)
    return kept, notes
