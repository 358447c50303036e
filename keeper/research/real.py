"""A replayable session from the real Drift DLOB L3 snapshots of Dec 2023.

../shared/data/real/drift_dlob_l3_snapshots_2023-12 holds every resting limit order of
SOL-PERP, BTC-PERP, ETH-PERP and SOL spot as dlob.drift.trade served it, 143 times, about 20 minutes apart (2023-12-05 15:32
to 2023-12-07 19:08 UTC), with the oracle price of each snapshot (PROVENANCE.md there). Each
becomes one snapshot of a session, so `keeper replay` can run any strategy over real books:

- the book: the orders resting at the snapshot's slot, L3 (price, unfilled base, user, order
  id, offset, post-only) and its L2; an order still in its auction (auction_duration > 0 and
  no more slots than that since it was placed) takes rather than rests and is left out, as
  Drift's DLOB leaves it out; reduce-only orders are left out too, since they can fill only
  up to a position the data does not show. Floating orders are at oracle + offset, as
  recorded. The book is kept as the DLOB had it, crossed or not.
- the oracle: the recorded oracle price, at the snapshot's slot; the mark is the oracle. SOL
  spot's rows carry SOL-PERP's oracle, which is SOL's (the provenance notes explain why the
  other spot markets were left out).
- time: the snapshot's commit time (unix seconds), so ticks are ~20 min apart.
- what the data lacks, and the session therefore lacks: trades (the recorder kept none), the
  vAMM's quote, funding (0), the oracle's confidence (0). A replay's fills thus come only
  from later books crossing a quote, never from trades through it: a 20-minute step with no
  tape is coarse, and the real scenario says how quotes fared against real books, not how
  often real takers would have hit them.
"""
from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from keeper.archive.writer import SessionWriter
from keeper.errors import UserError, unknown
from keeper.model import Book, BookOrder, Level, MarketState, Snapshot, UserState
from keeper.venues.local.specs import spec as market_spec

SNAPSHOTS = "drift_dlob_l3_snapshots_2023-12"
FILES = {"SOL-PERP": "perp0_SOL-PERP.csv.gz", "BTC-PERP": "perp1_BTC-PERP.csv.gz", "ETH-PERP": "perp2_ETH-PERP.csv.gz",
         "SOL": "spot1_SOL-spot.csv.gz"}
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / SNAPSHOTS


def _units(text: str, decimals: int) -> int:
    return int((Decimal(text).scaleb(decimals)).to_integral_value())


def _resting(row: dict, slot: int) -> bool:
    duration = int(row["auctionDuration"])
    in_auction = duration > 0 and slot - int(row["slot"]) <= duration
    return not in_auction and row["reduceOnly"] != "True" and row["status"] == "open" and row["orderType"] == "limit"


def _book(rows: list[dict], slot: int, precision: int) -> Book:
    orders = []
    for r in rows:
        if not _resting(r, slot):
            continue
        remaining = _units(r["baseAssetAmount"], 9) - _units(r["baseAssetAmountFilled"], 9)
        if remaining <= 0:
            continue
        offset = _units(r["oraclePriceOffset"], 6)
        orders.append(BookOrder("bid" if r["direction"] == "long" else "ask", max(1, _units(r["price"], 6)),
                                remaining * precision // 10**9, r["user"], int(r["orderId"]),
                                offset if offset else None, r["postOnly"] == "True"))
    # best first; at one price the older order (lower order slot) first
    age = {(r["user"], int(r["orderId"])): int(r["slot"]) for r in rows}
    bids = sorted((o for o in orders if o.side == "bid"), key=lambda o: (-o.price, age[(o.user, o.order_id)]))
    asks = sorted((o for o in orders if o.side == "ask"), key=lambda o: (o.price, age[(o.user, o.order_id)]))
    return Book(_levels(bids), _levels(asks), tuple(bids + asks))


def _levels(orders: list[BookOrder]) -> tuple[Level, ...]:
    sizes: dict[int, int] = {}
    for o in orders:
        sizes[o.price] = sizes.get(o.price, 0) + o.size
    return tuple(Level(p, s) for p, s in sizes.items())


def _market_rows(data: Path, market: str) -> dict[int, list[dict]]:
    path = Path(data) / FILES[market]
    if not path.is_file():
        raise UserError(f"real DLOB snapshots not found: {path} (pass --real-data DIR, the folder of "
                        f"{', '.join(FILES.values())})")
    by_slot: dict[int, list[dict]] = defaultdict(list)
    with gzip.open(path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            by_slot[int(row["snapshot_slot"])].append(row)
    return by_slot


def read_snapshots(data: Path, markets: list[str]) -> list[Snapshot]:
    """One snapshot per recorded slot that every market has (the recorder took them together)."""
    rows = {m: _market_rows(data, m) for m in markets}
    out = []
    for slot in sorted(set.intersection(*(set(r) for r in rows.values()))):
        states = {}
        for market in markets:
            spec, first = market_spec(market), rows[market][slot][0]
            oracle = _units(first["oraclePrice"], 6)
            states[market] = MarketState(spec, oracle_price=oracle, oracle_slot=slot, oracle_conf=0, mark_price=oracle,
                                         funding_rate=0, book=_book(rows[market][slot], slot, spec.base_precision))
        ts = int(rows[markets[0]][slot][0]["snapshot_commit_ts"]) * 1000
        if out and ts <= out[-1].ts:
            continue  # two snapshots in one commit second: the first is kept
        out.append(Snapshot(ts, slot, states, UserState(0, 0)))
    return out


def build_session(out: Path, data: Path = DEFAULT_DATA, markets: tuple[str, ...] = ("SOL-PERP",)) -> Path:
    """Write the session folder of `markets` at `out` (created); returns it."""
    from keeper.run import versions

    for market in markets:
        if market not in FILES:
            raise UserError(unknown("market with real DLOB snapshots", market, FILES))
    snapshots = read_snapshots(data, list(markets))
    gaps = [b.ts - a.ts for a, b in zip(snapshots, snapshots[1:])]
    manifest = {
        "network": "import:drift-dlob-l3", "strategy": "none", "params": {}, "seed": None, "markets": list(markets),
        "interval_ms": sorted(gaps)[len(gaps) // 2], "price_path": None,
        "started_at": datetime.fromtimestamp(snapshots[0].ts / 1000, timezone.utc).isoformat(),
        "versions": versions(), "argv": ["keeper", "scorecard", "--scenarios", "real"],
    }
    writer = SessionWriter.create_at(out, manifest)
    for snapshot in snapshots:
        writer.write_snapshot(snapshot)
    writer.close()
    writer.finish({"import": {"format": "drift-dlob-l3", "source": [str(Path(data) / FILES[m]) for m in markets],
                              "snapshots": len(snapshots)}})
    return Path(out)
