"""What the live-path tests share: a `keeper localnet` child with a funded, initialised user,
and ways to run the keeper against it and read the chain back.

Needs the Drift binary ($DRIFT_PROGRAM_SO or ~/.cache/drift-keeper/drift.so); modules that
import this skip without it.
"""
from __future__ import annotations

import base64
import contextlib
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from driftpy.addresses import get_user_account_public_key
from driftpy.constants.config import DRIFT_PROGRAM_ID
from solders.keypair import Keypair

from keeper.drift_errors import POST_ONLY_CROSS
from keeper.drift_idl import decode
from keeper.errors import UserError
from keeper.localnet import program
from keeper.venues.drift.accounts import is_open
from keeper.wallet import load_keypair, write_keypair
from tests.conftest import KEEPER, read_banner

try:
    program.find_program()
except UserError as exc:
    pytest.skip(f"needs the Drift program binary: {exc}", allow_module_level=True)

# The strategy every live test runs: fixed-price quotes, replaced once the oracle moves 5 bps.
FIXED_QUOTES = ["--strategy", "fixed_spread", "--param", "floating=false", "--param", "requote_bps=5"]


def placement_problems(placed: list) -> list[str]:
    """What went wrong with a run's placements beyond a post-only refusal, and [] when nothing did.
    The localnet's oracle steps 0.5% once a second and the quotes are fixed 5 bps from it: a quote
    priced before a step that lands after it crosses the AMM, the program refuses it as post-only,
    and the keeper pauses placing for a second, as designed. How often depends on the time from
    snapshot to landing, so on the machine's load. Any other refusal is a problem, and so is a run
    where no placement landed at all."""
    expected = {f"failed: {POST_ONLY_CROSS}", f"paused: {POST_ONLY_CROSS}"}
    problems = [o.error for o in placed if not o.ok and o.error not in expected]
    return problems if any(o.ok for o in placed) else ["no placement landed", *problems]


@dataclass
class LiveChain:
    home: Path  # the working folder of every keeper command
    url: str
    wallet: Path

    @property
    def live(self) -> list[str]:
        return ["--network", self.url, "--keypair", str(self.wallet)]

    def rpc(self, method: str, *params):
        reply = httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=10)
        return reply.json()["result"]

    def user_account(self):
        user = get_user_account_public_key(DRIFT_PROGRAM_ID, load_keypair(self.wallet).pubkey(), 0)
        info = self.rpc("getAccountInfo", str(user), {"encoding": "base64"})["value"]
        return decode(base64.b64decode(info["data"][0]))

    def open_orders(self) -> list:
        return [o for o in self.user_account().orders if is_open(o)]

    def signatures(self) -> list[str]:
        authority = str(load_keypair(self.wallet).pubkey())
        return [h["signature"] for h in self.rpc("getSignaturesForAddress", authority)]

    def run_args(self, *extra, markets: str = "SOL-PERP", url: str | None = None, rpc: list[str] | None = None
                 ) -> list[str]:
        """`url`: one endpoint (--network URL); `rpc`: several (--rpc A,B,...)."""
        where = ["--rpc", ",".join(rpc)] if rpc else ["--network", url or self.url]
        network = [*where, "--keypair", str(self.wallet)]
        return [*KEEPER, "run", *network, *FIXED_QUOTES, "--markets", markets, "--interval", "0.3",
                "--archive-dir", "sessions", *extra]

    def last_session(self) -> Path:
        return sorted((self.home / "sessions").iterdir())[-1]


@contextlib.contextmanager
def localnet(home: Path, port: int, quote_oracle: str = "account", climb_pct: float = 0.5):
    """A localnet whose SOL oracle climbs `climb_pct`% a second, so fixed-price quotes must be replaced,
    with the wallet's Drift user initialised and holding 10,000 USDC. `quote_oracle` is
    `keeper localnet --quote-oracle`: how USDC is priced."""
    path = home / "path.csv"
    path.write_text("timestamp,price\n" + "".join(f"{t},{100 * (1 + climb_pct / 100) ** t:.4f}\n" for t in range(900)))
    wallet = write_keypair(home / "wallet.json", Keypair())
    child = subprocess.Popen([*KEEPER, "localnet", "--port", str(port), "--slot-ms", "100", "--price-path", str(path),
                              "--fund", str(wallet), "--quote-oracle", quote_oracle], cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        read_banner(child)
        chain = LiveChain(home, f"http://127.0.0.1:{port}", wallet)
        for args in (["init", "--yes"], ["deposit", "10000"]):
            result = subprocess.run([*KEEPER, *args, *chain.live], cwd=home, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
        yield chain
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)
