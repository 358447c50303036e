"""The localnet exchange on the real Drift program in a plain LiteSVM: bootstrap, orders, fills, flow.

Transactions are built with anchorpy from driftpy's IDL (drift_idl.ix), the bytes DriftClient
sends; DriftClient itself over RPC is tested with the server.
"""
from __future__ import annotations

import base64
import json
import struct

import pytest
from driftpy.accounts.oracle import decode_pyth_price_info
from driftpy.types import OracleSource
from solders.clock import Clock
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from spl.token._layouts import ACCOUNT_LAYOUT

from keeper import drift_errors
from keeper.errors import UserError
from keeper import drift_idl
from keeper.localnet import flow, genesis, instructions, oracle, program
from keeper.venues.local.specs import spec

try:
    DRIFT_SO = program.find_program()
except UserError as exc:
    pytest.skip(f"needs the Drift program binary: {exc}", allow_module_level=True)

NOW = 1_700_000_000
START_SLOT = 1_000
PRICES = {"SOL": 85_016_475, "BTC": 120_003_893_600, "ETH": 2_024_725_000}
USDC = 10**6
SOL = 10**9


def _set_clock(svm: LiteSVM, slot: int, ts: int) -> None:
    c = svm.get_clock()
    svm.set_clock(Clock(slot, c.epoch_start_timestamp, c.epoch, c.leader_schedule_epoch, ts))


@pytest.fixture
def net():
    svm = LiteSVM()
    program.load(svm, DRIFT_SO)
    _set_clock(svm, START_SLOT, NOW)
    ex = genesis.bootstrap(svm, Keypair.from_seed(bytes(32)), PRICES, NOW)
    return svm, ex


def advance(svm: LiteSVM, ex: genesis.Exchange, slots: int = 1) -> int:
    """What the server does each slot: clock, fresh blockhash, oracles republished."""
    c = svm.get_clock()
    slot = c.slot + slots
    _set_clock(svm, slot, c.unix_timestamp + (slots * 400) // 1000)
    svm.expire_blockhash()
    genesis.refresh_oracles(svm, ex, slot, svm.get_clock().unix_timestamp)
    return slot


def new_user(svm, ex, seed: int, usdc: int = 100_000 * USDC) -> Keypair:
    kp = Keypair.from_seed(bytes([seed]) * 32)
    genesis.fund(svm, ex, kp.pubkey(), 10 * SOL, usdc)
    instructions.send(svm, kp, [*instructions.init_user_ixs(ex, kp.pubkey()), instructions.deposit_ix(ex, kp.pubkey(), usdc)])
    return kp


def user_of(svm, ex, kp: Keypair):
    return drift_idl.decode(svm.get_account(ex.user(kp.pubkey())).data)


def open_orders(user) -> list:
    return [o for o in user.orders if o.base_asset_amount and "Open" in str(o.status)]


def position(user, market_index: int) -> int:
    return next((p.base_asset_amount for p in user.perp_positions if p.market_index == market_index), 0)


# -- binaries -----------------------------------------------------------------------------------

def test_find_program_rejects_missing_and_non_elf(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="not found"):
        program.find_program(str(tmp_path / "nope.so"))
    text = tmp_path / "drift.so"
    text.write_text("not a program")
    with pytest.raises(UserError, match="not a Solana program"):
        program.find_program(str(text))
    monkeypatch.setenv("DRIFT_PROGRAM_SO", str(DRIFT_SO))
    assert program.find_program(None) == DRIFT_SO
    monkeypatch.setenv("PYTH_PROGRAM_SO", str(text))
    with pytest.raises(UserError, match="Pyth program"):
        program.find_pyth(None)


# -- oracles ------------------------------------------------------------------------------------

def test_oracle_account_reads_back_in_driftpy():
    data = oracle.encode(85_016_475, 16_153, 1_234, NOW, ema_price=85_000_000, ema_conf=16_000)
    assert len(data) == oracle.SIZE == 3312
    info = decode_pyth_price_info(data, OracleSource.Pyth())
    assert (info.price, info.confidence, info.slot, info.twap) == (85_016_475, 16_153, 1_234, 85_000_000)
    assert oracle.decode(data) == oracle.Quote(85_016_475, 16_153, 1_234, NOW, 85_000_000, 16_000)


def test_oracle_layout_matches_real_pyth_accounts(shared_data):
    real = [base64.b64decode(json.loads(line)["data_base64"])
            for line in (shared_data / "drift_account_dumps.jsonl").read_text().splitlines()
            if json.loads(line)["account_type"] == "pyth_legacy_price_account"]
    assert real
    ours = oracle.encode(1_000_000, 100, 5, NOW)
    for data in real:
        assert len(data) == len(ours)
        # magic, version, account type, size, price type: identical header words
        assert struct.unpack_from("<5I", data) == struct.unpack_from("<5I", ours)
        # the aggregate (price, conf, status Trading, corp action, pub slot) sits at the same offset
        price, conf, status, _, pub_slot = struct.unpack_from("<qQIIQ", data, 208)
        assert status == oracle.STATUS_TRADING and price > 0 and pub_slot > 0
        assert oracle.decode(data).slot == struct.unpack_from("<Q", data, 40)[0]  # valid_slot


# -- bootstrap ----------------------------------------------------------------------------------

def test_bootstrap_writes_accounts_driftpy_decodes(net):
    svm, ex = net
    state = drift_idl.decode(svm.get_account(ex.state).data)
    assert state.admin == ex.admin.pubkey()
    assert (state.number_of_markets, state.number_of_spot_markets) == (3, 2)
    assert state.min_perp_auction_duration == genesis.MIN_PERP_AUCTION_DURATION
    assert state.signer == ex.signer

    for name, kind, index in [("USDC", "spot", 0), ("SOL", "spot", 1),
                              ("SOL-PERP", "perp", 0), ("BTC-PERP", "perp", 1), ("ETH-PERP", "perp", 2)]:
        m = ex.markets[name]
        account = svm.get_account(m.pubkey)
        assert account.owner == program.DRIFT_PROGRAM_ID
        d = drift_idl.decode(account.data)
        assert (m.kind, m.index, d.market_index) == (kind, index, index)
        assert bytes(d.name).decode().strip() == name
        assert "Active" in str(d.status)
        assert d.pubkey == m.pubkey
        if kind == "perp":
            s = spec(name)
            assert d.amm.oracle == ex.oracles[genesis.asset_of(name)] == m.oracle
            assert "Pyth" in str(d.amm.oracle_source)
            assert (d.amm.order_tick_size, d.amm.order_step_size, d.amm.min_order_size) == (
                s.tick_size, s.step_size, s.min_order_size)
            assert (d.margin_ratio_initial, d.margin_ratio_maintenance) == (s.margin_ratio_initial, s.margin_ratio_maintenance)
            price = PRICES[genesis.asset_of(name)]
            assert d.amm.peg_multiplier == price == d.amm.historical_oracle_data.last_oracle_price
            assert d.amm.base_asset_reserve == d.amm.quote_asset_reserve == d.amm.sqrt_k
        else:
            assert d.mint == m.mint and d.vault == m.vault
            vault = ACCOUNT_LAYOUT.parse(svm.get_account(m.vault).data)
            assert bytes(vault.owner) == bytes(ex.signer) and bytes(vault.mint) == bytes(m.mint)
    assert oracle.decode(bytes(svm.get_account(ex.markets["USDC"].oracle).data)).price == genesis.USDC_PRICE
    assert "Pyth" in str(drift_idl.decode(svm.get_account(ex.markets["USDC"].pubkey).data).oracle_source)
    assert ex.markets["SOL"].oracle == ex.markets["SOL-PERP"].oracle

    for asset, key in ex.oracles.items():
        account = svm.get_account(key)
        assert account.owner == program.PYTH_PROGRAM_ID
        info = decode_pyth_price_info(bytes(account.data), OracleSource.Pyth())
        assert (info.price, info.slot) == ({**PRICES, "USDC": genesis.USDC_PRICE}[asset], START_SLOT)


def test_set_prices_moves_oracles(net):
    svm, ex = net
    slot = advance(svm, ex)
    genesis.set_prices(svm, ex, {"SOL-PERP": 90_000_000, "BTC": 100_000_000_000}, slot, NOW + 1)
    now = genesis.oracle_prices(svm, ex)
    assert now == {"SOL": 90_000_000, "BTC": 100_000_000_000, "ETH": PRICES["ETH"], "USDC": genesis.USDC_PRICE}
    q = oracle.decode(bytes(svm.get_account(ex.oracles["SOL"]).data))
    assert q.slot == slot and q.ts == NOW + 1
    assert PRICES["SOL"] < q.ema_price < 90_000_000  # the EMA follows, a step behind


# -- a user's life ------------------------------------------------------------------------------

def test_deposit_orders_cancel_reject_and_fill(net):
    svm, ex = net
    kp = new_user(svm, ex, 7, usdc=50_000 * USDC)
    user = user_of(svm, ex, kp)
    assert user.authority == kp.pubkey()
    usdc_position = next(p for p in user.spot_positions if p.market_index == 0)
    assert usdc_position.scaled_balance == 50_000 * USDC * 1_000  # SPOT_BALANCE_PRECISION at interest 1.0
    assert ACCOUNT_LAYOUT.parse(svm.get_account(ex.markets["USDC"].vault).data).amount == (
        50_000 * USDC + genesis.PNL_POOL * len(genesis.PERPS))

    oracle_price = PRICES["SOL"]
    bid = flow.order_params(0, "bid", SOL, price=84_000_000)
    ask = flow.order_params(0, "ask", SOL, offset=500_000)  # floats $0.50 above the oracle
    instructions.send(svm, kp, [instructions.place_perp_order_ix(ex, kp.pubkey(), bid)])
    instructions.send(svm, kp, [instructions.place_perp_order_ix(ex, kp.pubkey(), ask)])
    orders = open_orders(user_of(svm, ex, kp))
    assert [(o.price, o.oracle_price_offset, o.post_only, "Long" in str(o.direction)) for o in orders] == [
        (84_000_000, 0, True, True), (0, 500_000, True, False)]
    assert flow.effective_price(orders[1], oracle_price) == oracle_price + 500_000

    advance(svm, ex)
    instructions.send(svm, kp, [instructions.cancel_orders_ix(ex, kp.pubkey(), 0)])
    assert open_orders(user_of(svm, ex, kp)) == []

    crossing = flow.order_params(0, "bid", SOL, price=86_000_000)  # above the oracle and the AMM's ask
    with pytest.raises(instructions.TxFailed) as caught:
        instructions.send(svm, kp, [instructions.place_perp_order_ix(ex, kp.pubkey(), crossing)])
    assert caught.value.error == drift_errors.POST_ONLY_CROSS
    assert open_orders(user_of(svm, ex, kp)) == []

    take = flow.order_params(0, "bid", SOL, price=86_000_000, post_only=False, ioc=True)
    instructions.send(svm, kp, [instructions.place_and_take_ix(ex, kp.pubkey(), take)])
    user = user_of(svm, ex, kp)
    assert position(user, 0) == SOL
    paid = -next(p.quote_asset_amount for p in user.perp_positions if p.market_index == 0)
    assert oracle_price < paid < 86_000_000  # the AMM's ask plus the taker fee, under our limit
    assert open_orders(user) == []  # immediate-or-cancel leaves nothing resting

    instructions.send(svm, kp, [instructions.withdraw_ix(ex, kp.pubkey(), 1_000 * USDC)])
    assert ACCOUNT_LAYOUT.parse(svm.get_account(ex.usdc_account(kp.pubkey())).data).amount == 1_000 * USDC


def test_program_rounds_off_grid_orders_and_rejects_dust(net):
    """This build standardises limit prices to the tick and sizes down to the step when placing;
    only a size under one step is an error (so InvalidOrderLimitPrice and InvalidOrderNotStepSizeMultiple
    do not come from place_perp_order here)."""
    svm, ex = net
    kp = new_user(svm, ex, 8)
    s = spec("SOL-PERP")
    instructions.send(svm, kp, [instructions.place_orders_ix(ex, kp.pubkey(), [
        flow.order_params(0, "bid", s.step_size * 3 // 2, price=84_000_000 + s.tick_size // 2),
        flow.order_params(0, "ask", s.step_size, price=86_000_000 + s.tick_size // 2),
    ])])
    assert [(o.price, o.base_asset_amount) for o in open_orders(user_of(svm, ex, kp))] == [
        (84_000_000, s.step_size), (86_000_000 + s.tick_size, s.step_size)]  # bids round down, asks up
    with pytest.raises(instructions.TxFailed) as caught:
        instructions.send(svm, kp, [instructions.place_perp_order_ix(ex, kp.pubkey(), flow.order_params(0, "bid", s.step_size - 1, price=84_000_000))])
    assert caught.value.error == "OrderAmountTooSmall"


def test_taker_fills_another_users_resting_order(net):
    svm, ex = net
    maker, taker = new_user(svm, ex, 11), new_user(svm, ex, 12)
    ask_price = 85_017_500  # on the tick, 1 bp over the oracle: inside the AMM's ask, so matched first
    instructions.send(svm, maker, [instructions.place_perp_order_ix(ex, maker.pubkey(), flow.order_params(0, "ask", 2 * SOL, price=ask_price))])
    advance(svm, ex)
    take = flow.order_params(0, "bid", SOL, price=PRICES["SOL"] + 100_000, post_only=False, ioc=True)
    makers = [(ex.user(maker.pubkey()), maker.pubkey())]
    instructions.send(svm, taker, [instructions.place_and_take_ix(ex, taker.pubkey(), take, makers)])
    assert position(user_of(svm, ex, maker), 0) == -SOL
    assert position(user_of(svm, ex, taker), 0) == SOL
    (rest,) = open_orders(user_of(svm, ex, maker))
    assert (rest.price, rest.base_asset_amount_filled) == (ask_price, SOL)


# -- background flow ----------------------------------------------------------------------------

def _run_flow(svm, ex, keeper: Keypair, slots: int, seed: int = 3) -> tuple[flow.Flow, list[flow.StepReport]]:
    users = lambda: {k: bytes(svm.get_account(k).data) for k in [ex.user(keeper.pubkey()), *f.maker_users()]}
    f = flow.Flow(svm, ex, users, seed=seed)
    reports = [f.step(advance(svm, ex)) for _ in range(slots)]
    return f, reports


def _keeper_quotes_btc(svm, ex, keeper: Keypair) -> None:
    """A keeper's post-only quotes one tick either side of the BTC oracle: the best in the book."""
    s, o = spec("BTC-PERP"), PRICES["BTC"]
    instructions.send(svm, keeper, [instructions.place_orders_ix(ex, keeper.pubkey(), [
        flow.order_params(s.market_index, "bid", s.min_order_size * 10, price=o // s.tick_size * s.tick_size - s.tick_size),
        flow.order_params(s.market_index, "ask", s.min_order_size * 10, price=-(-o // s.tick_size) * s.tick_size + s.tick_size),
    ])])


def test_flow_keeps_maker_orders_and_fills_the_keeper(net):
    svm, ex = net
    keeper = new_user(svm, ex, 21)
    _keeper_quotes_btc(svm, ex, keeper)
    f, reports = _run_flow(svm, ex, keeper, 40)
    assert not [e for r in reports for e in r.errors]
    assert sum(r.takes for r in reports) > 0

    for kp in f.makers:
        orders = open_orders(user_of(svm, ex, kp))
        assert len(orders) == flow.LEVELS * 2 * len(ex.perps())
        for o in orders:
            s = spec(next(m.name for m in ex.perps() if m.index == o.market_index))
            assert o.post_only and o.base_asset_amount % s.step_size == 0 and o.base_asset_amount >= s.min_order_size
            assert (o.price or o.oracle_price_offset) % s.tick_size == 0
    assert any(o.oracle_price_offset for o in open_orders(user_of(svm, ex, f.makers[1])))  # a floating maker

    # The flow's taker hit the keeper's resting quotes (fully filled orders leave the order list).
    keeper_orders = [(o.market_index, o.base_asset_amount) for o in open_orders(user_of(svm, ex, keeper))]
    assert len(keeper_orders) < 2
    keeper_stats = drift_idl.decode(svm.get_account(ex.user_stats(keeper.pubkey())).data)
    assert keeper_stats.maker_volume30d > 0 and keeper_stats.taker_volume30d == 0
    taker_stats = drift_idl.decode(svm.get_account(ex.user_stats(f.taker.pubkey())).data)
    assert taker_stats.taker_volume30d >= keeper_stats.maker_volume30d


def test_flow_is_deterministic():
    def run():
        svm = LiteSVM()
        program.load(svm, DRIFT_SO)
        _set_clock(svm, START_SLOT, NOW)
        ex = genesis.bootstrap(svm, Keypair.from_seed(bytes(32)), PRICES, NOW)
        keeper = new_user(svm, ex, 21)
        _keeper_quotes_btc(svm, ex, keeper)
        f, reports = _run_flow(svm, ex, keeper, 15)
        users = [ex.user(k.pubkey()) for k in [*f.makers, f.taker, keeper]]
        return [r.takes for r in reports], [bytes(svm.get_account(u).data) for u in users]

    first, second = run(), run()
    assert sum(first[0]) > 0
    assert first == second
