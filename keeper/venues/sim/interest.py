"""Spot interest: Drift's borrow-rate curve and the deposit rate that follows from it.

Rates are annual, per SPOT_RATE_PRECISION (1e6); utilisation per SPOT_UTILIZATION_PRECISION
(1e6). Below the optimal utilisation the borrow rate climbs linearly to optimal_borrow_rate,
above it linearly on to max_borrow_rate at 100%. Depositors get the borrowers' interest
spread over the deposits, less the insurance fund's share (insurance_factor, 1e6).
"""
from __future__ import annotations

from dataclasses import dataclass

RATE_PRECISION = 1_000_000
UTILIZATION_PRECISION = 1_000_000
YEAR_MS = 365 * 86_400_000


@dataclass(frozen=True, slots=True)
class SpotRates:
    optimal_utilization: int
    optimal_borrow_rate: int
    max_borrow_rate: int
    utilization: int  # the market's borrows / deposits, which our own balance barely moves
    insurance_factor: int = 0

    def borrow_rate(self) -> int:
        u, opt = self.utilization, self.optimal_utilization
        if u <= opt:
            return self.optimal_borrow_rate * u // opt if opt else 0
        slope = (self.max_borrow_rate - self.optimal_borrow_rate) * UTILIZATION_PRECISION // (UTILIZATION_PRECISION - opt)
        return self.optimal_borrow_rate + (u - opt) * slope // UTILIZATION_PRECISION

    def deposit_rate(self) -> int:
        return (self.borrow_rate() * self.utilization // UTILIZATION_PRECISION
                * (RATE_PRECISION - self.insurance_factor) // RATE_PRECISION)


class Accrual:
    """Interest on a signed balance, with the sub-unit remainder carried so that many short
    accruals pay what one long one would."""

    def __init__(self, rates: SpotRates):
        self.rates = rates
        self._rest = 0  # balance units x RATE_PRECISION x ms

    def accrue(self, balance: int, dt_ms: int) -> int:
        """The change of `balance` over dt_ms: + for a deposit's interest, - for a borrow's."""
        if not balance:
            return 0
        rate = self.rates.deposit_rate() if balance > 0 else self.rates.borrow_rate()
        owed = balance * rate * dt_ms + self._rest
        unit = RATE_PRECISION * YEAR_MS
        paid = abs(owed) // unit * (1 if owed >= 0 else -1)
        self._rest = owed - paid * unit
        return paid
