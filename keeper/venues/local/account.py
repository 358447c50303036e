"""Our user account on the local exchange: open orders, balances, fills, funding and margin.

Collateral follows Drift's shape, simplified to one user with USDC as quote:
  total = USDC balance + perp PnL (Ledger: realised + unrealised - fees + funding)
          + spot deposits x oracle x initial asset weight - spot borrows x oracle
  requirement (initial) = per perp: worst-case |base incl. open orders| x oracle x margin_ratio_initial
          + per spot: worst-case borrow x oracle x margin_ratio_initial (liability weight - 1)
                      + open bids' notional x (1 - asset weight)   (quote turned into weighted SOL)
Drift itself keeps borrows out of total collateral and charges them at the full liability
weight; netting them here gives the same free collateral, and a total that does not jump by
the proceeds of a spot short.
"""
from __future__ import annotations

from keeper.accounting import Ledger, quote_value
from keeper.model import FEE_DENOMINATOR, MARGIN_PRECISION, Fill, MarketSpec, Side
from keeper.venues.local.book import Order


class Account:
    def __init__(self, specs: dict[str, MarketSpec], collateral: int):
        self.specs = specs
        self.usdc = collateral
        self.ledgers = {n: Ledger(s.base_precision) for n, s in specs.items()}
        self.orders: dict[int, Order] = {}  # our open orders by order_id
        self.market_of: dict[int, str] = {}
        self.open_bids = {n: 0 for n in specs}
        self.open_asks = {n: 0 for n in specs}
        self.fills: list[Fill] = []
        self.funding = {n: 0 for n, s in specs.items() if s.kind == "perp"}
        self._next_oid = 1

    def new_order_id(self) -> int:
        oid, self._next_oid = self._next_oid, self._next_oid + 1
        return oid

    def track(self, market: str, o: Order) -> None:
        self.orders[o.oid] = o
        self.market_of[o.oid] = market
        self._open(market, o.side, o.remaining)

    def untrack(self, o: Order) -> str:
        market = self.market_of.pop(o.oid)
        del self.orders[o.oid]
        self._open(market, o.side, -o.remaining)
        return market

    def _open(self, market: str, side: str, delta: int) -> None:
        if side == "bid":
            self.open_bids[market] += delta
        else:
            self.open_asks[market] += delta

    def reduce_cap(self, market: str, side: Side) -> int:
        """How much a reduce-only order on `side` may still fill without growing the position."""
        base = self.ledgers[market].base
        return -base if side == "bid" and base < 0 else base if side == "ask" and base > 0 else 0

    def fill(self, market: str, side: Side, price: int, size: int, maker: bool, ts: int,
             order_id: int, user_order_id: int) -> Fill:
        spec = self.specs[market]
        quote = quote_value(size, price, spec.base_precision)
        if maker:
            fee = -(quote * spec.maker_rebate // FEE_DENOMINATOR)
        else:
            fee = -(-quote * spec.taker_fee // FEE_DENOMINATOR)  # Drift rounds taker fees up
        f = Fill(market, side, price, size, fee, order_id, user_order_id, maker, ts)
        self.ledgers[market].apply(f)
        if spec.kind == "spot":
            self.usdc += (-quote if side == "bid" else quote) - fee
        self.fills.append(f)
        return f

    def fill_order(self, market: str, o: Order, price: int, size: int, maker: bool, ts: int) -> Fill:
        """Our order `o` filled by `size`: its filled amount, the open totals if it rests, the ledger."""
        o.filled += size
        if o.oid in self.orders:
            self._open(market, o.side, -size)
        return self.fill(market, o.side, price, size, maker, ts, o.oid, o.uoid)

    def accrue_funding(self, market: str, rate: int, dt_ms: int) -> None:
        self.funding[market] += self.ledgers[market].accrue_funding(rate, dt_ms)

    def total_collateral(self, oracles: dict[str, int]) -> int:
        total = self.usdc
        for name, led in self.ledgers.items():
            spec = self.specs[name]
            if spec.kind == "perp":
                total += led.total_pnl(oracles[name])
            elif led.base > 0:
                total += quote_value(led.base, oracles[name], spec.base_precision) * spec.asset_weight // MARGIN_PRECISION
            elif led.base < 0:
                total += quote_value(led.base, oracles[name], spec.base_precision)
        return total

    def requirement(self, oracles: dict[str, int], extra: tuple[str, str, int] | None = None) -> int:
        """Initial margin requirement, optionally as if one more order (market, side, size) rested."""
        req = 0
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
            if spec.kind == "perp":
                worst = max(abs(led.base + bids), abs(led.base - asks))
                req += quote_value(worst, px, bp) * spec.margin_ratio_initial // MARGIN_PRECISION
            else:
                borrow = min(led.base, led.base - asks)
                if borrow < 0:
                    req += quote_value(-borrow, px, bp) * spec.margin_ratio_initial // MARGIN_PRECISION
                req += quote_value(bids, px, bp) * (MARGIN_PRECISION - spec.asset_weight) // MARGIN_PRECISION
        return req
