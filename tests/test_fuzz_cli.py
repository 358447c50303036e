"""Fuzzing the command line: `keeper.cli.main(argv)` with generated argv for `run` (the local
market only, one fast tick), `replay`, `archive verify` and `strategies`.

Whatever the argv, main returns an int, nothing prints a traceback, and a refusal (exit 2) is
exactly one stderr line starting with "keeper: error:". Nothing here goes live: the network is
always `local` (a generated token never starts with "-", so none can be an abbreviation of
--network), and `localnet` is never run.

Run with --hypothesis-show-statistics to see how many cases each test tried.
"""
from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import strategies
from keeper.cli import main
from tests.fuzzing import fuzz, quiet_keeper_log

NAMES = sorted(strategies.discover())
PARAMS = sorted({p.name for cls in strategies.discover().values() for p in cls.params})
MARKETS = ["SOL-PERP", "BTC-PERP", "ETH-PERP", "SOL"]
HELP = ("-h", "--help")


def call(argv: list[str], capsys) -> tuple[int, str, str]:
    """main(argv), checked against the rule: an int, no traceback, a refusal is one line."""
    assert not any(a.startswith("--net") and a not in ("--network", "--network=local") for a in argv), argv
    assert not set(argv) & set(LIVE), argv
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's --help prints and exits 0 on its own
        assert exc.code == 0 and any(a in HELP for a in argv), argv
        code = 0
    finally:
        quiet_keeper_log()
    out, err = capsys.readouterr()
    command = argv[0] if argv and argv[0] in ("run", "replay", "archive", "strategies") else "other"
    event(f"{command}: exit {code}")
    assert isinstance(code, int), code
    assert "Traceback" not in err and "Traceback" not in out, err
    errors = [line for line in err.splitlines() if "keeper: error:" in line]
    if code == 2:
        assert len(errors) == 1 and errors[0].startswith("keeper: error:"), err
        assert len(errors[0]) < 1000, errors[0]
    else:
        assert not errors, err
    return code, out, err


# -- generated tokens ------------------------------------------------------------------------------

# Arguments come from a shell: no NUL bytes; undecodable bytes arrive as lone surrogates.
_chars = st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]) | st.sampled_from(["\udcff", "\udc80"])
LIVE = ("localnet", "init", "deposit", "status")  # commands that would start or reach a chain
_word = st.text(_chars, max_size=12).filter(lambda t: not t.startswith("-") and t not in LIVE)
_number = st.one_of(
    st.integers(-5, 10**6).map(str), st.sampled_from(["0", "1", "1.5", "-1", "1e3", "nan", "inf", "1e-300", "٣",
                                                      "1_0", "0x1f", "9" * 30, "", " 7 "]),
    st.floats(allow_nan=True).map(repr),
)
_bad_flag = st.sampled_from(["--nope", "-x", "--", "--ticks=-1", "--fast=1", "--param", "--markets", "-", "--strategy"]
                            + list(HELP))


def _files(tmp: Path) -> st.SearchStrategy[str]:
    """Paths a user might give: nothing there, a folder, a file of junk, unicode names."""
    return st.sampled_from([
        str(tmp / "nowhere" / "x.csv"), str(tmp / "dir"), str(tmp / "junk.bin"), str(tmp / "path.csv"),
        str(tmp / "ünïcødé"), str(tmp / "empty"), "/dev/null", "/proc/self/status", "",
    ])


def _prepare(tmp: Path) -> None:
    (tmp / "dir").mkdir(exist_ok=True)
    (tmp / "junk.bin").write_bytes(b"\xff\xfe\x00garbage\n[[[[")
    (tmp / "path.csv").write_text("timestamp,price\n1700000000,85.5\n1700000060,86\n")
    (tmp / "empty").write_bytes(b"")


@st.composite
def run_argv(draw, tmp: Path) -> list[str]:
    argv = ["run"]
    options = draw(st.lists(st.sampled_from([
        "strategy", "param", "param", "markets", "interval", "seed", "price-path", "archive-dir", "network",
        "keypair", "subaccount", "dry-run", "post-only", "priority-fee", "priority-fee-cap", "subscription",
        "yes-mainnet", "risk", "bad", "word",
    ]), max_size=6))
    for option in options:
        if option == "strategy":
            argv += ["--strategy", draw(st.one_of(st.sampled_from(NAMES), _word))]
        elif option == "param":
            key = draw(st.one_of(st.sampled_from(PARAMS), _word))
            argv += ["--param", draw(st.sampled_from([f"{key}={draw(_number)}", f"{key}={draw(_word)}", key, "=1"]))]
        elif option == "markets":
            names = draw(st.lists(st.one_of(st.sampled_from(MARKETS), _word), max_size=4))
            argv += ["--markets", draw(st.sampled_from([",", ", "])).join(names)]
        elif option == "interval":
            # huge values overflow in keeper/run.py: see test_a_huge_interval_is_one_line below
            argv += ["--interval", draw(_number.filter(lambda t: _finite_ms(t)))]
        elif option in ("seed", "subaccount", "priority-fee", "priority-fee-cap"):
            argv += [f"--{option}", draw(st.one_of(_number, st.just("auto")))]
        elif option in ("price-path", "keypair", "risk"):
            argv += [f"--{option}", draw(_files(tmp))]
        elif option == "archive-dir":  # never "" (the working directory): sessions stay in tmp
            argv += ["--archive-dir", draw(_files(tmp).filter(bool))]
        elif option == "network":
            argv += ["--network", "local"]
        elif option in ("post-only", "subscription"):
            argv += [f"--{option}", draw(st.sampled_from(["must", "try", "websocket", "polling", "", "x"]))]
        elif option in ("dry-run", "yes-mainnet"):
            argv.append(f"--{option}")
        elif option == "bad":
            argv.append(draw(_bad_flag))
        else:
            argv.append(draw(_word))
    # Last, so they win: one tick on simulated time, sessions under tmp.
    argv += ["--ticks", "1", "--fast"]
    if "archive-dir" not in options:
        argv += ["--archive-dir", str(tmp / "archive")]
    if "markets" not in options and draw(st.booleans()):  # fewer markets: a quicker tick
        argv += ["--markets", draw(st.sampled_from(["SOL-PERP", "SOL", "BTC-PERP,ETH-PERP"]))]
    return argv


def _finite_ms(text: str) -> bool:
    try:
        return abs(float(text)) * 1000 < 1e300 or float(text) != float(text)
    except ValueError:
        return True


# -- keeper run ------------------------------------------------------------------------------------

@fuzz(150)
@given(data=st.data())
def test_run_on_the_local_market_with_fuzzed_argv(data, capsys):
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        _prepare(tmp)
        argv = data.draw(run_argv(tmp), label="argv")
        code, _, err = call(argv, capsys)
        assert code in (0, 2, 3), (code, err)


def test_a_huge_interval_is_one_line(tmp_path, capsys):
    code = main(["run", "--interval", "1e308", "--ticks", "1", "--fast", "--archive-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "more than a day" in err


# -- keeper replay / archive verify / strategies ---------------------------------------------------

_KEEP: list = []


@functools.cache
def recorded_session() -> Path:
    tmp = tempfile.TemporaryDirectory(prefix="fuzz-cli-")
    _KEEP.append(tmp)
    try:
        assert main(["run", "--ticks", "3", "--fast", "--seed", "2", "--markets", "SOL-PERP",
                     "--archive-dir", tmp.name]) == 0
    finally:
        quiet_keeper_log()
    (folder,) = Path(tmp.name).iterdir()
    return folder


@pytest.fixture(scope="module", autouse=True)
def _recorded_first():
    recorded_session()


@fuzz(150)
@given(data=st.data())
def test_replay_verify_and_strategies_with_fuzzed_argv(data, capsys):
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        _prepare(tmp)
        session = tmp / "session"
        shutil.copytree(recorded_session(), session)
        target = str(session) if data.draw(st.integers(0, 2)) else data.draw(st.one_of(_files(tmp), _word), label="session")
        command = data.draw(st.sampled_from(["replay", "verify", "strategies", "top"]), label="command")
        extra = data.draw(st.lists(st.one_of(_word, _bad_flag), max_size=2), label="extra")
        if command == "replay":
            argv = ["replay", target]
            for option in data.draw(st.lists(st.sampled_from(["strategy", "param", "verify", "json"]), max_size=4)):
                if option == "strategy":
                    argv += ["--strategy", data.draw(st.one_of(st.sampled_from(NAMES), _word))]
                elif option == "param":
                    key = data.draw(st.one_of(st.sampled_from(PARAMS), _word))
                    argv += ["--param", f"{key}={data.draw(_number)}"]
                elif option == "verify":
                    argv.append("--verify")
                else:
                    argv += ["--json", data.draw(st.sampled_from([str(tmp / "out.json"), str(tmp / "dir"),
                                                                  str(tmp / "nowhere" / "out.json"), "/proc/x"]))]
            argv += extra if data.draw(st.booleans()) else []
            expected = (0, 1, 2)
        elif command == "verify":
            argv = ["archive", "verify", target, *extra][: data.draw(st.integers(1, 4))]
            expected = (0, 1, 2)
        elif command == "strategies":
            argv = ["strategies", *extra]
            expected = (0, 2)
        else:
            argv = data.draw(st.lists(st.one_of(_word, _bad_flag, st.sampled_from(["archive", "replay", "run"])),
                                      max_size=2)).copy()
            if argv[:1] == ["run"]:
                argv += ["--ticks", "1", "--fast", "--archive-dir", str(tmp / "archive")]
            expected = (0, 1, 2)
        code, out, _ = call(argv, capsys)
        assert code in expected, (argv, code)
        if command == "strategies" and code == 0 and not any(a in HELP for a in argv):
            assert all(n in out for n in NAMES)
