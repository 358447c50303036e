"""Set-up polish: `keeper doctor`, `keeper status` against a dead RPC, the localnet wallet as --keypair default."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from solders.keypair import Keypair

from keeper import cli
from keeper.wallet import DEFAULT_KEYPAIR, LOCALNET_WALLET, write_keypair
from tests.conftest import needs_binary
from tests.test_ops_report import keeper

ESSENTIAL = ("Python", "venv", "Node.js", "Drift SDK")


def _doctor(tmp_path: Path, *args, **env) -> tuple[int, dict[str, str], str]:
    """Run `keeper doctor` with HOME in tmp_path (so no real keypair is looked at); its lines by check name."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if k != "DRIFT_PROGRAM_SO"} | {"HOME": str(home), **env}
    result = keeper("doctor", *args, cwd=tmp_path, ok=False, env=environment)
    lines = result.stdout.splitlines()
    checks = {}
    for line, following in zip(lines, lines[1:] + [""]):
        state, _, rest = line.partition(" ")
        if state in ("ok", "warn", "FAIL"):
            name = next(n for n in (*ESSENTIAL, "Drift binary", "keypair (devnet, mainnet)", "keypair (localnet)",
                                    "keypair (--keypair)") if rest.strip().startswith(n))
            checks[name] = state + ("\n" + following.strip() if following.strip().startswith("fix:") else "")
    return result.returncode, checks, result.stdout


def test_doctor_on_this_set_up(tmp_path):
    code, checks, out = _doctor(tmp_path)
    assert all(checks[name].startswith("ok") for name in ESSENTIAL), out
    # no keypairs under this HOME and folder yet: said, with how to make them, but not a failure
    assert checks["keypair (devnet, mainnet)"] == f"warn\nfix: `solana-keygen new -o {DEFAULT_KEYPAIR}` before trading there"
    assert checks["keypair (localnet)"] == "warn\nfix: `keeper localnet` creates it in this folder"
    assert code == 0 and out.rstrip().endswith("all essential checks passed")


def test_doctor_without_node_fails_with_a_fix(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    code, checks, out = _doctor(tmp_path, PATH=str(empty))
    assert checks["Node.js"] == "FAIL\nfix: install Node.js 20+ with npm, then `python3.11 keeper/bootstrap.py setup`"
    assert code == 1 and out.rstrip().endswith("1 essential check(s) failed")


def test_doctor_refuses_a_keypair_others_can_read(tmp_path):
    path = write_keypair(tmp_path / "home" / ".config" / "solana" / "id.json", Keypair())
    path.chmod(0o644)
    code, checks, _ = _doctor(tmp_path)
    assert checks["keypair (devnet, mainnet)"] == f"FAIL\nfix: `chmod 600 {path}`" and code == 1
    path.chmod(0o600)
    code, checks, _ = _doctor(tmp_path)
    assert checks["keypair (devnet, mainnet)"] == "ok" and code == 0


def test_doctor_checks_a_given_keypair_and_the_localnet_wallet(tmp_path):
    write_keypair(tmp_path / LOCALNET_WALLET, Keypair())
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2, 3]")
    bad.chmod(0o600)
    code, checks, out = _doctor(tmp_path, "--keypair", str(bad))
    assert checks["keypair (localnet)"] == "ok"
    assert checks["keypair (--keypair)"].startswith("FAIL\nfix:") and "not a Solana keypair file" in out
    assert code == 1


def test_doctor_says_where_the_drift_binary_comes_from(tmp_path):
    not_elf = tmp_path / "drift.so"
    not_elf.write_bytes(b"not a program")
    code, checks, out = _doctor(tmp_path, DRIFT_PROGRAM_SO=str(not_elf))
    assert checks["Drift binary"].startswith("warn\nfix: `solana program dump -u m dRiftyHA39")
    assert f"{not_elf} is not a Solana program" in out
    assert code == 0, "only keeper localnet needs the binary"


@needs_binary
def test_doctor_finds_the_drift_binary(tmp_path):
    from keeper.localnet.program import find_program

    code, checks, out = _doctor(tmp_path, DRIFT_PROGRAM_SO=str(find_program()))
    assert checks["Drift binary"] == "ok" and str(find_program()) in out


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on leaving: nothing listens there


@pytest.mark.parametrize("command", ["status", "init", "deposit"])
def test_a_dead_rpc_is_one_line_naming_the_url_and_the_cause(tmp_path, command):
    wallet = write_keypair(tmp_path / "w.json", Keypair())
    url = f"http://127.0.0.1:{_dead_port()}"
    args = [command, *(["10"] if command == "deposit" else []), *(["--yes"] if command == "init" else [])]
    result = keeper(*args, "--network", url, "--keypair", wallet, cwd=tmp_path, ok=False)
    assert result.returncode == 2
    assert result.stderr == f"keeper: error: {url}: no answer from the RPC at {url} (cannot connect: connection refused)\n"


def test_localnet_defaults_to_the_localnet_wallet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv in (["status"], ["init", "--network", "localnet"], ["deposit", "5"], ["run", "--network", "localnet"]):
        args = cli.parser().parse_args(argv)
        cli._default_keypair(args)
        assert args.keypair == str(LOCALNET_WALLET)
    for argv in (["status", "--network", "devnet"], ["run", "--network", "http://127.0.0.1:8899"], ["run"]):
        args = cli.parser().parse_args(argv)
        cli._default_keypair(args)
        assert args.keypair == DEFAULT_KEYPAIR
    args = cli.parser().parse_args(["status", "--keypair", "mine.json"])
    cli._default_keypair(args)
    assert args.keypair == "mine.json"


def test_status_on_localnet_without_its_wallet_says_how_to_get_one(tmp_path):
    result = keeper("status", cwd=tmp_path, ok=False)
    assert result.stderr == (f"keeper: error: keypair {LOCALNET_WALLET}: no such file (`keeper localnet` creates it: "
                             "start it in this folder first, or pass --keypair)\n")
    assert result.returncode == 2


def test_status_on_localnet_uses_its_wallet(tmp_path):
    # with the wallet there, what stops status is the chain not running (unless one serves 8899)
    write_keypair(tmp_path / LOCALNET_WALLET, Keypair())
    result = keeper("status", cwd=tmp_path, ok=False)
    assert result.returncode == 2 and "keypair" not in result.stderr and result.stderr.count("\n") == 1


def test_doctor_names_what_the_venv_lacks(tmp_path, monkeypatch):
    from keeper.ops import doctor

    (tmp_path / "requirements.lock").write_text("# pins\nrich==0.0.1\nno-such-package-here==1.0\norjson==" +
                                                doctor.metadata.version("orjson") + "\n")
    monkeypatch.setattr(doctor.bootstrap, "ROOT", tmp_path)
    check = doctor.check_venv()
    assert check.state == doctor.FAIL and check.fix == "`python3.11 keeper/bootstrap.py setup` installs the lock"
    assert f"rich {doctor.metadata.version('rich')} (lock: 0.0.1), no-such-package-here missing (lock: 1.0)" in check.detail
    assert "orjson" not in check.detail


def test_doctor_names_a_missing_or_stale_sdk(tmp_path, monkeypatch):
    from keeper.ops import doctor

    (tmp_path / "package.json").write_text('{"dependencies": {"@drift-labs/sdk": "2.156.0"}}')
    monkeypatch.setattr(doctor.bootstrap, "ROOT", tmp_path)
    check = doctor.check_sdk()
    assert check.state == doctor.FAIL and "not installed" in check.detail and "npm ci" in check.fix
    sdk = tmp_path / "node_modules" / "@drift-labs" / "sdk"
    sdk.mkdir(parents=True)
    (sdk / "package.json").write_text('{"version": "2.100.0"}')
    check = doctor.check_sdk()
    assert check.state == doctor.FAIL and check.detail == "@drift-labs/sdk 2.100.0 installed, package.json wants 2.156.0"
