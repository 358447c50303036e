"""Drawdown circuit breakers, on equity (UserState.equity, where unsettled PnL counts in full)
against the session's peak.

The budget is what the session may lose: the configured one, or the equity it started with.
Soft: a drawdown past soft_drawdown_pct of the budget. Hard: past hard_drawdown_pct.
"""
from __future__ import annotations

from typing import Optional

from keeper.risk.config import AccountLimits

NONE, SOFT, HARD = "none", "soft", "hard"


class Drawdown:
    def __init__(self, account: AccountLimits):
        self.account = account
        self.budget = account.budget_quote
        self.peak: Optional[int] = None
        self.drawdown = 0  # quote, now
        self.max_drawdown = 0  # quote, over the session

    def update(self, equity: int) -> str:
        """The breaker level after this equity reading."""
        if self.peak is None:
            self.peak = equity
            self.budget = self.budget or max(equity, 1)
        self.peak = max(self.peak, equity)
        self.drawdown = self.peak - equity
        self.max_drawdown = max(self.max_drawdown, self.drawdown)
        if not self.account.breakers:
            return NONE
        if self.drawdown * 100 >= self.account.hard_drawdown_pct * self.budget:
            return HARD
        if self.drawdown * 100 >= self.account.soft_drawdown_pct * self.budget:
            return SOFT
        return NONE

    def room(self) -> Optional[int]:
        """Quote that can still be lost before the hard limit; None with the breakers off."""
        if not self.account.breakers or self.peak is None:
            return None
        return max(0, self.account.hard_drawdown_pct * self.budget // 100 - self.drawdown)

    def cover(self) -> Optional[tuple[int, int]]:
        """(long, short): the most worst-case exposure, in quote at the oracle, that a one-tick
        move of jump_cover_down_pct / jump_cover_up_pct can hit without crossing the hard limit."""
        room = self.room()
        if room is None:
            return None
        return (room * 100 // self.account.jump_cover_down_pct, room * 100 // self.account.jump_cover_up_pct)
