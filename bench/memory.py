"""Resident memory at the start and end of a long --fast run (default 100,000 ticks).

Runs the real command in a child process and samples its RSS: "start" is the first sample
once the session is ticking (its first record is on disk), "end" the last one before exit.

    .venv/bin/python bench/memory.py [TICKS]
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil


def main() -> None:
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "keeper", "run", "--fast", "--ticks", str(ticks), "--seed", "1",
                                 "--markets", "SOL-PERP,BTC-PERP,ETH-PERP", "--archive-dir", folder],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        child = psutil.Process(proc.pid)
        start_rss = last_rss = peak = None
        while proc.poll() is None:
            try:
                rss = child.memory_info().rss
            except psutil.NoSuchProcess:
                break
            if start_rss is None and any(Path(folder).glob("*/records-*")):
                start_rss = rss
            last_rss, peak = rss, max(peak or 0, rss)
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"keeper run exited {proc.returncode}")
        stored = sum(p.stat().st_size for p in Path(folder).glob("*/*"))
        mb = 1024 * 1024
        print(f"memory, {ticks:,} --fast ticks on 3 perps: RSS at start {start_rss / mb:.1f} MiB, at end {last_rss / mb:.1f} MiB, "
              f"peak {peak / mb:.1f} MiB; wall {elapsed:.0f} s ({ticks / elapsed:,.0f} ticks/s); session folder {stored / mb:.1f} MiB")


if __name__ == "__main__":
    main()
