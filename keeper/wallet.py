"""Solana CLI keypair files: a JSON array of the 64 secret-key bytes.

Every message here names the file and never its contents: a keypair must not reach a log,
an archive or an error line. Beware that solders' own repr() and str() of a Keypair print
the secret, so never format a Keypair; format its pubkey().
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from solders.keypair import Keypair

from keeper.errors import UserError

DEFAULT_KEYPAIR = "~/.config/solana/id.json"


def load_keypair(path: str | os.PathLike) -> Keypair:
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise UserError(f"keypair {p}: no such file (create one with `solana-keygen new -o {p}`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"keypair {p}: cannot read it ({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    try:
        values = json.loads(text)
    except ValueError:
        values = None
    if not (isinstance(values, list) and len(values) == 64
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in values)):
        raise UserError(f"keypair {p}: not a Solana keypair file (expected a JSON array of 64 numbers 0-255)")
    try:
        return Keypair.from_bytes(bytes(values))
    except ValueError:  # solders checks that the public half derives from the secret
        raise UserError(f"keypair {p}: the secret and public halves do not match") from None


def loose_permissions(path: str | os.PathLike) -> bool:
    """True when group or others may read the file."""
    return bool(Path(path).expanduser().stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def write_keypair(path: str | os.PathLike, keypair: Keypair) -> Path:
    """Write a new keypair file readable by its owner only."""
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(list(bytes(keypair)), f)
    return p
