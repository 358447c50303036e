"""Shared builders for tests: small, explicit snapshots in Drift precisions; and what the
tests of the Drift binary, the localnet child and the DLOB helper share."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from keeper.errors import UserError
from keeper.localnet import program
from keeper.model import (
    BASE_PRECISION, PRICE_PRECISION, Book, Level, MarketSpec, MarketState, OpenOrder, Snapshot, UserState,
)
from tests import tally as _tally

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "real"
KEEPER = [sys.executable, "-m", "keeper"]

# SOL-PERP's real parameters (dump d9d0c2d53a6e510f): tick $0.0001, step 0.01 SOL.
SOL_PERP = MarketSpec("SOL-PERP", "perp", 0, BASE_PRECISION, 100, 10_000_000, 10_000_000, 100, 20, 500, 300)


def market(spec: MarketSpec = SOL_PERP, oracle: int = 85 * PRICE_PRECISION, bid: int | None = None, ask: int | None = None) -> MarketState:
    bids = (Level(bid, BASE_PRECISION),) if bid else ()
    asks = (Level(ask, BASE_PRECISION),) if ask else ()
    return MarketState(spec, oracle, 1000, 0, oracle, 0, Book(bids, asks), None, None)


def snapshot(markets: dict[str, MarketState] | None = None, orders: tuple[OpenOrder, ...] = (), positions=None, ts: int = 1_700_000_000_000) -> Snapshot:
    markets = markets if markets is not None else {"SOL-PERP": market()}
    user = UserState(10_000 * 10**6, 10_000 * 10**6, positions or {}, orders)
    return Snapshot(ts, 1000, markets, user)


def _have_binary() -> bool:
    try:
        program.find_program()
        return True
    except UserError:
        return False


needs_binary = pytest.mark.skipif(not _have_binary(), reason="needs the Drift program binary ($DRIFT_PROGRAM_SO)")


def terminal(args: list[str], timeout: float = 120, rows: int = 30, cols: int = 120, **env: str):
    """`keeper ARGS` on a real pseudo-terminal of rows x cols (its only size: COLUMNS and LINES are
    left out), in the project root; pexpect's child, reading text."""
    import pexpect

    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return pexpect.spawn(sys.executable, ["-m", "keeper", *args], cwd=str(ROOT), env=dict(base, TERM="xterm-256color", **env),
                         encoding="utf-8", timeout=timeout, dimensions=(rows, cols))


def shows_then_exits(child, *shown: str) -> int:
    """Wait for each pattern in `shown` on the terminal, in order, then for the end; the exit code."""
    import pexpect

    for pattern in shown:
        child.expect(pattern)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def read_banner(child) -> str:
    """`keeper localnet`'s banner, read up to its last line; fails if the child exits first
    (a busy port, say), so no test goes on against whatever else listens there."""
    lines = []
    for line in child.stdout:
        lines.append(line)
        if "Ctrl-C" in line:
            return "".join(lines)
    raise AssertionError(f"keeper localnet did not start:\n{''.join(lines)}")


@pytest.fixture
async def helper():
    """A DLOB helper (the Node process), closed after the test."""
    from keeper.venues.drift.dlob import DlobHelper

    h = DlobHelper(timeout=10.0)
    try:
        yield h
    finally:
        await h.close()


@pytest.fixture(scope="session")
def local_session(tmp_path_factory) -> str:
    """A 400-tick local session with L3 books, positions, spot balances, fills and plans of every
    kind (inventory_skew on SOL-PERP, SOL and BTC-PERP). Read it; copy it before changing it."""
    import subprocess

    parent = tmp_path_factory.mktemp("local")
    subprocess.run([*KEEPER, "run", "--fast", "--ticks", "400", "--seed", "5", "--markets", "SOL-PERP,SOL,BTC-PERP",
                    "--strategy", "inventory_skew", "--archive-dir", str(parent)],
                   check=True, capture_output=True, timeout=300)
    (session,) = parent.iterdir()
    return str(session)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.exists():
        pytest.skip(f"real data not found at {SHARED} (../shared beside the repo)")
    return SHARED


@pytest.fixture
def tally(request) -> _tally.Tally:
    """Orders left open and records lost by a fault scenario: asserted 0, and tallied."""
    return _tally.Tally(request.node.nodeid)


# The modules that take longest (their localnet runs and long simulations), slowest first. They
# are collected first, so that with xdist (`-n`, whole modules to a worker) they start at once
# and the short modules fill in around them, rather than one of them starting last and running
# alone at the end. The order tests run in is otherwise free: none depends on another.
SLOW_MODULES = (
    "test_live_localnet", "test_live_faults", "test_dlob_l3_snapshots", "test_live_failover",
    "test_drawdown_holds", "test_archive_verify", "test_live_tape", "test_archive_import", "test_live_spot_hedge",
    "test_scorecard", "test_endpoints", "test_cli", "test_informed_flow", "test_risk_runs", "test_live_quote_asset",
    "test_ops_live", "test_localnet_cli", "test_ops_report", "test_replay_sim", "test_live_dead_mans_switch",
    "test_live_flatten",
)


# Modules whose tests race the clock: a keeper quoting a localnet whose oracle climbs 0.5% a
# second, slot clocks, guards counted in slots, helper timeouts, terminals.
REAL_TIME_MODULES = (
    "test_secrets", "test_ops_live", "test_endpoints", "test_book_users", "test_localnet_rpc",
    "test_localnet_driftpy", "test_localnet_cli", "test_ops_metrics", "test_end_to_end", "test_dlob_helper",
    "test_picker_pty",
)


def _can_raise_priority_back() -> bool:
    return hasattr(os, "SCHED_IDLE") and os.geteuid() == 0


@pytest.fixture(autouse=True)
def _yield_cpu_to_real_time_tests(request):
    """Under xdist, the other tests run in the idle scheduling class (SCHED_IDLE, children
    included): they get a CPU only when the real-time tests beside them leave it, so a simulation
    on one worker does not delay a keeper or a localnet on the other. Delayed, the localnet's slot
    clock catches up in a burst and the keeper's quotes, sent against the oracle it read before,
    cross the book and are refused post-only (seen with nice +10 still). Only where the worker may
    leave the idle class afterwards (root, as CI is); elsewhere nothing changes."""
    name = request.module.__name__.rpartition(".")[2]
    if (not os.environ.get("PYTEST_XDIST_WORKER") or name.startswith("test_live_") or name in REAL_TIME_MODULES
            or not _can_raise_priority_back()):
        yield
        return
    before = os.sched_getscheduler(0)
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    try:
        yield
    finally:
        os.sched_setscheduler(0, before, os.sched_param(0))


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(SLOW_MODULES)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rpartition(".")[2], len(rank)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    marker = item.get_closest_marker("fault")
    if marker is not None and (report.when == "call" or not report.passed):
        _tally.append({"test": item.nodeid, "kind": marker.args[0], "run": marker.kwargs.get("run", False),
                       "outcome": report.outcome, "when": report.when})
