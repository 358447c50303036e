"""Finding and loading the Drift program binary (never shipped with the repo: users bring their own).

The Pyth program binary is not needed: Drift only checks that an oracle account is *owned* by
the Pyth program id, and LiteSVM serves accounts owned by a program that is not deployed.
oracle.py writes the price accounts directly. find_pyth() is here for callers that still want
to deploy Drift's mock Pyth program (e.g. to let clients send its instructions).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from solders.pubkey import Pubkey

from keeper.errors import UserError

DRIFT_PROGRAM_ID = Pubkey.from_string("dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH")
# Pyth's mainnet program id; the mainnet Drift build only accepts oracles owned by it.
PYTH_PROGRAM_ID = Pubkey.from_string("FsJ3A3u2vn5cTVofAjvy6y5kwABJAqYWpe4975bi2epH")

CACHE = Path("~/.cache/drift-keeper")
_ELF_MAGIC = b"\x7fELF"


def find_program(explicit: str | None = None) -> Path:
    """The Drift program: `explicit`, else $DRIFT_PROGRAM_SO, else ~/.cache/drift-keeper/drift.so."""
    return _find(explicit, "DRIFT_PROGRAM_SO", "drift.so", "Drift program", "--drift-program")


def find_pyth(explicit: str | None = None) -> Path:
    """Drift's mock Pyth program: `explicit`, else $PYTH_PROGRAM_SO, else ~/.cache/drift-keeper/pyth.so."""
    return _find(explicit, "PYTH_PROGRAM_SO", "pyth.so", "Pyth program", "--pyth-program")


def _find(explicit: str | None, env: str, filename: str, what: str, flag: str) -> Path:
    if explicit:
        path, source = Path(explicit).expanduser(), flag
    elif os.environ.get(env):
        path, source = Path(os.environ[env]).expanduser(), f"${env}"
    else:
        path, source = (CACHE / filename).expanduser(), "the default location"
    if not path.is_file():
        raise UserError(f"{what} not found at {path} (from {source}); pass {flag} PATH or set {env}")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise UserError(f"{what} at {path} is not readable ({exc.strerror or exc})") from None
    if magic != _ELF_MAGIC:
        raise UserError(f"{what} at {path} is not a Solana program (an ELF .so file)")
    return path


def load(svm, path: Path, program_id: Pubkey = DRIFT_PROGRAM_ID) -> None:
    """Deploy the binary at `path` under `program_id` (the Drift id unless told otherwise).

    LiteSVM panics on a broken ELF, and Rust's panic hook writes a backtrace straight to file
    descriptor 2; that is held back here so the caller can say it in one line instead.
    """
    data = Path(path).read_bytes()
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                svm.add_program(program_id, data)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # pyo3's PanicException is a BaseException
                raise UserError(f"Drift program at {path} does not load: {str(exc).splitlines()[0][:200]}") from None
    finally:
        os.dup2(saved, 2)
        os.close(saved)
