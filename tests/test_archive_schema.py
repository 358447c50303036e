"""The schemas describe exactly what codec.encode writes, and reject what it never writes."""
from __future__ import annotations

import copy
import typing

import msgspec
import pytest

from keeper import model
from keeper.archive import codec, schema
from test_archive_data import execution, manifest, snapshot


def snapshot_doc(tick: int = 0) -> dict:
    snap = snapshot(tick)
    return {"kind": "snapshot", "seq": 1, "ts": snap.ts, "slot": snap.slot, "snapshot": codec.encode(snap)}


def execution_doc(tick: int = 0) -> dict:
    ex = execution(tick)
    return {"kind": "execution", "seq": 2, "ts": ex.ts, "slot": ex.slot, "execution": codec.encode(ex)}


def _model_classes() -> list[type]:
    """Every model value type reachable from Snapshot and Execution."""
    seen: list[type] = []

    def walk(tp):
        for arg in typing.get_args(tp):
            walk(arg)
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct) and tp not in seen:
            seen.append(tp)
            for hint in typing.get_type_hints(tp, vars(model)).values():
                walk(hint)

    walk(model.Snapshot)
    walk(model.Execution)
    return seen


ADDED_LATER = {"MarketState": ("reference_price",), "Snapshot": ("book_slot", "last_plan"), "UserState": ("spot_balances", "maintenance_collateral", "maintenance_requirement"),
               "Fill": ("fill_record_id",), "Intent": ("ioc",), "Plan": ("settles",), "Outcome": ("market",),
               "Trade": ("quote", "maker", "taker", "maker_fee", "taker_fee", "fill_record_id", "slot", "ts")}


@pytest.mark.parametrize("cls", _model_classes(), ids=lambda c: c.__name__)
def test_schema_defs_match_dataclass_fields(cls):
    # Someone adding a field to model.py must update the schema; this names the class that drifted.
    definition = schema.load("model")["$defs"][cls.__name__]
    names = list(cls.__struct_fields__)
    assert sorted(definition["properties"]) == sorted(names)
    # encode always writes every field; only a field added later (it has a default, so older
    # archives still decode) may be left out of "required", to keep those archives valid
    added_later = {name for name in names if name in ADDED_LATER.get(cls.__name__, ())}
    assert sorted(definition["required"]) == sorted(set(names) - added_later)
    assert definition["additionalProperties"] is False


@pytest.mark.parametrize("name", schema.NAMES)
def test_schemas_are_valid_draft_2020_12(name):
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema.load(name))
    assert schema.load(name)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_real_documents_validate():
    for tick in range(3):
        assert schema.errors("snapshot", snapshot_doc(tick)) == []
        assert schema.errors("execution", execution_doc(tick)) == []
    assert schema.errors("manifest", {"format": schema.FORMAT, **manifest()}) == []


def test_a_snapshot_from_before_the_live_tape_validates_and_decodes():
    """Archives written before the tape have bare trades and no spot balances: still valid, and
    they decode to the defaults (no fill records, balances unknown)."""
    doc = snapshot_doc()
    for market in doc["snapshot"]["markets"].values():
        market["trades"] = [{k: t[k] for k in ("price", "size", "taker_side")} for t in market["trades"]]
    del doc["snapshot"]["user"]["spot_balances"]
    for fill in doc["snapshot"]["user"]["fills"]:
        del fill["fill_record_id"]
    assert schema.errors("snapshot", doc) == []
    old = codec.decode(model.Snapshot, doc["snapshot"])
    assert old.user.spot_balances == {} and {f.fill_record_id for f in old.user.fills} == {None}
    trade = old.markets["SOL-PERP"].trades[-1]
    assert trade.fill_record_id is None and trade.maker is None and trade.quote is None


def _tamper(doc: dict, path: list, value) -> dict:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (["snapshot", "markets", "SOL-PERP", "oracle_price"], 150.25, "not of type 'integer'"),
        (["snapshot", "markets", "SOL-PERP", "oracle_price"], 150000000.0, "not of type 'integer'"),  # integral float too
        (["snapshot", "markets", "SOL-PERP", "book", "bids", 0, "price"], "150", "not of type 'integer'"),
        (["snapshot", "markets", "BTC-PERP", "book", "l3", 0, "side"], "buy", "is not one of ['bid', 'ask']"),
        (["snapshot", "markets", "SOL", "spec", "kind"], "future", "is not one of ['perp', 'spot']"),
        (["snapshot", "user", "open_orders", 0, "user_order_id"], 256, "greater than the maximum"),
        (["snapshot", "user", "fills", 0, "maker"], 1, "not of type 'boolean'"),
        (["snapshot", "user", "positions", "SOL-PERP", "leverage"], 3, "Additional properties"),
        (["snapshot", "markets", "ETH-PERP", "vamm_bid"], KeyError, "'vamm_bid' is a required property"),
        (["snapshot", "markets", "SOL-PERP", "trades", 2, "fill_record_id"], -1, "less than the minimum"),
        (["snapshot", "user", "spot_balances", "SOL", "amount"], -0.25, "not of type 'integer'"),
        (["kind"], "snapshots", "'snapshot' was expected"),
        (["seq"], 0, "less than the minimum"),
    ],
)
def test_snapshot_schema_rejects_tampering(path, value, expected):
    problems = schema.errors("snapshot", _tamper(snapshot_doc(), path, value))
    assert len(problems) == 1 and expected in problems[0], problems
    where = problems[0].split(":")[0]
    assert "/".join(str(p) for p in path).startswith("" if where == "(top)" else where)


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (["execution", "plan", "places", 0, "intent", "oracle_offset"], 5, "matches none of the allowed shapes"),
        (["execution", "plan", "places", 1, "intent", "oracle_offset"], None, "matches none of the allowed shapes"),
        (["execution", "outcomes", 0, "action"], "modify", "is not one of ['cancel', 'place', 'settle']"),
        (["execution", "risk_state"], "PANIC", "is not one of"),
        (["execution", "plan", "cancels", 0, "side"], "sell", "is not one of ['bid', 'ask']"),
        (["execution", "plan", "dropped", 0], 7, "not of type 'string'"),
    ],
)
def test_execution_schema_rejects_tampering(path, value, expected):
    problems = schema.errors("execution", _tamper(execution_doc(), path, value))
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"seed": "42"}, "seed"),
        ({"interval_ms": 0}, "interval_ms"),
        ({"started_at": "2025-01-31 12:00:00"}, "started_at"),
        ({"started_at": "2025-01-31T12:00:00+02:00"}, "started_at"),  # UTC only
        ({"versions": {"keeper": "0.1.0"}}, "versions"),
        ({"argv": "keeper run"}, "argv"),
        ({"markets": ["SOL-PERP", "SOL-PERP"]}, "markets"),
        ({"colour": "blue"}, "Additional properties"),
    ],
)
def test_manifest_schema_rejects(change, expected):
    problems = schema.errors("manifest", {"format": schema.FORMAT, **manifest(**change)})
    assert problems and expected in problems[0], problems


def test_risk_states_in_schema_are_the_risk_gates():
    from keeper import risk

    states = schema.load("model")["$defs"]["Execution"]["properties"]["risk_state"]["enum"]
    assert sorted(states) == sorted([risk.ACTIVE, risk.REDUCING, risk.HALTED])
