"""Model values to plain JSON values and back, losslessly.

The archive must round-trip a Snapshot exactly, or `replay --verify` could not reproduce
plans; so decoding is driven by the dataclasses' own type hints, not by hand-written mappers.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Union

from keeper import model


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: encode(getattr(value, f.name)) for f in _fields(type(value))}
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def decode(cls: type, data: Any) -> Any:
    """Build `cls` from JSON data; raises ValueError on anything of the wrong shape."""
    return _decode(cls, data, cls.__name__)


@functools.cache
def _fields(cls: type) -> tuple[dataclasses.Field, ...]:
    return tuple(f for f in dataclasses.fields(cls))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(model))


def _decode(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _decode(inner, data, where)
    if origin is typing.Literal:
        if data not in typing.get_args(tp):
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
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object")
        hints = _hints(tp)
        kwargs = {}
        for f in _fields(tp):
            if f.name in data:
                kwargs[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
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
