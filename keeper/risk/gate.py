"""Step 4 of the tick: the risk gate between the strategy and the reconciler.

One visible state that only moves forward: ACTIVE -> REDUCING -> HALTED.
- ACTIVE: intents pass the data guards and the limits; past the soft drawdown breaker quotes
  are widened and cut.
- REDUCING (the hard breaker): the strategy is set aside; each position is closed by a
  reduce-only limit that crosses the book, at most reduce_cross_bps from the oracle; once
  every position is flat, HALTED.
- HALTED (flat after reducing, or the kill switch, which the loop watches): nothing rests;
  the loop stops.

Intents the gate drops are not placed, and the reconciler cancels whatever of ours rests in
their place. Every dropped or trimmed intent gets a note naming the rule.
"""
from __future__ import annotations

import logging

from keeper.model import BPS, MARGIN_PRECISION, Intent, Snapshot, asset_of, replace
from keeper.risk.breakers import HARD, NONE, SOFT, Drawdown
from keeper.risk.config import RiskConfig
from keeper.risk.guards import stale_book, untrusted
from keeper.accounting import quote_value
from keeper.risk.limits import Cover, apply_limits, collateral_weight, fit, net_exposure
from keeper.risk.settle import SettleSchedule
from keeper.snap import snap_price
from keeper.ui.units import usd

log = logging.getLogger("keeper")

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"


class RiskGate:
    def __init__(self, config: RiskConfig = RiskConfig()) -> None:
        self.config = config
        self.state = ACTIVE
        self.reason = ""  # why the state left ACTIVE
        self.breaker = NONE
        self.drawdown = Drawdown(config.account)
        self._oracles: dict[str, int] = {}
        self.settle = SettleSchedule(config.account.settle_pnl_s)

    # -- state -----------------------------------------------------------------------------
    def halt(self, reason: str) -> None:
        if self.state != HALTED:
            self.state, self.reason = HALTED, reason
            log.error("risk HALTED: %s; cancelling every keeper order", reason)

    def _reduce(self, reason: str) -> None:
        if self.state == ACTIVE:
            self.state, self.reason = REDUCING, reason
            log.error("risk REDUCING: %s; cancelling quotes, reduce-only until flat", reason)

    # -- the check -------------------------------------------------------------------------
    def check(self, intents: list[Intent], snapshot: Snapshot) -> tuple[list[Intent], list[str]]:
        """Returns the intents allowed through and one line per dropped or trimmed intent."""
        account = self.config.account
        self._breakers(snapshot)
        previous, self._oracles = self._oracles, {n: m.oracle_price for n, m in snapshot.markets.items()}
        if self.state == HALTED:
            return [], [f"risk {HALTED} ({self.reason}): all intents dropped"] if intents else []

        notes = []
        book = stale_book(snapshot, account)
        guarded = {}
        limits = self.config.limits
        for name, market in snapshot.markets.items():
            why = book or untrusted(market, snapshot.slot, limits(name), previous.get(name))
            if why:
                guarded[name] = why
                notes.append(f"risk guard: {name} not quoted: {why}")
        if guarded:
            intents = [i for i in intents if i.market not in guarded]

        if self.state == REDUCING:
            return self._reducing(intents, snapshot, guarded, notes)
        if self.breaker == SOFT:
            intents = [self._soften(i, snapshot) for i in intents]
            if intents:
                notes.append(f"risk soft breaker: quotes widened {account.soft_widen_bps} bps "
                             f"and cut to {account.soft_size_pct}%")
        room = self.drawdown.cover()
        cover = None if room is None else Cover(net_exposure(snapshot), room)
        trims, trim_notes = self._trim_to_cover(snapshot, cover, guarded)
        kept, limit_notes = apply_limits(intents, snapshot, self.config, cover)
        return trims + kept, notes + trim_notes + limit_notes

    def _breakers(self, snapshot: Snapshot) -> None:
        level = self.drawdown.update(snapshot.user.equity)
        if level != self.breaker:
            d = self.drawdown
            log.warning("risk breaker %s -> %s: drawdown %s of budget %s (peak equity %s)",
                        self.breaker, level, usd(d.drawdown), usd(d.budget), usd(d.peak))
        if level == HARD:
            self._reduce(f"hard drawdown breaker: drawdown {usd(self.drawdown.drawdown)} "
                         f">= {self.config.account.hard_drawdown_pct}% of budget {usd(self.drawdown.budget)}")
        # the soft level comes and goes with equity; the hard one already moved the state, which stays
        self.breaker = level

    def _reducing(self, intents: list[Intent], snapshot: Snapshot, guarded: dict, notes: list[str]):
        kept, open_positions = [], False
        for name, market in snapshot.markets.items():
            position = snapshot.user.positions.get(name)
            size = fit(abs(position.base), market.spec) if position else 0
            if not size:
                continue
            open_positions = True
            if name in guarded:
                continue
            kept.append(self._closing(name, market, position.base, size))
        if not open_positions:
            self.halt(f"flat after reducing ({self.reason})")
            return [], notes
        notes += [f"risk {REDUCING}: {i.market} {i.side} dropped (reduce-only until flat)" for i in intents]
        return kept, notes

    def _trim_to_cover(self, snapshot: Snapshot, cover: Cover | None, guarded: dict) -> tuple[list[Intent], list[str]]:
        """The drawdown cover shrinks with what is left of the hard limit; a position that has
        outgrown it is cut at once, with reduce-only orders that take the book, so that no
        one-tick move within the cover can carry equity past the hard limit. The assets most
        exposed on the side are cut first, each never past its net (a hedge is not undone)."""
        if cover is None:
            return [], []
        net = cover.net
        cuts, notes = [], []
        for side_index, (held, allowed) in enumerate(zip(cover.sides, cover.limits)):
            excess = held - allowed
            if excess <= 0:
                continue
            sign = 1 if side_index == 0 else -1
            for exposed, asset in sorted(((sign * v, a) for a, v in net.items() if sign * v > 0),
                                         key=lambda row: (-row[0], row[1])):
                if excess <= 0:
                    break
                cut = min(excess, exposed)
                # the asset's positions on the side, largest first, each by what it takes
                positions = sorted(((quote_value(abs(p.base), snapshot.markets[n].oracle_price,
                                                 snapshot.markets[n].spec.base_precision), n, p)
                                    for n, p in snapshot.user.positions.items()
                                    if n in snapshot.markets and asset_of(n) == asset and sign * p.base > 0),
                                   key=lambda row: (-row[0], row[1]))
                for _, name, position in positions:
                    if cut <= 0:
                        break
                    if name in guarded:
                        continue
                    market = snapshot.markets[name]
                    spec = market.spec
                    weight = collateral_weight(spec, position.base)
                    base = -(-cut * MARGIN_PRECISION * spec.base_precision // (market.oracle_price * weight))
                    base = min(abs(position.base), base)
                    base = -(-base // spec.step_size) * spec.step_size if spec.step_size else base  # up: fit for sure
                    size = fit(min(base, abs(position.base)), spec) or fit(abs(position.base), spec)
                    if not size:
                        continue
                    cuts.append(self._closing(name, market, position.base, size))
                    removed = quote_value(size, market.oracle_price, spec.base_precision) * weight // MARGIN_PRECISION
                    cut, excess = cut - removed, excess - removed
                    notes.append(f"risk drawdown_cover: {name} cut by {size} to fit what is left of the hard limit")
        return cuts, notes

    def flatten(self, snapshot: Snapshot) -> tuple[list[Intent], dict[str, str]]:
        """`keeper run --on-stop flatten`: each open position's closing order, immediate-or-cancel
        so nothing of it rests once the keeper is gone; and, for each position it cannot close
        now, why. The data guards hold as in any tick; a halted gate closes nothing."""
        previous, self._oracles = self._oracles, {n: m.oracle_price for n, m in snapshot.markets.items()}
        book = stale_book(snapshot, self.config.account)
        intents, blocked = [], {}
        for name, market in snapshot.markets.items():
            position = snapshot.user.positions.get(name)
            if not position or not position.base:
                continue
            size = fit(abs(position.base), market.spec)
            why = (f"risk {HALTED} ({self.reason})" if self.state == HALTED
                   else "below the market's minimum order size" if not size
                   else book or untrusted(market, snapshot.slot, self.config.limits(name), previous.get(name)))
            if why:
                blocked[name] = why
            else:
                intents.append(self._closing(name, market, position.base, size, ioc=True))
        return intents, blocked

    def _closing(self, name: str, market, base: int, size: int, ioc: bool = False) -> Intent:
        """The one closing rule: reduce-only, taking the book up to reduce_cross_bps past the oracle."""
        side = "ask" if base > 0 else "bid"
        return Intent(name, side, size, price=self._crossing_price(market, side), post_only=False, reduce_only=True,
                      ioc=ioc)

    def _crossing_price(self, market, side: str) -> int:
        """A limit that takes the book to get out, but never further than reduce_cross_bps from
        the oracle: a hard stop must leave, not wait for a taker, and not at any price."""
        tick = max(market.spec.tick_size, 1)
        cross = market.oracle_price * self.config.account.reduce_cross_bps // BPS
        # snapped away from the touch, as every price is: inside the bound, never a tick past it
        if side == "ask":
            return max(tick, snap_price(market.oracle_price - cross, tick, side))
        return snap_price(market.oracle_price + cross, tick, side)

    def _soften(self, intent: Intent, snapshot: Snapshot) -> Intent:
        account, market = self.config.account, snapshot.markets[intent.market]
        tick = max(market.spec.tick_size, 1)
        widen = snap_price(market.oracle_price * account.soft_widen_bps // BPS, tick, "ask")  # whole ticks, rounded up
        move = -widen if intent.side == "bid" else widen
        size = fit(intent.size * account.soft_size_pct // 100, market.spec) or market.spec.min_order_size
        if intent.price is not None:
            return replace(intent, price=max(tick, intent.price + move), size=min(size, intent.size))
        return replace(intent, oracle_offset=intent.oracle_offset + move, size=min(size, intent.size))
