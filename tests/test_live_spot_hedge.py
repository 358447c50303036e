"""spot_hedge on `keeper localnet`: perp quotes and the spot hedge decided in one plan and sent
to the real Drift program, with USDC and SOL deposited as collateral. A spot sell that would
borrow is refused by the program with 6157 MarginTradingDisabled (margin trading is off for a
new user); the keeper explains that in one log line and the strategy stops borrowing."""
from __future__ import annotations

import signal
import subprocess
import time

from keeper.archive.reader import open_session
from keeper.model import Execution, Snapshot
from tests.conftest import KEEPER
from tests.live import localnet

PORT = 29_461
TICKS = 300  # the most the run may take; it stops as soon as all the test looks for has happened


def placed(e: Execution, market: str) -> list:
    return [(p.intent, o) for p, o in zip(e.plan.places, e.outcomes[len(e.plan.cancels):]) if p.intent.market == market]


def _refused(e: Execution) -> bool:
    return any(o.error.startswith("failed") for _, o in placed(e, "SOL"))


def _all_seen(records: list) -> bool:
    """A background taker filled a perp quote; perp quotes and a spot hedge went out in one plan;
    a spot sell that would borrow was refused, and a spot hedge went through after it (sells now
    cut to what is held). Until then the run goes on, at most TICKS ticks."""
    executions = [r for r in records if isinstance(r, Execution)]
    refusals = [i for i, e in enumerate(executions) if _refused(e)]
    return (any(isinstance(r, Snapshot) and r.user.positions.get("SOL-PERP") for r in records)
            and any(placed(e, "SOL-PERP") and placed(e, "SOL") for e in executions)
            and bool(refusals) and any(o.ok for e in executions[refusals[0] + 1:] for _, o in placed(e, "SOL")))


def test_spot_hedge_quotes_the_perp_and_hedges_on_spot_in_one_plan(tmp_path):
    with localnet(tmp_path, PORT) as chain:
        deposit = subprocess.run([*KEEPER, "deposit", "1", "--market", "SOL", *chain.live], cwd=chain.home,
                                 capture_output=True, text=True, timeout=120)
        assert deposit.returncode == 0, deposit.stderr
        # a tight quote and a band of a few dollars: the first perp fill by the background takers
        # needs a hedge
        args = [*KEEPER, "run", *chain.live, "--strategy", "spot_hedge", "--param", "spread_bps=1",
                "--param", "size_usd=120", "--param", "band_usd=5", "--markets", "SOL-PERP,SOL",
                "--interval", "0.3", "--ticks", str(TICKS), "--archive-dir", "sessions"]
        err_path = tmp_path / "run.stderr"  # a file, not a pipe: nobody reads it while the run goes on
        with open(err_path, "w") as err:
            child = subprocess.Popen(args, cwd=chain.home, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 600
            while child.poll() is None and time.monotonic() < deadline:
                sessions = chain.home / "sessions"
                if sessions.exists() and any(sessions.glob("*/manifest.json")) and \
                        _all_seen([r.value for r in open_session(chain.last_session()).records()]):
                    child.send_signal(signal.SIGINT)  # a clean stop: quotes cancelled, exit 0
                    break
                time.sleep(0.5)
            child.wait(timeout=180)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        stderr = err_path.read_text()
        assert child.returncode == 0, stderr
        assert "Traceback" not in stderr
        session = chain.last_session()
        records = [r.value for r in open_session(session).records()]
        executions = [r for r in records if isinstance(r, Execution)]
        snapshots = [r for r in records if isinstance(r, Snapshot)]

        assert any(s.user.positions.get("SOL-PERP") for s in snapshots), "a background taker filled a perp quote"
        together = [e for e in executions if placed(e, "SOL-PERP") and placed(e, "SOL")]
        assert together, "perp quotes and a spot hedge went out in one plan"
        assert all(i.ioc and not i.post_only for e in together for i, _ in placed(e, "SOL"))
        refused = [e for e in executions if _refused(e)]
        for e in executions:
            errors = {o.error for o in e.outcomes if not o.ok}
            if e in refused:  # the program refuses the whole place_orders: the perp quotes beside it too
                assert errors == {"failed: MarginTradingDisabled"}, errors
            else:  # after a refusal, placing pauses a moment (the venue's backoff), and says why
                assert errors <= {"paused: MarginTradingDisabled"}, errors
        # 1 SOL deposited: a hedge selling more would borrow. Refused once, the strategy stops borrowing.
        assert len(refused) <= 1
        log = (session / "keeper.log").read_text()
        assert log.count("MarginTradingDisabled: 6157: this spot order would borrow") == len(refused)
        print(f"{len(together)} plan(s) with perp quotes and a spot hedge, {len(refused)} refused with 6157")
        assert chain.open_orders() == []
