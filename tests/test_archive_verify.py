"""`keeper archive verify`'s fast path (msgspec types generated from the schemas) judges every
line as the jsonschema path does, and its progress: a bar on a terminal, a line every 10% without."""
from __future__ import annotations

import io
import json
import re
import subprocess
import tempfile
from pathlib import Path
from unittest import mock

import msgspec
import pytest
from hypothesis import given

from keeper.archive import fastcheck, schema
from keeper.archive.verify import format_report, verify_session
from keeper.ui.progress import Progress
from tests.conftest import KEEPER, ROOT, shows_then_exits, terminal
from tests.fuzzing import fuzz
from test_archive_damage import write_session
from test_archive_schema import _tamper, execution_doc, snapshot_doc
from test_fuzz_archive import build, damage, pristine



def slow_report(folder):
    """The report of the jsonschema path alone: the reference the fast path must equal."""
    with mock.patch.object(fastcheck, "record", lambda line: None):
        return verify_session(folder)


# -- the fast path judges as jsonschema does ------------------------------------------------------


def test_real_records_take_the_fast_path():
    for line in pristine().lines:
        assert fastcheck.record(line) is not None, line[:80]


@fuzz(80)
@given(d=damage())
def test_fast_and_slow_verify_give_the_same_report(d):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "session"
        build(folder, d)
        fast, slow = verify_session(folder), slow_report(folder)
        assert format_report(fast) == format_report(slow)


@pytest.mark.parametrize("kind, doc", [("snapshot", snapshot_doc(1)), ("execution", execution_doc(1))])
def test_every_single_field_change_is_judged_alike(kind, doc):
    """Each leaf of a real document replaced by values of other types and edge values: the fast
    path accepts exactly what the schema accepts (a refusal it can't word goes the slow way)."""
    replacements = [None, True, 0, -1, 256, 1.5, 2**70, "", "x", "bid", "place", [], {}]
    leaves = list(_leaves(doc))
    assert len(leaves) > 20
    objects = {path[:-1] for path in leaves if isinstance(_at(doc, path[:-1]), dict)}
    cases = [(path, value) for path in leaves for value in replacements]
    cases += [(path + ("unknown",), 1) for path in objects]  # an unknown field in each object
    cases += [(path, KeyError) for path in leaves]  # _tamper's: the field removed
    for path, value in cases:
        changed = _tamper(doc, list(path), value)
        line = json.dumps(changed, separators=(",", ":")).encode()  # orjson writes no int past 64 bits
        valid = schema.first_error(kind, changed) is None and changed[kind]["ts"] == changed["ts"] \
            and changed[kind]["slot"] == changed["slot"]
        assert (fastcheck.record(line) is not None) == valid, (path, value)


def test_an_untranslatable_subschema_is_checked_by_jsonschema():
    node = {"type": "object", "additionalProperties": False, "required": ["a"],
            "properties": {"a": {"type": "string", "pattern": "^x+$"}, "b": {"type": "number"}}}
    tp, check = fastcheck.translate(node, "t")
    decoder = msgspec.json.Decoder(tp)
    for text, valid in [(b'{"a":"xx"}', True), (b'{"a":"xy"}', False), (b'{"a":"x","b":1.5}', True),
                        (b'{"a":"x","b":"1"}', False), (b'{"a":"x","c":1}', False), (b'{}', False)]:
        try:
            check(decoder.decode(text))
            accepted = True
        except Exception:  # noqa: BLE001
            accepted = False
        assert accepted == valid, text


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list) and node:
        yield from _leaves(node[0], (*path, 0))
    else:
        yield path


def _at(doc, path):
    for key in path:
        doc = doc[key]
    return doc




# -- progress ---------------------------------------------------------------------------------------


def test_without_a_terminal_a_line_every_ten_percent(tmp_path):
    folder = write_session(tmp_path, 40, segment_records=30)
    out = io.StringIO()
    report = verify_session(folder, progress=lambda total: Progress("verify", total, "snapshots", stream=out))
    lines = out.getvalue().splitlines()
    assert [int(re.match(r"verify: +(\d+)% ", line).group(1)) for line in lines] == list(range(10, 101, 10))
    counts = [int(re.search(r"% ([\d,]+) snapshots", line).group(1).replace(",", "")) for line in lines]
    assert counts == sorted(counts) and counts[-1] == report.snapshots == 40
    assert all(re.search(r"[\d,]+ snapshots/s", line) for line in lines)


def test_the_command_keeps_progress_off_stdout(tmp_path):
    folder = write_session(tmp_path, 12)
    done = subprocess.run([*KEEPER, "archive", "verify", str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("OK: ") and done.stdout.count("\n") == 1
    assert "verify: 100% 12 snapshots" in done.stderr and "%" not in done.stdout


def test_on_a_terminal_a_progress_bar_with_a_rate(tmp_path):
    folder = write_session(tmp_path, 12)
    (folder / "summary.json").write_text("{}")
    child = terminal(["archive", "verify", str(folder)])
    # "━" is the bar
    assert shows_then_exits(child, "verify", "━", r"12 snapshots [\d,]+ snapshots/s", r"OK: .*\(12 snapshots") == 0
