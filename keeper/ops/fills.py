"""`keeper fills SESSION [--csv FILE]`: every fill of a session, in human units.

Prices and fees are quote (1e6), sizes are in the market's own base precision (1e9 on perps,
the token's decimals on spot), taken from the snapshot the fill arrived with. Divided as
Decimals, so what is printed is exactly what was archived.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from keeper.archive.reader import Session, open_session
from keeper.errors import UserError
from keeper.ops.table import text_table
from keeper.model import PRICE_PRECISION, QUOTE_PRECISION, Fill

COLUMNS = ("time", "market", "side", "price", "size", "fee", "liquidity", "order_id", "user_order_id")


@dataclass(frozen=True)
class FillRow:
    time: str  # ISO 8601 UTC, milliseconds
    market: str
    side: str  # buy or sell
    price: Decimal  # USD
    size: Decimal  # base units
    fee: Decimal  # USD paid; negative is a rebate earned
    liquidity: str  # maker or taker
    order_id: int
    user_order_id: int

    def cells(self) -> tuple[str, ...]:
        return (self.time, self.market, self.side, f"{self.price:f}", f"{self.size:f}", f"{self.fee:f}", self.liquidity,
                str(self.order_id), str(self.user_order_id))


def human(fill: Fill, base_precision: int) -> FillRow:
    when = datetime.fromtimestamp(fill.ts / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return FillRow(when, fill.market, "buy" if fill.side == "bid" else "sell",
                   Decimal(fill.price) / PRICE_PRECISION, Decimal(fill.size) / base_precision,
                   Decimal(fill.fee) / QUOTE_PRECISION, "maker" if getattr(fill, "maker", True) else "taker",
                   fill.order_id, fill.user_order_id)


def session_fills(session: Session) -> Iterator[FillRow]:
    precisions: dict[str, int] = {}
    for record in session.records():
        if record.kind != "snapshot":
            continue
        snap = record.value
        for name, market in snap.markets.items():
            precisions[name] = market.spec.base_precision
        for fill in snap.user.fills:
            if fill.market not in precisions:
                raise UserError(f"{session.path}/{record.where}: a fill in {fill.market!r}, a market no snapshot describes")
            yield human(fill, precisions[fill.market])


def format_fills(rows: list[FillRow]) -> str:
    if not rows:
        return "no fills"
    return text_table([COLUMNS] + [row.cells() for row in rows], right={3, 4, 5, 7, 8})


def to_csv(rows: list[FillRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(row.cells() for row in rows)
    return out.getvalue()


def fills_command(args) -> int:
    session = open_session(args.session)
    rows = list(session_fills(session))
    for problem in session.problems():
        print(f"archive: {problem}")
    if args.csv:
        try:
            Path(args.csv).write_text(to_csv(rows), encoding="utf-8")
        except OSError as exc:
            raise UserError(f"--csv {args.csv}: cannot write it ({exc.strerror or exc})") from None
        print(f"{len(rows)} fill(s) written to {args.csv}")
    else:
        print(format_fills(rows))
    return 0
