"""Derive the local market's shipped JSON files from the real Drift data in ../shared/data/real.

    python -m keeper.venues.local.make_specs [SHARED_REAL_DIR]

Writes market_specs.json (one entry of integers per market, with the dump it came from) and
book_shapes.json (each resting limit order of one real DLOB snapshot per market, relative to
that snapshot's oracle). The shared data itself is never copied into the repo; the test suite
regenerates both files and compares them with the shipped ones.
"""
from __future__ import annotations

import base64
import csv
import gzip
import json
import math
import os
import re
import statistics
import sys
from pathlib import Path

import msgspec

from keeper.model import PRICE_PRECISION, QUOTE_PRECISION
from keeper.venues.drift.accounts import perp_spec, spot_spec

PACKAGE_DIR = Path(__file__).resolve().parent
SPECS_FILE = PACKAGE_DIR / "market_specs.json"
SHAPES_FILE = PACKAGE_DIR / "book_shapes.json"
DEFAULT_SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "real"

# Which account dump each market's parameters come from (see PROVENANCE.md).
DUMPS = {
    "SOL-PERP": "d9d0c2d53a6e510f",  # Mar 2026
    "BTC-PERP": "ac715df99e087147",  # Jul 2025
    "ETH-PERP": "798abd5d130711c9",  # Mar 2026
    "SOL": "e0d87f0bf9523474",  # spot, Jun 2025
}
DLOB_FILES = {
    "SOL-PERP": "perp0_SOL-PERP.csv.gz",
    "BTC-PERP": "perp1_BTC-PERP.csv.gz",
    "ETH-PERP": "perp2_ETH-PERP.csv.gz",
    "SOL": "spot1_SOL-spot.csv.gz",
}
# Spot SOL shares SOL-PERP's oracle on mainnet, so it borrows its volatility estimate.
VOL_SERIES = {"SOL-PERP": "SOL-PERP", "BTC-PERP": "BTC-PERP", "ETH-PERP": "ETH-PERP", "SOL": "SOL-PERP"}
# SpotMarket has no 24h volume field; a quiet default arrival rate for spot takers.
SPOT_TAKERS_PER_HOUR = 360
# Resting DLOB orders are maker-sized (a SOL-PERP near-touch order averages ~$27k); taker
# flow on Drift is mostly retail-sized. An assumption, not a recording: a mean taker of
# $1,500, with the 24h volume in the dumps setting how many arrive.
TAKER_MEAN_USD = 1_500
NEAR_BOOK_PPM = 20_000  # orders within 2% of the oracle define a "typical" taker size


def _decoder():
    import driftpy
    from anchorpy import Idl
    from anchorpy.coder.accounts import AccountsCoder

    idl_path = Path(driftpy.__file__).parent / "idl" / "drift.json"
    return AccountsCoder(Idl.from_json(idl_path.read_text()))


def _fee_tiers(state_csv: Path) -> dict[str, tuple[int, int]]:
    """Tier 0 (taker numerator, maker rebate numerator) of the perp and spot fee structures."""
    tiers = {}
    with open(state_csv, newline="") as f:
        for row in csv.reader(f):
            if row and row[0] in ("perp_fee_structure", "spot_fee_structure"):
                m = re.search(r"FeeTier\(fee_numerator=(\d+), fee_denominator=100000, maker_rebate_numerator=(\d+)", row[1])
                tiers[row[0].split("_")[0]] = (int(m.group(1)), int(m.group(2)))
    return tiers


def _annual_vol_bps(series: Path) -> dict[str, int]:
    """Robust realised volatility of each perp's oracle from the 15-minute market-state history.

    The median absolute return (scaled to a sigma) ignores the FTX-week jumps that would
    otherwise dominate a plain standard deviation.
    """
    prices: dict[str, list[tuple[int, float]]] = {}
    with gzip.open(series, "rt", newline="") as f:
        for row in csv.DictReader(f):
            prices.setdefault(row["market_name"], []).append((int(row["snapshot_commit_ts"]), float(row["last_oracle_price"])))
    out = {}
    for name, xs in prices.items():
        xs.sort()
        z = [
            math.log(p1 / p0) / math.sqrt(t1 - t0)
            for (t0, p0), (t1, p1) in zip(xs, xs[1:])
            if 300 <= t1 - t0 <= 3600 and p0 > 0 and p1 > 0
        ]
        if z:
            sigma = statistics.median(abs(v) for v in z) * 1.4826 * math.sqrt(365 * 86400)
            out[name] = round(sigma * 10_000)
    return out


def _median_snapshot(rows: list[dict]) -> int:
    counts: dict[int, int] = {}
    for r in rows:
        counts[int(r["snapshot_slot"])] = counts.get(int(r["snapshot_slot"]), 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))
    return ordered[(len(ordered) - 1) // 2][0]


def build(shared: Path) -> tuple[dict, dict]:
    coder = _decoder()
    wanted = set(DUMPS.values())
    accounts = {}
    with open(shared / "drift_account_dumps.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            if rec["id"] in wanted:
                accounts[rec["id"]] = coder.decode(base64.b64decode(rec["data_base64"]))
    tiers = _fee_tiers(shared / "drift_v2_market_state_2022-11_2023-04" / "raw_state_2023-12-05.csv")
    vols = _annual_vol_bps(shared / "drift_v2_market_state_2022-11_2023-04" / "drift_v2_perp_market_state_2022-11_2023-12.csv.gz")

    specs, shapes = {}, {}
    for name, dump_id in DUMPS.items():
        acct = accounts[dump_id]
        if name.endswith("-PERP"):
            amm = acct.amm
            entry = msgspec.structs.asdict(perp_spec(acct, *tiers["perp"], name=name))
            entry.update({
                "reference_price": amm.historical_oracle_data.last_oracle_price, "oracle_conf_ppm": amm.last_oracle_conf_pct,
                "base_spread": amm.base_spread, "max_spread": amm.max_spread,
                "last_funding_rate": amm.last_funding_rate, "volume24h": amm.volume24h,
            })
        else:
            oracle = acct.historical_oracle_data
            entry = msgspec.structs.asdict(spot_spec(acct, *tiers["spot"], name=name))
            entry.update({
                "reference_price": oracle.last_oracle_price,
                "oracle_conf_ppm": oracle.last_oracle_conf * 1_000_000 // oracle.last_oracle_price,
                "base_spread": 0, "max_spread": 0, "last_funding_rate": 0, "volume24h": 0,
            })
        entry["annual_vol_bps"] = vols[VOL_SERIES[name]]
        shape = _shape(shared / "drift_dlob_l3_snapshots_2023-12" / DLOB_FILES[name], entry)
        near = [o[2] * entry["step_size"] for o in shape["orders"] if abs(o[1] - (0 if o[3] else 1_000_000)) <= NEAR_BOOK_PPM]
        mean_notional = statistics.fmean(near) / entry["base_precision"] * entry["reference_price"] / PRICE_PRECISION
        entry["taker_size_ppm"] = min(1_000_000, round(TAKER_MEAN_USD * 1_000_000 / mean_notional))
        if entry["kind"] == "perp":
            entry["takers_per_hour"] = max(1, round(entry["volume24h"] / QUOTE_PRECISION / TAKER_MEAN_USD / 24))
        else:
            entry["takers_per_hour"] = SPOT_TAKERS_PER_HOUR
        entry["source"] = dump_id
        specs[name] = entry
        shapes[name] = shape
    return specs, shapes


def _shape(path: Path, spec: dict) -> dict:
    """One real snapshot's orders as [side 0=bid/1=ask, ppm, size in steps, floating, post_only, maker].

    ppm is price/oracle for fixed orders and offset/oracle for floating ones, so the book can be
    laid around any simulated oracle. Sizes snap to the market's current step and minimum.
    """
    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    slot = _median_snapshot(rows)
    rows = [r for r in rows if int(r["snapshot_slot"]) == slot]
    makers: dict[str, int] = {}
    orders = []
    min_steps = -(-spec["min_order_size"] // spec["step_size"])
    for r in rows:
        oracle = float(r["oraclePrice"])
        offset = float(r["oraclePriceOffset"])
        floating = offset != 0.0
        ppm = round((offset if floating else float(r["price"])) / oracle * 1_000_000)
        remaining = float(r["baseAssetAmount"]) - float(r["baseAssetAmountFilled"])
        steps = max(min_steps, round(remaining * spec["base_precision"] / spec["step_size"]))
        maker = makers.setdefault(r["user"], len(makers))
        orders.append([0 if r["direction"] == "long" else 1, ppm, steps, int(floating), int(r["postOnly"] == "True"), maker])
    return {"file": path.name, "slot": slot, "oracle_price": round(float(rows[0]["oraclePrice"]) * 1_000_000), "orders": orders}


def render_specs(specs: dict) -> str:
    return json.dumps(specs, indent=1) + "\n"


def render_shapes(shapes: dict) -> str:
    # One order per line keeps diffs readable while the file stays a few tens of KB.
    parts = ["{"]
    for i, (name, shape) in enumerate(shapes.items()):
        head = {k: v for k, v in shape.items() if k != "orders"}
        lines = ",\n".join(json.dumps(o, separators=(",", ":")) for o in shape["orders"])
        sep = "," if i < len(shapes) - 1 else ""
        parts.append(f'{json.dumps(name)}:{json.dumps(head, separators=(",", ":"))[:-1]},"orders":[\n{lines}]}}{sep}')
    parts.append("}")
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    shared = Path(argv[0]) if argv else Path(os.environ.get("DRIFT_SHARED_REAL", DEFAULT_SHARED))
    specs, shapes = build(shared)
    SPECS_FILE.write_text(render_specs(specs))
    SHAPES_FILE.write_text(render_shapes(shapes))
    print(f"wrote {SPECS_FILE.name} ({SPECS_FILE.stat().st_size} B) and {SHAPES_FILE.name} ({SHAPES_FILE.stat().st_size} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
