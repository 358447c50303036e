"""Prometheus metrics and a health check for a running keeper (`keeper run --metrics-port N`).

The metrics ride the loop as an observer; money comes from the session's own Report, so a
scrape and the end summary can't disagree. The HTTP server runs in its own thread: a loop
stuck inside a tick (an RPC that never answers) can't answer anything, so the watchdog that
says so must not depend on it. `/health` is 200 while ticks are fresh and 503 with the reason
once none has completed for `stale_after_s` (keeper-bots-v2's watchdog does the same).
"""
from __future__ import annotations

import http.server
import logging
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from keeper.accounting import quote_value
from keeper.model import QUOTE_PRECISION, Execution, Snapshot
from keeper.report import Report
from keeper.risk import ACTIVE, HALTED, REDUCING

log = logging.getLogger("keeper")
disable_created_metrics()  # a *_created series per counter doubles every scrape for nothing a chart uses
RISK_STATES = (ACTIVE, REDUCING, HALTED)
# Tick latency from a local tick (~1 ms) to a live one held up by a slow RPC.
TICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LANDING_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)


class Metrics:
    """Every name starts with keeper_; data/grafana/keeper.json charts them."""

    def __init__(self, report: Report, registry: Optional[CollectorRegistry] = None):
        self.report = report
        self.registry = r = registry or CollectorRegistry()
        self.ticks = Counter("keeper_ticks", "Ticks that quoted", registry=r)
        self.skipped = Counter("keeper_ticks_skipped", "Ticks skipped for want of trustworthy data", ["reason"],
                               registry=r)
        self.tick_seconds = Histogram("keeper_tick_seconds", "Snapshot to executed plan", buckets=TICK_BUCKETS,
                                      registry=r)
        self.placed = Counter("keeper_orders_placed", "Orders the venue accepted", ["market"], registry=r)
        self.cancelled = Counter("keeper_orders_cancelled", "Cancels the venue accepted", ["market"], registry=r)
        self.rejected = Counter("keeper_orders_rejected", "Actions the venue refused, by Drift error",
                                ["action", "error"], registry=r)
        self.fills = Counter("keeper_fills", "Our fills", ["market", "side", "liquidity"], registry=r)
        self.volume = Gauge("keeper_volume_usd", "Filled notional this session", ["market"], registry=r)
        self.fees = Gauge("keeper_fees_usd", "Fees paid this session (negative: rebates earned)", ["market"],
                          registry=r)
        self.pnl = Gauge("keeper_pnl_usd", "Total PnL: realized + unrealized - fees + funding", ["market"], registry=r)
        self.position = Gauge("keeper_position_base", "Position in base units", ["market"], registry=r)
        self.inventory = Gauge("keeper_inventory_usd", "Position value at the oracle", ["market"], registry=r)
        self.drawdown = Gauge("keeper_drawdown_usd", "Total PnL below its session peak", registry=r)
        self.risk_state = Gauge("keeper_risk_state", "1 for the risk gate's current state", ["state"], registry=r)
        self.oracle_age = Gauge("keeper_oracle_age_slots", "Slots since the oracle published", ["market"], registry=r)
        self.book_age = Gauge("keeper_book_age_slots", "Slots the order book lags the chain", registry=r)
        self.collateral = Gauge("keeper_free_collateral_usd", "Free collateral", registry=r)
        self.maintenance = Gauge("keeper_maintenance_margin_usd", "Drift's maintenance margin requirement", registry=r)
        self.liquidation = Gauge("keeper_liquidation_distance_pct",
                                 "Maintenance collateral above the requirement, in % of it (0: liquidation)", registry=r)
        self.rpc_up = Gauge("keeper_rpc_up", "1 while the venue's data loads, 0 while ticks are skipped", registry=r)
        self.landing = Histogram("keeper_tx_landing_seconds", "Transaction send to confirmation",
                                 buckets=LANDING_BUCKETS, registry=r)
        self.last_tick = Gauge("keeper_last_tick_timestamp_seconds", "Unix time of the last completed tick", registry=r)

    # -- the loop's observer hooks -----------------------------------------------------------
    def on_tick(self, snapshot: Snapshot, execution: Execution) -> None:
        self.ticks.inc()
        self.rpc_up.set(1)
        self.last_tick.set(time.time())
        self._plan(execution)
        for fill in snapshot.user.fills:
            self.fills.labels(fill.market, fill.side, "maker" if fill.maker else "taker").inc()
        self._money()
        for state in RISK_STATES:
            self.risk_state.labels(state).set(1 if execution.risk_state == state else 0)
        for name, market in snapshot.markets.items():
            self.oracle_age.labels(name).set(max(0, snapshot.slot - market.oracle_slot))
        if snapshot.book_slot is not None:
            self.book_age.set(max(0, snapshot.slot - snapshot.book_slot))
        user = snapshot.user
        self.collateral.set(user.free_collateral / QUOTE_PRECISION)
        if user.maintenance_requirement is not None and user.maintenance_collateral:
            self.maintenance.set(user.maintenance_requirement / QUOTE_PRECISION)
            self.liquidation.set(100 * (user.maintenance_collateral - user.maintenance_requirement)
                                 / user.maintenance_collateral)

    def on_skip(self, reason: str) -> None:
        self.skipped.labels(reason[:120]).inc()
        self.rpc_up.set(0)

    def on_tick_seconds(self, seconds: float) -> None:
        self.tick_seconds.observe(seconds)

    def on_landing(self, seconds: float) -> None:
        self.landing.observe(seconds)

    def _plan(self, execution: Execution) -> None:
        markets = {o.order_id: o.market for o in execution.plan.cancels}
        placing = iter(execution.plan.places)
        for outcome in execution.outcomes:
            if outcome.action == "cancel":
                market = markets.get(outcome.order_id, "")
                if outcome.ok:
                    self.cancelled.labels(market).inc()
            elif outcome.action == "place":
                placement = next(placing, None)
                if outcome.ok and placement is not None:
                    self.placed.labels(placement.intent.market).inc()
            if not outcome.ok:
                self.rejected.labels(outcome.action, outcome.error.split(":")[0] or "unknown").inc()

    def _money(self) -> None:
        """Gauges from the session's Report: the same figures the end summary prints."""
        report = self.report
        for name, ledger in report.ledgers.items():
            oracle = report.oracle[name]
            self.volume.labels(name).set(ledger.volume / QUOTE_PRECISION)
            self.fees.labels(name).set(ledger.fees / QUOTE_PRECISION)
            self.pnl.labels(name).set(ledger.total_pnl(oracle) / QUOTE_PRECISION)
            self.position.labels(name).set(ledger.base / ledger.base_precision)
            self.inventory.labels(name).set(quote_value(ledger.base, oracle, ledger.base_precision) / QUOTE_PRECISION)
        self.drawdown.set((report.peak.get("total", 0) - sum(
            ledger.total_pnl(report.oracle[n]) for n, ledger in report.ledgers.items())) / QUOTE_PRECISION)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class Health:
    """Whether the loop is alive: fresh while a tick completed (or was skipped, which is the
    loop running without data) within `stale_after_s`; otherwise the reason."""

    def __init__(self, stale_after_s: float, clock: Callable[[], float] = time.monotonic):
        self.stale_after_s = stale_after_s
        self.clock = clock
        self.started = clock()
        self.last_tick: Optional[float] = None
        self.skipping: Optional[str] = None  # the reason ticks are being skipped, while they are
        self.skipping_since: Optional[float] = None
        self.stopped: Optional[str] = None

    def tick(self) -> None:
        self.last_tick, self.skipping, self.skipping_since = self.clock(), None, None

    def skip(self, reason: str) -> None:
        now = self.clock()
        self.last_tick = now
        if self.skipping_since is None:
            self.skipping_since = now
        self.skipping = reason

    def status(self) -> tuple[bool, str]:
        now = self.clock()
        if self.stopped:
            return False, f"stopped: {self.stopped}"
        since = self.last_tick if self.last_tick is not None else self.started
        if now - since > self.stale_after_s:
            what = "no tick has completed" if self.last_tick is None else "the loop has not completed a tick"
            return False, f"stuck: {what} for {now - since:.0f} s (limit {self.stale_after_s:.0f} s)"
        if self.skipping_since is not None and now - self.skipping_since > self.stale_after_s:
            return False, f"no data: ticks skipped for {now - self.skipping_since:.0f} s ({self.skipping})"
        return True, "ok"


class MetricsObserver(Metrics):
    """Metrics plus the health watchdog, fed by the loop."""

    def __init__(self, report: Report, health: Health):
        super().__init__(report)
        self.health = health

    def on_tick(self, snapshot: Snapshot, execution: Execution) -> None:
        super().on_tick(snapshot, execution)
        self.health.tick()

    def on_skip(self, reason: str) -> None:
        super().on_skip(reason)
        self.health.skip(reason)


def serve(observer: MetricsObserver, port: int, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """/metrics and /health on host:port, from a daemon thread; .shutdown() stops it."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path.split("?")[0] == "/metrics":
                self._send(200, observer.text(), CONTENT_TYPE_LATEST)
            elif self.path.split("?")[0] == "/health":
                ok, reason = observer.health.status()
                self._send(200 if ok else 503, (reason + "\n").encode(), "text/plain; charset=utf-8")
            else:
                self._send(404, b"try /metrics or /health\n", "text/plain; charset=utf-8")

        def _send(self, code: int, body: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # scrapes every few seconds must not fill the log
            pass

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="keeper-metrics", daemon=True).start()
    return server


class MetricsServer(MetricsObserver):
    """The observer and its HTTP server. close() stops serving and, given the session folder,
    leaves the final scrape there as metrics.prom: the figures as the run ended."""

    def __init__(self, report: Report, port: int, stale_after_s: float):
        super().__init__(report, Health(stale_after_s))
        self.server = serve(self, port)
        log.info("metrics on http://127.0.0.1:%d/metrics, health on /health", port)

    def close(self, session=None) -> None:
        self.health.stopped = "the keeper is shutting down"
        self.server.shutdown()
        self.server.server_close()
        if session is not None:
            try:
                (Path(session) / "metrics.prom").write_bytes(self.text())
            except OSError as exc:  # a full disk already halted the run; the summary says so
                log.error("metrics.prom not written: %s", exc)
