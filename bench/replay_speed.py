"""Replay throughput and archive size.

Records a three-market --fast session, then reports:
- archive bytes per snapshot (as stored, and as raw JSON) and per hour of 1 s ticks;
- replay throughput in snapshots per second, what-if and --verify.

    .venv/bin/python bench/replay_speed.py [TICKS]
"""
from __future__ import annotations

import contextlib
import gzip
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from keeper.cli import main as keeper

MARKETS = "SOL-PERP,BTC-PERP,ETH-PERP"


def record(ticks: int, parent: Path) -> Path:
    subprocess.run([sys.executable, "-m", "keeper", "run", "--fast", "--ticks", str(ticks), "--seed", "1",
                    "--markets", MARKETS, "--archive-dir", str(parent)], check=True, capture_output=True)
    (session,) = parent.iterdir()
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


def timed_replay(session: Path, *extra: str) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = keeper(["replay", str(session), *extra])
    assert code == 0, f"replay {' '.join(extra)} exited {code}"
    return time.perf_counter() - start


def main() -> None:
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
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
            seconds = timed_replay(session, *extra)
            print(f"replay {label}: {ticks / seconds:,.0f} snapshots/s ({ticks} in {seconds:.2f} s)")


if __name__ == "__main__":
    main()
