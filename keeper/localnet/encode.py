"""Accounts, errors and transactions in the JSON shapes Solana's RPC uses.

solana-py parses every answer with solders' strict response types, so these shapes are
exactly a validator's; the tests drive them through solana-py's own client.
"""
from __future__ import annotations

import base64
from typing import Optional

import base58
import orjson
import zstandard
from solders.account import Account
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.transaction_status import TransactionErrorInstructionError

ENCODINGS = ("base64", "base58", "base64+zstd", "jsonParsed")
BASE58_LIMIT = 128  # a validator refuses base58 for bigger accounts


class RpcError(Exception):
    """An answer in JSON-RPC's error shape: code, message and optional data."""

    def __init__(self, code: int, message: str, data: object = None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_json(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(message: str) -> RpcError:
    return RpcError(-32602, f"Invalid params: {message}")


def account_json(account: Account, encoding: str = "base64", data_slice: Optional[dict] = None) -> dict:
    data = bytes(account.data)
    if data_slice:
        offset, length = data_slice.get("offset", 0), data_slice.get("length", len(data))
        data = data[offset : offset + length]
    return {
        "data": encode_data(data, encoding),
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": str(account.owner),
        "rentEpoch": account.rent_epoch,
        "space": len(account.data),
    }


def encode_data(data: bytes, encoding: str) -> list[str]:
    if encoding == "base58":
        if len(data) > BASE58_LIMIT:
            raise invalid_params("Encoded binary (base 58) data should be less than 128 bytes, please use Base64 encoding.")
        return [base58.b58encode(data).decode(), "base58"]
    if encoding == "base64+zstd":
        return [base64.b64encode(zstandard.ZstdCompressor().compress(data)).decode(), "base64+zstd"]
    if encoding in ("base64", "jsonParsed"):  # jsonParsed falls back to base64 where there is no parser
        return [base64.b64encode(data).decode(), "base64"]
    raise invalid_params(f"unsupported encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")


def decode_data(text: str, encoding: str = "base58") -> bytes:
    try:
        if encoding == "base64":
            return base64.b64decode(text, validate=True)
        if encoding == "base58":
            return base58.b58decode(text)
    except (ValueError, TypeError):
        raise invalid_params(f"invalid {encoding} data") from None
    raise invalid_params(f"unsupported encoding {encoding!r}")


def error_json(err) -> object:
    """A solders TransactionError as the RPC writes it, e.g. {"InstructionError": [0, {"Custom": 6010}]}."""
    if err is None:
        return None
    return orjson.loads(RpcSimulateTransactionResult(err=err).to_json())["err"]


def error_text(err) -> str:
    """The validator's human wording, as found after "Transaction simulation failed: "."""
    if isinstance(err, TransactionErrorInstructionError):
        index, inner = err.index, err.err
        code = getattr(inner, "code", None)
        detail = f"custom program error: {code:#x}" if code is not None else _words(str(inner))
        return f"Error processing Instruction {index}: {detail}"
    return _words(str(err).rsplit(".", 1)[-1])


def _words(name: str) -> str:
    name = name.split("(")[0]
    out = "".join(" " + c.lower() if c.isupper() else c for c in name).strip()
    return out[:1].upper() + out[1:]


def simulation_json(err, logs: list[str], units: int, return_data=None, accounts=None) -> dict:
    result = orjson.loads(RpcSimulateTransactionResult(err=err, logs=logs, units_consumed=units).to_json())
    result["accounts"] = accounts
    if return_data is not None and bytes(return_data.data):
        result["returnData"] = {
            "programId": str(return_data.program_id),
            "data": [base64.b64encode(bytes(return_data.data)).decode(), "base64"],
        }
    return result


def status_json(err) -> dict:
    return {"Ok": None} if err is None else {"Err": error_json(err)}
