"""LiteSVM plus what a validator keeps and LiteSVM's Python API does not expose.

LiteSVM executes transactions but cannot list accounts, has no slot clock, keeps one
blockhash at a time and forgets failed transactions' slots. The JSON-RPC server needs all
of that, so every write goes through Chain, which keeps:
- an account index by owner, for getProgramAccounts and program subscriptions;
- a signature history (slot, error, logs), per signature and per address;
- recent blockhashes with their last valid block height (150 blocks, like a validator);
- listeners told about every changed account and every new slot.

Block height equals slot here: there are no skipped slots.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional, Union

from solders.account import Account
from solders.clock import Clock
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID, TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata
from solders.transaction_status import TransactionErrorInstructionError

BLOCKHASH_LIFETIME = 150  # blocks a blockhash stays valid on Solana
LAMPORTS_PER_SIGNATURE = 5_000
HISTORY = 100_000  # landed transactions kept for getTransaction and friends
FAUCET_LAMPORTS = 10**9 * 10**9  # a billion SOL for requestAirdrop

AnyTransaction = Union[Transaction, VersionedTransaction]


class BlockhashNotFound(Exception):
    """The transaction's blockhash is unknown or expired: a validator drops it."""


@dataclass(frozen=True, slots=True)
class Landed:
    """A transaction that made it into a block, successfully or not."""

    signature: Signature
    slot: int
    block_time: int
    tx: AnyTransaction
    err: object  # a solders TransactionError, or None
    logs: list[str]
    compute_units: int
    fee: int
    cu_price: int  # micro-lamports per compute unit, from a SetComputeUnitPrice instruction
    pre_balances: list[int]
    post_balances: list[int]


class Chain:
    """One ledger, one clock. Method names follow LiteSVM so bootstrap code runs on either."""

    def __init__(self, svm: Optional[LiteSVM] = None, start_ts: Optional[int] = None):
        self.svm = (svm or LiteSVM()).with_blockhash_check(False)  # we check expiry ourselves
        self._accounts: dict[Pubkey, Account] = {}
        self._by_owner: dict[Pubkey, set[Pubkey]] = {}
        self._landed: OrderedDict[Signature, Landed] = OrderedDict()
        self._by_address: dict[Pubkey, list[Signature]] = {}
        self._blockhashes: OrderedDict[Hash, int] = OrderedDict()
        self.account_listeners: list[Callable[[Pubkey, Account, int], None]] = []
        self.slot_listeners: list[Callable[[int], None]] = []
        self.landed_listeners: list[Callable[[Landed], None]] = []
        clock = self.svm.get_clock()
        ts = int(time.time()) if start_ts is None else start_ts
        self._set_clock(max(clock.slot, 1), ts)
        self._blockhashes[self.svm.latest_blockhash()] = self.slot + BLOCKHASH_LIFETIME
        self._faucet = Keypair()
        self.svm.set_account(self._faucet.pubkey(), Account(FAUCET_LAMPORTS, b"", SYSTEM_PROGRAM_ID, False, 0))

    # -- clock ---------------------------------------------------------------------------
    @property
    def slot(self) -> int:
        return self.svm.get_clock().slot

    def get_clock(self) -> Clock:
        return self.svm.get_clock()

    @property
    def unix_timestamp(self) -> int:
        return self.svm.get_clock().unix_timestamp

    def advance(self, unix_timestamp: Optional[int] = None) -> int:
        """Move to the next slot with a fresh blockhash; returns the new slot."""
        ts = self.unix_timestamp if unix_timestamp is None else max(unix_timestamp, self.unix_timestamp)
        slot = self.slot + 1
        self._set_clock(slot, ts)
        self.svm.expire_blockhash()
        self._blockhashes[self.svm.latest_blockhash()] = slot + BLOCKHASH_LIFETIME
        while self._blockhashes and next(iter(self._blockhashes.values())) < slot:
            self._blockhashes.popitem(last=False)
        for listener in self.slot_listeners:
            listener(slot)
        return slot

    def _set_clock(self, slot: int, ts: int) -> None:
        old = self.svm.get_clock()
        self.svm.set_clock(Clock(slot, old.epoch_start_timestamp, old.epoch, old.leader_schedule_epoch, ts))

    # -- blockhashes ---------------------------------------------------------------------
    def latest_blockhash(self) -> Hash:
        return self.svm.latest_blockhash()

    def last_valid_block_height(self, blockhash: Hash) -> Optional[int]:
        height = self._blockhashes.get(blockhash)
        return height if height is not None and height >= self.slot else None

    # -- accounts ------------------------------------------------------------------------
    def get_account(self, pubkey: Pubkey) -> Optional[Account]:
        return self.svm.get_account(pubkey)

    def get_balance(self, pubkey: Pubkey) -> int:
        account = self.svm.get_account(pubkey)
        return account.lamports if account is not None else 0

    def set_account(self, pubkey: Pubkey, account: Account) -> None:
        self.svm.set_account(pubkey, account)
        self._record(pubkey, account)

    def add_program(self, program_id: Pubkey, program: bytes) -> None:
        self.svm.add_program(program_id, program)
        self._refresh([program_id])

    def program_accounts(self, owner: Pubkey) -> list[tuple[Pubkey, Account]]:
        return [(key, self._accounts[key]) for key in self._by_owner.get(owner, ())]

    def minimum_balance_for_rent_exemption(self, data_len: int) -> int:
        return self.svm.minimum_balance_for_rent_exemption(data_len)

    def _record(self, pubkey: Pubkey, account: Optional[Account]) -> None:
        old = self._accounts.get(pubkey)
        if old == account:
            return
        if old is not None:
            self._by_owner[old.owner].discard(pubkey)
        if account is None or account.lamports == 0:  # closed accounts vanish, as on chain
            self._accounts.pop(pubkey, None)
            account = Account(0, b"", old.owner if old else Pubkey.default(), False, 0)
        else:
            self._accounts[pubkey] = account
            self._by_owner.setdefault(account.owner, set()).add(pubkey)
        for listener in self.account_listeners:
            listener(pubkey, account, self.slot)

    def _refresh(self, keys) -> None:
        for key in keys:
            self._record(key, self.svm.get_account(key))

    # -- transactions --------------------------------------------------------------------
    def airdrop(self, pubkey: Pubkey, lamports: int) -> AnyTransaction:
        """A real system transfer from the faucet, so it has a signature clients can confirm."""
        ix = transfer(TransferParams(from_pubkey=self._faucet.pubkey(), to_pubkey=pubkey, lamports=lamports))
        message = MessageV0.try_compile(self._faucet.pubkey(), [ix], [], self.latest_blockhash())
        tx = VersionedTransaction(message, [self._faucet])
        result = self.send_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            raise ValueError(f"airdrop failed: {result.err()}")
        return tx

    def simulate_transaction(self, tx: AnyTransaction):
        return self.svm.simulate_transaction(tx)

    def send_transaction(self, tx: AnyTransaction) -> Union[TransactionMetadata, FailedTransactionMetadata]:
        """Execute now. A transaction with an unknown or expired blockhash raises BlockhashNotFound."""
        if self.last_valid_block_height(tx.message.recent_blockhash) is None:
            raise BlockhashNotFound(str(tx.message.recent_blockhash))
        pre = [self.get_balance(k) for k in tx.message.account_keys]
        result = self.svm.send_transaction(tx)
        failed = isinstance(result, FailedTransactionMetadata)
        err = result.err() if failed else None
        if err is None or isinstance(err, TransactionErrorInstructionError):
            # Failed instructions still land (and pay the fee); other errors never reach a block.
            meta = result.meta() if failed else result
            self._land(tx, err, meta, pre)
        return result

    def _land(self, tx: AnyTransaction, err, meta: TransactionMetadata, pre_balances: list[int]) -> None:
        keys = list(tx.message.account_keys)
        self._refresh(keys)
        landed = Landed(
            signature=tx.signatures[0],
            slot=self.slot,
            block_time=self.unix_timestamp,
            tx=tx,
            err=err,
            logs=list(meta.logs()),
            compute_units=meta.compute_units_consumed(),
            fee=LAMPORTS_PER_SIGNATURE * len(tx.signatures),
            cu_price=compute_unit_price(tx),
            pre_balances=pre_balances,
            post_balances=[self.get_balance(k) for k in keys],
        )
        self._landed[landed.signature] = landed
        for key in keys:
            self._by_address.setdefault(key, []).append(landed.signature)
        while len(self._landed) > HISTORY:
            self._landed.popitem(last=False)
        for listener in self.landed_listeners:
            listener(landed)

    def landed(self, signature: Signature) -> Optional[Landed]:
        return self._landed.get(signature)

    def signatures_for(self, address: Pubkey) -> list[Landed]:
        """Newest first, as getSignaturesForAddress answers."""
        sigs = self._by_address.get(address, [])
        return [self._landed[s] for s in reversed(sigs) if s in self._landed]

    def recent_landed(self) -> list[Landed]:
        return list(self._landed.values())


_COMPUTE_BUDGET = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
_SET_CU_PRICE = 3


def compute_unit_price(tx: AnyTransaction) -> int:
    message = tx.message
    keys = message.account_keys
    for ix in message.instructions:
        data = bytes(ix.data)
        if keys[ix.program_id_index] == _COMPUTE_BUDGET and data[:1] == bytes([_SET_CU_PRICE]) and len(data) >= 9:
            return int.from_bytes(data[1:9], "little")
    return 0
