"""The JSON-RPC methods a Solana validator answers, over the Chain.

Each method takes the request's params list and returns the result, or raises RpcError.
The set covers what driftpy, solana-py and the keeper call; anything else gets -32601.
"""
from __future__ import annotations

import base64
from typing import Callable, Optional

import base58
from solders.hash import Hash
from solders.message import from_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import TransactionErrorFieldless

from keeper.localnet.chain import BLOCKHASH_LIFETIME, LAMPORTS_PER_SIGNATURE, BlockhashNotFound, Chain, Landed
from keeper.localnet.encode import (
    RpcError,
    account_json,
    decode_data,
    error_json,
    error_text,
    invalid_params,
    simulation_json,
    status_json,
)

SOLANA_VERSION = "1.18.26"  # what getVersion reports; driftpy and solana-py only log it
FINALIZED_AFTER = 32  # slots until "confirmed" becomes "finalized"
TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PSnBZSyJzZr1UV")
_TOKEN_ACCOUNT_LEN = 165


def param(params: list, index: int, default=None):
    return params[index] if len(params) > index and params[index] is not None else default


def config_param(params: list, index: int) -> dict:
    config = param(params, index, {})
    if not isinstance(config, dict):
        raise invalid_params(f"parameter {index} must be a configuration object")
    return config


def pubkey_param(value) -> Pubkey:
    try:
        return Pubkey.from_string(value)
    except (ValueError, TypeError):
        raise invalid_params(f"invalid pubkey {str(value)[:60]!r}") from None


def signature_param(value) -> Signature:
    try:
        return Signature.from_string(value)
    except (ValueError, TypeError):
        raise invalid_params(f"invalid signature {str(value)[:100]!r}") from None


def transaction_param(params: list) -> VersionedTransaction:
    text = param(params, 0)
    if not isinstance(text, str):
        raise invalid_params("expected a serialized transaction string")
    encoding = config_param(params, 1).get("encoding", "base58")
    raw = decode_data(text, encoding)
    try:
        return VersionedTransaction.from_bytes(raw)  # also reads legacy transactions
    except ValueError:
        raise invalid_params("failed to deserialize the transaction") from None


class Rpc:
    """The method table. `call(method, params)` is all the transports need."""

    def __init__(self, chain: Chain):
        self.chain = chain
        self.methods: dict[str, Callable[[list], object]] = {
            name[len("m_"):]: getattr(self, name) for name in dir(self) if name.startswith("m_")
        }

    def call(self, method: str, params) -> object:
        handler = self.methods.get(method) if isinstance(method, str) else None
        if handler is None:
            raise RpcError(-32601, "Method not found")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise invalid_params("params must be an array")
        return handler(params)

    def _context(self, value) -> dict:
        return {"context": {"slot": self.chain.slot, "apiVersion": SOLANA_VERSION}, "value": value}

    # -- accounts ------------------------------------------------------------------------
    def _account(self, pubkey: Pubkey, config: dict) -> Optional[dict]:
        account = self.chain.get_account(pubkey)
        if account is None or account.lamports == 0:
            return None
        return account_json(account, config.get("encoding", "base64"), config.get("dataSlice"))

    def m_getAccountInfo(self, params):
        return self._context(self._account(pubkey_param(param(params, 0)), config_param(params, 1)))

    def m_getMultipleAccounts(self, params):
        keys = param(params, 0)
        if not isinstance(keys, list) or len(keys) > 100:
            raise invalid_params("expected an array of at most 100 pubkeys")
        config = config_param(params, 1)
        return self._context([self._account(pubkey_param(k), config) for k in keys])

    def m_getProgramAccounts(self, params):
        owner = pubkey_param(param(params, 0))
        config = config_param(params, 1)
        matches = filters_predicate(config.get("filters") or [])
        encoding, data_slice = config.get("encoding", "base64"), config.get("dataSlice")
        found = [
            {"pubkey": str(key), "account": account_json(account, encoding, data_slice)}
            for key, account in self.chain.program_accounts(owner)
            if matches(bytes(account.data))
        ]
        return self._context(found) if config.get("withContext") else found

    def m_getBalance(self, params):
        return self._context(self.chain.get_balance(pubkey_param(param(params, 0))))

    def m_getMinimumBalanceForRentExemption(self, params):
        size = param(params, 0)
        if not isinstance(size, int) or size < 0:
            raise invalid_params("expected a data length")
        return self.chain.minimum_balance_for_rent_exemption(size)

    def m_getTokenAccountBalance(self, params):
        key = pubkey_param(param(params, 0))
        account = self.chain.get_account(key)
        if account is None or account.owner not in (TOKEN_PROGRAM, TOKEN_2022_PROGRAM) or len(account.data) < 72:
            raise invalid_params("Invalid param: not a Token account")
        data = bytes(account.data)
        mint = self.chain.get_account(Pubkey.from_bytes(data[:32]))
        decimals = bytes(mint.data)[44] if mint is not None and len(mint.data) > 44 else 0
        amount = int.from_bytes(data[64:72], "little")
        ui = amount / 10**decimals
        return self._context(
            {"amount": str(amount), "decimals": decimals, "uiAmount": ui, "uiAmountString": _ui_string(amount, decimals)}
        )

    def m_getTokenAccountsByOwner(self, params):
        owner = pubkey_param(param(params, 0))
        selector = config_param(params, 1)
        config = config_param(params, 2)
        mint = pubkey_param(selector["mint"]) if "mint" in selector else None
        program = pubkey_param(selector["programId"]) if "programId" in selector else TOKEN_PROGRAM
        if mint is None and "programId" not in selector:
            raise invalid_params("expected a mint or programId filter")
        encoding = config.get("encoding", "base64")
        found = []
        for key, account in self.chain.program_accounts(program):
            data = bytes(account.data)
            if len(data) < _TOKEN_ACCOUNT_LEN or data[32:64] != bytes(owner):
                continue
            if mint is not None and data[:32] != bytes(mint):
                continue
            found.append({"pubkey": str(key), "account": account_json(account, encoding)})
        return self._context(found)

    # -- clock and blockhashes -----------------------------------------------------------
    def m_getSlot(self, params):
        return self.chain.slot

    def m_getBlockHeight(self, params):
        return self.chain.slot

    def m_getEpochInfo(self, params):
        slot = self.chain.slot
        return {
            "absoluteSlot": slot, "blockHeight": slot, "epoch": 0, "slotIndex": slot,
            "slotsInEpoch": 432_000, "transactionCount": len(self.chain.recent_landed()),
        }

    def m_getBlockTime(self, params):
        return self.chain.unix_timestamp

    def m_getLatestBlockhash(self, params):
        blockhash = self.chain.latest_blockhash()
        return self._context({"blockhash": str(blockhash), "lastValidBlockHeight": self.chain.last_valid_block_height(blockhash)})

    def m_isBlockhashValid(self, params):
        try:
            blockhash = Hash.from_string(param(params, 0))
        except (ValueError, TypeError):
            raise invalid_params("invalid blockhash") from None
        return self._context(self.chain.last_valid_block_height(blockhash) is not None)

    def m_getFeeForMessage(self, params):
        raw = decode_data(param(params, 0, ""), "base64")
        try:
            message = from_bytes_versioned(raw)  # legacy or v0
        except ValueError:
            raise invalid_params("failed to deserialize the message") from None
        return self._context(LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures)

    def m_getRecentPrioritizationFees(self, params):
        keys = {pubkey_param(k) for k in param(params, 0, [])}
        oldest = self.chain.slot - BLOCKHASH_LIFETIME
        fees: dict[int, int] = {}
        for landed in self.chain.recent_landed():
            if landed.slot < oldest or (keys and not keys.intersection(landed.tx.message.account_keys)):
                continue
            fees[landed.slot] = min(fees.get(landed.slot, landed.cu_price), landed.cu_price)
        return [{"slot": slot, "prioritizationFee": fee} for slot, fee in sorted(fees.items())]

    # -- node ----------------------------------------------------------------------------
    def m_getHealth(self, params):
        return "ok"

    def m_getVersion(self, params):
        return {"solana-core": SOLANA_VERSION, "feature-set": 0}

    def m_getGenesisHash(self, params):
        return str(Hash.default())

    def m_getIdentity(self, params):
        return {"identity": str(Pubkey.default())}

    def m_getFirstAvailableBlock(self, params):
        return 0

    # -- transactions --------------------------------------------------------------------
    def m_requestAirdrop(self, params):
        lamports = param(params, 1)
        if not isinstance(lamports, int) or lamports <= 0:
            raise invalid_params("expected a positive number of lamports")
        return str(self.chain.airdrop(pubkey_param(param(params, 0)), lamports).signatures[0])

    def m_sendTransaction(self, params):
        tx = transaction_param(params)
        config = config_param(params, 1)
        if not all(tx.verify_with_results()):
            raise RpcError(-32003, "Transaction signature verification failure")
        if not config.get("skipPreflight", False):
            self._preflight(tx)
        try:
            self.chain.send_transaction(tx)
        except BlockhashNotFound:
            pass  # a validator drops it silently; the client sees it never land
        return str(tx.signatures[0])

    def _preflight(self, tx: VersionedTransaction) -> None:
        if self.chain.last_valid_block_height(tx.message.recent_blockhash) is None:
            raise RpcError(
                -32002,
                "Transaction simulation failed: Blockhash not found",
                simulation_json(TransactionErrorFieldless.BlockhashNotFound, [], 0),
            )
        if self.chain.landed(tx.signatures[0]) is not None:
            raise RpcError(
                -32002,
                "Transaction simulation failed: This transaction has already been processed",
                simulation_json(TransactionErrorFieldless.AlreadyProcessed, [], 0),
            )
        result = self.chain.simulate_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            raise RpcError(
                -32002,
                f"Transaction simulation failed: {error_text(result.err())}",
                simulation_json(result.err(), list(meta.logs()), meta.compute_units_consumed()),
            )

    def m_simulateTransaction(self, params):
        tx = transaction_param(params)
        config = config_param(params, 1)
        if config.get("sigVerify") and config.get("replaceRecentBlockhash"):
            raise invalid_params("sigVerify may not be used with replaceRecentBlockhash")
        if config.get("sigVerify") and not all(tx.verify_with_results()):
            return self._context(simulation_json(TransactionErrorFieldless.SignatureFailure, [], 0))
        replace = config.get("replaceRecentBlockhash", False)
        if not replace and self.chain.last_valid_block_height(tx.message.recent_blockhash) is None:
            return self._context(simulation_json(TransactionErrorFieldless.BlockhashNotFound, [], 0))
        result = self.chain.simulate_transaction(tx)
        failed = isinstance(result, FailedTransactionMetadata)
        meta = result.meta()
        accounts = None
        wanted = config.get("accounts")
        if wanted and not failed:
            post = dict(result.post_accounts())
            encoding = wanted.get("encoding", "base64")
            accounts = []
            for key in wanted.get("addresses", []):
                account = post.get(pubkey_param(key)) or self.chain.get_account(pubkey_param(key))
                accounts.append(account_json(account, encoding) if account is not None else None)
        value = simulation_json(result.err() if failed else None, list(meta.logs()), meta.compute_units_consumed(),
                                meta.return_data(), accounts)
        if replace:
            blockhash = self.chain.latest_blockhash()
            value["replacementBlockhash"] = {
                "blockhash": str(blockhash),
                "lastValidBlockHeight": self.chain.last_valid_block_height(blockhash),
            }
        return self._context(value)

    def m_getSignatureStatuses(self, params):
        sigs = param(params, 0)
        if not isinstance(sigs, list) or len(sigs) > 256:
            raise invalid_params("expected an array of at most 256 signatures")
        return self._context([self._status(self.chain.landed(signature_param(s))) for s in sigs])

    def _status(self, landed: Optional[Landed]) -> Optional[dict]:
        if landed is None:
            return None
        age = self.chain.slot - landed.slot
        finalized = age >= FINALIZED_AFTER
        return {
            "slot": landed.slot,
            "confirmations": None if finalized else age,
            "err": error_json(landed.err),
            "status": status_json(landed.err),
            # One validator, no forks: a landed transaction is already confirmed.
            "confirmationStatus": "finalized" if finalized else "confirmed",
        }

    def m_getSignaturesForAddress(self, params):
        address = pubkey_param(param(params, 0))
        config = config_param(params, 1)
        limit = config.get("limit") or 1000
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise invalid_params("limit must be between 1 and 1000")
        before = signature_param(config["before"]) if config.get("before") else None
        until = signature_param(config["until"]) if config.get("until") else None
        out, started = [], before is None
        for landed in self.chain.signatures_for(address):
            if not started:
                started = landed.signature == before
                continue
            if landed.signature == until or len(out) == limit:
                break
            status = self._status(landed)
            out.append({
                "signature": str(landed.signature), "slot": landed.slot, "err": error_json(landed.err),
                "memo": None, "blockTime": landed.block_time, "confirmationStatus": status["confirmationStatus"],
            })
        return out

    def m_getTransaction(self, params):
        landed = self.chain.landed(signature_param(param(params, 0)))
        if landed is None:
            return None
        config = config_param(params, 1) if len(params) > 1 and isinstance(params[1], dict) else {"encoding": param(params, 1, "json")}
        encoding = config.get("encoding", "json")
        tx = landed.tx
        version = tx.version
        legacy = not isinstance(version, int)
        if not legacy and config.get("maxSupportedTransactionVersion") is None:
            raise RpcError(-32015, "Transaction version (0) is not supported by the requesting client. "
                                   "Please try the request again with the following configuration parameter: "
                                   '"maxSupportedTransactionVersion": 0')
        if encoding == "base64":
            encoded = [base64.b64encode(bytes(tx)).decode(), "base64"]
        elif encoding == "base58":
            encoded = [base58.b58encode(bytes(tx)).decode(), "base58"]
        elif encoding in ("json", "jsonParsed"):
            encoded = _transaction_json(tx)
        else:
            raise invalid_params(f"unsupported encoding {encoding!r}")
        return {
            "slot": landed.slot,
            "blockTime": landed.block_time,
            "version": "legacy" if legacy else version,
            "transaction": encoded,
            "meta": {
                "err": error_json(landed.err),
                "status": status_json(landed.err),
                "fee": landed.fee,
                "preBalances": landed.pre_balances,
                "postBalances": landed.post_balances,
                "innerInstructions": [],
                "logMessages": landed.logs,
                "preTokenBalances": [],
                "postTokenBalances": [],
                "rewards": [],
                "loadedAddresses": {"writable": [], "readonly": []},
                "computeUnitsConsumed": landed.compute_units,
            },
        }


def _transaction_json(tx: VersionedTransaction) -> dict:
    message = tx.message
    header = message.header
    body = {
        "accountKeys": [str(k) for k in message.account_keys],
        "header": {
            "numRequiredSignatures": header.num_required_signatures,
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
        },
        "recentBlockhash": str(message.recent_blockhash),
        "instructions": [
            {"programIdIndex": ix.program_id_index, "accounts": list(bytes(ix.accounts)),
             "data": base58.b58encode(bytes(ix.data)).decode(), "stackHeight": None}
            for ix in message.instructions
        ],
    }
    if isinstance(tx.version, int):
        body["addressTableLookups"] = []
    return {"signatures": [str(s) for s in tx.signatures], "message": body}


def _ui_string(amount: int, decimals: int) -> str:
    whole, frac = divmod(amount, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}".rstrip("0").rstrip(".") if decimals else str(whole)


def filters_predicate(filters: list) -> Callable[[bytes], bool]:
    """getProgramAccounts' memcmp and dataSize filters, as one predicate."""
    if not isinstance(filters, list) or len(filters) > 4:
        raise invalid_params("filters must be an array of at most 4 filters")
    checks = []
    for f in filters:
        if isinstance(f, dict) and "dataSize" in f and isinstance(f["dataSize"], int):
            size = f["dataSize"]
            checks.append(lambda data, size=size: len(data) == size)
        elif isinstance(f, dict) and isinstance(f.get("memcmp"), dict):
            memcmp = f["memcmp"]
            offset, text = memcmp.get("offset"), memcmp.get("bytes")
            if not isinstance(offset, int) or offset < 0 or not isinstance(text, str):
                raise invalid_params("memcmp needs an offset and bytes")
            want = decode_data(text, memcmp.get("encoding", "base58"))
            checks.append(lambda data, o=offset, w=want: data[o : o + len(w)] == w)
        else:
            raise invalid_params(f"unsupported filter {str(f)[:80]}")
    return lambda data: all(check(data) for check in checks)
