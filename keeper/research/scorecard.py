"""`keeper scorecard`: every strategy on the same fixed, seeded scenarios, side by side.

Each (strategy, scenario, seed) is one in-process run through keeper.loop.Loop: on the local
market (`keeper run --fast --price-path` with the scenario's path, the seed driving both the
path's noise and the market's flow), or, for `real`, a `keeper replay` of the session built
from the real DLOB snapshots (keeper/research/real.py; a replay is deterministic, so it runs
once whatever --seeds says). keeper/research/metrics.py defines every figure; over seeds the
card shows the mean and the spread (sample stdev, min and max).
"""
from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Callable, Optional

import strategies
from keeper.errors import UserError, unknown
from keeper.research import scenarios as S
from keeper.research.metrics import FIGURES
from keeper.research.runs import markets_for, run_local, run_replay

REAL = "real"
SCENARIOS = (*S.SYNTHETIC, REAL)
PATH = "path"  # the user's --price-path
NEEDS_FILE = {"ev_maker": "model"}  # strategies that run only with a file parameter given
LABELS = {"pnl_usd": "PnL $", "sharpe": "Sharpe/h", "sortino": "Sortino/h", "max_drawdown_usd": "max DD $",
          "fill_ratio": "fill ratio", "max_inventory_usd": "max inv $", "mean_abs_inventory_usd": "mean |inv| $",
          "fees_usd": "fees $", "halted_s": "halted s"}


def choose(strategy: str, raw_params: dict[str, str], scenario_text: Optional[str], price_path: Optional[str],
           seeds: int) -> tuple[dict[str, dict[str, str]], list[str], list[str]]:
    """(parameters per strategy, skipped-strategy notes, scenarios), every input checked first."""
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, not {seeds}")
    available = strategies.discover()
    names = sorted(available) if strategy == "all" else [strategy]
    if strategy != "all" and strategy not in available:
        raise UserError(unknown("strategy", strategy, [*available, "all"]))
    for key in raw_params:
        if not any(key in {p.name for p in available[n].params} for n in names):
            raise UserError(f"--param {key}: no strategy here has a parameter {key!r} "
                            f"({', '.join(names)})")
    chosen, notes = {}, []
    for name in names:
        own = {p.name for p in available[name].params}
        params = {k: v for k, v in raw_params.items() if k in own}
        if strategy == "all" and NEEDS_FILE.get(name) and NEEDS_FILE[name] not in params:
            notes.append(f"{name} skipped: it needs --param {NEEDS_FILE[name]}=FILE")
            continue
        try:
            strategies.build(name, params, markets=markets_for(available[name]))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        chosen[name] = params
    if scenario_text is None:
        picked = [] if price_path else list(SCENARIOS)
    else:
        picked = [s.strip() for s in scenario_text.split(",") if s.strip()]
        if not picked:
            raise UserError("--scenarios names none; valid: " + ", ".join(SCENARIOS))
        for s in picked:
            if s not in SCENARIOS:
                raise UserError(unknown("scenario", s, SCENARIOS))
    if price_path:
        picked.append(PATH)
    return chosen, notes, list(dict.fromkeys(picked))


def spread(runs: list[dict]) -> dict:
    """mean, stdev (sample; 0 for one run), min and max of each figure over the seeds; a figure
    that is None in a run (a ratio with nothing to divide by) is left out of its statistics."""
    out = {}
    for key in (*FIGURES, "fills"):
        values = [r[key] for r in runs if r[key] is not None]
        out[key] = None if not values else {
            "mean": statistics.fmean(values), "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}
    return out


def run_count(chosen: dict, scenario_names: list[str], seeds: int) -> int:
    return len(chosen) * sum(1 if s == REAL else seeds for s in scenario_names)


def scorecard(chosen: dict[str, dict[str, str]], scenario_names: list[str], seeds: int,
              price_path: Optional[list[tuple[int, int]]] = None, real_data: Optional[Path] = None,
              on_run: Optional[Callable[[int, int], None]] = None) -> dict:
    """Run everything; `on_run(done, total)` after each run."""
    from keeper.research.real import DEFAULT_DATA, build_session

    total = run_count(chosen, scenario_names, seeds)
    done = 0
    results: dict[str, dict] = {name: {} for name in chosen}
    with tempfile.TemporaryDirectory(prefix="scorecard-") as tmp:
        real: dict[tuple[str, ...], Path] = {}  # a session per set of markets, built when first needed
        for scenario in scenario_names:
            for name, params in chosen.items():
                runs = []
                for seed in range(1, (1 if scenario == REAL else seeds) + 1):
                    if scenario == REAL:
                        markets = tuple(markets_for(strategies.discover()[name]))
                        if markets not in real:
                            real[markets] = build_session(Path(tmp) / "-".join(markets), real_data or DEFAULT_DATA, markets)
                        runs.append(run_replay(name, params, real[markets]))
                    else:
                        path = price_path if scenario == PATH else S.price_path(scenario, seed)
                        runs.append({**run_local(name, params, path, seed), "seed": seed})
                    done += 1
                    if on_run:
                        on_run(done, total)
                results[name][scenario] = {"runs": runs, **spread(runs)}
    return {"strategies": {n: p for n, p in chosen.items()}, "scenarios": scenario_names, "seeds": seeds,
            "results": results}


def _cell(stats: Optional[dict], key: str) -> str:
    if stats is None:
        return "-"
    digits = 3 if key in ("fill_ratio", "sharpe", "sortino") else 0 if key == "halted_s" else 2
    text = f"{stats['mean']:,.{digits}f}"
    return text + f" ±{stats['stdev']:,.{digits}f}" if stats["n"] > 1 else text


def format_table(card: dict) -> str:
    """One row per strategy and scenario: mean ±stdev over the seeds."""
    from keeper.ops.table import text_table

    rows = [["strategy", "scenario", "runs", *(LABELS[k] for k in FIGURES)]]
    for scenario in card["scenarios"]:
        for name, by_scenario in card["results"].items():
            r = by_scenario[scenario]
            rows.append([name, scenario, str(len(r["runs"])), *(_cell(r[k], k) for k in FIGURES)])
    return text_table(rows, right=set(range(2, len(rows[0]))))


def plot(card: dict, out: str) -> None:
    """Bars per strategy in each scenario, one panel per figure, the whiskers min to max."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    from matplotlib.figure import Figure

    names, scenario_names = list(card["results"]), card["scenarios"]
    figure = Figure(figsize=(15, 11), dpi=100, layout="constrained")
    axes = figure.subplots(3, 3).flatten()
    width = 0.8 / max(1, len(names))
    for ax, key in zip(axes, FIGURES):
        for i, name in enumerate(names):
            stats = [card["results"][name][s][key] for s in scenario_names]
            means = [st["mean"] if st else 0.0 for st in stats]
            low = [st["mean"] - st["min"] if st else 0.0 for st in stats]
            high = [st["max"] - st["mean"] if st else 0.0 for st in stats]
            xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(scenario_names))]
            ax.bar(xs, means, width, yerr=[low, high], capsize=2, label=name)
        ax.set_xticks(range(len(scenario_names)), scenario_names)
        ax.set_title(LABELS[key], fontsize=10)
        ax.axhline(0, color="#4d4d4d", linewidth=0.6)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"keeper scorecard: mean over {card['seeds']} seed(s), whiskers min to max", fontsize=11)
    try:
        figure.savefig(out, format="png")
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None


def scorecard_command(args, raw_params: dict[str, str]) -> int:
    from keeper.ui.progress import Progress
    from keeper.venues.local import load_price_path

    chosen, notes, scenario_names = choose(args.strategy, raw_params, args.scenarios, args.price_path, args.seeds)
    for out in (args.json, args.png):
        if not Path(out).parent.is_dir():
            raise UserError(f"cannot write {out}: no folder {Path(out).parent}")
    path = load_price_path(args.price_path) if args.price_path else None
    for note in notes:
        print(note)
    real_data = Path(args.real_data) if args.real_data else None
    with Progress("scorecard", run_count(chosen, scenario_names, args.seeds), "runs") as progress:
        card = scorecard(chosen, scenario_names, args.seeds, path, real_data,
                         on_run=lambda done, _total: progress.update(done, done))
    print(format_table(card))
    try:
        Path(args.json).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {args.json}: {exc.strerror or exc}") from None
    plot(card, args.png)
    print(f"scorecard written to {args.json} and {args.png}")
    return 0
