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


def heatmap(rows: list[dict], grid: dict[str, list[str]], rank: str, path: Path, title: str) -> Optional[Path]:
    """The mean `rank` figure per point of a two-parameter grid, over the rows given (sessions,
    train windows); a point without a figure (an error, no variation) is left blank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    (xk, xs), (yk, ys) = grid.items()
    cells = np.full((len(ys), len(xs)), np.nan)
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            values = [r[rank] for r in rows if r.get(xk) == x and r.get(yk) == y and r.get(rank) is not None]
            if values:
                cells[j, i] = sum(values) / len(values)
    fig, ax = plt.subplots(figsize=(1.2 * len(xs) + 3, 0.8 * len(ys) + 2))
    image = ax.imshow(cells, cmap="RdYlGn", aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(xk)
    ax.set_ylabel(yk)
    for j in range(len(ys)):
        for i in range(len(xs)):
            if not np.isnan(cells[j, i]):
                ax.text(i, j, f"{cells[j, i]:,.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label=rank)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


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
