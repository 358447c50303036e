"""The fill model ev_maker quotes from, fitted on archived sessions (`keeper fit ev_maker`).

For every tick of every session and each distance d on a grid, a bid resting d bps under the
oracle (an ask d bps over it) is counted filled when the next snapshot shows a trade through
its price or a book that crossed it, as `keeper replay` fills what-if orders; a fill's value
is its price against the oracle `horizon_ticks` later, in bps (adverse selection shows as a
markout below the distance captured). The file is versioned and checked against
ev_model.schema.json on load, and its per-distance lists must match the grid.
"""
from __future__ import annotations

import json
from collections import deque
from pathlib import Path

from jsonschema import Draft202012Validator

from keeper.errors import UserError, printable
from keeper.model import Snapshot

FORMAT = "drift-keeper-ev-model/1"
SCHEMA = json.loads((Path(__file__).parent / "ev_model.schema.json").read_text())
DISTANCES_BPS = (0.5, 1, 2, 3, 5, 7, 10, 15, 20, 30, 50)


def _reached(side: str, price: float, snap: Snapshot, market: str) -> bool:
    m = snap.markets.get(market)
    if m is None:
        return False
    if side == "bid":
        return (m.book.best_ask is not None and m.book.best_ask <= price) or any(
            t.taker_side == "ask" and t.price <= price for t in m.trades)
    return (m.book.best_bid is not None and m.book.best_bid >= price) or any(
        t.taker_side == "bid" and t.price >= price for t in m.trades)


class _Tally:
    def __init__(self, n: int) -> None:
        self.observations = 0
        self.fills = [0] * n
        self.markout = [0.0] * n

    def as_json(self) -> dict:
        return {"observations": self.observations, "fills": self.fills,
                "markout_bps": [round(m / f, 6) if f else 0.0 for m, f in zip(self.markout, self.fills)]}


def fit(sessions: list[str], horizon_ticks: int = 5) -> dict:
    from keeper.archive.reader import open_session

    tallies: dict[str, dict[str, _Tally]] = {}
    n = len(DISTANCES_BPS)
    for path in sessions:
        window: deque[Snapshot] = deque(maxlen=horizon_ticks + 1)
        for record in open_session(path).records():
            if record.kind != "snapshot":
                continue
            window.append(record.value)
            if len(window) <= horizon_ticks:
                continue
            then, following, later = window[0], window[1], window[-1]
            for name, market in then.markets.items():
                if name not in later.markets:
                    continue
                oracle, after = market.oracle_price, later.markets[name].oracle_price
                sides = tallies.setdefault(name, {"bid": _Tally(n), "ask": _Tally(n)})
                for side, sign in (("bid", -1), ("ask", 1)):
                    tally = sides[side]
                    tally.observations += 1
                    for k, d in enumerate(DISTANCES_BPS):
                        price = oracle * (1 + sign * d / 10_000)
                        if _reached(side, price, following, name):
                            tally.fills[k] += 1
                            tally.markout[k] += -sign * (after - price) / price * 10_000
    if not tallies:
        raise UserError(f"no snapshots to fit on in {', '.join(sessions)} (a session needs more than "
                        f"{horizon_ticks} snapshots)")
    return {"format": FORMAT, "horizon_ticks": horizon_ticks, "distances_bps": list(DISTANCES_BPS),
            "sessions": [str(Path(s)) for s in sessions],
            "markets": {m: {s: t.as_json() for s, t in sides.items()} for m, sides in tallies.items()}}


def load(path: str) -> dict:
    """The model file, checked; ValueError in one line naming what is wrong."""
    shown = printable(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"model file {shown}: cannot read it ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"model file {shown}: not JSON ({exc})") from None
    if isinstance(data, dict) and data.get("format") not in (None, FORMAT):
        raise ValueError(f"model file {shown}: format {str(data['format'])[:40]!r}, this keeper reads {FORMAT}; fit it again")
    errors = sorted(Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        at = ".".join(str(p) for p in errors[0].absolute_path) or "the top level"
        raise ValueError(f"model file {shown}: at {at}: {errors[0].message[:200]}")
    n = len(data["distances_bps"])
    for market, sides in data["markets"].items():
        for side, tally in sides.items():
            if len(tally["fills"]) != n or len(tally["markout_bps"]) != n:
                raise ValueError(f"model file {shown}: {market} {side}: {n} distances but "
                                 f"{len(tally['fills'])} fill counts and {len(tally['markout_bps'])} markouts")
    return data


def fit_command(args) -> int:
    if args.strategy != "ev_maker":
        raise UserError(f"no model to fit for strategy {args.strategy!r}; fittable: ev_maker")
    model = fit(args.sessions, args.horizon_ticks)
    try:
        Path(args.out).write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {args.out}: {exc.strerror}") from None
    load(args.out)  # what we write must read back
    for market, sides in model["markets"].items():
        print(f"{market}: {sides['bid']['observations']} ticks; fills per distance (bps) "
              + ", ".join(f"{d}:{b}/{a}" for d, b, a in zip(model["distances_bps"], sides["bid"]["fills"], sides["ask"]["fills"])))
    print(f"model written to {args.out} ({len(args.sessions)} session(s), horizon {args.horizon_ticks} ticks)")
    return 0
