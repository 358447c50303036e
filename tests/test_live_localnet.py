"""The live path end to end: `keeper localnet` in one process, `keeper init/deposit/run/status` in others."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import pexpect
import pytest
from solders.keypair import Keypair

from keeper.archive.reader import open_session
from keeper.model import Execution, Snapshot
from keeper.wallet import load_keypair, write_keypair
from tests.conftest import KEEPER, terminal
from tests.live import localnet, placement_problems

PORT = 28_971


@pytest.fixture(scope="module", params=["account", "default"], ids=["usdc-pyth", "usdc-quote-asset"])
def chain(tmp_path_factory, request):
    """Every test runs on both ways a deployment prices USDC: a Pyth account pinned at $1, as on
    mainnet, and QuoteAsset with no oracle account, as in the program's own tests."""
    with localnet(tmp_path_factory.mktemp("localnet"), PORT, quote_oracle=request.param) as chain:
        yield chain


def _until(condition, child, what: str, seconds: float = 60) -> None:
    """Until `condition()` holds; fails if the keeper exits first or it never does."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert child.poll() is None, f"the keeper exited before: {what}"
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


def _run(chain, *extra, ticks=None, interrupt_when=None):
    """`interrupt_when`: Ctrl-C the run once this holds, rather than let it end by --ticks."""
    args = chain.run_args(*extra) + (["--ticks", str(ticks)] if ticks else [])
    child = subprocess.Popen(args, cwd=chain.home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if interrupt_when:
        try:
            _until(interrupt_when, child, "the moment to interrupt")
        except AssertionError:
            child.kill()
            raise
        child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=180)
    assert child.returncode == 0, err
    assert "Traceback" not in err
    return chain.last_session(), out, err


def test_run_places_replaces_and_cancels_on_shutdown(chain):
    session, out, err = _run(chain, ticks=15)
    records = [r.value for r in open_session(session).records()]
    executions = [r for r in records if isinstance(r, Execution)]
    snapshots = [r for r in records if isinstance(r, Snapshot)]
    placed = [o for e in executions for o in e.outcomes if o.action == "place"]
    replaced = [o for e in executions[1:] for o in e.outcomes if o.action == "cancel"]
    assert placed and not placement_problems(placed), placement_problems(placed)
    assert replaced and all(o.ok for o in replaced), "the oracle moved 0.5%/s: quotes must have been replaced"
    on_chain = [s.user.open_orders for s in snapshots[1:]]
    assert any(len(oo) == 2 for oo in on_chain), "our bid and ask were seen resting on chain"
    assert {o.user_order_id for oo in on_chain for o in oo} - {0}
    assert "keeper order(s) cancelled on shutdown" in out
    assert chain.open_orders() == []


@pytest.mark.fault("process", run=True)
def test_ctrl_c_leaves_no_open_orders(chain, tally):
    # mid-run, with our bid and ask resting on chain for the shutdown to cancel
    session, _, _ = _run(chain, interrupt_when=lambda: len(chain.open_orders()) == 2)
    tally.archive(session)
    tally.orders_left(chain.open_orders())


def test_dry_run_sends_nothing(chain):
    before = chain.signatures()
    session, out, err = _run(chain, "--dry-run", ticks=4)
    assert chain.signatures() == before
    assert chain.open_orders() == []
    executions = [r.value for r in open_session(session).records() if isinstance(r.value, Execution)]
    assert executions and all(not o.ok and o.error.startswith("dry_run") for e in executions for o in e.outcomes)


def test_a_risk_limit_for_a_market_the_deployment_lacks_is_refused_before_anything_is_sent(chain):
    risk = chain.home / "typo.toml"
    risk.write_text('[markets."sol-perp"]\nmax_position_usd = 1000\n')
    before = chain.signatures()
    result = subprocess.run(chain.run_args("--risk", str(risk), "--ticks", "3"), cwd=chain.home,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "[markets.'sol-perp']: no market named 'sol-perp' (did you mean SOL-PERP?)" in result.stderr
    assert chain.signatures() == before


def test_status_shows_the_user(chain):
    result = subprocess.run([*KEEPER, "status", *chain.live, "--archive-dir", "sessions"], cwd=chain.home,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # the risk gate's state as the newest session of this user left it
    assert "risk state        ACTIVE when session" in result.stdout, result.stdout
    assert "total collateral  $10,000" in result.stdout or "total collateral" in result.stdout
    assert "open orders       0" in result.stdout
    assert re.search(r"^  unsettled PnL     -?\$[\d,]+\.\d\d  \(perps, funding in;", result.stdout, re.M), result.stdout


def test_live_session_verifies_and_replays(chain):
    """A live session is archived in the same schemas as a local one, so the same tools read it."""
    session, _, _ = _run(chain, ticks=6)
    verified = subprocess.run([*KEEPER, "archive", "verify", str(session)], capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    replayed = subprocess.run([*KEEPER, "replay", str(session), "--verify"], capture_output=True, text=True, timeout=120)
    assert replayed.returncode == 0, replayed.stderr
    assert "verify: reproduced 6 of 6 recorded plans" in replayed.stdout
    what_if = subprocess.run([*KEEPER, "replay", str(session), "--strategy", "mean_reversion"], capture_output=True,
                             text=True, timeout=120)
    assert what_if.returncode == 0 and "Traceback" not in what_if.stderr, what_if.stderr


@pytest.mark.fault("process", run=True)
def test_restart_adopts_or_cancels_what_a_killed_keeper_left(chain, tally):
    """SIGKILL leaves quotes resting; the next start sees them in its first snapshot and works
    from them (kept if still wanted, else cancelled), never doubling them."""
    child = subprocess.Popen(chain.run_args(), cwd=chain.home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(chain.open_orders()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        child.kill()
        child.wait()
    left = {o.order_id for o in chain.open_orders()}
    assert len(left) == 2, "the killed keeper left its bid and ask"
    tally.archive(chain.last_session())  # the killed run's, readable to its last complete record

    session, _, _ = _run(chain, ticks=5)
    records = tally.archive(session)
    snapshots = [r for r in records if isinstance(r, Snapshot)]
    assert {o.order_id for o in snapshots[0].user.open_orders} == left
    assert max(len(s.user.open_orders) for s in snapshots) <= 2
    first = next(r for r in records if isinstance(r, Execution))
    kept_or_cancelled = {o.order_id for o in first.plan.cancels} | {o.order_id for o in snapshots[1].user.open_orders}
    assert left <= kept_or_cancelled
    tally.orders_left(chain.open_orders())


def test_spot_quotes_rest_on_the_spot_market(chain):
    """With SOL deposited (driftpy wraps the native SOL), the ask sells what the user holds
    instead of borrowing, which a user without margin trading may not do."""
    deposited = subprocess.run([*KEEPER, "deposit", "5", "--market", "SOL", *chain.live], cwd=chain.home,
                               capture_output=True, text=True, timeout=120)
    assert deposited.returncode == 0, deposited.stderr
    status = subprocess.run([*KEEPER, "status", *chain.live], cwd=chain.home, capture_output=True, text=True, timeout=120)
    assert "SOL        +5" in status.stdout, status.stdout
    session, _, _ = _run(chain, "--markets", "SOL", ticks=4)
    records = [r.value for r in open_session(session).records()]
    placed = [o for r in records if isinstance(r, Execution) for o in r.outcomes if o.action == "place"]
    assert placed and not placement_problems(placed), placement_problems(placed)
    resting = [o for r in records if isinstance(r, Snapshot) for o in r.user.open_orders]
    assert resting and {o.market for o in resting} == {"SOL"}
    spec = next(r for r in records if isinstance(r, Snapshot)).markets["SOL"].spec
    assert spec.kind == "spot" and spec.base_precision == 10**9  # SOL's own decimals
    assert all(o.size % spec.step_size == 0 for o in resting)
    assert chain.open_orders() == []


@pytest.mark.fault("helper", run=True)
@pytest.mark.parametrize("sig", [signal.SIGSTOP, signal.SIGKILL], ids=["hang", "crash"])
def test_a_helper_that_hangs_or_dies_is_replaced_and_quoting_resumes(chain, tally, sig):
    """Freeze or kill the Node DLOB helper mid-run: no tick quotes without a book (a tick that
    waited on it times out and quotes nothing), a new helper gets the book re-sent, and quoting
    goes on."""
    import os

    child = subprocess.Popen(chain.run_args("--ticks", "25"), cwd=chain.home, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    helpers: list[int] = []
    while not helpers and time.monotonic() < deadline:
        time.sleep(0.5)
        found = subprocess.run(["pgrep", "-P", str(child.pid), "node"], capture_output=True, text=True)
        helpers = [int(p) for p in found.stdout.split()]
    _until(lambda: len(chain.open_orders()) == 2, child, "our quotes resting")  # it quotes first
    os.kill(helpers[0], sig)
    out, err = child.communicate(timeout=180)
    assert child.returncode == 0, err
    assert "Traceback" not in err
    assert "DLOB helper" in err
    if sig == signal.SIGSTOP:
        assert "skipped" in err
    session = chain.last_session()
    records = tally.archive(session)
    executions = [r for r in records if isinstance(r, Execution)]
    summary = json.loads((session / "summary.json").read_text())
    assert len(executions) == summary["ticks"] == 25 - summary["skipped_ticks"]  # --ticks counts attempts
    assert sum(summary["skipped_reasons"].values()) == summary["skipped_ticks"]
    assert all(s.markets["SOL-PERP"].book.bids for s in records if isinstance(s, Snapshot))  # never blind
    placed_late = [o for e in executions[-10:] for o in e.outcomes if o.action == "place" and o.ok]
    assert placed_late, "quoting resumed after the restart"
    tally.orders_left(chain.open_orders())


def test_on_a_terminal_a_wallet_without_a_drift_user_is_told_before_the_strategy_questions(chain):
    """Told after the picker's eight questions, a user would answer them again after `keeper init`."""
    stranger = write_keypair(chain.home / "stranger.json", Keypair())
    stranger_key = load_keypair(stranger).pubkey()
    child = terminal(["run", "--network", chain.url, "--keypair", str(stranger), "--markets", "SOL-PERP"])
    child.expect(pexpect.EOF)
    said = child.before
    child.close()
    assert child.exitstatus == 2, said
    assert re.search(rf"no Drift user for {stranger_key} \(subaccount 0\) on {chain.url}; create it with\s+"
                     rf"`keeper init --network {chain.url}`", said), said
    assert "Which strategy" not in said and "Traceback" not in said


def test_on_a_terminal_a_chain_that_does_not_answer_is_told_before_the_strategy_questions(tmp_path):
    wallet = write_keypair(tmp_path / "wallet.json", Keypair())
    child = terminal(["run", "--network", "localnet", "--rpc", "http://127.0.0.1:9", "--keypair", str(wallet)])
    child.expect(pexpect.EOF)
    said = child.before
    child.close()
    assert child.exitstatus == 2, said
    assert "localnet: no answer from the RPC at http://127.0.0.1:9" in said and "is `keeper localnet` running?" in said
    assert "Which strategy" not in said
