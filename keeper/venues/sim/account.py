"""Our account on the sim: open orders, USDC, perp positions, spot balances, fills, margin.

Collateral follows Drift's shape with USDC as the quote asset (asset and liability weight 1):
  total = USDC balance + per perp: PnL (realised + unrealised - fees + funding)
          + per spot: deposits x oracle x asset weight - borrows x oracle
  requirement = $0.01 per open order (the program's OPEN_ORDER_MARGIN_REQUIREMENT)
          + per perp: worst-case |base incl. open orders| x oracle x margin ratio
          + per spot: worst-case borrow x oracle x (liability weight - 1)
                      + open bids' notional x (1 - asset weight)   (quote turned into weighted tokens)
Initial margin uses the initial ratio and asset weight, maintenance the maintenance ones.
Drift keeps borrows out of total collateral and charges them at the full liability weight;
netting them here gives the same free collateral. A perp's PnL stays unsettled until
settle_pnl moves it into the USDC balance; till then a loss counts in full and a gain at the
market's unrealized_pnl_initial_asset_weight (spec.asset_weight of a perp: 0 on mainnet) for
initial margin, in full for maintenance (test_conformance measures both on the program).

Spot balances earn or pay interest (interest.py): it changes the token balance, not its cost,
so it shows up in the position's PnL.
"""
from __future__ import annotations

from typing import Optional

from keeper.accounting import Ledger, quote_value
from keeper.model import MARGIN_PRECISION, QUOTE_PRECISION, Fill, MarketSpec, OpenOrder, Side
from keeper.venues.sim.book import Order
from keeper.venues.sim.fees import fee_for
from keeper.venues.sim.interest import Accrual, SpotRates


OPEN_ORDER_MARGIN = QUOTE_PRECISION // 100  # per open order; measured against the program (test_conformance)


def _oid(o: Order) -> int:
    return o.oid


class Account:
    def __init__(self, specs: dict[str, MarketSpec], collateral: int,
                 rates: Optional[dict[str, SpotRates]] = None):
        rates = rates or {}
        self.specs = specs
        self.usdc = collateral
        self.ledgers = {n: Ledger(s.base_precision) for n, s in specs.items()}
        self.orders: dict[int, Order] = {}  # our open orders by order_id
        self.market_of: dict[int, str] = {}
        self.open_bids = {n: 0 for n in specs}
        self.open_asks = {n: 0 for n in specs}
        self.fills: list[Fill] = []  # since drained by the caller
        self.funding = {n: 0 for n, s in specs.items() if s.kind == "perp"}
        self.settled = {n: 0 for n, s in specs.items() if s.kind == "perp"}  # PnL moved into usdc so far
        self._usdc_interest = Accrual(rates["USDC"]) if "USDC" in rates else None
        self._interest = {n: Accrual(rates[n]) for n, s in specs.items() if s.kind == "spot" and n in rates}
        self._next_oid = 1
        self.orders_version = 0  # moves whenever an open order is added, removed or filled
        self._open_orders: tuple[int, tuple[OpenOrder, ...]] = (-1, ())


    def new_order_id(self) -> int:
        oid, self._next_oid = self._next_oid, self._next_oid + 1
        return oid

    def track(self, market: str, o: Order) -> None:
        self.orders_version += 1
        self.orders[o.oid] = o
        self.market_of[o.oid] = market
        self._open(market, o.side, o.remaining)

    def untrack(self, o: Order) -> str:
        self.orders_version += 1
        market = self.market_of.pop(o.oid)
        del self.orders[o.oid]
        self._open(market, o.side, -o.remaining)
        return market

    def _open(self, market: str, side: str, delta: int) -> None:
        if side == "bid":
            self.open_bids[market] += delta
        else:
            self.open_asks[market] += delta

    def open_orders(self) -> tuple[OpenOrder, ...]:
        """Our open orders as the keeper's values, by order id; made again only when one changed."""
        version, view = self._open_orders
        if version != self.orders_version:
            view = tuple(OpenOrder(o.oid, o.uoid, self.market_of[o.oid], o.side, o.price, o.size, o.filled, o.offset,
                                   o.post_only, o.reduce_only, o.max_ts)
                         for o in sorted(self.orders.values(), key=_oid))
            self._open_orders = (self.orders_version, view)
        return view

    def position(self, market: str) -> int:
        return self.ledgers[market].base

    def fill(self, market: str, side: Side, price: int, size: int, maker: bool, ts: int,
             order_id: int, user_order_id: int, fee: Optional[int] = None) -> Fill:
        spec = self.specs[market]
        if fee is None:
            fee = fee_for(size, price, spec, maker)
        f = Fill(market, side, price, size, fee, order_id, user_order_id, maker, ts)
        self.ledgers[market].apply(f)
        if spec.kind == "spot":
            quote = quote_value(size, price, spec.base_precision)
            self.usdc += (-quote if side == "bid" else quote) - fee
        self.fills.append(f)
        return f

    def fill_order(self, market: str, o: Order, price: int, size: int, maker: bool, ts: int) -> Fill:
        """Our order `o` filled by `size`: its filled amount, the open totals if it rests, the ledger."""
        o.filled += size
        self.orders_version += 1
        if o.oid in self.orders:
            self._open(market, o.side, -size)
        return self.fill(market, o.side, price, size, maker, ts, o.oid, o.uoid)

    def accrue(self, market: str, funding_rate: int, dt_ms: int) -> None:
        """Funding on a perp position, interest on a spot balance."""
        if self.specs[market].kind == "perp":
            self.funding[market] += self.ledgers[market].accrue_funding(funding_rate, dt_ms)
        elif market in self._interest:
            led = self.ledgers[market]
            led.base += self._interest[market].accrue(led.base, dt_ms)
            led.max_inventory = max(led.max_inventory, abs(led.base))

    def accrue_usdc(self, dt_ms: int) -> None:
        if self._usdc_interest is not None:
            self.usdc += self._usdc_interest.accrue(self.usdc, dt_ms)

    def unsettled_pnl(self, market: str, oracle: int) -> int:
        return self.ledgers[market].total_pnl(oracle) - self.settled[market]

    def settle_pnl(self, market: str, oracle: int) -> int:
        """Move a perp's unsettled PnL into the USDC balance, as Drift's settle_pnl does (both
        ways measured in test_conformance). A loss only as far as the balance goes, so that
        settling never opens a borrow: that limit is ours, not measured on the program.
        Returns the quote moved."""
        pnl = self.unsettled_pnl(market, oracle)
        if pnl < 0:
            pnl = max(pnl, -max(self.usdc, 0))
        self.usdc += pnl
        self.settled[market] += pnl
        return pnl

    # -- margin -------------------------------------------------------------------------------

    def total_collateral(self, oracles: dict[str, int], maintenance: bool = False) -> int:
        total = self.usdc
        for name, led in self.ledgers.items():
            spec = self.specs[name]
            if spec.kind == "perp":
                pnl = self.unsettled_pnl(name, oracles[name])
                total += pnl if pnl < 0 or maintenance else pnl * spec.asset_weight // MARGIN_PRECISION
            elif led.base > 0:
                weight = MARGIN_PRECISION - spec.margin_ratio_maintenance if maintenance else spec.asset_weight
                total += quote_value(led.base, oracles[name], spec.base_precision) * weight // MARGIN_PRECISION
            elif led.base < 0:
                total += quote_value(led.base, oracles[name], spec.base_precision)
        return total

    def requirement(self, oracles: dict[str, int], extra: Optional[tuple[str, str, int]] = None,
                    maintenance: bool = False) -> int:
        """Margin requirement, optionally as if one more order (market, side, size) rested."""
        req = (len(self.orders) + (extra is not None)) * OPEN_ORDER_MARGIN
        for name, led in self.ledgers.items():
            spec = self.specs[name]
            bids, asks = self.open_bids[name], self.open_asks[name]
            if extra is not None and extra[0] == name:
                if extra[1] == "bid":
                    bids += extra[2]
                else:
                    asks += extra[2]
            if not (led.base or bids or asks):
                continue
            px, bp = oracles[name], spec.base_precision
            ratio = spec.margin_ratio_maintenance if maintenance else spec.margin_ratio_initial
            if spec.kind == "perp":
                worst = max(abs(led.base + bids), abs(led.base - asks))
                req += quote_value(worst, px, bp) * ratio // MARGIN_PRECISION
            else:
                weight = MARGIN_PRECISION - spec.margin_ratio_maintenance if maintenance else spec.asset_weight
                borrow = min(led.base, led.base - asks)
                if borrow < 0:
                    req += quote_value(-borrow, px, bp) * ratio // MARGIN_PRECISION
                req += quote_value(bids, px, bp) * (MARGIN_PRECISION - weight) // MARGIN_PRECISION
        return req

    def margin(self, oracles: dict[str, int]) -> tuple[int, int, int, int]:
        """(total collateral, requirement, maintenance collateral, maintenance requirement) in
        one pass: what total_collateral and requirement give, both ways, for every tick's view."""
        total = mtotal = self.usdc
        req = mreq = len(self.orders) * OPEN_ORDER_MARGIN
        for name, led in self.ledgers.items():
            spec = self.specs[name]
            base = led.base
            bids, asks = self.open_bids[name], self.open_asks[name]
            if spec.kind == "perp":
                pnl = self.unsettled_pnl(name, oracles[name])
                total += pnl if pnl < 0 else pnl * spec.asset_weight // MARGIN_PRECISION
                mtotal += pnl
                if base or bids or asks:
                    worst = quote_value(max(abs(base + bids), abs(base - asks)), oracles[name], spec.base_precision)
                    req += worst * spec.margin_ratio_initial // MARGIN_PRECISION
                    mreq += worst * spec.margin_ratio_maintenance // MARGIN_PRECISION
                continue
            px, bp = oracles[name], spec.base_precision
            if base > 0:
                value = quote_value(base, px, bp)
                total += value * spec.asset_weight // MARGIN_PRECISION
                mtotal += value * (MARGIN_PRECISION - spec.margin_ratio_maintenance) // MARGIN_PRECISION
            elif base < 0:
                value = quote_value(base, px, bp)
                total += value
                mtotal += value
            if base or bids or asks:
                borrow = min(base, base - asks)
                if borrow < 0:
                    owed = quote_value(-borrow, px, bp)
                    req += owed * spec.margin_ratio_initial // MARGIN_PRECISION
                    mreq += owed * spec.margin_ratio_maintenance // MARGIN_PRECISION
                bid_value = quote_value(bids, px, bp)
                req += bid_value * (MARGIN_PRECISION - spec.asset_weight) // MARGIN_PRECISION
                mreq += bid_value * spec.margin_ratio_maintenance // MARGIN_PRECISION
        return total, req, mtotal, mreq

    def free_collateral(self, oracles: dict[str, int]) -> int:
        return max(0, self.total_collateral(oracles) - self.requirement(oracles))

    def below_maintenance(self, oracles: dict[str, int]) -> bool:
        _, _, collateral, requirement = self.margin(oracles)
        return collateral < requirement
