"""A sweep's outputs: results.csv and results.json written row by row, the heatmap, the tables."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Optional

from keeper.errors import UserError
from keeper.research.sweep import COLUMNS


class Results:
    """Rows appended as they finish: the CSV line at once, results.json rewritten (atomically)."""

    def __init__(self, out: Path, keys: list[str], meta: dict) -> None:
        self.out, self.keys, self.meta = out, keys, meta
        self.columns = [*keys, *COLUMNS]
        self.rows: list[dict] = []
        try:
            out.mkdir(parents=True, exist_ok=True)
            self._csv = open(out / "results.csv", "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write to {out}: {exc.strerror or exc}") from None
        self._writer = csv.DictWriter(self._csv, self.columns)
        self._writer.writeheader()
        self._csv.flush()
        self.write_json()

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self._writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in self.columns})
        self._csv.flush()
        self.write_json()

    def write_json(self, **extra) -> None:
        self.meta.update(extra)
        tmp = self.out / "results.json.tmp"
        tmp.write_text(json.dumps({**self.meta, "rows": self.rows}, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.out / "results.json")

    def close(self) -> None:
        self._csv.close()


LABELS = {"total_pnl_usd": "total PnL ($)", "sharpe": "Sharpe (hourly)"}


def heatmap_cells(rows: list[dict], grid: dict[str, list[str]], rank: str):
    """(mean `rank` figure, mean fills, {(y, x): "error" or "crashed"}) per cell, y by the second
    parameter's values, x by the first's; NaN where there is no figure or a row failed."""
    import numpy as np

    (xk, xs), (yk, ys) = grid.items()
    cells = np.full((len(ys), len(xs)), np.nan)
    fills = np.zeros((len(ys), len(xs)))
    failed: dict[tuple[int, int], str] = {}
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            here = [r for r in rows if r.get(xk) == x and r.get(yk) == y]
            bad = [r for r in here if r.get("error")]
            if bad:
                failed[j, i] = "crashed" if bad[0]["error"].startswith("crashed") else "error"
                continue
            values = [r[rank] for r in here if r.get(rank) is not None]
            if values:
                cells[j, i] = sum(values) / len(values)
                fills[j, i] = sum(r["fills"] or 0 for r in here) / len(here)
    return cells, fills, failed


def heatmap(rows: list[dict], grid: dict[str, list[str]], rank: str, path: Path, title: str) -> Optional[Path]:
    """The mean `rank` figure per point of a two-parameter grid, over the rows given (sessions,
    train windows), for a maker to read at a glance: the colour's middle is zero, so green
    made money and red lost it whatever the range; each cell says its figure and fills (a
    good figure on three fills is luck); the best cell is framed; a point with a failed row
    is grey and says so, never coloured by figures from a run that went wrong."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    (xk, xs), (yk, ys) = grid.items()
    cells, fills, failed = heatmap_cells(rows, grid, rank)
    finite = cells[np.isfinite(cells)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    limit = limit or 1.0
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(xs) + 3), max(3.0, 0.8 * len(ys) + 2)))
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#d9d9d9")
    image = ax.imshow(np.ma.masked_invalid(cells), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(xk)
    ax.set_ylabel(yk)
    money = rank.endswith("_usd")
    for j in range(len(ys)):
        for i in range(len(xs)):
            value = cells[j, i]
            if (j, i) in failed:
                text, color = failed[j, i], "black"
            elif np.isnan(value):
                text, color = "no figure", "black"
            else:
                figure = usd(value) if money else f"{value:,.2f}"
                text = f"{figure}\n{fills[j, i]:,.0f} fills"
                color = "white" if abs(value) > 0.6 * limit else "black"  # dark ends of the scale
            ax.text(i, j, text, ha="center", va="center", fontsize=8, color=color)
    if finite.size:
        j, i = np.unravel_index(np.nanargmax(np.where(np.isfinite(cells), cells, -np.inf)), cells.shape)
        ax.add_patch(Rectangle((i - 0.5, j - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2.5))
        title += f"\nbest (framed): {xk}={xs[i]}, {yk}={ys[j]}"
    fig.colorbar(image, ax=ax, label=LABELS.get(rank, rank))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def usd(value: float) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def top_points(rows: list[dict], keys: list[str], rank: str, count: int = 5) -> list[dict]:
    """The best `count` points by `rank`, each over every session it ran on: a row per point
    (a sweep of one session: its row). A point with a failed row, or no figure, is not ranked."""
    by_point: dict[tuple, list[dict]] = {}
    for row in rows:
        by_point.setdefault(tuple(row[k] for k in keys), []).append(row)
    points = []
    for point, group in by_point.items():
        if any(r["error"] or r.get(rank) is None for r in group):
            continue
        if len(group) == 1:
            points.append(group[0])
            continue
        sharpes = [r["sharpe"] for r in group]
        points.append({**dict(zip(keys, point)), "session": f"{len(group)} sessions", "sample": group[0]["sample"],
                       "total_pnl_usd": sum(r["total_pnl_usd"] for r in group), "fills": sum(r["fills"] for r in group),
                       "sharpe": None if None in sharpes else sum(sharpes) / len(sharpes),
                       "max_drawdown_usd": max(r["max_drawdown_usd"] for r in group)})
    return sorted(points, key=lambda r: -r[rank])[:count]


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.2f}"
    return str(value)


def table(rows: list[dict], keys: list[str], columns=("total_pnl_usd", "sharpe", "fills", "max_drawdown_usd")) -> str:
    header = [*keys, "session", "sample", *columns]
    body = [[_cell(r.get(c)) if c not in ("session",) else Path(r[c]).name for c in header] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths)) for b in body]
    return "\n".join(lines)
