"""Drift instructions for the localnet's own users (makers, takers, tests), and sending them.

Remaining accounts follow the program's loading order: oracles, spot markets, perp markets, users.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from driftpy import types as dt
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.sysvar import RENT
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address

from keeper.drift_idl import error_name, ix, name_bytes

if TYPE_CHECKING:
    from keeper.localnet.genesis import Exchange


class TxFailed(Exception):
    """A transaction failed; `error` is the Drift error name when the program raised one."""

    def __init__(self, error: str | None, detail: str, logs: list[str]):
        super().__init__(f"{error or detail}")
        self.error = error
        self.logs = logs


_tx_nonce = [0]


def send(svm, payer: Keypair, ixs: list[Instruction], signers: tuple[Keypair, ...] = ()):
    """Sign and execute now; raises TxFailed with the Drift error name on failure.

    Every transaction starts with a compute-unit limit: fills against several makers need more
    than the default 200k. Its value also varies by a counter so that two otherwise identical
    transactions in one blockhash (say, the same cancel twice) get different signatures.
    """
    _tx_nonce[0] = (_tx_nonce[0] + 1) % 100_000
    budget = set_compute_unit_limit(1_400_000 - _tx_nonce[0])
    message = MessageV0.try_compile(payer.pubkey(), [budget, *ixs], [], svm.latest_blockhash())
    keys = {payer.pubkey(): payer, **{s.pubkey(): s for s in signers}}
    tx = VersionedTransaction(message, list(keys.values()))
    result = svm.send_transaction(tx)
    if isinstance(result, FailedTransactionMetadata):
        err = result.err()
        logs = list(result.meta().logs())
        raise TxFailed(error_name(err), str(err), logs)
    return result


def remaining(ex: Exchange, writable_perps=(), writable_spots=(), users: list[Pubkey] = ()) -> list[AccountMeta]:
    """Remaining accounts in the order Drift loads them: oracles, spot markets, perp markets, users.

    We pass every market, which is always enough for margin checks; only the markets an
    instruction changes must be writable.
    """
    metas = [AccountMeta(o, False, False) for o in ex.oracles.values()]
    metas += [AccountMeta(m.pubkey, False, m.index in writable_spots) for m in ex.spots()]
    metas += [AccountMeta(m.pubkey, False, m.index in writable_perps) for m in ex.perps()]
    metas += [AccountMeta(u, False, True) for u in users]
    return metas


def init_user_ixs(ex: Exchange, authority: Pubkey, name: str = "Main Account") -> list[Instruction]:
    """initialize_user_stats + initialize_user (sub-account 0), paid by the authority."""
    common = {"state": ex.state, "authority": authority, "payer": authority, "rent": RENT,
              "system_program": SYSTEM_PROGRAM_ID}
    return [
        ix("initialize_user_stats", accounts={"user_stats": ex.user_stats(authority), **common}),
        ix("initialize_user", 0, name_bytes(name),
           accounts={"user": ex.user(authority), "user_stats": ex.user_stats(authority), **common}),
    ]


def deposit_ix(ex: Exchange, authority: Pubkey, amount: int, market: str = "USDC") -> Instruction:
    m = ex.markets[market]
    accounts = {"state": ex.state, "user": ex.user(authority), "user_stats": ex.user_stats(authority),
                "authority": authority, "spot_market_vault": m.vault,
                "user_token_account": get_associated_token_address(authority, m.mint), "token_program": TOKEN_PROGRAM_ID}
    return ix("deposit", m.index, amount, False, accounts=accounts, remaining=remaining(ex, writable_spots=(m.index,)))


def withdraw_ix(ex: Exchange, authority: Pubkey, amount: int, market: str = "USDC") -> Instruction:
    m = ex.markets[market]
    accounts = {"state": ex.state, "user": ex.user(authority), "user_stats": ex.user_stats(authority),
                "authority": authority, "spot_market_vault": m.vault, "drift_signer": ex.signer,
                "user_token_account": get_associated_token_address(authority, m.mint), "token_program": TOKEN_PROGRAM_ID}
    return ix("withdraw", m.index, amount, False, accounts=accounts, remaining=remaining(ex, writable_spots=(m.index,)))


def place_perp_order_ix(ex: Exchange, authority: Pubkey, order: dt.OrderParams) -> Instruction:
    accounts = {"state": ex.state, "user": ex.user(authority), "authority": authority}
    return ix("place_perp_order", order, accounts=accounts, remaining=remaining(ex))


def place_orders_ix(ex: Exchange, authority: Pubkey, orders: list[dt.OrderParams]) -> Instruction:
    """Several orders in one instruction (Drift's place_orders), checked for margin once."""
    accounts = {"state": ex.state, "user": ex.user(authority), "authority": authority}
    return ix("place_orders", orders, accounts=accounts, remaining=remaining(ex))


def cancel_orders_ix(ex: Exchange, authority: Pubkey, market_index: int | None = None) -> Instruction:
    """Cancel all the user's perp orders, or those of one perp market."""
    accounts = {"state": ex.state, "user": ex.user(authority), "authority": authority}
    market_type = dt.MarketType.Perp() if market_index is not None else None
    return ix("cancel_orders", market_type, market_index, None, accounts=accounts, remaining=remaining(ex))


def place_and_take_ix(ex: Exchange, authority: Pubkey, order: dt.OrderParams,
                      makers: list[tuple[Pubkey, Pubkey]] = ()) -> Instruction:
    """A taker order filled now against the given makers' resting orders and the AMM.

    `makers` are (user account, authority) pairs; each maker's User and UserStats go in.
    """
    accounts = {"state": ex.state, "user": ex.user(authority), "user_stats": ex.user_stats(authority),
                "authority": authority}
    users = [k for user, auth in makers for k in (user, ex.user_stats(auth))]
    return ix("place_and_take_perp_order", order, None, accounts=accounts,
              remaining=remaining(ex, writable_perps=(order.market_index,), users=users))



def settle_pnl_ix(ex: Exchange, authority: Pubkey, market_index: int) -> Instruction:
    """Move the user's unsettled PnL in a perp market into (or out of) its USDC deposit."""
    usdc = ex.markets["USDC"]
    accounts = {"state": ex.state, "authority": authority, "user": ex.user(authority), "spot_market_vault": usdc.vault}
    return ix("settle_pnl", market_index, accounts=accounts,
              remaining=remaining(ex, writable_perps=(market_index,), writable_spots=(usdc.index,)))
