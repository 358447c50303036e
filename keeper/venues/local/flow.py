"""The local market's synthetic flow: oracle paths, background makers and takers, fed to the sim.

Everything random comes from random.Random streams seeded by (seed, market, purpose), so a
run depends only on its seed and price path, and adding a market leaves the others unchanged.

One tick of `interval_ms`, in order:
1. the clock moves: funding and interest accrue, expired orders drop;
2. takers arrive against the book as it stands. An informed taker (a `toxicity` share of
   them) knows the oracle at the end of the tick: it buys everything offered below that price
   less the taker fee, or sells everything bid above it plus the fee (an arbitrageur takes
   all that pays, not a retail-sized clip), and does nothing when the book offers no such
   edge. The others trade a random side and size, up to SLIPPAGE_PPM through the oracle;
3. the oracle moves to the end of the tick; floating orders and the AMM follow it;
4. background makers requote; arbitrageurs take resting orders the new AMM quote crosses, and
   any bid above the oracle (or offer below it) by more than the taker fee and ARB_EDGE_PPM,
   the cost of hedging at the oracle on another venue;
5. TWAPs and funding rates update; an account below maintenance margin is liquidated.
"""
from __future__ import annotations

import itertools
import random
from typing import Optional

from keeper.errors import UserError
from keeper.model import FEE_DENOMINATOR
from keeper.venues.local import specs as S
from keeper.venues.local.makers import Makers
from keeper.venues.local.oracle import price_sources
from keeper.venues.local.takers import SLIPPAGE_PPM, Takers
from keeper.venues.sim.exchange import Exchange
from keeper.venues.sim.market import AmmSpec, MarketConfig

EPOCH_MS = 1_701_790_320_000  # 2023-12-05T15:32:00Z, when the DLOB recordings start
START_SLOT = 234_165_481  # the recordings' first slot
MS_PER_SLOT = 400
# The share of takers who trade on the oracle's next move. PIN (the probability of informed
# trading, Easley et al.) estimates for liquid equities sit around 0.15-0.25; on an
# oracle-priced DEX more of the flow is informed, because bots that watch faster venues trade
# ahead of each oracle update. 0.3 was chosen on that ground, before any strategy was run.
DEFAULT_TOXICITY = 0.3
PPM = 1_000_000
ARB_EDGE_PPM = 500  # 5 bps: what hedging the other leg elsewhere costs an arbitrageur


class LocalFlow:
    def __init__(self, markets: list[str], seed: int, price_path: Optional[list[tuple[int, int]]],
                 interval_ms: int, collateral: int, toxicity: float = DEFAULT_TOXICITY):
        if not markets:
            raise UserError(f"no markets given; the local market has: {', '.join(S.names())}")
        if len(set(markets)) != len(markets):
            raise UserError(f"markets listed twice: {', '.join(markets)}")
        if interval_ms <= 0:
            raise UserError(f"interval must be a positive number of milliseconds, not {interval_ms}")
        check_toxicity(toxicity)
        specs = {n: S.spec(n) for n in markets}  # raises UserError on unknown names
        self.interval_ms = interval_ms
        self.t0 = price_path[0][0] if price_path else EPOCH_MS
        self.sources = price_sources(markets, seed, price_path)
        prices = {n: s.advance(self.t0, 0) for n, s in self.sources.items()}
        takers = {n: Takers(S.shapes()[n], specs[n].step_size, S.params(n).takers_per_hour,
                            S.params(n).taker_size_ppm, random.Random(f"{seed}/{n}/takers"), toxicity)
                  for n in markets}
        configs = [_config(specs[n], takers[n]) for n in markets]
        self.exchange = ex = Exchange(configs, collateral, self.t0, prices, START_SLOT, interval_ms, S.spot_rates())
        self.takers = takers
        maker_ids = itertools.count(1)
        self.makers = {n: Makers(S.shapes()[n], specs[n].step_size, ex, n, random.Random(f"{seed}/{n}/makers"),
                                 maker_ids.__next__) for n in markets}
        ex.on_maker_fill = lambda market, o: self.makers[market].filled(o)
        for mk in self.makers.values():
            mk.seed()

    def slot_at(self, ts: int) -> int:
        return START_SLOT + (ts - self.t0) // MS_PER_SLOT

    def advance(self) -> None:
        ex, dt = self.exchange, self.interval_ms
        ts = ex.now_ms + dt
        slot = self.slot_at(ts)
        ex.advance(ts, slot)
        nxt = {n: s.advance(ts, dt) for n, s in self.sources.items()}
        for name, takers in self.takers.items():
            for side, size, informed in takers.arrivals(dt):
                if informed:
                    self._informed(name, nxt[name])
                else:
                    self._uninformed(name, side, size)
        for name in self.takers:
            ex.set_oracle(name, nxt[name], slot)
            self.makers[name].requote(dt)
            ex.arbitrage(name)
            self._arbitrage_oracle(name)
        ex.end_tick(dt)

    def _uninformed(self, name: str, side: str, size: int) -> None:
        o = self.exchange.markets[name].oracle
        limit = o * (PPM + SLIPPAGE_PPM) // PPM if side == "bid" else o * (PPM - SLIPPAGE_PPM) // PPM
        self.exchange.take(name, side, size, limit)

    def _arbitrage_oracle(self, name: str) -> None:
        m = self.exchange.markets[name]
        edge = m.spec.taker_fee * (PPM // FEE_DENOMINATOR) + ARB_EDGE_PPM
        o = m.oracle
        sell_above = -(-o * (PPM + edge) // PPM)
        buy_below = o * (PPM - edge) // PPM
        self._sweep(name, "ask", sell_above)
        self._sweep(name, "bid", buy_below)

    def _informed(self, name: str, next_oracle: int) -> None:
        m = self.exchange.markets[name]
        fee = max(m.spec.taker_fee, 0)
        if next_oracle > m.oracle:  # buy what is offered below the coming price, after the fee
            limit = next_oracle * (FEE_DENOMINATOR - fee) // FEE_DENOMINATOR
            side = "bid"
        elif next_oracle < m.oracle:
            limit = -(-next_oracle * (FEE_DENOMINATOR + fee) // FEE_DENOMINATOR)
            side = "ask"
        else:
            return
        self._sweep(name, side, limit)

    def _sweep(self, name: str, side: str, limit: int) -> None:
        """Take everything the book offers at `limit` or better."""
        m = self.exchange.markets[name]
        while True:
            best = m.best("ask" if side == "bid" else "bid")
            if best is None or (best > limit if side == "bid" else best < limit):
                return
            if not self.exchange.take(name, side, 1 << 62, limit):
                return


def check_toxicity(toxicity: float) -> None:
    if not (isinstance(toxicity, (int, float)) and 0.0 <= toxicity <= 1.0):
        raise UserError(f"toxicity must be a number from 0 to 1 (the share of informed takers), not {toxicity!r}")


def _config(spec, takers: Takers) -> MarketConfig:
    p = S.params(spec.name)
    amm = None
    if spec.kind == "perp":
        unit = takers.sizes[len(takers.sizes) // 2]  # one ladder level holds a median taker
        amm = AmmSpec(p.base_spread, p.max_spread, unit, p.annual_vol_bps, p.last_funding_rate, p.reference_price)
    return MarketConfig(spec, amm, p.oracle_conf_ppm)
