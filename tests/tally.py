"""What fault scenarios measure, for bench/fault_report.py.

A fault scenario is a test marked `@pytest.mark.fault(kind)`; `run=True` says the keeper runs
whole (`keeper run` as a child process) rather than one component. Scenarios that run the
keeper measure the two figures that matter after any fault with the `tally` fixture: orders
left open on the chain, and records lost from the session's archive. Each figure is asserted
to be 0 and, when $KEEPER_FAULT_TALLY names a file, appended there as a JSON line, as is every
fault scenario's outcome (by conftest's report hook).
"""
from __future__ import annotations

import os
from pathlib import Path

import orjson

from keeper.archive.reader import open_session
from keeper.model import Snapshot

TALLY_ENV = "KEEPER_FAULT_TALLY"


def append(entry: dict) -> None:
    path = os.environ.get(TALLY_ENV)
    if path:
        with open(path, "ab") as out:
            out.write(orjson.dumps(entry) + b"\n")


class Tally:
    def __init__(self, test: str):
        self.test = test

    def orders_left(self, orders: list) -> None:
        append({"test": self.test, "orders_left": len(orders)})
        assert orders == [], f"{len(orders)} keeper order(s) left open"

    def fillable_after_ttl(self, orders: int) -> None:
        """Keeper quotes a taker could still fill after the keeper died and their TTL passed."""
        append({"test": self.test, "fillable_after_ttl": orders})
        assert orders == 0, f"{orders} dead keeper quote(s) still fillable after their TTL"

    def failover(self, seconds: float, tick_s: float) -> None:
        """Seconds from an endpoint's death to the first transaction through the next healthy one."""
        append({"test": self.test, "failover_s": seconds, "tick_s": tick_s})

    def drawdown_overshoot(self, drawdown: int, limit: int) -> None:
        """How far (quote) a run's max drawdown went past its hard limit: the promise is 0."""
        append({"test": self.test, "drawdown_overshoot": max(0, drawdown - limit), "drawdown": drawdown,
                "limit": limit})
        assert drawdown <= limit, f"drawdown {drawdown / 1e6:,.2f} past the {limit / 1e6:,.2f} hard limit"

    def archive(self, session: Path) -> list:
        """The session's record values. Records lost: seq numbers missing before the last one
        read, plus snapshots the run saw and did not report unarchivable (summary.json, when
        it ended cleanly) but the archive lacks. A record torn by SIGKILL was never complete, so it is not one of them."""
        reader = open_session(session)
        records = list(reader.records())
        lost = (records[-1].seq if records else 0) - len(records)
        summary = reader.summary
        if summary is not None:
            # a snapshot the keeper said it could not archive (a full disk) was never written
            seen = summary["snapshots"] - summary.get("snapshots_unarchived", 0)
            lost += seen - sum(isinstance(r.value, Snapshot) for r in records)
        append({"test": self.test, "records": len(records), "records_lost": lost})
        assert lost == 0, f"{lost} record(s) lost from {session}"
        return [r.value for r in records]
