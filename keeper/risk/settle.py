"""When to settle perp PnL: Drift's initial margin counts an unsettled gain at the market's
unrealized_pnl_initial_asset_weight (0 on mainnet), so a maker's profits free no collateral
until settle_pnl moves them into its USDC deposit.

Every `settle_pnl_s` of the snapshots' clock (the first one interval in), the plan settles
each perp market we hold a position in or traded since the last settle: the markets the
program has PnL of ours in. A settle moves equity from one pocket to the other, so it changes
no risk figure but free collateral.
"""
from __future__ import annotations

from typing import Optional

from keeper.model import Snapshot


class SettleSchedule:
    def __init__(self, every_s: int) -> None:
        self.every_s = every_s
        self.next_s: Optional[int] = None
        self.traded: set[str] = set()  # perp markets with fills since the last settle

    def due(self, snapshot: Snapshot) -> tuple[str, ...]:
        if not self.every_s:
            return ()
        markets = snapshot.markets
        self.traded.update(f.market for f in snapshot.user.fills if f.market in markets and markets[f.market].spec.kind == "perp")
        now_s = snapshot.ts // 1000
        if self.next_s is None:
            self.next_s = now_s + self.every_s
        if now_s < self.next_s:
            return ()
        self.next_s = now_s + self.every_s
        return self.pending(snapshot)

    def pending(self, snapshot: Snapshot, also=()) -> tuple[str, ...]:
        """Every perp market we hold, traded since the last settle, or name in `also`: settled
        now (the schedule's interval, or a stop's flatten done), so none is pending after."""
        if not self.every_s:
            return ()
        markets = snapshot.markets
        held = {n for n, p in snapshot.user.positions.items() if p.base}
        due = sorted(n for n in {*held, *self.traded, *also} if n in markets and markets[n].spec.kind == "perp")
        self.traded = set()
        return tuple(due)
