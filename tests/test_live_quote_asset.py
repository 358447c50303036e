"""A deployment set up as the Drift program's own tests set up their quote market: USDC with no
oracle account (Pubkey.default()) and OracleSource.QuoteAsset. driftpy's subscribers register
no oracle for it; the keeper must still price it at 1.0 and quote, in both subscription modes.
And a run whose data never becomes readable must end after its --ticks attempts, saying why."""
from __future__ import annotations

import asyncio
import base64
import subprocess

import pytest
from driftpy.addresses import get_spot_market_public_key
from driftpy.constants.config import DRIFT_PROGRAM_ID
from solders.pubkey import Pubkey

from keeper.drift_idl import decode
from keeper.localnet.genesis import ORACLES
from keeper.model import Execution, Snapshot
from tests.faulty_rpc import FaultyRpc
from tests.live import localnet, placement_problems

PORT = 28_991


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with localnet(tmp_path_factory.mktemp("quote-asset"), PORT, quote_oracle="default") as chain:
        yield chain


def test_the_quote_market_has_no_oracle_account(chain):
    info = chain.rpc("getAccountInfo", str(get_spot_market_public_key(DRIFT_PROGRAM_ID, 0)), {"encoding": "base64"})
    usdc = decode(base64.b64decode(info["value"]["data"][0]))
    assert usdc.oracle == Pubkey.default()
    assert type(usdc.oracle_source).__name__ == "QuoteAsset"


@pytest.mark.parametrize("subscription", ["polling", "websocket"])
def test_quotes_rest_on_chain_and_are_cancelled_at_the_end(chain, tally, subscription):
    args = chain.run_args("--subscription", subscription, "--ticks", "8")
    result = subprocess.run(args, cwd=chain.home, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "skipped" not in result.stdout, result.stdout
    records = tally.archive(chain.last_session())
    snapshots = [r for r in records if isinstance(r, Snapshot)]
    executions = [r for r in records if isinstance(r, Execution)]
    assert len(executions) == 8
    placed = [o for e in executions for o in e.outcomes if o.action == "place"]
    assert placed and not placement_problems(placed), placement_problems(placed)
    resting = [o for s in snapshots[1:] for o in s.user.open_orders if o.user_order_id]
    assert resting and all(o.post_only for o in resting), "our post-only quotes were seen resting on chain"
    # The quote asset counted at 1.0: the user's 10,000 USDC deposit plus its perp PnL (fills
    # of earlier runs; a few dollars of fees and rebates aside) is its collateral.
    user = snapshots[0].user
    unrealized = sum(p.unrealized_pnl for p in user.positions.values())
    assert abs(user.total_collateral - 10_000 * 10**6 - unrealized) <= 5 * 10**6
    tally.orders_left(chain.open_orders())


@pytest.mark.fault("data", run=True)
async def test_data_that_never_becomes_readable_ends_after_the_attempts_with_the_reason(chain):
    """The node answers SOL-PERP's oracle as missing, always: every tick is skipped, the warning
    names the market and the oracle, and `--ticks 5` still ends after five attempts."""
    oracle = str(ORACLES["SOL"])
    async with FaultyRpc(chain.url) as proxy:
        proxy.hide(oracle)
        args = chain.run_args("--subscription", "polling", "--ticks", "5", url=proxy.url)
        child = await asyncio.create_subprocess_exec(*args, cwd=chain.home, stdout=asyncio.subprocess.PIPE,
                                                     stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(child.communicate(), 180)
    out, err = out.decode(), err.decode()
    assert child.returncode == 4, err
    assert "Traceback" not in err and "AttributeError" not in err
    reason = f"perp market 0 (SOL-PERP): no price from its oracle {oracle} (Pyth)"
    errors = [line for line in err.splitlines() if line.startswith("keeper: error:")]
    assert errors == [f"keeper: error: no tick could be quoted in 5 attempt(s): data unavailable: {reason}"]
    assert f"skipped 5x: data unavailable: {reason}" in out
    # Said when it starts and when the quotes are pulled; not once a tick.
    assert sum("skipped" in line for line in err.splitlines() if " WARNING " in line) == 1
