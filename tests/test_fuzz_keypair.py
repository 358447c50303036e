"""Fuzzing keypair files: load_keypair gives a Keypair or one UserError line, and no message
ever repeats a secret (a file's content, or a key pasted where the path belongs).

Run with --hypothesis-show-statistics to see how many cases each test tried.
"""
from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path

import base58
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from solders.keypair import Keypair

from keeper.errors import UserError
from keeper.wallet import load_keypair
from tests.fuzzing import fuzz


def secret_forms(keypair: Keypair) -> list[str]:
    """Every way a secret could show up in a message."""
    raw = bytes(keypair)
    numbers = list(raw)
    return [
        str(keypair),  # solders prints the secret, base58
        base58.b58encode(raw).decode(), base58.b58encode(raw[:32]).decode(),
        raw.hex(), raw[:32].hex(),
        json.dumps(numbers), ",".join(map(str, numbers[:8])), ", ".join(map(str, numbers[:8])),
        base64.b64encode(raw).decode(),
    ]


def assert_one_line_without(message: str, secrets: list[str]) -> None:
    assert message and len(message.splitlines()) == 1 and "\n" not in message, message
    assert "Traceback" not in message
    for secret in secrets:
        assert secret not in message, f"the message repeats a secret: {message}"


# -- file contents ---------------------------------------------------------------------------------

_byte = st.integers(0, 255)
_not_byte = st.one_of(st.integers(max_value=-1), st.integers(min_value=256), st.floats(), st.booleans(), st.none(),
                      st.text(max_size=3), st.lists(_byte, max_size=2))


@st.composite
def keypair_file(draw) -> tuple[bytes, list[str]]:
    """(file content, the secrets in it that must never be echoed)."""
    keypair = Keypair.from_seed(draw(st.binary(min_size=32, max_size=32)))
    raw = bytes(keypair)
    secrets = secret_forms(keypair)
    kind = draw(st.sampled_from(["bytes", "json", "wrong_length", "wrong_value", "mismatched", "base58", "hex",
                                 "truncated", "wrapped", "text"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200)), []
    if kind == "json":
        value = draw(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                                  lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                                  max_leaves=80))
        return json.dumps(value).encode(), []
    if kind == "wrong_length":
        values = list(raw) + draw(st.lists(_byte, max_size=70))
        values = values[: draw(st.integers(0, len(values)).filter(lambda n: n != 64))]
        return json.dumps(values).encode(), secrets
    if kind == "wrong_value":
        values = list(raw)
        values[draw(st.integers(0, 63))] = draw(_not_byte)
        return json.dumps(values).encode(), secrets
    if kind == "mismatched":  # 64 good numbers, but the public half is not the secret's
        other = bytes(Keypair.from_seed(draw(st.binary(min_size=32, max_size=32))))
        return json.dumps(list(raw[:32] + other[32:])).encode(), secrets if raw[32:] != other[32:] else []
    if kind == "base58":
        return draw(st.sampled_from([str(keypair), base58.b58encode(raw[:32]).decode()])).encode(), secrets
    if kind == "hex":
        return draw(st.sampled_from([raw.hex(), raw[:32].hex()])).encode(), secrets
    if kind == "truncated":
        text = json.dumps(list(raw))
        return text[: draw(st.integers(0, len(text) - 1))].encode(), secrets
    if kind == "wrapped":  # the right numbers in the wrong shape
        text = draw(st.sampled_from(['{"secret": %s}', "[%s]", '"%s"', "%s garbage", "\ufeff%s"])) % json.dumps(list(raw))
        return text.encode(), secrets
    return draw(st.text(max_size=100)).encode("utf-8", "surrogatepass"), []


@fuzz(300)
@given(case=keypair_file())
@example(case=(b"", []))
@example(case=(b"[" * 3000, []))  # nesting deeper than the JSON parser's recursion limit
@example(case=(b"[" * 3000 + b"]" * 3000, []))
@example(case=(b"[1e400]" , []))
@example(case=(b"\xff\xfe[1, 2]", []))
def test_keypair_file_content_loads_or_is_refused_without_echoing_it(case):
    content, secrets = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "id.json"
        path.write_bytes(content)
        try:
            keypair = load_keypair(path)
        except UserError as exc:
            assert_one_line_without(str(exc), secrets)
            assert str(path) in str(exc)
        else:  # only a real keypair file loads, and it loads as that keypair
            assert list(bytes(keypair)) == json.loads(content)


def test_a_real_keypair_file_loads(tmp_path):
    keypair = Keypair()
    path = tmp_path / "id.json"
    path.write_text(json.dumps(list(bytes(keypair))))
    assert load_keypair(path).pubkey() == keypair.pubkey()


@pytest.mark.parametrize("make", ["missing", "directory", "fifo_dir", "unreadable"])
def test_keypair_paths_that_are_no_file(tmp_path, make):
    path = tmp_path / "id.json"
    if make == "directory":
        path.mkdir()
    elif make == "fifo_dir":
        path = tmp_path / "not-a-dir" / "id.json"
        (tmp_path / "not-a-dir").write_text("a file, not a folder")
    elif make == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        path.write_text(json.dumps(list(bytes(Keypair()))))
        path.chmod(0)
    with pytest.raises(UserError) as info:
        load_keypair(path)
    assert_one_line_without(str(info.value), [])
    assert "keypair" in str(info.value)


# -- the key itself where the path belongs ---------------------------------------------------------

@fuzz(100)
@given(seed=st.binary(min_size=32, max_size=32), form=st.integers(0, 5), pad=st.sampled_from(["", " "]))
def test_a_key_pasted_as_the_path_is_never_echoed(seed, form, pad):
    keypair = Keypair.from_seed(seed)
    raw = bytes(keypair)
    pasted = [str(keypair), base58.b58encode(raw[:32]).decode(), raw.hex(), json.dumps(list(raw)),
              ",".join(map(str, raw)), base64.b64encode(raw).decode()][form] + pad
    with pytest.raises(UserError) as info:
        load_keypair(pasted)
    assert_one_line_without(str(info.value), secret_forms(keypair))


def test_a_deeply_nested_path_is_one_line():
    """A path that looks like the start of a JSON array nested past the parser's recursion limit."""
    with pytest.raises(UserError) as info:
        load_keypair("[" * 3000)
    assert_one_line_without(str(info.value), [])
