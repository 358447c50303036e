"""The live path end to end: `keeper localnet` in one process, `keeper init/deposit/run/status` in others.

Needs the Drift binary ($DRIFT_PROGRAM_SO or ~/.cache/drift-keeper/drift.so); skips without it.
"""
from __future__ import annotations

import signal
import subprocess
import time

import httpx
import pytest
from solders.keypair import Keypair

from keeper.archive.reader import open_session
from keeper.drift_idl import decode
from keeper.errors import UserError
from keeper.localnet import program
from keeper.model import Execution, Snapshot
from keeper.venues.drift.accounts import is_open
from keeper.wallet import write_keypair
from tests.conftest import KEEPER

try:
    program.find_program()
except UserError as exc:
    pytest.skip(f"needs the Drift program binary: {exc}", allow_module_level=True)

PORT = 28_971


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A localnet whose SOL oracle climbs 0.5% a second, so fixed-price quotes must be replaced."""
    home = tmp_path_factory.mktemp("localnet")
    path = home / "path.csv"
    path.write_text("timestamp,price\n" + "".join(f"{t},{100 * 1.005 ** t:.4f}\n" for t in range(600)))
    wallet = write_keypair(home / "wallet.json", Keypair())
    child = subprocess.Popen([*KEEPER, "localnet", "--port", str(PORT), "--slot-ms", "100", "--price-path", str(path),
                              "--fund", str(wallet)], cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in child.stdout:
        if "Ctrl-C" in line:
            break
    url = f"http://127.0.0.1:{PORT}"
    live = ["--network", url, "--keypair", str(wallet)]
    try:
        for args in (["init", "--yes"], ["deposit", "10000"]):
            result = subprocess.run([*KEEPER, *args, *live], cwd=home, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
        yield home, url, live, wallet
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)


def _rpc(url: str, method: str, *params):
    return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=10).json()["result"]


def _user_orders(url: str, wallet_path) -> list:
    from driftpy.addresses import get_user_account_public_key
    from driftpy.constants.config import DRIFT_PROGRAM_ID

    from keeper.wallet import load_keypair

    user = get_user_account_public_key(DRIFT_PROGRAM_ID, load_keypair(wallet_path).pubkey(), 0)
    import base64

    info = _rpc(url, "getAccountInfo", str(user), {"encoding": "base64"})["value"]
    return [o for o in decode(base64.b64decode(info["data"][0])).orders if is_open(o)]


def _run(home, live, *extra, ticks=None, interrupt_after=None):
    args = [*KEEPER, "run", *live, "--strategy", "fixed_spread", "--markets", "SOL-PERP",
            "--param", "floating=false", "--param", "requote_bps=5", "--interval", "0.3", "--archive-dir", "sessions",
            *extra]
    if ticks:
        args += ["--ticks", str(ticks)]
    child = subprocess.Popen(args, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if interrupt_after:
        time.sleep(interrupt_after)
        child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=180)
    assert child.returncode == 0, err
    assert "Traceback" not in err
    sessions = sorted((home / "sessions").iterdir())
    return sessions[-1], out, err


def test_run_places_replaces_and_cancels_on_shutdown(chain):
    home, url, live, wallet = chain
    session, out, err = _run(home, live, ticks=15)
    records = [r.value for r in open_session(session).records()]
    executions = [r for r in records if isinstance(r, Execution)]
    snapshots = [r for r in records if isinstance(r, Snapshot)]
    placed = [o for e in executions for o in e.outcomes if o.action == "place"]
    replaced = [o for e in executions[1:] for o in e.outcomes if o.action == "cancel"]
    assert placed and all(o.ok for o in placed), [o.error for o in placed if not o.ok]
    assert replaced and all(o.ok for o in replaced), "the oracle moved 0.5%/s: quotes must have been replaced"
    on_chain = [s.user.open_orders for s in snapshots[1:]]
    assert any(len(oo) == 2 for oo in on_chain), "our bid and ask were seen resting on chain"
    assert {o.user_order_id for oo in on_chain for o in oo} - {0}
    assert "keeper order(s) cancelled on shutdown" in out
    assert _user_orders(url, wallet) == []


def test_ctrl_c_leaves_no_open_orders(chain):
    home, url, live, wallet = chain
    _run(home, live, interrupt_after=6)
    assert _user_orders(url, wallet) == []


def test_dry_run_sends_nothing(chain):
    home, url, live, wallet = chain
    from keeper.wallet import load_keypair

    authority = str(load_keypair(wallet).pubkey())
    before = [h["signature"] for h in _rpc(url, "getSignaturesForAddress", authority)]
    session, out, err = _run(home, live, "--dry-run", ticks=4)
    after = [h["signature"] for h in _rpc(url, "getSignaturesForAddress", authority)]
    assert after == before
    assert _user_orders(url, wallet) == []
    executions = [r.value for r in open_session(session).records() if isinstance(r.value, Execution)]
    assert executions and all(not o.ok and o.error.startswith("dry_run") for e in executions for o in e.outcomes)


def test_status_shows_the_user(chain):
    home, url, live, _ = chain
    result = subprocess.run([*KEEPER, "status", *live], cwd=home, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "total collateral  $10,000" in result.stdout or "total collateral" in result.stdout
    assert "open orders       0" in result.stdout
