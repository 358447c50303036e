"""The localnet JSON-RPC server, driven by solana-py's own clients, on LiteSVM's built-in programs.

No Drift binary is needed: these run everywhere, CI included.
"""
from __future__ import annotations

import asyncio

import httpx
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.types import MemcmpOpts, TokenAccountOpts, TxOpts
from solana.rpc.websocket_api import connect
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc.responses import (
    AccountNotification,
    ProgramNotification,
    SignatureNotification,
    SlotNotification,
)
from solders.system_program import CreateAccountParams, TransferParams, create_account, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorInstructionError
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    InitializeAccountParams,
    InitializeMintParams,
    MintToParams,
    TransferCheckedParams,
    initialize_account,
    initialize_mint,
    mint_to,
    transfer_checked,
)

from keeper.localnet.chain import BLOCKHASH_LIFETIME, Chain
from keeper.localnet.server import listening

SOL = 1_000_000_000
MINT_LEN, TOKEN_ACCOUNT_LEN = 82, 165


@pytest.fixture
async def node():
    chain = Chain()
    async with listening(chain) as url:
        async with AsyncClient(url, commitment=Confirmed) as client:
            yield chain, url, client


async def _funded(client: AsyncClient, lamports: int = 10 * SOL) -> Keypair:
    payer = Keypair()
    sig = (await client.request_airdrop(payer.pubkey(), lamports)).value
    await client.confirm_transaction(sig, Confirmed)
    return payer


def _signed(payer: Keypair, ixs, blockhash, signers=()) -> VersionedTransaction:
    return VersionedTransaction(MessageV0.try_compile(payer.pubkey(), ixs, [], blockhash), [payer, *signers])


async def _transfer_tx(client: AsyncClient, payer: Keypair, to, lamports: int = SOL) -> VersionedTransaction:
    """A signed transfer on the latest blockhash, not sent."""
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    return _signed(payer, [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))], blockhash)


async def _send(client: AsyncClient, payer: Keypair, ixs, signers=(), opts: TxOpts | None = None):
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = _signed(payer, ixs, blockhash, signers)
    sig = (await client.send_transaction(tx, opts=opts or TxOpts(preflight_commitment=Confirmed))).value
    return sig


async def test_airdrop_balance_and_transfer(node):
    chain, _, client = node
    payer = await _funded(client)
    assert (await client.get_balance(payer.pubkey())).value == 10 * SOL
    to = Keypair().pubkey()
    sig = await _send(client, payer, [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=SOL))])
    await client.confirm_transaction(sig, Confirmed)
    assert (await client.get_balance(to)).value == SOL
    assert (await client.get_balance(payer.pubkey())).value == 9 * SOL - 5_000  # one signature's fee
    status = (await client.get_signature_statuses([sig])).value[0]
    assert status.err is None and status.slot == chain.slot


async def _token_setup(client: AsyncClient):
    """A mint and two token accounts, built with the real SPL Token program."""
    payer = await _funded(client)
    mint, alice, bob = Keypair(), Keypair(), Keypair()
    rent_mint = (await client.get_minimum_balance_for_rent_exemption(MINT_LEN)).value
    rent_account = (await client.get_minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_LEN)).value
    ixs = [
        create_account(CreateAccountParams(from_pubkey=payer.pubkey(), to_pubkey=mint.pubkey(), lamports=rent_mint,
                                           space=MINT_LEN, owner=TOKEN_PROGRAM_ID)),
        initialize_mint(InitializeMintParams(decimals=6, program_id=TOKEN_PROGRAM_ID, mint=mint.pubkey(),
                                             mint_authority=payer.pubkey())),
    ]
    for account in (alice, bob):
        ixs += [
            create_account(CreateAccountParams(from_pubkey=payer.pubkey(), to_pubkey=account.pubkey(),
                                               lamports=rent_account, space=TOKEN_ACCOUNT_LEN, owner=TOKEN_PROGRAM_ID)),
            initialize_account(InitializeAccountParams(program_id=TOKEN_PROGRAM_ID, account=account.pubkey(),
                                                       mint=mint.pubkey(), owner=payer.pubkey())),
        ]
    ixs.append(mint_to(MintToParams(program_id=TOKEN_PROGRAM_ID, mint=mint.pubkey(), dest=alice.pubkey(),
                                    mint_authority=payer.pubkey(), amount=5_000_000)))
    sig = await _send(client, payer, ixs, [mint, alice, bob])
    await client.confirm_transaction(sig, Confirmed)
    return payer, mint.pubkey(), alice.pubkey(), bob.pubkey()


async def test_spl_token_mint_transfer_and_program_accounts(node):
    _, _, client = node
    payer, mint, alice, bob = await _token_setup(client)
    sig = await _send(client, payer, [transfer_checked(TransferCheckedParams(
        program_id=TOKEN_PROGRAM_ID, source=alice, mint=mint, dest=bob, owner=payer.pubkey(), amount=1_250_000, decimals=6))])
    await client.confirm_transaction(sig, Confirmed)
    assert (await client.get_token_account_balance(alice)).value.amount == "3750000"
    bob_balance = (await client.get_token_account_balance(bob)).value
    assert (bob_balance.amount, bob_balance.decimals, bob_balance.ui_amount_string) == ("1250000", 6, "1.25")

    # getProgramAccounts from the server's index: dataSize, then memcmp on the mint (offset 0).
    token_accounts = (await client.get_program_accounts(TOKEN_PROGRAM_ID, encoding="base64", filters=[TOKEN_ACCOUNT_LEN])).value
    assert {a.pubkey for a in token_accounts} == {alice, bob}
    of_mint = (await client.get_program_accounts(
        TOKEN_PROGRAM_ID, encoding="base64", filters=[TOKEN_ACCOUNT_LEN, MemcmpOpts(offset=0, bytes=str(mint))])).value
    assert {a.pubkey for a in of_mint} == {alice, bob}
    none = (await client.get_program_accounts(
        TOKEN_PROGRAM_ID, encoding="base64", filters=[MemcmpOpts(offset=0, bytes=str(Keypair().pubkey()))])).value
    assert none == []
    mints = (await client.get_program_accounts(TOKEN_PROGRAM_ID, encoding="base64", filters=[MINT_LEN])).value
    assert [a.pubkey for a in mints] == [mint]

    by_owner = (await client.get_token_accounts_by_owner(payer.pubkey(), TokenAccountOpts(mint=mint))).value
    assert {a.pubkey for a in by_owner} == {alice, bob}
    accounts = (await client.get_multiple_accounts([alice, Keypair().pubkey()])).value
    assert accounts[0].owner == TOKEN_PROGRAM_ID and accounts[1] is None


async def test_signature_status_history_and_failed_transactions(node):
    chain, _, client = node
    payer = await _funded(client)
    ok = await _send(client, payer, [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=1))])
    # skip_preflight lets a failing transaction land, with its error, as on a validator.
    failed = await _send(client, payer, [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=100 * SOL))],
                         opts=TxOpts(skip_preflight=True))
    unknown = Keypair().sign_message(b"never sent")
    statuses = (await client.get_signature_statuses([ok, failed, unknown])).value
    assert statuses[0].err is None
    assert isinstance(statuses[1].err, TransactionErrorInstructionError) and statuses[1].err.index == 0
    assert statuses[2] is None

    tx = (await client.get_transaction(failed, max_supported_transaction_version=0)).value
    assert tx.slot == chain.slot
    assert any("insufficient lamports" in line for line in tx.transaction.meta.log_messages)
    assert tx.transaction.meta.fee == 5_000

    history = (await client.get_signatures_for_address(payer.pubkey())).value
    assert [h.signature for h in history][:2] == [failed, ok]  # newest first
    assert history[0].err is not None and history[1].err is None
    limited = (await client.get_signatures_for_address(payer.pubkey(), limit=1, before=failed)).value
    assert [h.signature for h in limited] == [ok]


async def test_preflight_failure_comes_back_in_the_standard_error_shape(node):
    _, _, client = node
    payer = await _funded(client)
    with pytest.raises(RPCException) as raised:
        await _send(client, payer, [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=100 * SOL))])
    failure = raised.value.args[0]
    assert failure.message.startswith("Transaction simulation failed: Error processing Instruction 0: custom program error: 0x1")
    assert isinstance(failure.data.err, TransactionErrorInstructionError)
    assert any("insufficient lamports" in line for line in failure.data.logs)


async def test_simulate_reports_logs_units_and_post_state(node):
    _, _, client = node
    payer = await _funded(client)
    to = Keypair().pubkey()
    tx = await _transfer_tx(client, payer, to)
    assert (await client.get_fee_for_message(tx.message)).value == 5_000  # one signature
    sim = (await client.simulate_transaction(tx, sig_verify=True)).value
    assert sim.err is None and sim.units_consumed == 150 and sim.logs[-1].endswith("success")
    assert (await client.get_balance(to)).value == 0  # simulation changes nothing


async def test_blockhashes_expire_after_150_blocks(node):
    chain, _, client = node
    payer = await _funded(client)
    old = (await client.get_latest_blockhash()).value
    assert old.last_valid_block_height == chain.slot + BLOCKHASH_LIFETIME
    for _ in range(BLOCKHASH_LIFETIME + 1):
        chain.advance()
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=1))
    stale = _signed(payer, [ix], old.blockhash)
    with pytest.raises(RPCException) as raised:
        await client.send_transaction(stale)
    assert "Blockhash not found" in raised.value.args[0].message
    # Without preflight a validator drops it silently: a signature that never lands.
    sig = (await client.send_transaction(stale, opts=TxOpts(skip_preflight=True))).value
    assert (await client.get_signature_statuses([sig])).value[0] is None
    unknown = _signed(payer, [ix], Hash.new_unique())
    with pytest.raises(RPCException):
        await client.send_transaction(unknown)


async def test_resending_a_landed_transaction_never_executes_it_twice(node):
    _, _, client = node
    payer = await _funded(client)
    to = Keypair().pubkey()
    tx = await _transfer_tx(client, payer, to)
    await client.send_transaction(tx)
    with pytest.raises(RPCException) as raised:
        await client.send_transaction(tx)
    assert "already been processed" in raised.value.args[0].message
    await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))
    assert (await client.get_balance(to)).value == SOL


async def test_json_rpc_error_shapes(node):
    _, url, _ = node
    async with httpx.AsyncClient() as http:
        async def post(body):
            reply = await http.post(url, content=body, headers={"content-type": "application/json"})
            assert reply.status_code == 200
            return reply.json()

        assert (await post(b'{"jsonrpc":"2.0","id":1,"method":"getNothing"}'))["error"] == {"code": -32601, "message": "Method not found"}
        assert (await post(b"{nope"))["error"]["code"] == -32700
        assert (await post(b"[]"))["error"]["code"] == -32600
        assert (await post(b'{"id":3,"method":"getSlot"}'))["error"]["code"] == -32600  # no jsonrpc field
        bad = await post(b'{"jsonrpc":"2.0","id":4,"method":"getAccountInfo","params":["not-a-key"]}')
        assert bad["id"] == 4 and bad["error"]["code"] == -32602 and "not-a-key" in bad["error"]["message"]
        batch = await post(b'[{"jsonrpc":"2.0","id":1,"method":"getSlot"},{"jsonrpc":"2.0","id":2,"method":"nope"}]')
        assert isinstance(batch[0]["result"], int) and batch[1]["error"]["code"] == -32601
    # solana-py turns an error answer into an exception instead of panicking on the shape.
    async with AsyncClient(url) as client:
        with pytest.raises(RPCException) as raised:
            await client.get_token_account_balance(Pubkey.default())
        assert "not a Token account" in str(raised.value)


async def test_websocket_subscriptions(node):
    chain, url, client = node
    payer = await _funded(client)
    watched = Keypair().pubkey()
    ws_url = url.replace("http", "ws").rsplit(":", 1)[0] + f":{int(url.rsplit(':', 1)[1]) + 1}"
    async with connect(ws_url) as ws:
        await ws.account_subscribe(watched, Confirmed, "base64")
        await ws.recv()
        await ws.program_subscribe(TOKEN_PROGRAM_ID, Confirmed, "base64", filters=[TOKEN_ACCOUNT_LEN])
        await ws.recv()
        await ws.slot_subscribe()
        await ws.recv()

        sig = await _send(client, payer, [transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=watched, lamports=SOL))])
        await ws.signature_subscribe(sig, Confirmed)
        messages = await _collect(ws, lambda seen: any(isinstance(m, SignatureNotification) for m in seen)
                                  and any(isinstance(m, AccountNotification) for m in seen))
        account = next(m for m in messages if isinstance(m, AccountNotification))
        assert account.result.value.lamports == SOL
        assert next(m for m in messages if isinstance(m, SignatureNotification)).result.value.err is None

        _, _, alice, _ = await _token_setup(client)
        messages = await _collect(ws, lambda seen: sum(isinstance(m, ProgramNotification) for m in seen) >= 2)
        keys = {m.result.value.pubkey for m in messages if isinstance(m, ProgramNotification)}
        assert alice in keys and all(len(m.result.value.account.data) == TOKEN_ACCOUNT_LEN
                                     for m in messages if isinstance(m, ProgramNotification))

        slot = chain.advance()
        messages = await _collect(ws, lambda seen: any(isinstance(m, SlotNotification) for m in seen))
        assert next(m for m in messages if isinstance(m, SlotNotification)).result.slot == slot


async def _collect(ws, done, timeout: float = 5.0) -> list:
    seen: list = []

    async def loop():
        while not done(seen):
            seen.extend(await ws.recv())

    await asyncio.wait_for(loop(), timeout)
    return seen
