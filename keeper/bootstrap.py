"""Set up (if needed) and start: the README's two commands run through this file.

    python3.11 keeper/bootstrap.py run [keeper run options]   # install if missing, then keeper run
    python3.11 keeper/bootstrap.py test [pytest options]      # install if missing, then the test suite

Standard library only, because it runs before anything is installed. Installs are skipped
when the lock files have not changed since the last successful install.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _digest(*names: str) -> str:
    h = hashlib.sha256()
    for name in names:
        path = ROOT / name
        h.update(path.read_bytes() if path.exists() else b"-")
    return h.hexdigest()


def _step(what: str, cmd: list[str]) -> None:
    print(f"[setup] {what}", flush=True)
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"[setup] failed: {' '.join(cmd)} (exit {result.returncode})")


# The suite in two worker processes (pytest-xdist), a module to a worker: much of its time is
# spent waiting on `keeper localnet` children, keeper runs and RPC faults, which the other
# worker fills with work. Modules stay whole because several share a localnet on a fixed port.
# Options given after `test` come later and win (`-n 0`: one process).
TEST_WORKERS = ["-n", "2", "--dist", "loadfile"]

PYTHON_STAMP = VENV / ".installed"
NODE_STAMP = ROOT / "node_modules" / ".installed"


def python_current() -> bool:
    """The venv holds what requirements.lock and pyproject.toml say (as of the last install)."""
    return PYTHON_STAMP.exists() and PYTHON_STAMP.read_text() == _digest("requirements.lock", "pyproject.toml")


def node_current() -> bool:
    """node_modules/ holds what package-lock.json says (as of the last install)."""
    return NODE_STAMP.exists() and NODE_STAMP.read_text() == _digest("package.json", "package-lock.json")


def ensure_python() -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"[setup] drift-keeper needs Python 3.11 (driftpy's pins); this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print(f"[setup] creating {VENV.name}/", flush=True)
        venv.create(VENV, with_pip=True)
    if python_current():
        return
    want = _digest("requirements.lock", "pyproject.toml")
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "install", "-q"]
    _step("installing Python dependencies from requirements.lock", pip + ["-r", "requirements.lock"])
    _step("installing drift-keeper (editable)", pip + ["--no-deps", "-e", "."])
    PYTHON_STAMP.write_text(want)


def ensure_node() -> None:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("[setup] npm is missing: install Node.js 20+ with npm")
    if node_current():
        return
    _step("installing Node dependencies (@drift-labs/sdk) from package-lock.json",
          [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"])
    NODE_STAMP.write_text(_digest("package.json", "package-lock.json"))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "setup"):
        print(__doc__)
        return 2
    ensure_python()
    ensure_node()
    command, rest = argv[0], argv[1:]
    if command == "setup":
        return 0
    if command == "run":
        exe, args = str(BIN / "keeper"), [str(BIN / "keeper"), "run", *rest]
    else:
        exe, args = str(BIN / "python"), [str(BIN / "python"), "-m", "pytest", *TEST_WORKERS, *rest]
    os.chdir(ROOT)
    os.execv(exe, args)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
