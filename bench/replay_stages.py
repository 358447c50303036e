"""Where a replay's tick goes: microseconds per tick for each step, beside the plain-Python loop's
whole tick, on the streams bench/replay_speed.py measures.

Each step's function is wrapped with a clock (about 0.2 us a call, included in its figure), so
the steps add up to the tick without double counting; "the rest" is the loop, the snapshot views
over the columns and the progress display. Warm replays (the columns built beforehand):
1. the neutral stream (gen_stream -T TICKS --seed 42, 1 market, L2 20x20 + trades), what-if
   fixed_spread spread_bps=5, as replay_speed.py runs it;
2. a three-market --fast local session (L3 books): what-if with its recorded strategy, and
   --verify.

    .venv/bin/python bench/replay_stages.py [--stream-ticks 86400] [--local-ticks 3000] [--work DIR]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replay_speed import PERF, record, stream_session, timed_replay  # noqa: E402  (one way to make the sessions)

import keeper.loop  # noqa: E402
from keeper.report import ReportObserver  # noqa: E402
from keeper.risk.gate import RiskGate  # noqa: E402
from keeper.venues.replay import ReplayVenue  # noqa: E402
from strategies.base import Strategy  # noqa: E402

# (label, owner, attribute, async): the steps of a tick, none inside another
STEPS = (
    ("sim: the interval's fills, funding, margin", ReplayVenue, "_advance", False),
    ("strategy", Strategy, "quote", False),
    ("snap to tick and step", keeper.loop, "snap_intents", False),
    ("risk gate", RiskGate, "check", False),
    ("reconcile", keeper.loop, "reconcile", False),
    ("sim: cancels and placements (verify: compare)", ReplayVenue, "execute", True),
    ("report", ReportObserver, "on_tick", False),
)


def _clocked(fn, spent: dict, label: str, is_async: bool):
    clock = time.perf_counter_ns
    if is_async:
        async def timed(*args, **kwargs):
            start = clock()
            try:
                return await fn(*args, **kwargs)
            finally:
                spent[label] += clock() - start
    else:
        def timed(*args, **kwargs):
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += clock() - start
    return timed


def stages(session: Path, ticks: int, *extra: str) -> tuple[float, dict[str, float]]:
    """(us per tick in all, {step: us per tick}) of a warm replay, strategies' quote() wrapped
    wherever a subclass defines it."""
    timed_replay(session, *extra)  # warm: the columns exist, imports are done
    spent = {label: 0 for label, *_ in STEPS}
    with contextlib.ExitStack() as patches:
        for label, owner, name, is_async in STEPS:
            targets = [owner] if owner is not Strategy else [c for c in _subclasses(Strategy) if "quote" in vars(c)]
            for target in targets:
                patches.enter_context(mock.patch.object(target, name, _clocked(getattr(target, name), spent, label, is_async)))
        seconds = timed_replay(session, *extra)
    per_tick = {label: ns / 1000 / ticks for label, ns in spent.items()}
    return seconds * 1e6 / ticks, per_tick


def _subclasses(cls) -> list[type]:
    import strategies

    strategies.discover()  # every strategy file imported, so its class is found
    found, todo = [], [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def show(title: str, total: float, steps: dict[str, float]) -> None:
    print(f"{title}: {total:,.1f} us per tick")
    for label, us in sorted(steps.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<48} {us:7.1f} us  {us / total:5.1%}")
    rest = total - sum(steps.values())
    print(f"  {'the rest (loop, snapshot views, progress)':<48} {rest:7.1f} us  {rest / total:5.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream-ticks", type=int, default=86_400)
    parser.add_argument("--local-ticks", type=int, default=3000)
    parser.add_argument("--work", help="keep the stream and its session here between runs (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(args.work or folder)
        work.mkdir(parents=True, exist_ok=True)
        if PERF.is_dir():
            jsonl, session = stream_session(args.stream_ticks, work)
            out = subprocess.run([sys.executable, str(PERF / "py_reference.py"), str(jsonl)], check=True,
                                 capture_output=True, text=True).stdout
            plain = 1e6 / json.loads(out)["ticks_per_s"]
            print(f"plain-Python json.loads loop (py_reference.py): {plain:,.1f} us per tick, all of it")
            show("stream, keeper replay --strategy fixed_spread (warm)", *stages(
                session, args.stream_ticks, "--strategy", "fixed_spread", "--param", "spread_bps=5"))
        else:
            print(f"stream: skipped, {PERF} not found (../shared beside the repository)")
        with contextlib.redirect_stdout(io.StringIO()):
            local = record(args.local_ticks, work / "local")
        show("3-market local L3 session, what-if (recorded strategy, warm)", *stages(local, args.local_ticks))
        show("3-market local L3 session, --verify (warm)", *stages(local, args.local_ticks, "--verify"))


if __name__ == "__main__":
    main()
