"""`keeper doctor`: is this machine set up to run the keeper? One line per check, a fix under each problem.

Essential checks (Python, the venv, Node and the Drift SDK the DLOB helper needs, keypair
permissions) make the exit code 1 when they fail; the rest (the Drift binary, which only
`keeper localnet` needs, and keypairs not created yet) are warnings.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from keeper import bootstrap
from keeper.errors import UserError

OK, WARN, FAIL = "ok", "warn", "FAIL"
SETUP = "python3.11 keeper/bootstrap.py setup"
NODE_MAJOR = 20  # package.json's engines
DUMP = "solana program dump -u m dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH ~/.cache/drift-keeper/drift.so"


@dataclass(frozen=True)
class Check:
    name: str
    state: str  # OK, WARN or FAIL
    detail: str
    fix: str = ""


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] != (3, 11):
        return Check("Python", FAIL, f"{version} at {sys.executable}; driftpy's pins need 3.11",
                     f"install Python 3.11, then `{SETUP}` and use .venv/bin/keeper")
    return Check("Python", OK, f"{version} at {sys.executable}")


def check_venv() -> Check:
    """Every pin of requirements.lock installed at its version, in the interpreter running now."""
    lock = bootstrap.ROOT / "requirements.lock"
    try:
        pins = [line.split("==", 1) for line in lock.read_text().splitlines() if "==" in line and not line.startswith("#")]
    except OSError as exc:
        return Check("venv", FAIL, f"cannot read {lock} ({exc.strerror or exc})", f"restore requirements.lock, then `{SETUP}`")
    wrong = []
    for name, want in pins:
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = "missing"
        if have != want.strip():
            wrong.append(f"{name} {have} (lock: {want.strip()})")
    if wrong:
        more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
        return Check("venv", FAIL, f"{sys.prefix}: {', '.join(wrong[:3])}{more}", f"`{SETUP}` installs the lock")
    where = "the project's .venv/" if Path(sys.prefix).resolve() == bootstrap.VENV.resolve() else sys.prefix
    return Check("venv", OK, f"{len(pins)} packages as requirements.lock pins them, in {where}")


def check_node() -> Check:
    node = shutil.which("node")
    if node is None:
        return Check("Node.js", FAIL, "`node` is not on PATH (the DLOB helper of the live path runs on it)",
                     f"install Node.js {NODE_MAJOR}+ with npm, then `{SETUP}`")
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("Node.js", FAIL, f"{node} does not run ({exc})", f"reinstall Node.js {NODE_MAJOR}+")
    match = re.fullmatch(r"v(\d+)\.\d+\.\d+.*", version)
    if not match or int(match.group(1)) < NODE_MAJOR:
        return Check("Node.js", FAIL, f"{node} is {version or 'of unknown version'}; the helper needs {NODE_MAJOR}+",
                     f"install Node.js {NODE_MAJOR}+ and put it first on PATH")
    return Check("Node.js", OK, f"{version} at {node}")


def check_sdk() -> Check:
    wanted = json.loads((bootstrap.ROOT / "package.json").read_text())["dependencies"]["@drift-labs/sdk"]
    installed = bootstrap.ROOT / "node_modules" / "@drift-labs" / "sdk" / "package.json"
    try:
        version = json.loads(installed.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return Check("Drift SDK", FAIL, f"@drift-labs/sdk is not installed in {installed.parents[2]}",
                     f"`{SETUP}` (runs npm ci)")
    if version != wanted:
        return Check("Drift SDK", FAIL, f"@drift-labs/sdk {version} installed, package.json wants {wanted}",
                     f"`{SETUP}` (runs npm ci)")
    return Check("Drift SDK", OK, f"@drift-labs/sdk {version} in node_modules/")


def check_drift_binary() -> Check:
    from keeper.localnet.program import find_program

    try:
        path = find_program()
    except UserError as exc:
        return Check("Drift binary", WARN, f"{exc} (only `keeper localnet` needs it)",
                     f"`{DUMP}`, or set DRIFT_PROGRAM_SO")
    return Check("Drift binary", OK, f"{path} (for keeper localnet)")


def check_keypair(path: str, label: str, missing_fix: str) -> Check:
    from keeper.wallet import load_keypair, loose_permissions

    name = f"keypair ({label})"
    shown = Path(path).expanduser()
    if not shown.exists():
        return Check(name, WARN, f"{shown}: none yet", missing_fix)
    try:
        pubkey = load_keypair(path).pubkey()
    except UserError as exc:
        return Check(name, FAIL, str(exc), "pass --keypair a Solana keypair file, or replace this one")
    if loose_permissions(path):
        return Check(name, FAIL, f"{shown} ({pubkey}) is readable by group or others", f"`chmod 600 {shown}`")
    return Check(name, OK, f"{shown} ({pubkey}), owner-only")


def run_checks(keypair: str | None = None) -> list[Check]:
    from keeper.wallet import DEFAULT_KEYPAIR, LOCALNET_WALLET

    checks = [check_python(), check_venv(), check_node(), check_sdk(), check_drift_binary(),
              check_keypair(DEFAULT_KEYPAIR, "devnet, mainnet", f"`solana-keygen new -o {DEFAULT_KEYPAIR}` before trading there"),
              check_keypair(str(LOCALNET_WALLET), "localnet", "`keeper localnet` creates it in this folder")]
    if keypair:
        checks.append(check_keypair(keypair, "--keypair", "pass the path of an existing keypair file"))
    return checks


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.state:<5} {c.name:<{width}}  {c.detail}")
        if c.state != OK and c.fix:
            lines.append(f"{'':<5} {'':<{width}}  fix: {c.fix}")
    failed = sum(c.state == FAIL for c in checks)
    lines.append(f"\n{failed} essential check(s) failed" if failed else "\nall essential checks passed")
    return "\n".join(lines)


def doctor_command(args) -> int:
    checks = run_checks(args.keypair)
    print(format_checks(checks))
    return 1 if any(c.state == FAIL for c in checks) else 0
