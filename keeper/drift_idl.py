"""driftpy's IDL as a toolbox: encode and decode any Drift account, build any instruction.

The localnet bootstrap writes market accounts byte for byte and its makers sign their own
instructions without a DriftClient; both use these, so the bytes are exactly driftpy's.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

import driftpy
from anchorpy import Idl
from anchorpy.coder.accounts import AccountsCoder
from anchorpy.coder.coder import Coder
from anchorpy.program.common import NamedInstruction
from anchorpy.program.context import Context
from anchorpy.program.namespace.instruction import _InstructionFn
from driftpy import types as dt
from pyheck import snake
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from keeper.localnet.program import DRIFT_PROGRAM_ID


def _idl_json() -> dict:
    return json.loads((Path(driftpy.__file__).parent / "idl" / "drift.json").read_text())


@functools.cache
def _idl() -> Idl:
    return Idl.from_json(json.dumps(_idl_json()))


@functools.cache
def coder() -> AccountsCoder:
    return AccountsCoder(_idl())


@functools.cache
def _types() -> dict[str, dict]:
    raw = _idl_json()
    return {t["name"]: t["type"] for t in raw["types"] + raw["accounts"]}


def blank(type_name: str) -> dict:
    """A zero-valued instance of an IDL struct, as a dict anchorpy can encode."""
    return _zero({"defined": type_name})


def _zero(ty):
    if isinstance(ty, str):
        return {"bool": False, "publicKey": Pubkey.default()}.get(ty, 0)
    if "array" in ty:
        inner, n = ty["array"]
        return [_zero(inner) for _ in range(n)]
    if "option" in ty:
        return None
    definition = _types()[ty["defined"]]
    if definition["kind"] == "enum":
        return variant(ty["defined"], definition["variants"][0]["name"])
    return {snake(f["name"]): _zero(f["type"]) for f in definition["fields"]}


def variant(enum: str, name: str):
    """An enum value by its IDL name, as driftpy's class (anchorpy encodes it by index)."""
    names = [v["name"] for v in _types()[enum]["variants"]]
    return getattr(dt, enum).getitem(names.index(name))()


def put(fields: dict, **values) -> dict:
    """Set struct fields, refusing names the IDL does not have (a typo would be silently lost)."""
    for key, value in values.items():
        if key not in fields:
            raise KeyError(f"no field {key!r}")
        fields[key] = value
    return fields


def encode(account_type: str, fields: dict) -> bytes:
    return coder().build(NamedInstruction(data=fields, name=account_type))


def discriminator(account_type: str) -> bytes:
    """The 8 bytes Anchor puts before every account of this type (for memcmp filters)."""
    return hashlib.sha256(f"account:{account_type}".encode()).digest()[:8]


def decode(data: bytes):
    """Any Drift account, as driftpy's dataclasses."""
    return coder().decode(bytes(data))


def as_fields(obj) -> dict:
    """A decoded account back to an encodable dict (anchorpy cannot re-encode its own dataclasses)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: as_fields(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [as_fields(x) for x in obj]
    return obj


def name_bytes(name: str) -> list[int]:
    return list(name.encode().ljust(32, b" "))  # Drift pads market and user names with spaces


@functools.cache
def _instructions() -> dict[str, _InstructionFn]:
    build = Coder(_idl()).instruction.build
    return {snake(ix.name): _InstructionFn(ix, build, DRIFT_PROGRAM_ID) for ix in _idl().instructions}


def ix(name: str, *args, accounts: dict, remaining: list[AccountMeta] = ()) -> Instruction:
    """A Drift instruction from driftpy's IDL, e.g. ix("place_perp_order", params, accounts=...)."""
    return _instructions()[name](*args, ctx=Context(accounts=accounts, remaining_accounts=list(remaining)))


@functools.cache
def _error_names() -> dict[int, str]:
    return {e["code"]: e["name"] for e in _idl_json()["errors"]}


def error_name(err) -> str | None:
    """The Drift (or anchor) error name of a failed transaction's error, if it has a custom code."""
    code = getattr(getattr(err, "err", None), "code", None)
    return _error_names().get(code, f"custom error {code}") if code is not None else None


