"""Replay throughput, as ratios to the plain-Python reference loop run beside it, and archive size.

1. The neutral stream (../shared/perf/gen_stream.py -T 86400 --seed 42, 1 market, L2 20x20 and
   trades), made a session through Tardis CSV (to_tardis.py, `keeper archive import`), replayed
   end to end by `keeper replay --strategy fixed_spread` (read, decode, strategy, risk, sim
   fills, summary): cold (no columns yet: gzip + JSON, building SESSION/.cache/) and warm (the
   columns), each against ../shared/perf/py_reference.py's ticks/s, and hftbacktest's
   (hbt_baseline.py) where an interpreter with hftbacktest is found (see bench/queue_models.py).
   The three run in turn, `--repeat` times; each figure is its best round, so load on the machine
   hits them alike.
2. A three-market --fast local session (L3 books): archive bytes, then what-if and --verify
   replays, cold and warm, in snapshots a second.

    .venv/bin/python bench/replay_speed.py [--stream-ticks 86400] [--local-ticks 3000] [--repeat 3] [--work DIR]

Floors (issue 15): cold >= 0.5x the plain loop, warm >= 1.0x, local >= 10,000 snapshots/s.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from queue_models import hbt_python  # noqa: E402  (the one way to find hftbacktest's interpreter)

from keeper.archive.columns import CACHE_DIR  # noqa: E402
from keeper.cli import main as keeper  # noqa: E402

MARKETS = "SOL-PERP,BTC-PERP,ETH-PERP"
PERF = Path(__file__).resolve().parents[1].parent / "shared" / "perf"


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def stream_session(ticks: int, work: Path) -> tuple[Path, Path]:
    """(the stream's .jsonl, the imported session), made once per work folder."""
    prefix, session = work / f"stream-{ticks}", work / f"session-{ticks}"
    if not prefix.with_suffix(".jsonl").exists():
        _run(sys.executable, str(PERF / "gen_stream.py"), "-T", str(ticks), "--seed", "42", "--out", str(prefix))
    if not (session / "summary.json").exists():
        shutil.rmtree(session, ignore_errors=True)
        tardis = work / f"tardis-{ticks}"
        _run(sys.executable, str(PERF / "to_tardis.py"), str(prefix), str(tardis), "--force")
        book, = tardis.glob("*book_snapshot_25*")
        trades, = tardis.glob("*trades*")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = keeper(["archive", "import", "--format", "tardis", "--book", str(book), "--trades", str(trades),
                           "--market", "SOL-PERP", str(session)])
        assert code == 0, f"import exited {code}"
    return prefix.with_suffix(".jsonl"), session


def record(ticks: int, parent: Path) -> Path:
    """A three-market --fast local session of `ticks`, recorded once per work folder."""
    folder = parent / f"local-{ticks}"
    done = [s for s in folder.glob("*") if (s / "summary.json").exists()] if folder.exists() else []
    if done:
        return done[0]
    shutil.rmtree(folder, ignore_errors=True)
    _run(sys.executable, "-m", "keeper", "run", "--fast", "--ticks", str(ticks), "--seed", "1",
         "--markets", MARKETS, "--archive-dir", str(folder))
    (session,) = folder.iterdir()
    return session


def archive_bytes(session: Path) -> tuple[int, int, int]:
    """(bytes on disk, raw JSON bytes, gzip ratio of the closed segments)."""
    stored = raw = gz_stored = gz_raw = 0
    for path in session.glob("records-*"):
        size = path.stat().st_size
        plain = len(gzip.decompress(path.read_bytes())) if path.suffix == ".gz" else size
        stored, raw = stored + size, raw + plain
        if path.suffix == ".gz":
            gz_stored, gz_raw = gz_stored + size, gz_raw + plain
    return stored, raw, (gz_raw / gz_stored if gz_stored else 0)


def timed_replay(session: Path, *extra: str, cold: bool = False) -> float:
    if cold:
        shutil.rmtree(session / CACHE_DIR, ignore_errors=True)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = keeper(["replay", str(session), *extra])
    assert code == 0, f"replay {' '.join(extra)} exited {code}"
    return time.perf_counter() - start


def stream_figures(ticks: int, work: Path, repeat: int) -> None:
    jsonl, session = stream_session(ticks, work)
    hbt = hbt_python()
    what_if = ("--strategy", "fixed_spread", "--param", "spread_bps=5")
    timed_replay(session, *what_if)  # imports and the strategy's first load, outside every figure
    best: dict[str, float] = {}
    trades = 0
    for _ in range(repeat):
        reference = json.loads(_run(sys.executable, str(PERF / "py_reference.py"), str(jsonl)))
        trades = reference["trades_in_feed"]
        figures = {"plain": reference["ticks_per_s"],
                   "cold": ticks / timed_replay(session, *what_if, cold=True),
                   "warm": ticks / timed_replay(session, *what_if)}
        if hbt:
            figures["hbt"] = json.loads(_run(hbt, str(PERF / "hbt_baseline.py"), str(jsonl.with_suffix(".npz"))))["ticks_per_s"]
        best = {k: max(best.get(k, 0.0), v) for k, v in figures.items()}
    plain = best["plain"]
    print(f"stream: gen_stream -T {ticks} --seed 42, 1 market, L2 20x20 + {trades:,} trades; best of {repeat} rounds")
    print(f"  plain-Python json.loads loop (py_reference.py): {plain:,.0f} ticks/s")
    if hbt:
        print(f"  hftbacktest 2.4.4 (hbt_baseline.py, {hbt}): {best['hbt']:,.0f} ticks/s ({best['hbt'] / plain:.2f}x the plain loop)")
    else:
        print("  hftbacktest: not run (no interpreter with hftbacktest and numba; see bench/queue_models.py)")
    for label, key, floor in (("cold (gzip + JSON, builds the columns)", "cold", 0.5), ("warm (the session's columns)", "warm", 1.0)):
        rate = best[key]
        verdict = "met" if rate / plain >= floor else "MISSED"
        against_hbt = f", {rate / best['hbt']:.2f}x hftbacktest" if hbt else ""
        print(f"  keeper replay, {label}: {rate:,.0f} ticks/s, {rate / plain:.2f}x the plain loop{against_hbt} "
              f"(floor {floor}x: {verdict})")


def local_figures(ticks: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        session = record(ticks, Path(folder))
        stored, raw, ratio = archive_bytes(session)
        per_snapshot, raw_per_snapshot = stored / ticks, raw / ticks
        print(f"archive, {MARKETS}, {ticks} ticks (one snapshot + one execution record each): "
              f"{raw_per_snapshot:,.0f} B raw JSON per snapshot, {raw_per_snapshot * 3600 / 1e6:,.1f} MB raw per hour at 1 s ticks")
        if ratio:
            print(f"  closed segments gzip {ratio:,.0f}x: {raw_per_snapshot / ratio:,.0f} B per snapshot, "
                  f"{raw_per_snapshot / ratio * 3600 / 1e6:,.2f} MB per hour; this session on disk {stored / 1e6:,.1f} MB "
                  f"({per_snapshot:,.0f} B per snapshot, its open last segment uncompressed)")
        for label, extra in (("what-if (recorded strategy)", ()), ("what-if mean_reversion", ("--strategy", "mean_reversion")),
                             ("--verify", ("--verify",))):
            for state, cold in (("cold", True), ("warm", False)):
                seconds = min(timed_replay(session, *extra, cold=cold) for _ in range(repeat))
                rate = ticks / seconds
                print(f"replay {label}, {state}: {rate:,.0f} snapshots/s ({ticks} in {seconds:.2f} s; floor 10,000: "
                      f"{'met' if rate >= 10_000 else 'MISSED'})")
        cache = sum(p.stat().st_size for p in (session / CACHE_DIR).iterdir())
        print(f"  the session's columns: {cache / 1e6:,.1f} MB ({cache / ticks:,.0f} B per tick)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream-ticks", type=int, default=86_400)
    parser.add_argument("--local-ticks", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each figure is its best one")
    parser.add_argument("--work", help="keep the stream and its session here between runs (default: a temp folder)")
    args = parser.parse_args()
    if not PERF.is_dir():
        print(f"stream: skipped, {PERF} not found (../shared beside the repository)")
    elif args.work:
        Path(args.work).mkdir(parents=True, exist_ok=True)
        stream_figures(args.stream_ticks, Path(args.work), args.repeat)
    else:
        with tempfile.TemporaryDirectory() as folder:
            stream_figures(args.stream_ticks, Path(folder), args.repeat)
    local_figures(args.local_ticks, args.repeat)


if __name__ == "__main__":
    main()
