"""The fast path of `archive verify`: msgspec types generated from the JSON Schemas.

jsonschema walks each of a 3-market L3 snapshot's ~300 objects in Python, about 10 ms a
record. msgspec decodes and type-checks the same line in C in tens of microseconds. The
types are generated from the same inlined schemas the jsonschema validator uses, so an edit
to a schema reaches both. What the generator cannot translate exactly (oneOf, patterns,
numbers, ...) becomes a msgspec.Raw that the jsonschema validator of that subschema checks.

The fast path may only be stricter than the schemas, never looser: a line it refuses goes
the slow way (jsonschema, then the codec), which decides, and words the report.
"""
from __future__ import annotations

import functools
import json
import keyword
import typing
from typing import Any, Callable, Literal, Optional, Union

import msgspec

from keeper.archive import schema

KINDS = ("snapshot", "execution")
# Annotations: jsonschema ignores them when validating, so may we.
_NOTES = frozenset({"description", "title", "$comment", "$schema", "$id", "default", "examples"})
_INT_BOUNDS = {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt"}
_STR_BOUNDS = {"minLength": "min_length", "maxLength": "max_length"}
_OBJECT_KEYS = frozenset({"type", "properties", "required", "additionalProperties"})
_RESERVED = frozenset(dir(msgspec.Struct))

Check = Optional[Callable[[Any], None]]  # raises _Refused on a value the schema refuses


class _Refused(Exception):
    pass


class _Untranslatable(Exception):
    pass


def record(line: bytes) -> Optional[tuple[str, int, int, int]]:
    """(kind, seq, ts, slot) of a record line that passes the schema and carries its value's
    own ts and slot; None for any line the slow path must judge."""
    kind = _kind_of(line)
    fast = _decoders().get(kind)
    if fast is None:
        return None
    decoder, check = fast
    try:
        doc = decoder.decode(line)
        if check is not None:
            check(doc)
    except Exception:  # noqa: BLE001 (refused, invalid UTF-8, too deep...): whatever it is, the slow path words it
        return None
    value = getattr(doc, kind)
    if value.ts != doc.ts or value.slot != doc.slot:
        return None
    return kind, doc.seq, doc.ts, doc.slot


def _kind_of(line: bytes) -> Optional[str]:
    # The writer always puts "kind" first; any other line is left to the slow path.
    for kind in KINDS:
        if line.startswith(b'{"kind":"%s"' % kind.encode()):
            return kind
    return None


@functools.cache
def _decoders() -> dict[str, tuple[msgspec.json.Decoder, Check]]:
    found = {}
    for kind in KINDS:
        tp, check = translate(schema.inlined(kind), kind)
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            found[kind] = (msgspec.json.Decoder(tp), check)
    return found


def translate(node: Any, name: str) -> tuple[Any, Check]:
    """The msgspec type accepting at most what `node` accepts, and the check of the Raw parts in it."""
    try:
        return _translate(node, name)
    except _Untranslatable:
        return msgspec.Raw, _raw_check(node)


def _raw_check(node: Any) -> Callable[[msgspec.Raw], None]:
    validator = schema.strict_validator(node)

    def check(raw: msgspec.Raw) -> None:
        # The stdlib, not orjson: orjson turns an int past 64 bits into a float. Raw parts are small.
        if not validator.is_valid(json.loads(bytes(raw))):
            raise _Refused

    return check


def _translate(node: Any, name: str) -> tuple[Any, Check]:
    if node is True or node == {}:
        return Any, None
    if not isinstance(node, dict):
        raise _Untranslatable
    keys = set(node) - _NOTES
    if "const" in keys or "enum" in keys:
        return _choice(node, keys)
    if "anyOf" in keys:
        return _nullable_any_of(node, keys, name)
    kinds = node.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if not isinstance(kinds, list) or not kinds:
        raise _Untranslatable
    nullable = "null" in kinds
    rest = [k for k in kinds if k != "null"]
    if not rest:
        if keys != {"type"}:
            raise _Untranslatable
        return type(None), None
    if len(rest) != 1:
        raise _Untranslatable
    tp, check = _typed(rest[0], node, keys, name)
    if not nullable:
        return tp, check
    return Optional[tp], (None if check is None else (lambda v: None if v is None else check(v)))


def _choice(node: dict, keys: set) -> tuple[Any, Check]:
    values = [node["const"]] if "const" in keys else node["enum"]
    if keys - {"const", "enum", "type"} or ("const" in keys and "enum" in keys):
        raise _Untranslatable
    if node.get("type", "string") != "string" or not values or not all(type(v) is str for v in values):
        raise _Untranslatable
    return Literal[tuple(values)], None


def _nullable_any_of(node: dict, keys: set, name: str) -> tuple[Any, Check]:
    branches = node["anyOf"]
    if keys != {"anyOf"} or not isinstance(branches, list) or len(branches) != 2:
        raise _Untranslatable
    others = [b for b in branches if b != {"type": "null"}]
    if len(others) != 1:
        raise _Untranslatable
    tp, check = translate(others[0], name)
    return Optional[tp], (None if check is None else (lambda v: None if v is None else check(v)))


def _typed(kind: str, node: dict, keys: set, name: str) -> tuple[Any, Check]:
    if kind == "integer":
        return _bounded(int, node, keys, _INT_BOUNDS), None
    if kind == "string":
        return _bounded(str, node, keys, _STR_BOUNDS), None
    if kind == "boolean":
        if keys != {"type"}:
            raise _Untranslatable
        return bool, None
    if kind == "array":
        if keys - {"type", "items"}:
            raise _Untranslatable
        item, check = translate(node.get("items", True), name)
        return list[item], (None if check is None else (lambda v: [check(x) for x in v] and None))
    if kind == "object":
        return _object(node, keys, name)
    raise _Untranslatable  # "number": floats are never money here, so no fast path is worth the care


def _bounded(tp: type, node: dict, keys: set, bounds: dict[str, str]) -> Any:
    if keys - {"type"} - set(bounds):
        raise _Untranslatable
    meta = {bounds[k]: node[k] for k in keys & set(bounds)}
    if not all(type(v) is int for v in meta.values()):
        raise _Untranslatable
    return typing.Annotated[tp, msgspec.Meta(**meta)] if meta else tp


def _object(node: dict, keys: set, name: str) -> tuple[Any, Check]:
    if keys - _OBJECT_KEYS:
        raise _Untranslatable
    extra = node.get("additionalProperties", True)
    properties = node.get("properties")
    if properties is None:
        if "required" in keys or extra is False:
            raise _Untranslatable
        value, check = translate(extra, name)
        return dict[str, value], (None if check is None else (lambda v: [check(x) for x in v.values()] and None))
    required = set(node.get("required", ()))
    if extra not in (True, False) or not required <= set(properties):
        raise _Untranslatable
    fields, checks = [], []
    for field, sub in properties.items():
        if not field.isidentifier() or keyword.iskeyword(field) or field.startswith("_") or field in _RESERVED:
            raise _Untranslatable
        tp, check = translate(sub, f"{name}_{field}")
        if field in required:
            fields.append((field, tp))
        else:
            fields.append((field, Union[tp, msgspec.UnsetType], msgspec.UNSET))
        if check is not None:
            checks.append((field, check))
    # gc=False: decoded records hold no cycles, and untracked Structs are cheaper to make and drop.
    struct = msgspec.defstruct(name, fields, kw_only=True, forbid_unknown_fields=extra is False, gc=False)
    if not checks:
        return struct, None

    def check_fields(value) -> None:
        for field, check in checks:
            item = getattr(value, field)
            if item is not msgspec.UNSET:
                check(item)

    return struct, check_fields
