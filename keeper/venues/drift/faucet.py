"""Drift's devnet token faucet: mint devnet USDC into the wallet before a deposit.

driftpy has no client for it, so the one instruction the keeper needs (token_faucet's
mint_to_user, which anyone may call) is built here. Only the shortfall is minted: a wallet
that already holds the amount gets nothing.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Optional

from solana.rpc.async_api import AsyncClient
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import create_idempotent_associated_token_account, get_associated_token_address

from keeper.errors import UserError
from keeper.venues.drift.sender import TxSender

# Not in the TS SDK's config nor in driftpy; Drift's keeper-bots-v2 (src/utils.ts) names it
# TOKEN_FAUCET_PROGRAM_ID, devnet only.
FAUCET_PROGRAM_ID = Pubkey.from_string("V4v1mQiAdLz4qwckEb45WqHYceYizoib39cDBHSWfaB")
_MINT_TO_USER = hashlib.sha256(b"global:mint_to_user").digest()[:8]  # anchor's instruction discriminator
_NOT_MINT_AUTHORITY = 6000  # the faucet's only error; the sender would give it Drift's name for 6000


def faucet_config(mint: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([b"faucet_config", bytes(mint)], FAUCET_PROGRAM_ID)[0]


def mint_authority(mint: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([b"mint_authority", bytes(mint)], FAUCET_PROGRAM_ID)[0]


def mint_to_user(mint: Pubkey, user_token_account: Pubkey, amount: int) -> Instruction:
    # The faucet's PDA signs the SPL mint inside the program, so the caller signs nothing here.
    accounts = [
        AccountMeta(faucet_config(mint), is_signer=False, is_writable=False),
        AccountMeta(mint, is_signer=False, is_writable=True),
        AccountMeta(user_token_account, is_signer=False, is_writable=True),
        AccountMeta(mint_authority(mint), is_signer=False, is_writable=False),
        AccountMeta(TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
    ]
    return Instruction(FAUCET_PROGRAM_ID, _MINT_TO_USER + amount.to_bytes(8, "little"), accounts)


async def token_balance(connection: AsyncClient, account: Pubkey) -> Optional[int]:
    """Base units held by a token account; None when the account does not exist."""
    if (await connection.get_account_info(account)).value is None:
        return None
    return int((await connection.get_token_account_balance(account)).value.amount)


def shortfall(have: Optional[int], amount: int) -> int:
    return max(0, amount - (have or 0))


def top_up_instructions(owner: Pubkey, mint: Pubkey, have: Optional[int], amount: int) -> list[Instruction]:
    """What brings `owner`'s associated token account up to `amount`; `have` is None when it is missing."""
    need = shortfall(have, amount)
    if not need:
        return []
    ixs = []
    if have is None:
        # Idempotent: an account created by someone else since we looked does not fail the mint.
        ixs.append(create_idempotent_associated_token_account(owner, owner, mint))
    ixs.append(mint_to_user(mint, get_associated_token_address(owner, mint), need))
    return ixs


async def top_up(sender: TxSender, mint: Pubkey, amount: int) -> int:
    """Mint what the sender's wallet lacks of `amount` (base units); returns how much was minted."""
    owner = sender.payer.pubkey()
    have = await token_balance(sender.connection, get_associated_token_address(owner, mint))
    need = shortfall(have, amount)
    if not need:
        return 0
    if (await sender.connection.get_account_info(faucet_config(mint))).value is None:
        raise UserError(f"Drift's token faucet ({FAUCET_PROGRAM_ID}) is not set up for mint {mint} on this network")
    ixs = top_up_instructions(owner, mint, have, amount)
    sent = await sender.send(ixs, f"faucet mint of {need} base units of {mint}")
    if not sent.ok:
        if sent.code == _NOT_MINT_AUTHORITY and sent.instruction == len(ixs) - 1:
            sent = dataclasses.replace(sent, error="InvalidMintAccountAuthority")
        raise UserError(f"minting from Drift's devnet token faucet failed: {sent.describe()}")
    return need
