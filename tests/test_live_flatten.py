"""`keeper run --on-stop flatten` against the real program (`keeper localnet`): positions closed by
reduce-only IOC orders (place_and_take_perp_order, matched against the DLOB makers and the AMM),
nothing left resting; and the keypair warning, logged before the session folder exists, in keeper.log."""
from __future__ import annotations

import json
import subprocess

import pytest

from keeper.archive.reader import open_session
from keeper.model import Execution
from tests.live import localnet

PORT = 28_995  # and 28_996, its websocket: no other test uses them
PERPS = "SOL-PERP,BTC-PERP,ETH-PERP"  # every market the localnet makers quote: each maker's accounts can be passed


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with localnet(tmp_path_factory.mktemp("localnet"), PORT) as chain:
        yield chain


def test_flatten_leaves_every_position_closed_and_no_order_resting(chain):
    chain.wallet.chmod(0o644)
    try:
        result = subprocess.run(chain.run_args("--ticks", "20", "--on-stop", "flatten", "--param", "spread_bps=2",
                                               markets=PERPS), cwd=chain.home, capture_output=True, text=True, timeout=300)
    finally:
        chain.wallet.chmod(0o600)
    assert result.returncode == 0, result.stderr
    session = chain.last_session()
    summary = json.loads((session / "summary.json").read_text())
    left = summary["on_stop"]["left"]
    assert left, "the oracle climbed 0.5%/s past fixed quotes for 20 ticks: a position must have been built"
    assert set(left.values()) == {"flat"}, left
    assert all(row["end_position"] == 0 for row in summary["markets"].values())
    assert [p.base_asset_amount for p in chain.user_account().perp_positions if p.base_asset_amount] == []
    assert chain.open_orders() == []
    flatten = [r.value for r in open_session(session).records() if isinstance(r.value, Execution)][-summary["on_stop"]["ticks"]:]
    closing = [(p, o) for e in flatten for p, o in zip(e.plan.places, e.outcomes[len(e.plan.cancels):])]
    assert closing and all(p.intent.ioc and p.intent.reduce_only and o.ok for p, o in closing), closing
    for market in left:
        assert f"{market}: flat" in result.stdout
    assert "is readable by group or others" in (session / "keeper.log").read_text()

