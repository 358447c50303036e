"""The one way the keeper sends transactions: sign once, re-send the same bytes, never re-sign.

A transaction is signed with one blockhash and re-sent, byte for byte, until it is confirmed
or that blockhash has expired (block height past its lastValidBlockHeight). Signing again
with a fresh blockhash would make a second transaction that could land beside the first and
double an order, so the sender never does; on EXPIRED or UNKNOWN the caller re-reads the
chain and plans again.

Transport faults (timeouts, resets, HTTP 429/5xx, malformed answers) are retried with backoff
and jitter, one log line each, and never escape as exceptions: they end as a status.
Nothing here formats a Keypair (solders prints its secret); logs name signatures only.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import os
import socket
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import httpx
import orjson
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.types import TxOpts
from solders import compute_budget
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc.errors import (
    InternalErrorMessage,
    NodeUnhealthyMessage,
    SendTransactionPreflightFailureMessage,
)
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionConfirmationStatus, TransactionErrorFieldless

from keeper.backoff import Backoff
from keeper.drift_idl import error_name
from keeper.errors import UserError

log = logging.getLogger(__name__)

PACKET_LIMIT = 1232  # bytes: a transaction must fit one IPv6 UDP packet
MAX_COMPUTE_UNITS = 1_400_000  # per transaction
BUDGET_IXS = 2  # we prepend SetComputeUnitLimit and SetComputeUnitPrice
MAX_FEE_ACCOUNTS = 128  # getRecentPrioritizationFees refuses more


class Status(enum.StrEnum):
    CONFIRMED = "confirmed"  # landed and succeeded
    FAILED = "failed"  # refused by preflight, or landed with an error: its instructions had no effect
    EXPIRED = "expired"  # its blockhash expired and it never landed: it never will
    UNKNOWN = "unknown"  # may or may not have landed (the RPC stayed unreachable): re-read the chain
    UNSENT = "unsent"  # nothing went out (no blockhash, or nothing reached a node)
    DRY_RUN = "dry_run"  # simulated only


@dataclass(frozen=True)
class Sent:
    signature: Optional[Signature]
    slot: Optional[int]
    status: Status
    error: Optional[str] = None  # Drift error name ("PlacePostOnlyLimitFailure") or the runtime's error
    code: Optional[int] = None  # the custom program error code (6057)
    instruction: Optional[int] = None  # index of the failed instruction in the caller's list
    logs: tuple[str, ...] = ()
    units: Optional[int] = None  # compute units consumed, when known
    cu_price: int = 0  # micro-lamports per compute unit paid
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status is Status.CONFIRMED

    def describe(self) -> str:
        """One line for logs: "failed: 6057 PlacePostOnlyLimitFailure (instruction 0)"."""
        text = str(self.status)
        if self.error:
            text += f": {self.code} {self.error}" if self.code is not None else f": {self.error}"
        if self.instruction is not None:
            text += f" (instruction {self.instruction})"
        if self.detail:
            text += f" [{self.detail}]"
        return text


class TxTooLarge(Exception):
    """The signed transaction exceeds PACKET_LIMIT: split the instructions (see split_to_fit)."""

    def __init__(self, size: int):
        super().__init__(f"transaction is {size} bytes, over the {PACKET_LIMIT}-byte limit")
        self.size = size


@dataclass(frozen=True)
class SendConfig:
    # Drift's place/cancel instructions use ~50-250k CU; 600k leaves room for a cancel plus a
    # place_orders of several orders. The fee is paid per CU requested, so don't over-ask.
    cu_limit: int = 600_000
    priority_fee: Union[int, str] = "auto"  # micro-lamports per CU, or "auto"
    fee_percentile: int = 75  # "auto": this percentile of recent fees on our writable accounts
    fee_cap: int = 20_000  # "auto" never pays more (20k µlamports × 600k CU = 0.012 SOL)
    confirm_timeout: float = 90.0  # seconds; a safety net past the ~60-80 s blockhash lifetime
    poll_interval: float = 0.5  # seconds between status polls
    resend_interval: float = 2.0  # seconds between re-sends of the same bytes
    request_timeout: float = 10.0  # seconds for any one RPC call
    backoff_base: float = 0.2  # seconds; doubled per consecutive fault, with jitter
    backoff_max: float = 5.0
    dry_run: bool = False
    max_tx_per_s: float = 5.0  # new transactions (re-sends of the same bytes don't count); the risk file sets it

    def __post_init__(self):
        if not 1 <= self.cu_limit <= MAX_COMPUTE_UNITS:
            raise UserError(f"compute unit limit {self.cu_limit}: must be between 1 and {MAX_COMPUTE_UNITS:,}")
        fee = self.priority_fee
        if fee != "auto" and not (isinstance(fee, int) and not isinstance(fee, bool) and fee >= 0):
            raise UserError(f"priority fee {fee!r}: must be micro-lamports per compute unit (an integer >= 0) or 'auto'")
        if not 1 <= self.fee_percentile <= 100:
            raise UserError(f"priority fee percentile {self.fee_percentile}: must be between 1 and 100")
        if self.fee_cap < 0:
            raise UserError(f"priority fee cap {self.fee_cap}: must be >= 0")
        for name in ("confirm_timeout", "request_timeout"):
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be positive")


class _Fault(Exception):
    """An RPC call that got no usable answer. `delivered`: the request may have reached the node."""

    def __init__(self, text: str, delivered: bool = True):
        super().__init__(text)
        self.text, self.delivered = text, delivered


# -- building ---------------------------------------------------------------------------------
def _budget(cu_limit: int, cu_price: int) -> list[Instruction]:
    return [compute_budget.set_compute_unit_limit(cu_limit), compute_budget.set_compute_unit_price(cu_price)]


def _check_no_budget(ixs: Sequence[Instruction]) -> None:
    # A second SetComputeUnit* instruction makes the whole transaction fail (DuplicateInstruction).
    if any(ix.program_id == compute_budget.ID for ix in ixs):
        raise ValueError("instructions must not include compute-budget instructions: the sender adds them")


def _message(payer: Pubkey, ixs: Sequence[Instruction], cu_limit: int, cu_price: int, blockhash: Hash) -> MessageV0:
    return MessageV0.try_compile(payer, [*_budget(cu_limit, cu_price), *ixs], [], blockhash)


def tx_size(payer: Pubkey, ixs: Sequence[Instruction], cu_limit: int = 600_000) -> int:
    """Serialized size of the signed transaction the sender would build for `ixs`."""
    message = _message(payer, ixs, cu_limit, 0, Hash.default())
    signers = message.header.num_required_signatures
    return len(bytes(VersionedTransaction.populate(message, [Signature.default()] * signers)))


def split_to_fit(payer: Union[Pubkey, Keypair], groups: Sequence[Sequence[Instruction]],
                 cu_limit: int = 600_000) -> list[list[Instruction]]:
    """Pack instruction groups, in order, into as few transactions as fit the packet limit.

    A group is never split (e.g. one cancel_orders_by_ids); order is kept, so cancels that come
    first go out first. A single group too big for any transaction raises TxTooLarge.
    """
    key = payer.pubkey() if isinstance(payer, Keypair) else payer
    out: list[list[Instruction]] = []
    current: list[Instruction] = []
    for group in groups:
        candidate = [*current, *group]
        if tx_size(key, candidate, cu_limit) <= PACKET_LIMIT:
            current = candidate
            continue
        size = tx_size(key, list(group), cu_limit)
        if size > PACKET_LIMIT:
            raise TxTooLarge(size)
        if current:
            out.append(current)
        current = list(group)
    if current:
        out.append(current)
    return out


def percentile(values: Sequence[int], pct: int) -> int:
    """Nearest-rank percentile of integers; 0 for none."""
    if not values:
        return 0
    ordered = sorted(values)
    rank = -(-pct * len(ordered) // 100)  # ceil without floats
    return ordered[max(rank, 1) - 1]


# -- errors -----------------------------------------------------------------------------------
def _failure(err) -> dict:
    """A solders TransactionError as Sent fields: the Drift name and code, and which instruction."""
    index, inner = getattr(err, "index", None), getattr(err, "err", None)
    code = getattr(inner, "code", None)
    name = error_name(err) if code is not None else _short(inner if inner is not None else err)
    # Indexes count our compute-budget instructions; the caller knows only its own list.
    mine = index - BUDGET_IXS if index is not None and index >= BUDGET_IXS else None
    return {"error": name, "code": code, "instruction": mine}


def _short(err) -> str:
    # solders' str() reads "TransactionErrorFieldless.InsufficientFundsForFee"; keep the name
    return str(err).replace("TransactionErrorFieldless.", "").replace("InstructionErrorFieldless.", "")[:120]


def is_parser_panic(exc: BaseException) -> bool:
    """pyo3's PanicException: what solders raises when a response breaks its parser's assumptions."""
    return type(exc).__name__ == "PanicException" and type(exc).__module__ == "pyo3_runtime"


def _fault(exc: BaseException) -> _Fault:
    """What went wrong with an RPC call, in a few words, and whether the node may have got it."""
    if isinstance(exc, _Fault):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return _Fault("timed out")
    cause = exc.__cause__ if isinstance(exc, SolanaRpcException) and exc.__cause__ is not None else exc
    if isinstance(cause, httpx.HTTPStatusError):
        status = cause.response.status_code
        return _Fault(f"HTTP {status}", delivered=status != 429)  # 429: refused before processing
    if isinstance(cause, httpx.ConnectTimeout):
        return _Fault("cannot connect: timed out", delivered=False)
    if isinstance(cause, httpx.ConnectError):
        return _Fault(f"cannot connect: {_os_reason(cause)}", delivered=False)
    if isinstance(cause, httpx.TimeoutException):
        return _Fault("timed out")
    if isinstance(cause, httpx.TransportError):
        return _Fault(f"connection lost ({type(cause).__name__})")
    if isinstance(cause, RPCException):
        message = cause.args[0] if cause.args else None
        return _Fault(f"RPC error: {getattr(message, 'message', type(message).__name__)}"[:160])
    if type(cause).__name__ in ("SerdeJSONError", "JSONDecodeError") or isinstance(cause, ValueError):
        return _Fault("malformed answer")
    # Anything else raised inside the RPC client is still the transport's problem, not the caller's.
    return _Fault(f"{type(cause).__name__}")


def rpc_fault(exc: BaseException) -> str:
    """What stopped an RPC call, in a few words: "cannot connect: connection refused", "HTTP 503"."""
    return _fault(exc).text


def _os_reason(exc: BaseException) -> str:
    """The OS's own words at the bottom of a connect failure; httpx's top line only says
    "All connection attempts failed"."""
    reason, seen = str(exc) or type(exc).__name__, set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, socket.gaierror):
            reason = f"cannot resolve the host ({exc.strerror})"
        elif isinstance(exc, OSError) and exc.errno and exc.errno > 0:
            reason = os.strerror(exc.errno).lower()
        exc = exc.__cause__ or exc.__context__
    return reason


def _backoff(config: SendConfig) -> Backoff:
    """Jittered, so many keepers hitting one RPC don't retry in lockstep."""
    return Backoff(config.backoff_base, config.backoff_max, jitter=True)


# -- sending ----------------------------------------------------------------------------------
@dataclass
class _Flight:
    """What the sender knows about one signed transaction while it waits for it."""

    raw: bytes
    signature: Signature
    last_valid: int
    cu_price: int
    accepted: bool = False  # a node answered the send with its signature
    maybe_out: bool = False  # a send may have reached a node without an answer
    refused: Optional[Sent] = None  # a preflight refusal seen after a send that may have got out
    backoff: Optional[Backoff] = None  # over consecutive loop rounds with a fault


class TxSender:
    def __init__(self, connection: AsyncClient, payer: Keypair, config: SendConfig = SendConfig()):
        self.connection = connection
        self.payer = payer  # solders prints a Keypair's secret as its repr/str: format payer.pubkey() only
        self.config = config
        self.on_landing: Optional[Callable[[float], None]] = None  # told each confirmed send's seconds to land
        self.last_fee = 0
        self._next_send = 0.0  # event-loop time before which no new transaction goes out

    def sign(self, ixs: Sequence[Instruction], blockhash: Hash, cu_price: int, *, cu_limit: Optional[int] = None,
             signers: Sequence[Keypair] = ()) -> VersionedTransaction:
        """`ixs` after our compute-budget instructions, compiled and signed: the bytes send() sends."""
        limit = self._checked_limit(ixs, cu_limit)
        return VersionedTransaction(_message(self.payer.pubkey(), ixs, limit, cu_price, blockhash), [self.payer, *signers])

    def _checked_limit(self, ixs: Sequence[Instruction], cu_limit: Optional[int]) -> int:
        """Raises TxTooLarge (the caller splits, see split_to_fit) and ValueError for a bad
        cu_limit or instructions that bring their own compute-budget instructions."""
        _check_no_budget(ixs)
        limit = cu_limit if cu_limit is not None else self.config.cu_limit
        if not 1 <= limit <= MAX_COMPUTE_UNITS:
            raise ValueError(f"compute unit limit {limit}: must be between 1 and {MAX_COMPUTE_UNITS:,}")
        size = tx_size(self.payer.pubkey(), ixs, limit)
        if size > PACKET_LIMIT:
            raise TxTooLarge(size)
        return limit

    async def send(self, ixs: Sequence[Instruction], what: str, *, cu_limit: Optional[int] = None,
                   cu_price: Optional[int] = None, signers: Sequence[Keypair] = ()) -> Sent:
        """Sign `ixs` (after our compute-budget instructions) once and see it through.

        Never raises for RPC trouble: every outcome is a Sent. Raises as sign() does, before any
        RPC call. `signers`: any besides the payer the instructions need. `ixs` is not modified.
        """
        config, loop = self.config, asyncio.get_running_loop()
        deadline = loop.time() + config.confirm_timeout
        self._checked_limit(ixs, cu_limit)  # a bad batch is refused before any RPC call
        price = cu_price if cu_price is not None else await self._priority_fee(ixs, what)

        await self._rate_limit()
        blockhash = await self._retrying(what, "getLatestBlockhash", self._latest_blockhash, deadline)
        if blockhash is None:
            return self._done(what, Sent(None, None, Status.UNSENT, cu_price=price, detail="no blockhash from the RPC"))
        tx = self.sign(ixs, blockhash[0], price, cu_limit=cu_limit, signers=signers)
        flight = _Flight(bytes(tx), tx.signatures[0], blockhash[1], price, backoff=_backoff(config))
        if config.dry_run:
            return self._done(what, await self._simulate(tx, flight, what, deadline))
        sending = loop.time()
        sent = await self._see_through(flight, what, deadline)
        if sent.ok and self.on_landing is not None:
            self.on_landing(loop.time() - sending)
        return self._done(what, sent)

    async def _rate_limit(self) -> None:
        """At most max_tx_per_s new transactions: a strategy or plan gone wrong can't flood the
        RPC (and get us rate-limited just when cancels matter)."""
        loop = asyncio.get_running_loop()
        wait = self._next_send - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._next_send = max(loop.time(), self._next_send) + 1 / self.config.max_tx_per_s

    # -- the send loop -------------------------------------------------------------------
    async def _see_through(self, flight: _Flight, what: str, deadline: float) -> Sent:
        config, loop = self.config, asyncio.get_running_loop()
        next_resend = 0.0
        while loop.time() < deadline:
            faulted = False
            if not flight.accepted and flight.refused is None:
                try:
                    refused = await self._first_send(flight)
                except Exception as exc:  # noqa: BLE001 - every transport fault ends here
                    faulted = True
                    flight.maybe_out |= self._note(what, "sendTransaction", exc, flight).delivered
                else:
                    if refused is not None:
                        if not flight.maybe_out:
                            return refused  # a definite answer and nothing else went out
                        # An earlier send may still land: wait for it, or for expiry, before saying failed.
                        flight.refused = refused
                    next_resend = loop.time() + config.resend_interval
            elif flight.accepted and loop.time() >= next_resend:
                next_resend = loop.time() + config.resend_interval
                try:  # a rebroadcast: the node already accepted it once, so no preflight
                    await self._call(self.connection.send_raw_transaction(flight.raw, TxOpts(skip_preflight=True)))
                except Exception as exc:  # noqa: BLE001
                    faulted = True
                    self._note(what, "sendTransaction (re-send)", exc, flight)
            try:
                # Height before status: if the height is past the blockhash's last valid height and
                # the status read after it shows nothing, the transaction can never land.
                height = (await self._call(self.connection.get_block_height(Confirmed))).value
                status = (await self._call(self.connection.get_signature_statuses([flight.signature]))).value[0]
            except Exception as exc:  # noqa: BLE001
                faulted = True
                self._note(what, "status poll", exc, flight)
            else:
                if status is not None and status.confirmation_status != TransactionConfirmationStatus.Processed:
                    return await self._landed(flight, status, what)
                if height > flight.last_valid:
                    if flight.refused is not None:
                        return flight.refused
                    return Sent(flight.signature, None, Status.EXPIRED, cu_price=flight.cu_price,
                                detail=f"blockhash expired at height {flight.last_valid}")
            if faulted:
                await asyncio.sleep(min(flight.backoff.failed(), max(0.0, deadline - loop.time())))
            else:
                flight.backoff.reset()
                await asyncio.sleep(config.poll_interval)
        out = flight.accepted or flight.maybe_out
        return Sent(flight.signature, None, Status.UNKNOWN if out else Status.UNSENT, cu_price=flight.cu_price,
                    detail=f"RPC unreachable for {config.confirm_timeout:g}s")

    async def _first_send(self, flight: _Flight) -> Optional[Sent]:
        """Send with preflight. None when a node took it (now or before); a Sent when refused."""
        try:
            opts = TxOpts(skip_preflight=False, preflight_commitment=Confirmed)
            await self._call(self.connection.send_raw_transaction(flight.raw, opts))
        except RPCException as exc:
            message = exc.args[0] if exc.args else None
            if isinstance(message, (NodeUnhealthyMessage, InternalErrorMessage)):
                raise  # the node's trouble, not the transaction's: a fault, retried
            if isinstance(message, SendTransactionPreflightFailureMessage):
                result = message.data
                if result.err == TransactionErrorFieldless.AlreadyProcessed:
                    flight.accepted = True  # an earlier send landed; the status poll reports it
                    return None
                if result.err == TransactionErrorFieldless.BlockhashNotFound:
                    return None  # expired (the height check says so) or the node lags: try again
                return Sent(flight.signature, None, Status.FAILED, logs=tuple(result.logs or ()),
                            units=result.units_consumed, cu_price=flight.cu_price, detail="refused by preflight",
                            **_failure(result.err))
            return Sent(flight.signature, None, Status.FAILED, cu_price=flight.cu_price,
                        error=getattr(message, "message", None) or str(message)[:160], detail="refused by the RPC")
        flight.accepted = True
        return None

    async def _landed(self, flight: _Flight, status, what: str) -> Sent:
        if status.err is None:
            return Sent(flight.signature, status.slot, Status.CONFIRMED, cu_price=flight.cu_price)
        logs, units = await self._transaction_logs(flight.signature, what)
        return Sent(flight.signature, status.slot, Status.FAILED, logs=logs, units=units, cu_price=flight.cu_price,
                    detail="landed with an error", **_failure(status.err))

    async def _transaction_logs(self, signature: Signature, what: str) -> tuple[tuple[str, ...], Optional[int]]:
        """Best effort: a landed failure's logs help a human, but the failure stands without them."""
        try:
            tx = (await self._call(self.connection.get_transaction(
                signature, "json", Confirmed, max_supported_transaction_version=0))).value
        except Exception as exc:  # noqa: BLE001
            log.warning("%s: getTransaction for logs: %s", what, _fault(exc).text)
            return (), None
        meta = tx.transaction.meta if tx is not None else None
        if meta is None:
            return (), None
        return tuple(meta.log_messages or ()), meta.compute_units_consumed

    # -- dry run -------------------------------------------------------------------------
    async def _simulate(self, tx: VersionedTransaction, flight: _Flight, what: str, deadline: float) -> Sent:
        async def simulate():
            answer = await self.connection.simulate_transaction(tx, sig_verify=False, commitment=Confirmed)
            # An RPC error comes back as an error object, not a result: no .value, so a fault, retried.
            return answer.context.slot, answer.value

        answer = await self._retrying(what, "simulateTransaction", simulate, deadline)
        if answer is None:
            return Sent(flight.signature, None, Status.UNSENT, cu_price=flight.cu_price, detail="simulation unavailable")
        slot, value = answer
        failure = _failure(value.err) if value.err is not None else {}
        return Sent(flight.signature, slot, Status.DRY_RUN, logs=tuple(value.logs or ()),
                    units=value.units_consumed, cu_price=flight.cu_price, detail="simulated, not sent", **failure)

    # -- priority fee --------------------------------------------------------------------
    async def _priority_fee(self, ixs: Sequence[Instruction], what: str) -> int:
        config = self.config
        if config.priority_fee != "auto":
            return config.priority_fee
        # Fees compete per writable account; the payer only contends with itself.
        keys = list(dict.fromkeys(str(m.pubkey) for ix in ixs for m in ix.accounts
                                  if m.is_writable and m.pubkey != self.payer.pubkey()))[:MAX_FEE_ACCOUNTS]
        backoff = _backoff(config)
        for attempt in range(3):
            try:
                fees = await self._call(self._recent_fees(keys))
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: getRecentPrioritizationFees: %s (attempt %d)", what, _fault(exc).text, attempt + 1)
                await asyncio.sleep(backoff.failed())
                continue
            self.last_fee = min(config.fee_cap, percentile(fees, config.fee_percentile))
            return self.last_fee
        log.warning("%s: no recent priority fees; paying the last known %d µlamports/CU", what, self.last_fee)
        return self.last_fee

    async def _recent_fees(self, keys: list[str]) -> list[int]:
        # solana-py has no getRecentPrioritizationFees: ask over the client's own HTTP session.
        provider = self.connection._provider  # noqa: SLF001
        body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "getRecentPrioritizationFees", "params": [keys]})
        response = await provider.session.post(provider.endpoint_uri, content=body,
                                               headers={"Content-Type": "application/json"})
        response.raise_for_status()
        try:
            answer = orjson.loads(response.content)
            if "error" in answer:
                raise _Fault(f"RPC error: {str(answer['error'].get('message'))[:120]}")
            return [int(entry["prioritizationFee"]) for entry in answer["result"]]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise _Fault("malformed answer") from None

    # -- plumbing ------------------------------------------------------------------------
    async def _latest_blockhash(self) -> tuple[Hash, int]:
        value = (await self.connection.get_latest_blockhash(Confirmed)).value
        return value.blockhash, value.last_valid_block_height

    async def _call(self, awaitable):
        try:
            return await asyncio.wait_for(awaitable, self.config.request_timeout)
        except BaseException as exc:
            # solders panics on some malformed answers (an error object whose data has the wrong
            # shape); its PanicException is a BaseException, which no `except Exception` here catches.
            if is_parser_panic(exc):
                raise _Fault("malformed answer (the response parser panicked)") from None
            raise

    async def _retrying(self, what: str, name: str, fn, deadline: float):
        """fn() until it answers or the deadline passes (then None), backing off between faults."""
        loop = asyncio.get_running_loop()
        backoff = _backoff(self.config)
        while loop.time() < deadline:
            try:
                return await self._call(fn())
            except Exception as exc:  # noqa: BLE001
                wait = backoff.failed()
                log.warning("%s: %s: %s (attempt %d)", what, name, _fault(exc).text, backoff.failures)
                await asyncio.sleep(min(wait, max(0.0, deadline - loop.time())))
        return None

    def _note(self, what: str, name: str, exc: BaseException, flight: _Flight) -> _Fault:
        fault = _fault(exc)
        log.warning("%s: %s: %s (signature %s)", what, name, fault.text, flight.signature)
        return fault

    def _done(self, what: str, sent: Sent) -> Sent:
        level = logging.INFO if sent.status in (Status.CONFIRMED, Status.DRY_RUN) else logging.WARNING
        log.log(level, "%s: %s (signature %s, slot %s)", what, sent.describe(), sent.signature, sent.slot)
        return sent
