"""TxSender against the localnet chain, through a proxy that injects RPC faults.

SOL transfers on LiteSVM's built-in programs: no Drift binary needed, so CI always runs these.
The last tests use the real Drift program and skip without it.
"""
from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import replace

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.types import TxOpts
from solders import compute_budget
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from keeper.localnet.chain import BLOCKHASH_LIFETIME, LAMPORTS_PER_SIGNATURE, Chain
from keeper.localnet.server import listening
from keeper.venues.drift.sender import (
    PACKET_LIMIT,
    SendConfig,
    Status,
    TxSender,
    TxTooLarge,
    percentile,
    split_to_fit,
    tx_size,
)
from tests.faulty_rpc import Fault, FaultyRpc

SOL = 1_000_000_000
# Fast loops for tests; correctness never depends on these being short.
FAST = SendConfig(priority_fee=0, poll_interval=0.01, resend_interval=0.05, request_timeout=0.5,
                  backoff_base=0.01, backoff_max=0.05, confirm_timeout=30.0)
SENDER_METHODS = ("getLatestBlockhash", "sendTransaction", "getBlockHeight", "getSignatureStatuses")


@pytest.fixture
async def net():
    chain = Chain()
    async with listening(chain) as url, FaultyRpc(url) as proxy:
        async with AsyncClient(proxy.url, commitment=Confirmed) as client:
            payer = Keypair()
            chain.airdrop(payer.pubkey(), 10 * SOL)
            yield chain, proxy, client, payer


def _pay(payer: Keypair, to: Pubkey, lamports: int = SOL):
    return transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))


async def _landed_tx(client: AsyncClient, signature) -> VersionedTransaction:
    answer = (await client.get_transaction(signature, "base64", max_supported_transaction_version=0)).value
    return answer.transaction.transaction


def _budget(tx: VersionedTransaction) -> dict[str, int]:
    """The compute-budget settings in a transaction: {"limit": .., "price": ..}."""
    keys, out = tx.message.account_keys, {}
    for ix in tx.message.instructions:
        data = bytes(ix.data)
        if keys[ix.program_id_index] == compute_budget.ID:
            if data[0] == 2:
                out["limit"] = int.from_bytes(data[1:5], "little")
            elif data[0] == 3:
                out["price"] = int.from_bytes(data[1:9], "little")
    return out


async def test_confirmed_once_with_budget_first_and_the_callers_list_untouched(net):
    chain, proxy, client, payer = net
    to = Keypair().pubkey()
    ixs = [_pay(payer, to)]
    before = list(ixs)
    sent = await TxSender(client, payer, replace(FAST, priority_fee=1_234)).send(ixs, "pay")
    assert sent.status == Status.CONFIRMED and sent.ok and sent.slot == chain.slot
    assert ixs == before and len(ixs) == 1  # driftpy's send_ixs would have prepended to it
    assert chain.get_balance(to) == SOL
    assert chain.get_balance(payer.pubkey()) == 9 * SOL - LAMPORTS_PER_SIGNATURE
    tx = await _landed_tx(client, sent.signature)
    assert _budget(tx) == {"limit": FAST.cu_limit, "price": 1_234}
    assert tx.message.account_keys[tx.message.instructions[2].program_id_index] == ixs[0].program_id


@pytest.mark.parametrize("fault", [Fault.TIMEOUT, Fault.RESET, Fault.HTTP_429, Fault.HTTP_503, Fault.HTTP_500,
                                   Fault.MALFORMED])
@pytest.mark.fault("rpc")
async def test_transport_faults_are_retried_and_the_transfer_happens_once(net, fault, caplog):
    chain, proxy, client, payer = net
    for method in SENDER_METHODS:  # every call the sender makes fails once, then works
        proxy.plan(method, [fault])
    to = Keypair().pubkey()
    with caplog.at_level(logging.WARNING, logger="keeper.venues.drift.sender"):
        sent = await TxSender(client, payer, FAST).send([_pay(payer, to)], "pay")
    assert sent.status == Status.CONFIRMED
    assert chain.get_balance(to) == SOL
    assert chain.get_balance(payer.pubkey()) == 9 * SOL - LAMPORTS_PER_SIGNATURE
    assert all(proxy.count(m) >= 2 for m in ("getLatestBlockhash", "getSignatureStatuses"))
    faults = [r for r in caplog.records if "attempt" in r.getMessage() or "signature" in r.getMessage()]
    assert faults and all("\n" not in r.getMessage() and r.exc_info is None for r in faults)
    assert str(payer) not in caplog.text  # str(Keypair) is its secret


@pytest.mark.fault("rpc")
async def test_a_lost_send_reply_is_confirmed_by_polling_and_executes_once(net):
    chain, proxy, client, payer = net
    proxy.plan("sendTransaction", [Fault.LOSE])  # forwarded and executed; the answer never comes back
    to = Keypair().pubkey()
    sent = await TxSender(client, payer, FAST).send([_pay(payer, to)], "pay")
    assert sent.status == Status.CONFIRMED
    assert chain.landed(sent.signature) is not None
    assert chain.get_balance(to) == SOL
    assert chain.get_balance(payer.pubkey()) == 9 * SOL - LAMPORTS_PER_SIGNATURE


@pytest.mark.fault("rpc")
async def test_re_sends_of_a_landed_transaction_never_execute_twice(net):
    chain, proxy, client, payer = net
    # Status polls fail for a while after the send: the sender keeps re-sending the same bytes.
    proxy.plan("getSignatureStatuses", [Fault.HTTP_503] * 6)
    to = Keypair().pubkey()
    config = replace(FAST, resend_interval=0.0)
    sent = await TxSender(client, payer, config).send([_pay(payer, to)], "pay")
    assert sent.status == Status.CONFIRMED
    sends = [c for c in proxy.calls if c.method == "sendTransaction"]
    assert len(sends) >= 2
    assert {c.params[0] for c in sends} == {sends[0].params[0]}  # byte-for-byte the same transaction
    assert all(c.params[1].get("skipPreflight") for c in sends[1:])
    # And one more by hand, as any RPC node's own retry would.
    raw = bytes(await _landed_tx(client, sent.signature))
    await client.send_raw_transaction(raw, TxOpts(skip_preflight=True))
    assert chain.get_balance(to) == SOL
    assert chain.get_balance(payer.pubkey()) == 9 * SOL - LAMPORTS_PER_SIGNATURE


@pytest.mark.fault("rpc")
async def test_blockhash_expiry_while_pending_is_expired_and_never_lands(net):
    chain, proxy, client, payer = net
    proxy.plan("sendTransaction", [], then=Fault.HTTP_503)  # no send gets through
    to = Keypair().pubkey()
    task = asyncio.ensure_future(TxSender(client, payer, FAST).send([_pay(payer, to)], "pay"))
    while proxy.count("sendTransaction") < 2:
        await asyncio.sleep(0.01)
    for _ in range(BLOCKHASH_LIFETIME + 1):
        chain.advance()
    proxy.plan("sendTransaction", [])  # now the node hears it, with its blockhash gone
    sent = await task
    assert sent.status == Status.EXPIRED and sent.slot is None
    assert chain.landed(sent.signature) is None
    assert (await client.get_signature_statuses([sent.signature])).value[0] is None
    assert chain.get_balance(to) == 0
    assert chain.get_balance(payer.pubkey()) == 10 * SOL


@pytest.mark.fault("rpc")
async def test_an_rpc_that_never_answers_ends_in_a_status_not_an_exception(net):
    chain, proxy, client, payer = net
    short = replace(FAST, confirm_timeout=0.5)
    proxy.plan("*", [], then=Fault.RESET)
    sent = await TxSender(client, payer, short).send([_pay(payer, Keypair().pubkey())], "pay")
    assert sent.status == Status.UNSENT and sent.signature is None

    # The send got through but nothing after it: it landed, and the sender can't tell.
    proxy.plan("*", [])
    proxy.plan("sendTransaction", [Fault.LOSE], then=Fault.RESET)
    for method in ("getBlockHeight", "getSignatureStatuses"):
        proxy.plan(method, [], then=Fault.HTTP_503)
    sent = await TxSender(client, payer, short).send([_pay(payer, Keypair().pubkey())], "pay")
    assert sent.status == Status.UNKNOWN and chain.landed(sent.signature) is not None


async def test_dry_run_simulates_and_never_sends(net):
    chain, proxy, client, payer = net
    sender = TxSender(client, payer, replace(FAST, dry_run=True))
    to = Keypair().pubkey()
    sent = await sender.send([_pay(payer, to)], "pay")
    assert sent.status == Status.DRY_RUN and sent.error is None and sent.units > 0 and sent.logs
    bad = await sender.send([_pay(payer, to, 100 * SOL)], "overpay")
    assert bad.status == Status.DRY_RUN and bad.code == 1 and bad.instruction == 0  # system: insufficient lamports
    assert proxy.count("sendTransaction") == 0
    assert chain.landed(sent.signature) is None and chain.landed(bad.signature) is None
    assert chain.get_balance(to) == 0 and chain.get_balance(payer.pubkey()) == 10 * SOL


@pytest.mark.fault("program")
async def test_a_preflight_refusal_is_failed_with_the_instruction_in_the_callers_list(net):
    chain, proxy, client, payer = net
    ixs = [_pay(payer, Keypair().pubkey()), _pay(payer, Keypair().pubkey(), 100 * SOL)]
    sent = await TxSender(client, payer, FAST).send(ixs, "overpay")
    assert sent.status == Status.FAILED and (sent.code, sent.instruction) == (1, 1)
    assert sent.logs and "refused by preflight" in sent.detail
    assert proxy.count("sendTransaction") == 1 and chain.landed(sent.signature) is None
    assert chain.get_balance(payer.pubkey()) == 10 * SOL


@pytest.mark.fault("rpc")
async def test_a_refusal_after_a_lost_send_waits_for_expiry_before_saying_failed(net):
    chain, proxy, client, payer = net
    # The first send's answer is lost, so it might still land: a later preflight refusal is not
    # the last word until the blockhash has expired.
    proxy.plan("sendTransaction", [Fault.LOSE])
    task = asyncio.ensure_future(TxSender(client, payer, FAST).send([_pay(payer, Keypair().pubkey(), 100 * SOL)], "overpay"))
    while proxy.count("sendTransaction") < 2 or proxy.count("getSignatureStatuses") < 3:
        await asyncio.sleep(0.01)
    assert not task.done()
    for _ in range(BLOCKHASH_LIFETIME + 1):
        chain.advance()
    sent = await task
    assert sent.status == Status.FAILED and (sent.code, sent.instruction) == (1, 0)
    assert proxy.count("sendTransaction") == 2  # once refused, it stops sending and only watches


@pytest.mark.fault("program")
async def test_a_transaction_that_lands_with_an_error_is_failed_with_its_logs(net):
    chain, proxy, client, payer = net
    proxy.plan("sendTransaction", [Fault.TIMEOUT])
    task = asyncio.ensure_future(TxSender(client, payer, FAST).send([_pay(payer, Keypair().pubkey(), 100 * SOL)], "overpay"))
    while proxy.count("sendTransaction") < 1:
        await asyncio.sleep(0.01)
    # Some other route got the bytes to the leader, without preflight: it lands, failing.
    raw = base64.b64decode(proxy.calls[-1].params[0])
    chain.send_transaction(VersionedTransaction.from_bytes(raw))
    sent = await task
    assert sent.status == Status.FAILED and (sent.code, sent.instruction) == (1, 0)
    assert sent.slot == chain.slot and sent.logs and "landed" in sent.detail
    assert chain.get_balance(payer.pubkey()) == 10 * SOL - LAMPORTS_PER_SIGNATURE  # the fee, nothing else


def _seed_fees(chain: Chain, account: Pubkey, prices: list[int]) -> None:
    """Land one transfer to `account` per slot, each paying one of `prices`."""
    funder = Keypair()
    chain.airdrop(funder.pubkey(), SOL)
    for price in prices:
        chain.advance()
        ixs = [compute_budget.set_compute_unit_price(price), _pay(funder, account, 1_000)]
        chain.send_transaction(VersionedTransaction(
            MessageV0.try_compile(funder.pubkey(), ixs, [], chain.latest_blockhash()), [funder]))
    chain.advance()


async def test_auto_priority_fee_is_a_percentile_of_recent_fees_under_the_cap(net):
    chain, proxy, client, payer = net
    busy = Keypair().pubkey()
    _seed_fees(chain, busy, [400, 100, 300, 200])
    auto = replace(FAST, priority_fee="auto", fee_percentile=75)
    sent = await TxSender(client, payer, auto).send([_pay(payer, busy)], "pay")
    assert sent.ok and sent.cu_price == 300
    assert _budget(await _landed_tx(client, sent.signature))["price"] == 300
    assert proxy.calls[0].method == "getRecentPrioritizationFees" and proxy.calls[0].params == [[str(busy)]]

    capped = await TxSender(client, payer, replace(auto, fee_cap=250)).send([_pay(payer, busy)], "pay")
    assert capped.ok and _budget(await _landed_tx(client, capped.signature))["price"] == 250

    quiet = await TxSender(client, payer, auto).send([_pay(payer, Keypair().pubkey())], "pay")
    assert quiet.ok and quiet.cu_price == 0  # no recent fees on its accounts

    # The fee lookup failing doesn't stop the send: it pays the last fee it knew.
    sender = TxSender(client, payer, auto)
    assert (await sender.send([_pay(payer, busy)], "pay")).cu_price == 300
    proxy.plan("getRecentPrioritizationFees", [], then=Fault.HTTP_503)
    again = await sender.send([_pay(payer, busy)], "pay")
    assert again.ok and again.cu_price == 300


def test_percentile_is_nearest_rank():
    assert percentile([], 75) == 0
    assert percentile([5], 75) == 5
    assert percentile([400, 100, 300, 200], 75) == 300
    assert percentile([400, 100, 300, 200], 100) == 400
    assert percentile([400, 100, 300, 200], 1) == 100


async def test_too_large_raises_before_any_rpc_call_and_split_to_fit_packs_in_order(net):
    chain, proxy, client, payer = net
    recipients = [Keypair().pubkey() for _ in range(40)]
    groups = [[_pay(payer, to, 1_000)] for to in recipients]
    flat = [ix for g in groups for ix in g]
    sender = TxSender(client, payer, FAST)
    with pytest.raises(TxTooLarge) as raised:
        await sender.send(flat, "too many")
    assert raised.value.size > PACKET_LIMIT and proxy.calls == []

    batches = split_to_fit(payer.pubkey(), groups)
    assert [ix for batch in batches for ix in batch] == flat  # nothing lost, order kept
    assert all(tx_size(payer.pubkey(), batch) <= PACKET_LIMIT for batch in batches)
    # As few as fit: each batch but the last would overflow with the next group added.
    for batch, nxt in zip(batches, batches[1:]):
        assert tx_size(payer.pubkey(), batch + nxt[:1]) > PACKET_LIMIT
    for batch in batches:
        assert (await sender.send(batch, "batch")).ok
    assert all(chain.get_balance(to) == 1_000 for to in recipients)

    with pytest.raises(TxTooLarge):
        split_to_fit(payer, [flat])  # one group that fits nowhere


async def test_callers_compute_budget_instructions_are_refused(net):
    _, proxy, client, payer = net
    with pytest.raises(ValueError, match="compute-budget"):
        await TxSender(client, payer, FAST).send([compute_budget.set_compute_unit_limit(1)], "x")
    assert proxy.calls == []


# -- the real Drift program ------------------------------------------------------------------
def _drift_missing() -> str | None:
    from keeper.errors import UserError
    from keeper.localnet import program

    try:
        program.find_program()
    except UserError as exc:
        return f"needs the Drift program binary: {exc}"
    return None


@pytest.fixture
async def drift():
    reason = _drift_missing()
    if reason:
        pytest.skip(reason)
    from driftpy.account_subscription_config import AccountSubscriptionConfig
    from driftpy.drift_client import DriftClient
    from driftpy.types import OracleInfo, OracleSource, TxParams

    from keeper.localnet.command import Localnet, Options

    wallet = Keypair()
    localnet = Localnet(Options(slot_ms=50, seed=3), wallet)
    stop = asyncio.Event()
    async with listening(localnet.chain) as url:
        clock = asyncio.ensure_future(localnet.run_clock(stop))
        oracles = {m.oracle: OracleInfo(m.oracle, OracleSource.Pyth())
                   for m in localnet.exchange.markets.values() if m.oracle_source == "Pyth"}
        client = DriftClient(
            AsyncClient(url, commitment=Confirmed), wallet, env="mainnet", market_lookup_tables=[],
            perp_market_indexes=[m.index for m in localnet.exchange.perps()],
            spot_market_indexes=[m.index for m in localnet.exchange.spots()],
            oracle_infos=list(oracles.values()), account_subscription=AccountSubscriptionConfig("websocket"),
            tx_params=TxParams(600_000, 0),
        )
        try:
            await client.initialize_user()
            await client.subscribe()
            await client.deposit(10_000 * 10**6, 0, client.get_associated_token_account_public_key(0))
            yield client, wallet
        finally:
            await client.unsubscribe()
            await client.connection.close()
            stop.set()
            await clock


@pytest.mark.fault("program")
async def test_a_drift_error_comes_back_failed_by_name(drift):
    from driftpy.types import MarketType, OrderParams, OrderType, PositionDirection, PostOnlyParams

    from keeper import drift_errors as E

    client, wallet = drift
    oracle = client.get_oracle_price_data_for_perp_market(0).price

    def bid(price: int, user_order_id: int):
        return client.get_place_perp_order_ix(OrderParams(
            order_type=OrderType.Limit(), market_type=MarketType.Perp(), direction=PositionDirection.Long(),
            base_asset_amount=10**9, market_index=0, price=price // 100 * 100, user_order_id=user_order_id,
            post_only=PostOnlyParams.MustPostOnly()))

    sender = TxSender(client.connection, wallet, SendConfig(priority_fee=0, poll_interval=0.02))
    crossing = await sender.send([bid(oracle * 105 // 100, 1)], "crossing bid")
    assert crossing.status == Status.FAILED
    assert (crossing.error, crossing.code, crossing.instruction) == (E.POST_ONLY_CROSS, 6057, 0)
    assert crossing.describe().startswith("failed: 6057 PlacePostOnlyLimitFailure")
    assert any(E.POST_ONLY_CROSS in line for line in crossing.logs)

    resting = await sender.send([bid(oracle * 98 // 100, 2)], "resting bid")
    assert resting.ok


async def test_new_transactions_are_spaced_by_the_rate_limit(net):
    """Rate limiting is a lower bound on spacing, so this asserts a minimum, which can't flake."""
    chain, proxy, client, payer = net
    sender = TxSender(client, payer, replace(FAST, max_tx_per_s=10))
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(4):
        assert (await sender.send([_pay(payer, Keypair().pubkey())], "pay")).ok
    assert loop.time() - started >= 0.3  # three waits of 1/10 s between four transactions
    assert proxy.count("sendTransaction") == 4
