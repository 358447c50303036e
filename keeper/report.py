"""Session results per market and in total: fills, volume, fees, PnL, inventory, drawdown.

Built from snapshots alone (our fills and funding ride along in each), so a live run and a
replay of it are summarised by the same code.
"""
from __future__ import annotations

import functools

from keeper.accounting import Ledger, quote_value
from keeper.model import PRICE_PRECISION, QUOTE_PRECISION, Snapshot, asset_of
from keeper.ui.units import number, usd


class Report:
    def __init__(self) -> None:
        self.ledgers: dict[str, Ledger] = {}
        self.oracle: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.drawdown: dict[str, int] = {}
        self.max_inventory_quote: dict[str, int] = {}
        self.max_net_delta_quote: dict[str, int] = {}  # per asset: |perp position + spot balance|
        self.snapshots = 0
        self.end_base: dict[str, int] = {}  # the position the latest snapshot shows, market base precision
        self.total_pnl = self.gross_inventory = 0

    def observe(self, snapshot: Snapshot) -> None:
        self.snapshots += 1
        positions, ledgers, oracle = snapshot.user.positions, self.ledgers, self.oracle
        for name, market in snapshot.markets.items():
            position = positions.get(name)
            self.end_base[name] = position.base if position else 0
            if name not in ledgers:
                ledgers[name] = Ledger(market.spec.base_precision)
            oracle[name] = market.oracle_price
        for fill in snapshot.user.fills:
            if fill.market in ledgers:
                ledgers[fill.market].apply(fill)
        for name, amount in snapshot.user.funding.items():
            if name in ledgers:
                ledgers[name].funding += amount
        total = total_inventory = 0
        peak, drawdown, max_inventory = self.peak, self.drawdown, self.max_inventory_quote
        for name, ledger in ledgers.items():
            price = oracle[name]
            value = quote_value(ledger.base, price, ledger.base_precision)
            pnl = ledger.realized + value - ledger.cost - ledger.fees + ledger.funding  # Ledger.total_pnl
            total += pnl
            if pnl > peak.get(name, 0):
                peak[name] = pnl
            drawdown[name] = max(drawdown.get(name, 0), peak.setdefault(name, 0) - pnl)
            inventory = abs(value)
            total_inventory += inventory
            if inventory > max_inventory.get(name, -1):
                max_inventory[name] = inventory
        self._track("total", total)
        self.total_pnl, self.gross_inventory = total, total_inventory  # as of this snapshot, quote
        # the total is the largest gross exposure held at one time, not a sum of per-market peaks
        self.max_inventory_quote["total"] = max(self.max_inventory_quote.get("total", 0), total_inventory)
        for asset, delta in self.net_delta_quote().items():
            self.max_net_delta_quote[asset] = max(self.max_net_delta_quote.get(asset, 0), abs(delta))

    def net_delta_quote(self) -> dict[str, int]:
        """Per asset (SOL-PERP and SOL are both SOL): what we hold of it, perp and spot, signed,
        valued at one price (the perp's oracle where there is one)."""
        units: dict[str, float] = {}
        price: dict[str, int] = {}
        for name, ledger in self.ledgers.items():
            asset = _asset(name)
            units[asset] = units.get(asset, 0) + ledger.base / ledger.base_precision
            if name.endswith("-PERP") or asset not in price:
                price[asset] = self.oracle[name]
        return {asset: round(u * price[asset] * QUOTE_PRECISION / PRICE_PRECISION) for asset, u in units.items()}

    def _track(self, key: str, pnl: int) -> None:
        self.peak[key] = max(self.peak.get(key, 0), pnl)
        self.drawdown[key] = max(self.drawdown.get(key, 0), self.peak[key] - pnl)

    def summary(self) -> dict:
        """Figures in USD (floats are fine here: this is the reporting edge)."""
        markets = {}
        totals = dict.fromkeys(("fills", "volume", "fees", "funding", "realized", "unrealized", "total"), 0)
        for name, ledger in self.ledgers.items():
            oracle = self.oracle[name]
            row = dict(fills=ledger.fills, volume=ledger.volume, fees=ledger.fees, funding=ledger.funding,
                       realized=ledger.realized, unrealized=ledger.unrealized(oracle), total=ledger.total_pnl(oracle))
            for key in totals:
                totals[key] += row[key]
            markets[name] = {
                **self._usd(row, name),
                "position": ledger.base / ledger.base_precision,
                # the account's, which on a live account may hold more than this session traded
                "end_position": self.end_base.get(name, 0) / ledger.base_precision,
                "max_inventory": ledger.max_inventory / ledger.base_precision,
                "last_oracle": oracle / PRICE_PRECISION,
            }
        assets = {}
        for asset, delta in self.net_delta_quote().items():
            units = sum(ledger.base / ledger.base_precision for name, ledger in self.ledgers.items() if asset_of(name) == asset)
            assets[asset] = {"net_delta": units, "net_delta_usd": round(delta / QUOTE_PRECISION, 6),
                             "max_abs_net_delta_usd": round(self.max_net_delta_quote.get(asset, 0) / QUOTE_PRECISION, 6)}
        return {"snapshots": self.snapshots, "markets": markets, "total": self._usd(totals, "total"), "assets": assets}

    def _usd(self, row: dict, key: str) -> dict:
        usd = lambda q: round(q / QUOTE_PRECISION, 6)  # noqa: E731
        return {
            "fills": row["fills"],
            "volume_usd": usd(row["volume"]),
            "fees_usd": usd(row["fees"]),
            "funding_usd": usd(row["funding"]),
            "realized_pnl_usd": usd(row["realized"]),
            "unrealized_pnl_usd": usd(row["unrealized"]),
            "total_pnl_usd": usd(row["total"]),
            "max_inventory_usd": usd(self.max_inventory_quote.get(key, 0)),
            "max_drawdown_usd": usd(self.drawdown.get(key, 0)),
        }


@functools.lru_cache(maxsize=None)
def _asset(market: str) -> str:
    return asset_of(market)


# (title, summary key, width): the table fits an 80-column terminal
SUMMARY_COLUMNS = (("fills", "fills", 6), ("volume $", "volume_usd", 9), ("fees $", "fees_usd", 7),
                   ("realized $", "realized_pnl_usd", 11), ("unreal. $", "unrealized_pnl_usd", 10),
                   ("total $", "total_pnl_usd", 9), ("max inv $", "max_inventory_usd", 10),
                   ("max DD $", "max_drawdown_usd", 9))


def _figure(value, width: int) -> str:
    """Cents while they fit the column, whole dollars when not."""
    if isinstance(value, int):
        return f"{value:>{width},}"
    text = f"{value:,.2f}"
    return f"{text if len(text) < width else f'{value:,.0f}':>{width}}"


def format_summary(summary: dict) -> str:
    """A plain-text table, readable in a log file and on a terminal alike."""
    head = f"{'market':<8}" + "".join(f"{title:>{width}}" for title, _, width in SUMMARY_COLUMNS)
    lines = [head, "-" * len(head)]
    rows = list(summary["markets"].items()) + [("TOTAL", summary["total"])]
    for name, r in rows:
        lines.append(f"{name:<8}" + "".join(_figure(r[key], width) for _, key, width in SUMMARY_COLUMNS))
    for asset, a in summary.get("assets", {}).items():
        if sum(asset_of(m) == asset for m in summary["markets"]) < 2:
            continue  # one market: its position says it
        lines.append(f"net delta {asset}: {a['net_delta']:+,.4f} (${a['net_delta_usd']:+,.2f}; "
                     f"largest ${a['max_abs_net_delta_usd']:,.2f})")
    return "\n".join(lines + end_positions(summary))


def end_positions(summary: dict) -> list[str]:
    """Each market's position at the end, and, after a flatten, why what is left is left."""
    left = summary.get("on_stop", {}).get("left", {})
    lines = [f"end positions{' (after flatten)' if 'on_stop' in summary else ''}:"]
    for name, r in summary["markets"].items():
        base = r.get("end_position", r["position"])
        if name in left and left[name] != "flat":
            text = left[name]
        elif base:
            text = f"{number(base, signed=True)} {asset_of(name)} ({usd(round(base * r['last_oracle'] * QUOTE_PRECISION), signed=True)} at the oracle)"
        else:
            text = "flat"
        lines.append(f"  {name}: {text}")
    return lines


class ReportObserver(Report):
    """A Report that rides the loop as an observer."""

    def on_tick(self, snapshot: Snapshot, execution) -> None:
        self.observe(snapshot)
