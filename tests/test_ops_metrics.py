"""`keeper run --metrics-port`: Prometheus metrics scraped from a running keeper agree with its
summary, and /health says when the loop is stuck or has no data."""
from __future__ import annotations

import json
import socket
import subprocess
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from keeper.ops.metrics import Health
from tests.conftest import KEEPER


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _get(url: str):
    try:
        return httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None


def test_a_running_keeper_serves_metrics_that_match_its_summary(tmp_path):
    port = free_port()
    child = subprocess.Popen([*KEEPER, "run", "--ticks", "300", "--interval", "0.02", "--seed", "7", "--markets",
                              "SOL-PERP,BTC-PERP", "--metrics-port", str(port), "--archive-dir", "s"],
                             cwd=tmp_path, stdout=(tmp_path / "out").open("w"), stderr=(tmp_path / "err").open("w"))
    scraped: list[dict] = []
    health = None
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:
        reply = _get(f"http://127.0.0.1:{port}/metrics")
        if reply is not None and reply.status_code == 200:
            scraped.append(samples(reply.text))
            health = health or _get(f"http://127.0.0.1:{port}/health")
        time.sleep(0.05)
    assert child.wait(timeout=60) == 0, (tmp_path / "err").read_text()
    assert scraped, "the keeper served /metrics while it ran"
    assert health is not None and health.status_code == 200 and health.text == "ok\n"
    ticks = [s[("keeper_ticks_total", ())] for s in scraped]
    assert ticks == sorted(ticks) and ticks[-1] > ticks[0], "the tick counter moves while it runs"

    (session,) = (tmp_path / "s").iterdir()
    summary = json.loads((session / "summary.json").read_text())
    final = samples((session / "metrics.prom").read_text())  # the last scrape, as the run ended
    assert final[("keeper_ticks_total", ())] == summary["ticks"] == 300
    fills = sum(v for (name, _), v in final.items() if name == "keeper_fills_total")
    assert fills == summary["total"]["fills"] > 0
    for market, row in summary["markets"].items():
        labels = (("market", market),)
        assert final[("keeper_pnl_usd", labels)] == pytest.approx(row["total_pnl_usd"], abs=1e-6)
        assert final[("keeper_volume_usd", labels)] == pytest.approx(row["volume_usd"], abs=1e-6)
        assert final[("keeper_fees_usd", labels)] == pytest.approx(row["fees_usd"], abs=1e-6)
        assert final[("keeper_position_base", labels)] == pytest.approx(row["position"], abs=1e-9)
    placed = sum(v for (name, _), v in final.items() if name == "keeper_orders_placed_total")
    records = [json.loads(line) for f in sorted(session.glob("records-*.jsonl")) for line in f.read_text().splitlines()]
    ok_places = sum(o["ok"] and o["action"] == "place" for r in records if r["kind"] == "execution"
                    for o in r["execution"]["outcomes"])
    assert placed == ok_places > 0
    assert final[("keeper_risk_state", (("state", "ACTIVE"),))] == 1
    assert final[("keeper_tick_seconds_count", ())] == 300


def test_health_is_stale_when_no_tick_completes_and_when_data_stays_missing():
    now = [100.0]
    health = Health(30, clock=lambda: now[0])
    assert health.status() == (True, "ok")
    now[0] += 31
    ok, why = health.status()
    assert not ok and why.startswith("stuck: no tick has completed for 31 s")
    health.tick()
    assert health.status() == (True, "ok")
    now[0] += 10
    health.skip("data unavailable: perp market 0 (SOL-PERP): no price")
    assert health.status()[0]  # skipping, but not for long
    now[0] += 31
    health.skip("data unavailable: perp market 0 (SOL-PERP): no price")
    assert health.status() == (False, "no data: ticks skipped for 31 s (data unavailable: perp market 0 (SOL-PERP): "
                                      "no price)")
    now[0] += 40  # and then nothing at all: the loop itself stopped
    assert health.status() == (False, "stuck: the loop has not completed a tick for 40 s (limit 30 s)")


def test_a_busy_metrics_port_is_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*KEEPER, "run", "--ticks", "1", "--fast", "--metrics-port", str(port),
                                 "--archive-dir", "s"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1" in result.stderr
    assert not (tmp_path / "s").exists()


def test_the_grafana_dashboard_charts_only_metrics_the_keeper_serves():
    import re

    from keeper.ops.metrics import Metrics
    from keeper.report import Report
    from tests.conftest import ROOT

    dashboard = json.loads((ROOT / "data" / "grafana" / "keeper.json").read_text())
    used = {name for p in dashboard["panels"] for t in p["targets"] for name in re.findall(r"keeper_\w+", t["expr"])}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    served = {family.name + suffix for family in Metrics(Report()).registry.collect()
              for suffix in suffixes[family.type]}
    assert used and used <= served, used - served
