"""`keeper localnet` as a user meets it: a real process, its banner, and one-line errors."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import httpx
import pytest

from keeper.localnet import program
from tests.conftest import KEEPER, needs_binary, read_banner
from tests.test_cli import assert_one_line_error, keeper



@pytest.fixture
def fake_elf(tmp_path):
    """Passes the "is it an ELF" check, so the next check in line gets its turn."""
    path = tmp_path / "drift.so"
    path.write_bytes(b"\x7fELF" + b"\0" * 60)
    return path


def test_missing_program(tmp_path):
    result = keeper("localnet", "--drift-program", str(tmp_path / "nope.so"), "--port", "28899", cwd=tmp_path)
    assert_one_line_error(result, "Drift program not found", "nope.so")


def test_program_that_is_not_elf(tmp_path):
    path = tmp_path / "drift.so"
    path.write_text("not a program")
    assert_one_line_error(keeper("localnet", "--drift-program", str(path), "--port", "28899", cwd=tmp_path),
                          "not a Solana program")


def test_program_env_var_is_used(tmp_path):
    env = {**os.environ, "DRIFT_PROGRAM_SO": str(tmp_path / "missing.so")}
    result = subprocess.run([*KEEPER, "localnet", "--port", "28899"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60)
    assert_one_line_error(result, "missing.so", "$DRIFT_PROGRAM_SO")


def test_program_that_does_not_load(fake_elf, tmp_path):
    result = keeper("localnet", "--drift-program", str(fake_elf), "--port", "28899", cwd=tmp_path)
    assert_one_line_error(result, "does not load")


@pytest.mark.parametrize("csv,needle", [
    ("timestamp,price\n1,abc\n", ":2: timestamp and price must be numbers"),
    ("1,100\n1,101\n", "timestamps must increase"),
    ("1,-5\n", "price must be positive"),
    ("", "no 'timestamp,price' rows"),
])
def test_bad_price_path(fake_elf, tmp_path, csv, needle):
    path = tmp_path / "path.csv"
    path.write_text(csv)
    result = keeper("localnet", "--drift-program", str(fake_elf), "--price-path", str(path), "--port", "28899", cwd=tmp_path)
    assert_one_line_error(result, needle)


def test_port_in_use(fake_elf, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = keeper("localnet", "--drift-program", str(fake_elf), "--port", str(port), cwd=tmp_path)
    assert_one_line_error(result, f"--port {port}", "another validator")


@pytest.mark.parametrize("args,needle", [
    (["--port", "0"], "between 1 and 65534"),
    (["--slot-ms", "0"], "--slot-ms"),
    (["--port", "http"], "--port"),
])
def test_bad_flags(args, needle):
    assert_one_line_error(keeper("localnet", *args), needle)


def test_bad_fund_keypair(fake_elf, tmp_path):
    bad = tmp_path / "id.json"
    bad.write_text("[1, 2, 3]")
    result = keeper("localnet", "--drift-program", str(fake_elf), "--fund", str(bad), "--port", "28899", cwd=tmp_path)
    assert_one_line_error(result, "not a Solana keypair file")
    assert "[1, 2, 3]" not in result.stderr


@needs_binary
def test_serves_until_ctrl_c(tmp_path):
    port = 28_901
    child = subprocess.Popen([*KEEPER, "localnet", "--port", str(port), "--slot-ms", "50"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = read_banner(child)
        for text in (f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port + 1}", str(program.DRIFT_PROGRAM_ID),
                     "SOL-PERP", "BTC-PERP", "ETH-PERP", "USDC", "wallet", "data/localnet/wallet.json"):
            assert text in banner, text
        assert oct((tmp_path / "data/localnet/wallet.json").stat().st_mode & 0o777) == "0o600"
        slots = []
        for _ in range(2):
            slots.append(httpx.post(f"http://127.0.0.1:{port}", json={"jsonrpc": "2.0", "id": 1, "method": "getSlot"}).json()["result"])
            time.sleep(0.3)
        assert slots[1] > slots[0]  # the slot clock runs
    finally:
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    assert child.returncode == 0
    assert "stopped at slot" in err and "Traceback" not in err
