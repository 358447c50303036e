"""One scored run: a strategy on a price path on the local market, in-process, or on a real
session through `keeper replay`."""
from __future__ import annotations

import asyncio
import contextlib
import io
import tempfile
from pathlib import Path
from typing import Optional

import strategies
from keeper.errors import UserError
from keeper.loop import Loop
from keeper.research.metrics import Tally, tally_records
from keeper.risk import RiskGate, from_dict
from keeper.run import COLLATERAL, json_params, versions
from keeper.venues.local import DEFAULT_TOXICITY, LocalVenue
from strategies.base import source_sha256

INTERVAL_S = 1  # the local runs' tick, the price paths' row spacing
QUOTE_TTL_S = 30  # keeper run's default


def markets_for(cls: type[strategies.Strategy]) -> list[str]:
    """SOL-PERP, and SOL spot for a strategy that needs a spot market too: every strategy
    trades the one asset the scenarios move."""
    return ["SOL-PERP", "SOL"] if "spot" in cls.needs else ["SOL-PERP"]


def run_local(name: str, raw_params: dict[str, str], path: list[tuple[int, int]], seed: int,
              archive_dir: Optional[str] = None, toxicity: float = DEFAULT_TOXICITY) -> dict:
    """`keeper run --fast --price-path` of one strategy, one tick per row of the path, scored.
    With `archive_dir` the run is archived there as any keeper run is."""
    markets = markets_for(strategies.discover()[name])
    strategy = strategies.build(name, raw_params, markets=markets)
    venue = LocalVenue(markets, seed=seed, price_path=path, interval_ms=INTERVAL_S * 1000, collateral=COLLATERAL,
                       toxicity=toxicity)
    tally = Tally()
    writer = None
    if archive_dir is not None:
        from keeper.archive.writer import SessionWriter

        writer = SessionWriter.create(archive_dir, {
            "network": "local", "strategy": name, "strategy_sha256": source_sha256(type(strategy)),
            "params": json_params(strategy), "seed": seed, "markets": markets, "interval_ms": INTERVAL_S * 1000,
            "quote_ttl_s": QUOTE_TTL_S, "price_path": None, "started_at": "2023-12-05T15:32:00Z",
            "versions": versions(), "argv": ["keeper", "scorecard"], "collateral": COLLATERAL, "toxicity": toxicity})
    loop = Loop(venue, strategy, RiskGate(from_dict({}, "the default risk limits")), writer, (tally,), fast=True,
                quote_ttl_s=QUOTE_TTL_S)
    try:
        asyncio.run(loop.run(len(path)))
    finally:
        if writer is not None:
            writer.close()
            writer.finish({"ticks": loop.ticks, "risk_state": loop.risk.state, **tally.report.summary()})
    return tally.figures(len(path), INTERVAL_S)


def run_replay(name: str, raw_params: dict[str, str], session: Path) -> dict:
    """`keeper replay SESSION --strategy NAME --archive-dir DIR`, in-process through the command
    line (its public behaviour: a session in, a summary and a what-if session out), scored from
    the what-if session it archives."""
    from keeper import cli
    from keeper.archive.reader import open_session

    with tempfile.TemporaryDirectory(prefix="scorecard-replay-") as tmp:
        argv = ["replay", str(session), "--strategy", name, "--archive-dir", tmp]
        for key, value in raw_params.items():
            argv += ["--param", f"{key}={value}"]
        said, errors = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(errors):
            code = cli.main(argv)
        if code != 0:
            last = (errors.getvalue() or said.getvalue()).strip().splitlines()
            raise UserError(f"replay of {session} with {name} failed (exit {code}): {last[-1] if last else 'no output'}")
        replayed = open_session(next(Path(tmp).iterdir()))
        snapshots = sum(1 for r in open_session(session).records() if r.kind == "snapshot")
        tally = tally_records(replayed.records())
        return tally.figures(snapshots, replayed.manifest["interval_ms"] / 1000)


__all__ = ["Tally", "markets_for", "run_local", "run_replay"]
