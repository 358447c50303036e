"""`keeper sweep`: every point of a parameter grid through the what-if replay of each session.

A point's row is what `keeper replay SESSION --strategy NAME --param ...` computes for it (the
same keeper.replay.run_replay, scored by keeper.research.metrics.Tally). Rows are written as
they finish, so a crash or Ctrl-C keeps every finished one. Walk-forward splits each
session's snapshots into rolling windows: every point runs on a train window, the best one
(by --rank) then runs on the test window after it, and that is its out-of-sample result.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import strategies
from keeper.errors import UserError

FIGURES = ("fills", "volume_usd", "fees_usd", "total_pnl_usd", "sharpe", "max_drawdown_usd", "max_inv_usd",
           "fill_ratio")
RANKS = ("total_pnl_usd", "sharpe")
COLUMNS = ("session", "sample", *FIGURES, "error")  # after one column per grid parameter


@dataclass(frozen=True)
class Job:
    """One replay: a session (a window of its snapshots, or all), a strategy and its text parameters."""

    session: str
    strategy: str
    params: tuple[tuple[str, str], ...]
    fill_model: str
    latency_slots: int
    window: Optional[tuple[int, int]] = None  # snapshots [start, end)
    label: str = "all"  # all, or train N / test N of a walk-forward
    snapshots: int = 0  # in the window (or the session): the ticks Tally's Sharpe spans after a halt


@dataclass
class Plan:
    sessions: list[str]
    strategy: str
    grid: dict[str, list[str]]
    walk_forward: Optional[tuple[int, int]] = None
    rank: str = "total_pnl_usd"
    fill_model: str = "l3_fifo"
    latency_slots: int = 1
    snapshots: dict[str, int] = field(default_factory=dict)

    def points(self) -> list[tuple[tuple[str, str], ...]]:
        keys = list(self.grid)
        return [tuple(zip(keys, values)) for values in itertools.product(*self.grid.values())]

    def job(self, session: str, point, window=None, label: str = "all") -> Job:
        snapshots = window[1] - window[0] if window else self.snapshots.get(session, 0)
        return Job(session, self.strategy, point, self.fill_model, self.latency_slots, window, label, snapshots)


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for spec in specs or []:
        key, sep, values = spec.partition("=")
        key = key.strip()
        items = [v.strip() for v in values.split(",")]
        if not sep or not key or not values.strip() or any(not v for v in items):
            raise UserError(f"--grid wants KEY=V1,V2,..., got {spec!r}")
        if key in COLUMNS:
            raise UserError(f"--grid {key}: a parameter of that name would clash with the results' own {key!r} column")
        if key in grid:
            raise UserError(f"--grid {key} is given twice; give its values in one --grid {key}=V1,V2,...")
        if len(set(items)) != len(items):
            raise UserError(f"--grid {spec!r} repeats a value")
        grid[key] = items
    if not grid:
        raise UserError("keeper sweep needs at least one --grid KEY=V1,V2,...")
    return grid


def parse_walk_forward(text: Optional[str]) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    train, sep, test = text.partition(":")
    try:
        sizes = int(train), int(test)
    except ValueError:
        sizes = (0, 0)
    if not sep or min(sizes) < 1:
        raise UserError(f"--walk-forward wants TRAIN:TEST, two whole numbers of snapshots, got {text!r}")
    return sizes


def windows(snapshots: int, train: int, test: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Rolling (train, test) windows of snapshot indices, each test window right after its train
    window, moving on by one test window: every snapshot after the first train window is out of
    sample exactly once."""
    out = []
    start = 0
    while start + train + test <= snapshots:
        out.append(((start, start + train), (start + train, start + train + test)))
        start += test
    return out


def check(plan: Plan) -> None:
    """Every session opens, and every grid value builds the strategy on its markets: bad input is
    one line before any replay starts."""
    from keeper.archive.reader import open_session
    from keeper.replay import recorded_strategy

    if plan.rank not in RANKS:
        raise UserError(f"--rank is one of {', '.join(RANKS)}, not {plan.rank!r}")
    for path in plan.sessions:
        manifest = open_session(path).manifest
        for key, values in plan.grid.items():
            for value in values:
                try:
                    recorded_strategy(manifest, plan.strategy, {key: value})
                except UserError as exc:
                    raise UserError(f"--grid {key}={value}: {exc}") from None


def count_snapshots(session: str) -> int:
    """Snapshots in the session; reading them also builds its columns for the workers to share,
    which takes a while the first time (seconds for a day of one market), so it shows progress."""
    from keeper.archive import tape
    from keeper.archive.columns import open_tape
    from keeper.archive.reader import open_session
    from keeper.ui.progress import Progress

    opened = open_tape(open_session(session))
    if opened.ticks is None:
        with Progress(f"reading {Path(session).name}", opened.total(), "snapshots") as shown:
            for _ in tape.ticks(opened, shown=shown):
                pass
    return opened.ticks


def run_job(job: Job) -> dict:
    """The row of one job: its figures, or the error that stopped it. Runs in a worker."""
    row = {"session": job.session, "sample": job.label, **dict(job.params)}
    try:
        figures = replay_figures(job)
        error = figures.pop("error", "")
        row.update(figures)
        row["error"] = error
    except Exception as exc:  # noqa: BLE001 (a crash in one point is its row's, never the sweep's)
        row.update({name: None for name in FIGURES})
        row["error"] = f"{type(exc).__name__}: {exc}"
    return row


def replay_figures(job: Job) -> dict:
    import contextlib
    import io

    from keeper.archive.reader import open_session
    from keeper.replay import recorded_strategy, run_replay
    from keeper.research.metrics import Tally

    session = open_session(job.session)
    strategy = recorded_strategy(session.manifest, job.strategy, dict(job.params))
    tally, raised = Tally(), StrategyErrors()
    with contextlib.redirect_stderr(io.StringIO()):  # a library's print: the sweep shows its own progress
        _, loop = run_replay(session, strategy, fill_model=job.fill_model, latency_slots=job.latency_slots,
                             observers=(tally, raised), window=job.window, progress=False)
    figures = tally.figures(max(job.snapshots, loop.ticks), session.manifest["interval_ms"] / 1000)
    total = tally.report.summary()["total"]
    return {"fills": total["fills"], "volume_usd": total["volume_usd"], "fees_usd": total["fees_usd"],
            "total_pnl_usd": total["total_pnl_usd"], "sharpe": figures["sharpe"],
            "max_drawdown_usd": total["max_drawdown_usd"], "max_inv_usd": total["max_inventory_usd"],
            "fill_ratio": figures["fill_ratio"], "error": raised.summary()}


class StrategyErrors:
    """An observer of the ticks whose strategy raised. The loop quotes nothing new on such a tick
    and goes on (a live keeper must), and `keeper replay` says so on stderr, which a sweep's
    worker does not show: without this the point's row would look like a clean run."""

    def __init__(self) -> None:
        from keeper.loop import STRATEGY_ERROR

        self.note = STRATEGY_ERROR
        self.ticks = self.failed = 0
        self.first = ""

    def on_tick(self, snapshot, execution) -> None:
        for note in execution.plan.dropped:
            if note.startswith(self.note):
                self.failed += 1
                self.first = self.first or f"first on tick {self.ticks}: {note[len(self.note):]}"
                break
        self.ticks += 1

    def summary(self) -> str:
        return f"the strategy raised on {self.failed} of {self.ticks} ticks ({self.first})" if self.failed else ""


def best(rows: list[dict], rank: str) -> Optional[dict]:
    """The row with the highest `rank` figure; the first in grid order among equals; None if none has one."""
    scored = [r for r in rows if not r["error"] and r.get(rank) is not None and math.isfinite(r[rank])]
    return max(scored, key=lambda r: r[rank]) if scored else None


def build_plan(args) -> Plan:
    if args.strategy is None:
        raise UserError("keeper sweep needs --strategy NAME (see `keeper strategies`)")
    if args.strategy not in strategies.discover():
        from keeper.errors import unknown

        raise UserError(unknown("strategy", args.strategy, strategies.discover()))
    if args.workers < 1:
        raise UserError(f"--workers wants 1 or more, not {args.workers}")
    if args.ray_address and args.backend != "ray":
        raise UserError("--ray-address names a Ray cluster: add --backend ray")
    if args.ray_address:
        from keeper.research.backends import ray_endpoint

        ray_endpoint(args.ray_address)
    plan = Plan([str(Path(s)) for s in args.sessions], args.strategy, parse_grid(args.grid),
                parse_walk_forward(args.walk_forward), args.rank, args.fill_model, args.latency_slots)
    check(plan)
    return plan


def _died(job: Job, why: str) -> dict:
    return {"session": job.session, "sample": job.label, **dict(job.params), **{n: None for n in FIGURES},
            "error": f"crashed: {why}"}


def sweep_command(args) -> int:
    from keeper.research.backends import run_jobs
    from keeper.research.sweep_output import Results, heatmap, table
    from keeper.ui.progress import Progress

    plan = build_plan(args)
    out = Path(args.out)
    for session in plan.sessions:
        plan.snapshots[session] = count_snapshots(session)
    folds = {s: windows(plan.snapshots[s], *plan.walk_forward) for s in plan.sessions} if plan.walk_forward else {}
    if plan.walk_forward and not any(folds.values()):
        raise UserError(f"--walk-forward {args.walk_forward}: no session has {sum(plan.walk_forward)} snapshots for "
                        f"one train and test window ({', '.join(f'{Path(s).name}: {n}' for s, n in plan.snapshots.items())})")
    points = plan.points()
    if plan.walk_forward:
        jobs = [plan.job(s, p, train, f"train {k + 1}") for s in plan.sessions
                for k, (train, _) in enumerate(folds[s]) for p in points]
        total = len(jobs) + sum(len(f) for f in folds.values())
    else:
        jobs = [plan.job(s, p) for s in plan.sessions for p in points]
        total = len(jobs)
    results = Results(out, list(plan.grid), {
        "strategy": plan.strategy, "grid": plan.grid, "sessions": plan.sessions, "fill_model": plan.fill_model,
        "latency_slots": plan.latency_slots, "rank": plan.rank, "backend": args.backend,
        "walk_forward": None if not plan.walk_forward else {"train": plan.walk_forward[0], "test": plan.walk_forward[1]},
        "finished": False})
    print(f"sweep: {plan.strategy}, {len(points)} point(s) x {len(plan.sessions)} session(s), {total} replay(s) "
          f"on {args.workers} {args.backend} worker(s); rows in {out}")
    shown = Progress("sweep", total, "replays")

    def on_row(job: Job, row: dict) -> None:
        results.add(row)
        shown.update(len(results.rows), len(results.rows))

    chosen: list[dict] = []
    try:
        run_jobs(run_job, jobs, on_row, backend=args.backend, workers=args.workers, ray_address=args.ray_address,
                 died=_died)
        if plan.walk_forward:
            tests = []
            for s in plan.sessions:
                for k, (_, test) in enumerate(folds[s]):
                    train_rows = [r for r in results.rows if r["session"] == s and r["sample"] == f"train {k + 1}"]
                    top = best(sorted(train_rows, key=lambda r: points.index(_point(r, plan))), plan.rank)
                    fold = {"session": s, "fold": k + 1, "train": folds[s][k][0], "test": test, "params": None,
                            "test_row": None}
                    chosen.append(fold)
                    if top is None:  # kept, so the report says why this window has no out-of-sample result
                        fold["note"] = "no train point finished without an error: its test window was not run"
                        continue
                    fold.update({"params": dict(_point(top, plan)), f"train_{plan.rank}": top[plan.rank]})
                    tests.append(plan.job(s, _point(top, plan), test, f"test {k + 1}"))
            run_jobs(run_job, tests, on_row, backend=args.backend, workers=args.workers, ray_address=args.ray_address,
                     died=_died)
            for fold in chosen:
                if fold["params"] is not None:
                    fold["test_row"] = next(r for r in results.rows if r["session"] == fold["session"]
                                            and r["sample"] == f"test {fold['fold']}")
    except KeyboardInterrupt:
        shown.close(finished=False)
        results.write_json(finished=False, interrupted=True)
        results.close()
        print(f"sweep: stopped by Ctrl-C; {len(results.rows)} of {total} finished row(s) kept in {out}")
        return 130
    except BaseException:  # the bar's terminal state (a hidden cursor) is given back before the error is said
        shown.close(finished=False)
        results.close()
        raise
    shown.close()
    results.write_json(finished=True, walk_forward_folds=chosen or None)
    results.close()
    return _report(plan, results, chosen, out, heatmap, table)


def _point(row: dict, plan: Plan) -> tuple[tuple[str, str], ...]:
    return tuple((k, row[k]) for k in plan.grid)


def _report(plan: Plan, results, chosen: list[dict], out: Path, heatmap, table) -> int:
    from keeper.research.sweep_output import LABELS, top_points, usd

    rows = results.rows
    failed = [r for r in rows if r["error"]]
    ranked_rows = [r for r in rows if r["sample"] in ("all",) or r["sample"].startswith("train")]
    if len(plan.grid) == 2:
        for session in plan.sessions:
            name = "heatmap.png" if len(plan.sessions) == 1 else f"heatmap-{Path(session).name}.png"
            what = "mean over the train windows" if plan.walk_forward else "whole session"
            heatmap([r for r in ranked_rows if r["session"] == session], plan.grid, plan.rank, out / name,
                    f"{plan.strategy} on {Path(session).name}: {LABELS.get(plan.rank, plan.rank)} ({what})")
            print(f"heatmap: {out / name}")
    if plan.walk_forward:
        print(f"walk-forward {plan.walk_forward[0]}:{plan.walk_forward[1]} snapshots, best train point by {plan.rank}:")
        tested = [f["test_row"] for f in chosen if f["test_row"] is not None]
        print(table(tested, list(plan.grid)))
        oos = sum(r["total_pnl_usd"] or 0 for r in tested)
        print(f"out-of-sample total PnL over {len(tested)} test window(s): {usd(oos)}")
        for fold in chosen:
            if fold["test_row"] is None:
                print(f"walk-forward: {Path(fold['session']).name} fold {fold['fold']}: {fold['note']}")
    else:
        top = top_points(rows, list(plan.grid), plan.rank)
        over = f" over {len(plan.sessions)} sessions (PnL, fills summed; Sharpe the mean; drawdown the worst)" \
            if len(plan.sessions) > 1 else ""
        print(f"top {len(top)} by {plan.rank}{over}:")
        print(table(top, list(plan.grid)))
    for r in failed:
        print(f"failed: {Path(r['session']).name} {r['sample']} {dict(_point(r, plan))}: {r['error']}")
    print(f"results: {out / 'results.csv'}, {out / 'results.json'}")
    return 1 if failed else 0
