"""Model values to plain JSON values and back, losslessly.

The model's values are msgspec Structs (keeper/model.py), so msgspec does both directions in
C: encode is a round trip through msgspec's JSON, decode msgspec.convert in strict mode (an int field takes an
int of any size and nothing else: no float, no bool, no numeric string).

The archive must round-trip a Snapshot exactly, or `replay --verify` could not reproduce
plans; so decoding is driven by the Structs' own type hints, not by hand-written mappers. When
msgspec refuses a value, a walk over the same hints names the field in the archive's words
("Snapshot.markets.SOL-PERP.oracle_price: expected an integer, got 85.5").
"""
from __future__ import annotations

import functools
import types
import typing
from typing import Any, Union

import msgspec

from keeper.model import enc_hook

_ENCODE = msgspec.json.Encoder(enc_hook=enc_hook).encode


def encode(value: Any) -> Any:
    """The plain JSON values of a model value (a Struct, or a list/dict of them): what the
    archive holds of it, read back. (to_builtins alone would keep tuples as tuples.)"""
    return msgspec.json.decode(_ENCODE(value))


def decode(cls: type, data: Any) -> Any:
    """Build `cls` from JSON data; raises ValueError, naming the field, on anything of the wrong shape."""
    try:
        return msgspec.convert(data, cls, strict=True)
    except msgspec.ValidationError:
        return _decode(cls, data, cls.__name__)


@functools.cache
def _fields(cls: type) -> tuple[msgspec.structs.FieldInfo, ...]:
    return msgspec.structs.fields(cls)


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _decode(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _decode(inner, data, where)
    if origin is typing.Literal:
        if data not in typing.get_args(tp) or type(data) is not str:
            raise ValueError(f"{where}: {data!r} is not one of {typing.get_args(tp)}")
        return data
    if origin is tuple:
        if not isinstance(data, list):
            raise ValueError(f"{where}: expected a list")
        inner = typing.get_args(tp)[0]
        return tuple(_decode(inner, v, f"{where}[{i}]") for i, v in enumerate(data))
    if origin is dict:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object")
        inner = typing.get_args(tp)[1]
        return {k: _decode(inner, v, f"{where}.{k}") for k, v in data.items()}
    if _is_struct(tp):
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object")
        kwargs = {}
        for f in _fields(tp):
            if f.name in data:
                kwargs[f.name] = _decode(f.type, data[f.name], f"{where}.{f.name}")
            elif f.required:
                raise ValueError(f"{where}: missing {f.name}")
        try:
            return tp(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    if tp is int:
        if type(data) is not int:
            raise ValueError(f"{where}: expected an integer, got {data!r}")
        return data
    if tp is bool or tp is str:
        if type(data) is not tp:
            raise ValueError(f"{where}: expected {tp.__name__}, got {data!r}")
        return data
    raise TypeError(f"codec cannot decode {tp!r}")
