"""The archive's JSON Schemas, loaded once from package data.

The record schemas share their definitions through model.schema.json, so the validators
resolve `$ref`s against a registry built from the shipped files, never the network.
"""
from __future__ import annotations

import functools
import json
from importlib import resources

from jsonschema import Draft202012Validator, validators
from referencing import Registry, Resource

FORMAT = "drift-keeper-archive/1"
NAMES = ("manifest", "snapshot", "execution", "model")


def _is_int(checker, instance) -> bool:
    return type(instance) is int


# JSON Schema counts 100.0 as an integer; the codec does not, and a price written as a
# float has already been rounded somewhere. Our validator is strict so verify agrees with decode.
_StrictValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_int),
)


@functools.cache
def load(name: str) -> dict:
    """The parsed schema document `name` (one of NAMES)."""
    text = resources.files("keeper.archive").joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


@functools.cache
def _registry() -> Registry:
    docs = [load(n) for n in NAMES]
    return Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs)


@functools.cache
def validator(name: str) -> Draft202012Validator:
    Draft202012Validator.check_schema(load(name))
    return strict_validator(inlined(name))


@functools.cache
def inlined(name: str) -> dict:
    """Schema `name` with every $ref replaced by its target.

    Following a $ref costs jsonschema more than checking the value; a snapshot has thousands.
    The model is not recursive, so this copy is finite."""
    schema = load(name)
    return _inline(schema, schema)


def strict_validator(node) -> Draft202012Validator:
    """A validator of the (inlined) subschema `node` that counts only true ints as integers."""
    return _StrictValidator(node, registry=_registry())


def _inline(node, doc: dict):
    if isinstance(node, list):
        return [_inline(v, doc) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        address, _, pointer = node["$ref"].partition("#")
        target_doc = load(address.removesuffix(".schema.json")) if address else doc
        target = target_doc
        for part in pointer.strip("/").split("/") if pointer.strip("/") else ():
            target = target[part]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**_inline(target, target_doc), **rest}
    return {k: _inline(v, doc) for k, v in node.items() if k != "$defs"}


def errors(name: str, document) -> list[str]:
    """One line per schema violation of `document`, path first; empty when valid."""
    found = sorted(validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    return [_describe(e) for e in found]


def first_error(name: str, document) -> str | None:
    """The first violation only: cheap enough to call per record."""
    error = next(validator(name).iter_errors(document), None)
    return None if error is None else _describe(error)


def _describe(error) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(top)"
    message = error.message
    if error.context:  # oneOf/anyOf: the bare message quotes the value, not what is wrong with it
        inner = max(error.context, key=lambda e: len(e.relative_path))  # the deepest says most
        inner_where = "/".join(str(p) for p in inner.relative_path)
        message = f"matches none of the allowed shapes ({inner_where + ': ' if inner_where else ''}{inner.message})"
    if len(message) > 200:  # jsonschema quotes the whole offending value; keep reports one readable line
        message = message[:200] + "..."
    return f"{where}: {message}".replace("\n", " ")
