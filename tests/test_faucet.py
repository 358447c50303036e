"""Drift's devnet token faucet: our instructions against the TS SDK's, the top-up against a real RPC.

The faucet program is not deployed on localnet, so the chain tests cover everything short of
the mint itself: the balance read, the shortfall, and the token account creation landing.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from driftpy.constants.config import configs
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import (
    InitializeMintParams,
    MintToParams,
    get_associated_token_address,
    initialize_mint,
    mint_to,
)

from keeper.errors import UserError
from keeper.localnet.chain import Chain
from keeper.localnet.server import listening
from keeper.venues.drift.faucet import (
    FAUCET_PROGRAM_ID,
    mint_to_user,
    shortfall,
    token_balance,
    top_up,
    top_up_instructions,
)
from keeper.venues.drift.sender import SendConfig, TxSender
from tests.conftest import ROOT

USDC = 10**6
DEVNET_USDC = configs["devnet"].usdc_mint_address
SDK = ROOT / "node_modules" / "@drift-labs" / "sdk"

# Builds the SDK's own instructions offline: TokenFaucet only needs a Connection object, and
# mintToUserIx, private in TypeScript, is callable from JavaScript.
_SDK_SCRIPT = """
const sdk = require.resolve('@drift-labs/sdk');
const dep = (name) => require(require.resolve(name, { paths: [sdk] }));
const { TokenFaucet, Wallet, BN } = require('@drift-labs/sdk');
const { Connection, Keypair, PublicKey } = dep('@solana/web3.js');
const { createAssociatedTokenAccountIdempotentInstruction } = dep('@solana/spl-token');
const cases = JSON.parse(process.argv[1]);
const plain = (ix) => ({
  program: ix.programId.toBase58(),
  keys: ix.keys.map((k) => [k.pubkey.toBase58(), k.isSigner, k.isWritable]),
  data: Buffer.from(ix.data).toString('hex'),
});
(async () => {
  const out = [];
  for (const c of cases) {
    const mint = new PublicKey(c.mint);
    const faucet = new TokenFaucet(new Connection('http://127.0.0.1:1'), new Wallet(Keypair.generate()),
                                   new PublicKey(c.program), mint);
    const owner = new PublicKey(c.owner), account = new PublicKey(c.account);
    out.push({
      mint: plain(await faucet.mintToUserIx(account, new BN(c.amount))),
      ata: plain(createAssociatedTokenAccountIdempotentInstruction(owner, account, owner, mint)),
    });
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def _plain(ix) -> dict:
    return {"program": str(ix.program_id), "keys": [[str(m.pubkey), m.is_signer, m.is_writable] for m in ix.accounts],
            "data": bytes(ix.data).hex()}


def test_instructions_match_the_sdk():
    if not SDK.exists() or shutil.which("node") is None:
        pytest.skip(f"needs node and the Drift TS SDK at {SDK} (npm ci)")
    owners = [Keypair().pubkey() for _ in range(3)]
    amounts = [1, 12_500_000, 2**64 - 1]  # one base unit, a typical deposit, the u64 maximum
    cases = [{"program": str(FAUCET_PROGRAM_ID), "mint": str(DEVNET_USDC), "owner": str(owner),
              "account": str(get_associated_token_address(owner, DEVNET_USDC)), "amount": str(amount)}
             for owner, amount in zip(owners, amounts)]
    run = subprocess.run(["node", "-e", _SDK_SCRIPT, json.dumps(cases)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    theirs = json.loads(run.stdout)
    for case, sdk, owner, amount in zip(cases, theirs, owners, amounts):
        ours = top_up_instructions(owner, DEVNET_USDC, None, amount)
        assert [_plain(ix) for ix in ours] == [sdk["ata"], sdk["mint"]], case
        assert _plain(mint_to_user(DEVNET_USDC, Pubkey.from_string(case["account"]), amount)) == sdk["mint"]


# -- against a real RPC -----------------------------------------------------------------------
@pytest.fixture
async def rpc():
    async with listening(Chain()) as url:
        async with AsyncClient(url, commitment=Confirmed) as client:
            yield client


async def _funded(client: AsyncClient) -> Keypair:
    wallet = Keypair()
    await client.confirm_transaction((await client.request_airdrop(wallet.pubkey(), 10**10)).value, Confirmed)
    return wallet


def _sender(client: AsyncClient, wallet: Keypair) -> TxSender:
    return TxSender(client, wallet, SendConfig(priority_fee=0, poll_interval=0.05, confirm_timeout=20))


async def _new_mint(sender: TxSender) -> Pubkey:
    """A 6-decimal mint whose authority is the sender's wallet, so tests can fund accounts."""
    mint, payer = Keypair(), sender.payer.pubkey()
    rent = (await sender.connection.get_minimum_balance_for_rent_exemption(82)).value
    sent = await sender.send([
        create_account(CreateAccountParams(from_pubkey=payer, to_pubkey=mint.pubkey(), lamports=rent, space=82,
                                           owner=TOKEN_PROGRAM_ID)),
        initialize_mint(InitializeMintParams(decimals=6, program_id=TOKEN_PROGRAM_ID, mint=mint.pubkey(),
                                             mint_authority=payer)),
    ], "create mint", signers=[mint])
    assert sent.ok, sent.describe()
    return mint.pubkey()


async def _mint(sender: TxSender, mint: Pubkey, account: Pubkey, amount: int) -> None:
    sent = await sender.send([mint_to(MintToParams(program_id=TOKEN_PROGRAM_ID, mint=mint, dest=account,
                                                   mint_authority=sender.payer.pubkey(), amount=amount))], "mint")
    assert sent.ok, sent.describe()


async def test_a_missing_token_account_is_created_and_only_the_shortfall_is_asked_for(rpc):
    sender = _sender(rpc, await _funded(rpc))
    owner, mint = sender.payer.pubkey(), await _new_mint(sender)
    ata = get_associated_token_address(owner, mint)
    assert await token_balance(rpc, ata) is None
    assert shortfall(None, 5 * USDC) == 5 * USDC

    create, mint_ix = top_up_instructions(owner, mint, None, 5 * USDC)
    assert create.program_id == ASSOCIATED_TOKEN_PROGRAM_ID
    assert mint_ix.program_id == FAUCET_PROGRAM_ID and mint_ix.accounts[2].pubkey == ata
    assert int.from_bytes(bytes(mint_ix.data)[8:], "little") == 5 * USDC
    sent = await sender.send([create], "create token account")
    assert sent.ok, sent.describe()
    assert await token_balance(rpc, ata) == 0
    again = await sender.send([create], "create token account again")  # idempotent: a race does not fail
    assert again.ok, again.describe()

    await _mint(sender, mint, ata, 2 * USDC)
    have = await token_balance(rpc, ata)
    assert have == 2 * USDC and shortfall(have, 5 * USDC) == 3 * USDC
    [only_mint] = top_up_instructions(owner, mint, have, 5 * USDC)
    assert only_mint == mint_to_user(mint, ata, 3 * USDC)


async def test_no_mint_when_the_wallet_already_holds_enough(rpc):
    sender = _sender(rpc, await _funded(rpc))
    owner, mint = sender.payer.pubkey(), await _new_mint(sender)
    ata = get_associated_token_address(owner, mint)
    assert (await sender.send(top_up_instructions(owner, mint, None, 1)[:1], "create token account")).ok
    await _mint(sender, mint, ata, 5 * USDC)
    history = len((await rpc.get_signatures_for_address(owner)).value)

    assert top_up_instructions(owner, mint, 5 * USDC, 5 * USDC) == []
    assert await top_up(sender, mint, 5 * USDC) == 0
    assert await top_up(sender, mint, 1 * USDC) == 0
    assert await token_balance(rpc, ata) == 5 * USDC
    assert len((await rpc.get_signatures_for_address(owner)).value) == history  # nothing was sent


async def test_a_shortfall_without_the_faucet_is_one_clear_error(rpc):
    sender = _sender(rpc, await _funded(rpc))
    mint = await _new_mint(sender)
    with pytest.raises(UserError, match=f"faucet .* not set up for mint {mint}"):
        await top_up(sender, mint, 5 * USDC)
    assert await token_balance(rpc, get_associated_token_address(sender.payer.pubkey(), mint)) is None
