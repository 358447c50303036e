"""`keeper archive verify` throughput on a 3-market L3 local session, against a plain loop.

Records a --fast session on SOL-PERP, BTC-PERP and ETH-PERP (the local market's books are L3),
then times, on the same segments:
- the reference: a plain loop of json.loads + the jsonschema validator per record (what verify
  did before msgspec), over the first REF_SNAPSHOTS snapshots, since it runs at ~100/s;
- `verify_session`, the whole session: msgspec types generated from the schemas, seq and
  truncation checks, the gzip CRCs, and a progress display (plain lines, sent nowhere).
Prints snapshots/s for both and their ratio; the floor is 2,000 snapshots/s.

    .venv/bin/python bench/archive_verify.py [TICKS] [REF_SNAPSHOTS]
"""
from __future__ import annotations

import gzip
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replay_speed import MARKETS, record  # noqa: E402  (one way to record the session)

from keeper.archive import schema  # noqa: E402
from keeper.archive.verify import verify_session  # noqa: E402
from keeper.ui.progress import Progress  # noqa: E402

FLOOR = 2_000


def reference(session: Path, snapshots: int) -> tuple[float, int]:
    """(seconds, snapshots) of the plain loop, stopped after `snapshots` snapshots."""
    validators = {kind: schema.validator(kind) for kind in ("snapshot", "execution")}
    seen = 0
    start = time.perf_counter()
    for segment in sorted(session.glob("records-*")):
        opener = gzip.open if segment.suffix == ".gz" else open
        with opener(segment, "rb") as f:
            for line in f:
                doc = json.loads(line)
                assert validators[doc["kind"]].is_valid(doc)
                if doc["kind"] == "snapshot":
                    seen += 1
                    if seen == snapshots:
                        return time.perf_counter() - start, seen
    return time.perf_counter() - start, seen


def main() -> None:
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    ref_snapshots = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    with tempfile.TemporaryDirectory() as folder:
        session = record(ticks, Path(folder))
        raw = sum(len(gzip.decompress(p.read_bytes())) if p.suffix == ".gz" else p.stat().st_size
                  for p in session.glob("records-*"))
        print(f"session: {MARKETS}, {ticks} ticks, L3 books, {raw / ticks / 1000:,.1f} kB of JSON per tick")
        ref_s, ref_n = reference(session, ref_snapshots)
        ref_rate = ref_n / ref_s
        start = time.perf_counter()
        report = verify_session(session, progress=lambda total: Progress("verify", total, "snapshots", stream=io.StringIO()))
        new_s = time.perf_counter() - start
        assert report.ok and report.snapshots == ticks, report
        new_rate = report.snapshots / new_s
        print(f"reference (json.loads + jsonschema per record): {ref_rate:>10,.0f} snapshots/s  ({ref_n} snapshots in {ref_s:.2f} s)")
        print(f"keeper archive verify:                          {new_rate:>10,.0f} snapshots/s  "
              f"({report.snapshots} snapshots + {report.executions} executions in {new_s:.2f} s)")
        print(f"ratio: {new_rate / ref_rate:,.1f}x the reference; floor {FLOOR:,} snapshots/s: "
              f"{'met' if new_rate >= FLOOR else 'NOT MET'}")


if __name__ == "__main__":
    main()
