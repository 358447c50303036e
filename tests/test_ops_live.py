"""`keeper report`, `sessions` and `fills` on a live session: the keeper against `keeper localnet`."""
from __future__ import annotations

import csv
import json
import subprocess
from decimal import Decimal

import pytest

from tests.live import localnet
from tests.test_ops_report import assert_plot_png, keeper

PORT = 29_431  # and 29_432, its websocket


@pytest.fixture(scope="module")
def live_session(tmp_path_factory):
    with localnet(tmp_path_factory.mktemp("ops-live"), PORT) as chain:
        result = subprocess.run(chain.run_args("--ticks", "20"), cwd=chain.home, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        yield chain.last_session()


def test_report_png_for_a_localnet_session(live_session):
    keeper("report", live_session, cwd=live_session.parent)
    assert_plot_png(live_session / "report.png", markets=1)


def test_live_session_is_listed_and_its_fills_add_up(live_session, tmp_path):
    summary = json.loads((live_session / "summary.json").read_text())
    manifest = json.loads((live_session / "manifest.json").read_text())
    out = keeper("sessions", "--archive-dir", live_session.parent, cwd=tmp_path).stdout
    (row,) = [line.split() for line in out.splitlines()[2:]]
    assert row[2:] == [manifest["network"], "fixed_spread", str(summary["ticks"]), str(summary["total"]["fills"]),
                       f"{summary['total']['total_pnl_usd']:,.2f}", "finished", live_session.name]
    keeper("fills", live_session, "--csv", tmp_path / "fills.csv", cwd=tmp_path)
    with (tmp_path / "fills.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == summary["markets"]["SOL-PERP"]["fills"]
    assert round(sum((Decimal(r["fee"]) for r in rows), Decimal(0)), 6) == Decimal(str(summary["markets"]["SOL-PERP"]["fees_usd"]))
