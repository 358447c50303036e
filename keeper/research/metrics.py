"""A scorecard's figures for one run, from the (snapshot, execution) pairs of its ticks.

It rides the loop as an observer (synthetic scenarios) or reads an archived session back
(the real scenario's replay), so both are scored by the same code. Money comes from the
session summary's own book-keeping (keeper.report.Report); what is added here:

- pnl_usd, fees_usd, max_drawdown_usd: the summary's totals (drawdown: peak total PnL less
  total PnL, over the ticks).
- sharpe, sortino: from the change of total PnL over each tick (per-tick, never resampled),
  mean / stdev and mean / downside deviation (root mean square of the negative changes),
  both scaled by sqrt(ticks per hour): hourly figures, not annualised, with a zero
  risk-free rate; None when there is no variation to divide by. Ticks after a halt count as
  zero changes: the keeper is flat and out of the market for the rest of the scenario.
- fill_ratio: base filled / base placed (accepted placements, each re-placement counted
  again), summed over markets in base units; the scorecard's markets are all one asset (SOL).
- max_inventory_usd, mean_abs_inventory_usd: gross exposure, sum over markets of
  |position| at the oracle, after each tick; the mean is over the ticks run.
- halted_s: seconds of the scenario spent HALTED: ticks that ended HALTED plus the
  scenario's ticks never run because the halt stopped the loop.
"""
from __future__ import annotations

import math
import statistics
from typing import Iterable, Optional

from keeper.model import QUOTE_PRECISION, Execution, Snapshot
from keeper.report import Report
from keeper.risk import HALTED

FIGURES = ("pnl_usd", "sharpe", "sortino", "max_drawdown_usd", "fill_ratio", "max_inventory_usd",
           "mean_abs_inventory_usd", "fees_usd", "halted_s")


class Tally:
    """An observer: on_tick(snapshot, execution) for each tick, then figures(...)."""

    def __init__(self) -> None:
        self.report = Report()
        self.pnl: list[int] = []  # total PnL after each tick, quote
        self.inventory: list[int] = []  # gross exposure after each tick, quote
        self.placed: dict[str, int] = {}  # base placed, per market
        self.filled: dict[str, int] = {}  # base filled, per market
        self.precision: dict[str, int] = {}
        self.halted_ticks = 0
        self.halted = False

    def on_tick(self, snapshot: Snapshot, execution: Execution) -> None:
        self.report.observe(snapshot)
        self.pnl.append(self.report.total_pnl)
        self.inventory.append(self.report.gross_inventory)
        for fill in snapshot.user.fills:
            self.filled[fill.market] = self.filled.get(fill.market, 0) + fill.size
            self.precision[fill.market] = snapshot.markets[fill.market].spec.base_precision
        accepted = {o.user_order_id for o in execution.outcomes if o.action == "place" and o.ok}
        for placement in execution.plan.places:
            if placement.user_order_id in accepted:
                name = placement.intent.market
                self.placed[name] = self.placed.get(name, 0) + placement.intent.size
                self.precision[name] = snapshot.markets[name].spec.base_precision
        if execution.risk_state == HALTED:
            self.halted_ticks += 1
            self.halted = True

    def figures(self, ticks_expected: int, interval_s: float) -> dict:
        """The run's figures; `ticks_expected` is the scenario's length in ticks."""
        summary = self.report.summary()["total"]
        ticks_run = len(self.pnl)
        missing = max(0, ticks_expected - ticks_run) if self.halted else 0
        changes = [b - a for a, b in zip([0] + self.pnl, self.pnl)] + [0] * missing
        filled, placed = (sum(size / self.precision[name] for name, size in amounts.items())
                          for amounts in (self.filled, self.placed))
        per_hour = math.sqrt(3600 / interval_s)
        return {
            "pnl_usd": summary["total_pnl_usd"],
            "sharpe": _ratio(changes, _stdev(changes), per_hour),
            "sortino": _ratio(changes, _downside(changes), per_hour),
            "max_drawdown_usd": summary["max_drawdown_usd"],
            "fill_ratio": filled / placed if placed else None,
            "max_inventory_usd": summary["max_inventory_usd"],
            "mean_abs_inventory_usd": statistics.fmean(self.inventory) / QUOTE_PRECISION if self.inventory else 0.0,
            "fees_usd": summary["fees_usd"],
            "halted_s": (self.halted_ticks + missing) * interval_s,
            "fills": summary["fills"],
            "ticks": ticks_run,
        }


def _stdev(xs: list[int]) -> float:
    return statistics.pstdev(xs) if len(xs) > 1 else 0.0


def _downside(xs: list[int]) -> float:
    return math.sqrt(sum(min(x, 0) ** 2 for x in xs) / len(xs)) if xs else 0.0


def _ratio(xs: list[int], spread: float, scale: float) -> Optional[float]:
    if not xs or spread <= 0:
        return None
    return statistics.fmean(xs) / spread * scale


def tally_records(records: Iterable) -> Tally:
    """Score an archived session: each snapshot record with the execution record after it."""
    tally = Tally()
    snapshot = None
    for record in records:
        if record.kind == "snapshot":
            snapshot = record.value
        elif record.kind == "execution" and snapshot is not None:
            tally.on_tick(snapshot, record.value)
            snapshot = None
    return tally
