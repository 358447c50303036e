"""Drift's events (OrderActionRecord, OrderRecord, FundingPaymentRecord) from a transaction's logs.

driftpy's log walker finds the events; anchorpy decodes them with layouts built from the IDL
driftpy ships. That IDL is newer than many deployed builds (keeper localnet runs a Dec 2023
one, whose OrderActionRecord is 28 fields where the IDL lists 37), and Drift only ever appends
fields to an event. So each event gets one layout per prefix of its IDL fields, and a record
is decoded by the longest prefix that reads its bytes exactly: the fields the build emitted.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Optional

import construct
import driftpy
from anchorpy import Idl
from anchorpy.coder.event import EventCoder
from anchorpy.program.common import Event
from driftpy.events.parse import parse_logs
from driftpy.types import is_variant

from keeper.model import Fill, MarketSpec, Side, Trade

log = logging.getLogger(__name__)
WANTED = ("OrderActionRecord", "OrderRecord", "FundingPaymentRecord")


class DriftEvents:
    """The `coder.events` driftpy's parse_logs asks for, decoding only the WANTED events."""

    def __init__(self):
        raw = json.loads((Path(driftpy.__file__).parent / "idl" / "drift.json").read_text())
        events = {e["name"]: e for e in raw["events"]}
        variants = [{"name": f"{name}/{n}", "fields": events[name]["fields"][:n]}
                    for name in WANTED for n in range(len(events[name]["fields"]), 0, -1)]
        layouts = EventCoder(Idl.from_json(json.dumps({**raw, "events": variants}))).layouts
        self._layouts = {name: [layouts[f"{name}/{n}"] for n in range(len(events[name]["fields"]), 0, -1)]
                         for name in WANTED}
        self._names = {hashlib.sha256(f"event:{name}".encode()).digest()[:8]: name for name in WANTED}
        self._fits: dict[str, int] = {}  # per event, the layout that read the last record: tried first
        self._refused: set[tuple[str, int]] = set()

    @property
    def coder(self):  # parse_logs reads program.coder.events; this object is both
        return self

    @property
    def events(self):
        return self

    def parse(self, data: bytes) -> Optional[Event]:
        name = self._names.get(bytes(data[:8]))
        if name is None:
            return None
        body, layouts = bytes(data[8:]), self._layouts[name]
        first = self._fits.get(name, 0)
        for i in (first, *(j for j in range(len(layouts)) if j != first)):
            stream = io.BytesIO(body)
            try:
                value = layouts[i].parse_stream(stream)
            except (construct.ConstructError, ValueError):
                continue
            if stream.tell() == len(body):
                self._fits[name] = i
                return Event(name=name, data=value)
        if (name, len(body)) not in self._refused:
            self._refused.add((name, len(body)))
            log.warning("a %s of %d bytes matches no prefix of driftpy's IDL; such records are skipped", name, len(body))
        return None

    def decode(self, logs: list[str]) -> list[Event]:
        """The wanted events of one transaction's logs, in the order the program emitted them."""
        return parse_logs(self, logs)


@functools.cache
def events() -> DriftEvents:
    return DriftEvents()


def _side(direction) -> Side:
    return "bid" if is_variant(direction, "Long") else "ask"


def _other(side: Side) -> Side:
    return "ask" if side == "bid" else "bid"


def is_fill(record) -> bool:
    return is_variant(record.action, "Fill") and bool(record.base_asset_amount_filled)


def market_of(record) -> tuple[str, int]:
    return ("perp" if is_variant(record.market_type, "Perp") else "spot", record.market_index)


def trade_of(record, spec: MarketSpec, slot: int) -> Trade:
    """One fill event as a print. The vAMM is the side whose user is None."""
    base, quote = record.base_asset_amount_filled, record.quote_asset_amount_filled or 0
    if record.taker_order_direction is not None:
        taker_side = _side(record.taker_order_direction)
    else:  # the vAMM took: the maker's order names the other side
        taker_side = _other(_side(record.maker_order_direction))
    return Trade(
        price=(2 * quote * spec.base_precision + base) // (2 * base), size=base, taker_side=taker_side, quote=quote,
        maker=str(record.maker) if record.maker is not None else None,
        taker=str(record.taker) if record.taker is not None else None,
        maker_fee=record.maker_fee, taker_fee=record.taker_fee, fill_record_id=record.fill_record_id,
        slot=slot, ts=record.ts * 1000,
    )


def own_fill(trade: Trade, record, market: str, user: str, user_order_ids: dict[int, int]) -> Optional[Fill]:
    """Our side of a print, if we were in it: the program's own price, size, fee and maker flag."""
    if trade.maker == user:
        side, fee, order_id, maker = _side(record.maker_order_direction), trade.maker_fee or 0, record.maker_order_id, True
    elif trade.taker == user:
        side, fee, order_id, maker = _side(record.taker_order_direction), trade.taker_fee or 0, record.taker_order_id, False
    else:
        return None
    return Fill(market, side, trade.price, trade.size, fee, order_id, user_order_ids.get(order_id, 0), maker, trade.ts,
                trade.fill_record_id)
