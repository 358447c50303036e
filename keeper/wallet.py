"""Solana CLI keypair files: a JSON array of the 64 secret-key bytes.

Every message here names the file and never its contents: a keypair must not reach a log,
an archive or an error line. Beware that solders' own repr() and str() of a Keypair print
the secret, so never format a Keypair; format its pubkey().
"""
from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import base58
from solders.keypair import Keypair

from keeper.errors import UserError

DEFAULT_KEYPAIR = "~/.config/solana/id.json"
# The wallet `keeper localnet` creates (once, mode 600) and funds; relative to the working folder.
LOCALNET_WALLET = Path("data/localnet/wallet.json")


_BASE58 = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
_HEX = frozenset("0123456789abcdefABCDEF")
REDACTED = "<key not recorded>"


def looks_like_key(text: str) -> bool:
    """True when `text` is a key itself (a keypair file's JSON array, or the secret in base58,
    hex or base64) rather than the path of a file: someone pasted the key where a path belongs."""
    s = text.strip()
    # the file's JSON array, bare or cut short, or just its numbers: 32 numbers or more
    if s.count(",") >= 31 and set(s) <= set("[], \t\r\n0123456789"):
        return True
    if len(s) in (64, 128) and set(s) <= _HEX:
        return True
    if 32 <= len(s) <= 90 and set(s) <= _BASE58 and len(base58.b58decode(s)) in (32, 64):
        return True
    if len(s) in (44, 88):
        try:
            return len(base64.b64decode(s, validate=True)) in (32, 64)
        except ValueError:
            return False
    return False


def redact_argv(argv: list[str]) -> list[str]:
    """A command line fit to record: an argument that is a key itself (not a file that exists)
    becomes REDACTED, alone or after `--flag=`; RPC URLs lose what may be an API key."""
    out = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if eq and flag.startswith("--") and looks_like_key(value) and not os.path.exists(value):
            out.append(f"{flag}={REDACTED}")
        elif looks_like_key(arg) and not os.path.exists(arg):
            out.append(REDACTED)
        elif eq and flag.startswith("--") and "://" in value:
            out.append(f"{flag}={_redact_urls(value)}")
        elif "://" in arg:
            out.append(_redact_urls(arg))
        else:
            out.append(arg)
    return out


def _redact_urls(text: str) -> str:
    return ",".join(redact_url(u) if "://" in u else u for u in text.split(","))


def redact_url(url: str) -> str:
    """The URL without what may be a secret (providers put API keys in the query or the path):
    user info, query values, and long or digit-bearing path segments (`/v2/<key>`) become ***."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    try:
        if parts.port:
            host += f":{parts.port}"
    except ValueError:  # a port that isn't one: keep nothing of it
        pass
    if parts.username or parts.password:
        host = "***@" + host
    path = "/".join("***" if _secret(s) else s for s in parts.path.split("/"))
    query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, host, path, query, ""))


def _secret(segment: str) -> bool:
    return len(segment) >= 16 or (len(segment) >= 8 and any(c.isdigit() for c in segment))


def load_keypair(path: str | os.PathLike) -> Keypair:
    if not os.path.exists(path) and looks_like_key(os.fspath(path)):
        # Never echo it: every message below names the path, and here the path is the key.
        raise UserError("keypair: expected the path of a Solana keypair file, got what looks like the key itself "
                        "(not repeated here); save it to a file, `chmod 600` it, and pass the file's path")
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except FileNotFoundError:
        how = ("`keeper localnet` creates it: start it in this folder first, or pass --keypair" if p == LOCALNET_WALLET
               else f"create one with `solana-keygen new -o {p}`")
        raise UserError(f"keypair {p}: no such file ({how})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"keypair {p}: cannot read it ({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
    try:
        values = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: arrays nested deeper than the parser goes
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
