"""`keeper replay`: run an archived session through a strategy, what-if or verify."""
from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional

import strategies
from keeper.errors import UserError
from keeper.loop import Loop
from keeper.report import ReportObserver, format_summary
from keeper.risk import RiskGate, as_recorded, from_dict
from keeper.run import COLLATERAL, json_params, versions
from keeper.venues.replay import ReplayVenue
from keeper.venues.sim.fills import DEFAULT_LATENCY_SLOTS
from keeper.venues.sim.queue import DEFAULT_QUEUE_MODEL
from keeper.wallet import redact_argv
from strategies.base import source_file, source_sha256



def recorded_strategy(manifest: dict, name: str | None, raw_params: dict[str, str]) -> strategies.Strategy:
    """The recorded strategy with its recorded parameters, or another one (what-if), checked
    against the session's markets."""
    recorded = manifest["strategy"]
    chosen = name or recorded
    markets = manifest.get("markets")
    try:
        if chosen == recorded:
            available = strategies.discover()
            if recorded not in available:
                raise ValueError(f"the session's strategy {recorded!r} is not installed; pick one with --strategy NAME"
                                 f" (see `keeper strategies`)")
            params = {p.name: p for p in available[recorded].params}
            recorded_values = {k: params[k].parse(str(v).lower() if isinstance(v, bool) else str(v), markets)
                               for k, v in manifest.get("params", {}).items() if k in params}
            return strategies.build(chosen, raw_params, values=recorded_values, markets=markets)
        return strategies.build(chosen, raw_params, markets=markets)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def code_changed(manifest: dict, strategy: strategies.Strategy) -> str | None:
    """One line when the recorded strategy's file is not the one that ran the session."""
    recorded = manifest.get("strategy_sha256")
    if recorded is None or strategy.name != manifest["strategy"]:
        return None
    now = source_sha256(type(strategy))
    if now == recorded:
        return None
    return (f"warning: {source_file(type(strategy))} changed since this session was recorded "
            f"(sha256 {recorded[:12]} then, {now[:12]} now); the replay runs the current code")


LIVE = ("localnet", "devnet", "mainnet")


def what_if_notes(manifest: dict, recorded: dict | None, strategy, summary: dict, venue: ReplayVenue) -> list[str]:
    """One line each for what a maker must know to trust the what-if figures."""
    notes = []
    network = manifest.get("network", "")
    if venue.trades_seen == 0:
        live = network in LIVE or network.startswith("http")
        notes.append("warning: this session's snapshots carry no trades"
                     + (" (a live session recorded before the trade tape)" if live else "")
                     + ": fills cannot be simulated; only crossing quotes filled")
    same = strategy.name == manifest.get("strategy") and json_params(strategy) == manifest.get("params")
    if recorded and same and "total" in recorded:
        run, replay = recorded["total"], summary["total"]
        why = ("queue positions come from the archived L3 book" if venue.l3_seen
               else "queue positions come from the displayed L2 size")
        notes.append(f"replay vs the run: {replay['fills']} fills vs {run['fills']}, total PnL "
                     f"${replay['total_pnl_usd']:,.2f} vs ${run['total_pnl_usd']:,.2f}; {why}, and the run's flow "
                     f"answered its own quotes where the replay only has what printed")
    return notes


def replay_writer(args, manifest: dict, strategy: strategies.Strategy, argv: list[str]):
    """A session folder for the what-if run, so `keeper report` and `keeper fills` read it like any
    other: the recorded market data with the replayed strategy's own orders, fills and position."""
    from keeper.archive.writer import SessionWriter

    replayed = {
        "network": "replay", "strategy": strategy.name, "params": json_params(strategy), "seed": manifest["seed"],
        "markets": manifest["markets"], "interval_ms": manifest["interval_ms"], "price_path": manifest["price_path"],
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": versions(),
        "argv": ["keeper", *redact_argv(argv)],
        "risk": as_recorded(manifest.get("risk", {})),
        **{key: manifest[key] for key in ("collateral", "quote_ttl_s") if key in manifest},
    }
    return SessionWriter.create(args.archive_dir, replayed)


def replayed_ticks(session, window: Optional[tuple[int, int]] = None, label: Optional[str] = "replay") -> Iterator:
    """The session's snapshots for a replay, [start, end) of them with `window`: from its columns
    (keeper/archive/columns.py, built on the first replay), with a progress display on stderr
    unless `label` is None."""
    from keeper.archive import tape
    from keeper.archive.columns import open_tape
    from keeper.ui.progress import Progress

    start, end = window or (0, None)
    opened = open_tape(session)
    if label is None:
        yield from tape.ticks(opened, start, end)
        return
    with Progress(label, opened.total(), "snapshots") as shown:
        yield from tape.ticks(opened, start, end, shown)


def run_replay(session, strategy: strategies.Strategy, *, verify: bool = False, fill_model: str = DEFAULT_QUEUE_MODEL,
               latency_slots: int = DEFAULT_LATENCY_SLOTS, observers: tuple = (), writer=None,
               window: Optional[tuple[int, int]] = None, progress: bool = True) -> tuple[ReplayVenue, Loop]:
    """One replay of an open session through `strategy` on the sim (what-if), or a check of its
    recorded plans (verify); the observers see every tick. `window`: only snapshots [start, end)."""
    manifest = session.manifest
    venue = ReplayVenue(replayed_ticks(session, window, "replay" if progress else None), verify=verify,
                        collateral=manifest.get("collateral", COLLATERAL), fill_model=fill_model,
                        latency_slots=latency_slots, drift_flow=not manifest.get("network", "").startswith("import:"))
    risk = RiskGate(from_dict(as_recorded(manifest.get("risk", {})), f"{session.path}: manifest risk"))
    # The recorded TTL, so --verify makes the same refreshes; sessions before it had none.
    loop = Loop(venue, strategy, risk, archive=writer, observers=observers, fast=True,
                quote_ttl_s=manifest.get("quote_ttl_s"))
    try:
        asyncio.run(loop.run())
    finally:
        if writer is not None:
            writer.close()
    return venue, loop


def replay_command(args, raw_params: dict[str, str], argv: list[str]) -> int:
    from keeper.archive.reader import open_session

    session = open_session(args.session)
    manifest = session.manifest
    if args.verify and (raw_params or (args.strategy and args.strategy != manifest["strategy"])):
        raise UserError("--verify replays the recorded strategy with its recorded parameters; drop --strategy/--param")
    if args.verify and args.archive_dir:
        raise UserError("--archive-dir archives a what-if replay; --verify only compares plans with the recorded ones")
    strategy = recorded_strategy(manifest, args.strategy, raw_params)
    changed = code_changed(manifest, strategy)
    if changed:
        print(changed, file=sys.stderr)
    report = ReportObserver()
    writer = replay_writer(args, manifest, strategy, argv) if args.archive_dir else None
    venue, loop = run_replay(session, strategy, verify=args.verify, fill_model=args.fill_model,
                             latency_slots=args.latency_slots, observers=(report,), writer=writer)
    risk = loop.risk

    summary = report.summary()
    if writer is not None:
        writer.finish({"ticks": loop.ticks, "skipped_ticks": loop.skipped, "risk_state": risk.state,
                       "risk_reason": risk.reason, "replay_of": str(session.path), **summary})
    problems = session.problems()
    result = {
        "session": str(Path(args.session)),
        "mode": "verify" if args.verify else "what-if",
        "strategy": strategy.name,
        "params": json_params(strategy),
        "summary": summary,
        "archive_problems": problems,
    }
    if not args.verify:
        result["fill_model"], result["latency_slots"] = args.fill_model, args.latency_slots
        for line in what_if_notes(manifest, session.summary, strategy, summary, venue):
            print(line)
        result["notes"] = what_if_notes(manifest, session.summary, strategy, summary, venue)
    for problem in problems:
        print(f"archive: {problem}")
    if args.verify:
        result["verify"] = {"plans": venue.plans_compared, "reproduced": venue.plans_matched, "mismatches": venue.mismatches[:50]}
        print(f"verify: reproduced {venue.plans_matched} of {venue.plans_compared} recorded plans "
              f"({strategy.name}, {summary['snapshots']} snapshots)")
        for line in venue.mismatches[:10]:
            print(f"  mismatch: {line}")
    else:
        print(f"what-if: {strategy.name} {result['params']} over {summary['snapshots']} archived snapshots; "
              f"fill model {args.fill_model}, latency {args.latency_slots} slot(s)")
        print(format_summary(summary))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {args.json}: {exc.strerror}") from None
        print(f"summary written to {args.json}")
    if writer is not None:
        print(f"session: {writer.path}")
    if args.verify and (venue.mismatches or venue.plans_compared == 0):
        return 1
    return 0
