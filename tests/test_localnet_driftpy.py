"""An unmodified driftpy DriftClient against `keeper localnet`: the real program, over JSON-RPC.

Needs the Drift binary ($DRIFT_PROGRAM_SO or ~/.cache/drift-keeper/drift.so); skips without it.
"""
from __future__ import annotations

import asyncio

import pytest
from driftpy.account_subscription_config import AccountSubscriptionConfig
from driftpy.drift_client import DriftClient
from driftpy.types import (
    MarketType,
    OracleInfo,
    OracleSource,
    OrderParams,
    OrderType,
    PositionDirection,
    PostOnlyParams,
    TxParams,
)
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solders.keypair import Keypair

from keeper import drift_errors as E
from keeper.errors import UserError
from keeper.localnet import program
from keeper.localnet.command import Localnet, Options
from keeper.localnet.flow import is_open_perp
from keeper.localnet.genesis import oracle_prices
from keeper.drift_idl import decode
from keeper.localnet.server import listening

try:
    program.find_program()
except UserError as exc:
    pytest.skip(f"needs the Drift program binary: {exc}", allow_module_level=True)

SOL_PERP = 0
USDC = 0


@pytest.fixture
async def localnet():
    wallet = Keypair()
    net = Localnet(Options(slot_ms=50, seed=3), wallet)
    stop = asyncio.Event()
    async with listening(net.chain) as url:
        clock = asyncio.ensure_future(net.run_clock(stop))
        try:
            yield net, url, wallet
        finally:
            stop.set()
            await clock


async def _client(net: Localnet, url: str, wallet: Keypair) -> DriftClient:
    oracles = [OracleInfo(m.oracle, OracleSource.Pyth()) for m in net.exchange.markets.values()
               if m.oracle_source == "Pyth"]
    client = DriftClient(
        AsyncClient(url, commitment=Confirmed), wallet, env="mainnet",
        market_lookup_tables=[],  # none on this chain: plain v0 transactions
        perp_market_indexes=[m.index for m in net.exchange.perps()],
        spot_market_indexes=[m.index for m in net.exchange.spots()],
        oracle_infos=list({o.pubkey: o for o in oracles}.values()),
        account_subscription=AccountSubscriptionConfig("websocket"),
        tx_params=TxParams(600_000, 0),
    )
    return client


async def _wait(predicate, timeout: float = 5.0):
    async def poll():
        while not (value := predicate()):
            await asyncio.sleep(0.02)
        return value

    return await asyncio.wait_for(poll(), timeout)


def _limit(direction, price: int, user_order_id: int, offset: int | None = None, size: int = 10**9) -> OrderParams:
    return OrderParams(
        order_type=OrderType.Limit(), market_type=MarketType.Perp(), direction=direction,
        base_asset_amount=size, market_index=SOL_PERP, price=price, oracle_price_offset=offset,
        user_order_id=user_order_id, post_only=PostOnlyParams.MustPostOnly(),
    )


async def test_drift_client_trades_on_localnet(localnet):
    net, url, wallet = localnet
    client = await _client(net, url, wallet)
    try:
        await client.initialize_user()  # the user must exist before its subscription
        await client.subscribe()
        await client.deposit(10_000 * 10**6, USDC, client.get_associated_token_account_public_key(USDC))
        user = client.get_user()
        await _wait(lambda: user.get_user_account().spot_positions[0].scaled_balance > 0)

        oracle = client.get_oracle_price_data_for_perp_market(SOL_PERP).price
        bid = oracle * 98 // 100 // 100 * 100  # 2% below, on SOL-PERP's 0.0001 tick
        await client.place_perp_order(_limit(PositionDirection.Long(), bid, 1))
        await client.place_perp_order(_limit(PositionDirection.Short(), 0, 2, offset=oracle // 50))
        orders = await _wait(lambda: len(user.get_open_orders()) == 2 and user.get_open_orders())
        by_id = {o.user_order_id: o for o in orders}
        assert by_id[1].price == bid and by_id[1].post_only and by_id[1].base_asset_amount == 10**9
        assert by_id[2].price == 0 and by_id[2].oracle_price_offset == oracle // 50

        # A post-only bid above the oracle would take from the AMM: the program refuses it.
        with pytest.raises(RPCException) as raised:
            await client.place_perp_order(_limit(PositionDirection.Long(), oracle * 105 // 100 // 100 * 100, 3))
        assert any(E.POST_ONLY_CROSS in line for line in raised.value.args[0].data.logs)

        await client.cancel_order(by_id[1].order_id)
        await _wait(lambda: [o.user_order_id for o in user.get_open_orders()] == [2])
        await client.cancel_orders()
        await _wait(lambda: user.get_open_orders() == [])
    finally:
        await client.unsubscribe()
        await client.connection.close()


async def test_background_flow_keeps_a_book_and_slots_move(localnet):
    net, url, _ = localnet
    start = net.chain.slot
    await _wait(lambda: net.chain.slot >= start + 10)
    for maker in net.flow.maker_users():
        orders = decode(net.chain.get_account(maker).data).orders
        for market in net.exchange.perps():
            resting = [o for o in orders if is_open_perp(o, market.index)]
            assert len(resting) >= 3 and {o.direction.index for o in resting} == {0, 1}, market.name


def test_oracles_follow_a_price_path_as_slots_advance(tmp_path):
    # 400 ms slots: SOL at $100 for the first 2 s, then $110; BTC and ETH move by the same 10%.
    path = tmp_path / "path.csv"
    path.write_text("timestamp,price\n1000,100\n1002,110\n")
    net = Localnet(Options(slot_ms=400, price_path=str(path)), Keypair())
    start = oracle_prices(net.chain, net.exchange)
    assert start["SOL"] == 100_000_000
    for _ in range(6):
        net.step()
    moved = oracle_prices(net.chain, net.exchange)
    assert moved["SOL"] == 110_000_000
    for asset in ("BTC", "ETH"):
        assert moved[asset] == start[asset] * 11 // 10
