"""The exchange bootstrap: state, USDC, spot and perp markets, oracles, funding.

The State comes from the program's own `initialize`. The market accounts are written
directly: this Drift build (Dec 2023, v2.43/2.44) misreads driftpy 0.8.89's
`initialize_spot_market` and rejects its `initialize_perp_market` (InvalidMarginRatio),
so we encode the accounts with driftpy's IDL, which has the same
byte layout for every field the old program reads (newer fields sit in the old padding and
stay zero). Values mirror what the program's own initialisers write, with the market rules
from our market_specs.json and AMM settings like the real Dec 2023 markets'.
"""
from __future__ import annotations

from dataclasses import dataclass

from driftpy import addresses
from solders.account import Account
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.sysvar import RENT
from solders.transaction_metadata import FailedTransactionMetadata
from spl.token._layouts import ACCOUNT_LAYOUT, MINT_LAYOUT
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    MintToParams, create_idempotent_associated_token_account, get_associated_token_address, mint_to,
)

from keeper.drift_idl import as_fields, blank, decode, encode, ix, name_bytes, put, variant
from keeper.localnet import oracle
from keeper.localnet.instructions import TxFailed, send
from keeper.localnet.program import DRIFT_PROGRAM_ID, PYTH_PROGRAM_ID
from keeper.model import asset_of  # noqa: F401  (re-exported: the oracle a market or price key refers to)
from keeper.venues.local.specs import params, spec
from keeper.venues.sim.liquidation import IF_LIQUIDATION_FEE, LIQUIDATOR_FEE


PERPS = ("SOL-PERP", "BTC-PERP", "ETH-PERP")
ASSETS = ("SOL", "BTC", "ETH")  # one oracle each; SOL spot and SOL-PERP share SOL's
# Mainnet addresses of Dec 2023, so logs and explorers read naturally: the USDC mint, the
# native SOL mint, and the legacy Pyth price accounts Drift's markets used then.
USDC_MINT = Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
SOL_MINT = Pubkey.from_string("So11111111111111111111111111111111111111112")
ORACLES = {
    "SOL": Pubkey.from_string("H6ARHf6YXhGYeQfUzQNGk6rDNnLBQKrenN712K4AQJEG"),
    "BTC": Pubkey.from_string("GVXRSBjFk6e6J3NbVPXohDJetcTjaeeuykUpbQF8UoMU"),
    "ETH": Pubkey.from_string("JBu1AL4obBcCMqKBBxhpWCNUt136ijcuMZLFvTP7iWdB"),
    # Mainnet prices USDC with a Pyth feed too (quote_oracle="account"). Not mainnet's own
    # address: this program build special-cases that one.
    "USDC": Pubkey.find_program_address([b"keeper localnet usdc oracle"], PYTH_PROGRAM_ID)[0],
}
# How USDC is priced: "account", a Pyth feed pinned at $1 as on mainnet; or "default", the
# program's own test set-up: no oracle account (Pubkey.default()) and OracleSource.QuoteAsset,
# which the program prices at exactly 1.0.
QUOTE_ORACLES = ("account", "default")
USDC_PRICE = 10**6  # pinned at $1
USDC_CONF = 100  # $0.0001
USDC_DECIMALS = 6
SOL_DECIMALS = 9

ADMIN_LAMPORTS = 1_000 * 10**9
AMM_DEPTH_QUOTE = 50_000_000 * 10**6  # sqrt_k worth $50M at the start price: a $10k trade moves it ~4 bps
CONCENTRATION = 1_020_000  # the AMM's reserves may move 2% either way before it stops quoting a side
REPEG_BUDGET = 10**9 * 10**6  # total_fee_minus_distributions: lets the program repeg the AMM to the oracle
WITHDRAW_GUARD = 10**15  # token units, above any deposits here, so the bank-run withdraw guard never binds
PNL_POOL = 1_000_000 * 10**6  # USDC per perp market, so winners can settle pnl
CONTRACT_TIER = {"SOL-PERP": "B", "BTC-PERP": "A", "ETH-PERP": "B"}  # as on mainnet in Dec 2023
FUNDING_PERIOD = 3600
MIN_PERP_AUCTION_DURATION = 0  # slots a taker waits before the AMM may fill it (mainnet: 10); see bootstrap
THIRTEEN_DAYS = 13 * 86_400  # insurance fund unstaking period, the program's default

PRICE_PRECISION = 10**6
SPOT_WEIGHT = 10_000  # SPOT_WEIGHT_PRECISION: 1.0
CUMULATIVE_INTEREST = 10**10  # SPOT_CUMULATIVE_INTEREST_PRECISION: 1.0
TOKEN_ACCOUNT_SIZE = 165
MINT_SIZE = 82


# -- the exchange ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Market:
    name: str
    kind: str  # "spot" or "perp"
    index: int
    pubkey: Pubkey
    oracle: Pubkey
    oracle_source: str  # driftpy OracleSource variant name
    mint: Pubkey | None = None  # spot only
    vault: Pubkey | None = None  # spot only


@dataclass(frozen=True)
class Exchange:
    program_id: Pubkey
    state: Pubkey
    signer: Pubkey  # the program's PDA that owns the token vaults
    admin: Keypair  # signs admin instructions and is the USDC mint authority
    usdc_mint: Pubkey
    markets: dict[str, Market]  # "USDC", "SOL" (spot); "SOL-PERP", "BTC-PERP", "ETH-PERP"
    oracles: dict[str, Pubkey]  # "SOL", "BTC", "ETH", and "USDC" unless it is priced as QuoteAsset

    def perp(self, name: str) -> Market:
        return self.markets[name]

    def perps(self) -> list[Market]:
        return sorted((m for m in self.markets.values() if m.kind == "perp"), key=lambda m: m.index)

    def spots(self) -> list[Market]:
        return sorted((m for m in self.markets.values() if m.kind == "spot"), key=lambda m: m.index)

    def user(self, authority: Pubkey, sub_account_id: int = 0) -> Pubkey:
        return addresses.get_user_account_public_key(self.program_id, authority, sub_account_id)

    def user_stats(self, authority: Pubkey) -> Pubkey:
        return addresses.get_user_stats_account_public_key(self.program_id, authority)

    def usdc_account(self, owner: Pubkey) -> Pubkey:
        return get_associated_token_address(owner, self.usdc_mint)


def reference_prices() -> dict[str, int]:
    """Start prices from the shipped specs (the perps' last real oracle prices)."""
    return {asset_of(n): params(n).reference_price for n in PERPS}

# -- tokens -----------------------------------------------------------------------------------

def _rent(svm, size: int) -> int:
    return svm.minimum_balance_for_rent_exemption(size)


def _write_mint(svm, mint: Pubkey, authority: Pubkey | None, decimals: int, supply: int = 0) -> None:
    data = MINT_LAYOUT.build(dict(
        mint_authority_option=1 if authority else 0, mint_authority=bytes(authority or Pubkey.default()),
        supply=supply, decimals=decimals, is_initialized=1, freeze_authority_option=0,
        freeze_authority=bytes(Pubkey.default())))
    svm.set_account(mint, Account(_rent(svm, MINT_SIZE), data, TOKEN_PROGRAM_ID, False, 0))


def _write_token_account(svm, address: Pubkey, mint: Pubkey, owner: Pubkey) -> None:
    rent = _rent(svm, TOKEN_ACCOUNT_SIZE)
    native = mint == SOL_MINT  # a wrapped-SOL account records its rent reserve
    data = ACCOUNT_LAYOUT.build(dict(
        mint=bytes(mint), owner=bytes(owner), amount=0, delegate_option=0, delegate=bytes(Pubkey.default()),
        state=1, is_native_option=1 if native else 0, is_native=rent if native else 0, delegated_amount=0,
        close_authority_option=0, close_authority=bytes(Pubkey.default())))
    svm.set_account(address, Account(rent, data, TOKEN_PROGRAM_ID, False, 0))


def mint_usdc_ix(ex: Exchange, to: Pubkey, amount: int) -> Instruction:
    return mint_to(MintToParams(program_id=TOKEN_PROGRAM_ID, mint=ex.usdc_mint, dest=to,
                                mint_authority=ex.admin.pubkey(), amount=amount))


def fund(svm, ex: Exchange, owner: Pubkey, sol_lamports: int, usdc: int) -> Pubkey:
    """Give `owner` SOL and a USDC associated token account holding `usdc` (1e6); returns that account."""
    if sol_lamports > 0:
        result = svm.airdrop(owner, sol_lamports)
        if isinstance(result, FailedTransactionMetadata):
            raise TxFailed(None, f"airdrop failed: {result.err()}", [])
    ata = ex.usdc_account(owner)
    ixs = [create_idempotent_associated_token_account(ex.admin.pubkey(), owner, ex.usdc_mint)]
    if usdc > 0:
        ixs.append(mint_usdc_ix(ex, ata, usdc))
    send(svm, ex.admin, ixs)
    return ata


# -- prices -----------------------------------------------------------------------------------

def conf_for(asset: str, price: int) -> int:
    """Oracle confidence: the market's real confidence width (ppm of price)."""
    return price * params(f"{asset}-PERP").oracle_conf_ppm // 1_000_000


def set_prices(svm, ex: Exchange, prices: dict[str, int], slot: int, ts: int) -> None:
    """Publish new oracle prices (1e6) at `slot`/`ts`. Keys: "SOL", "BTC", "ETH" or market names.

    Call at least every few slots: the program calls an oracle stale for the AMM after 10.
    USDC's oracle, where it has one, is republished at $1 with them.
    """
    _publish(svm, ex.oracles, prices, slot, ts)


def _publish(svm, oracles: dict[str, Pubkey], prices: dict[str, int], slot: int, ts: int) -> None:
    pinned = {"USDC": USDC_PRICE} if "USDC" in oracles else {}
    for key, price in {**prices, **pinned}.items():
        asset = asset_of(key)
        conf = USDC_CONF if asset == "USDC" else conf_for(asset, price)
        oracle.write(svm, oracles[asset], price, conf, slot, ts)


def oracle_prices(svm, ex: Exchange) -> dict[str, int]:
    """The price each oracle publishes now, by asset."""
    return {a: oracle.decode(bytes(svm.get_account(pk).data)).price for a, pk in ex.oracles.items()}


def refresh_oracles(svm, ex: Exchange, slot: int, ts: int) -> None:
    """Republish every oracle's current price at a new slot (keeps them fresh without moving them)."""
    set_prices(svm, ex, oracle_prices(svm, ex), slot, ts)


# -- bootstrap --------------------------------------------------------------------------------

def bootstrap(svm, admin: Keypair, prices: dict[str, int] | None, now_ts: int, quote_oracle: str = "account") -> Exchange:
    """Create the exchange in `svm` (with the Drift program already loaded) and return its map.

    `prices` maps "SOL", "BTC", "ETH" to 1e6 prices (default: the specs' reference prices).
    `now_ts` should be the ledger clock's unix time; the clock's slot is used as is.
    `quote_oracle` is one of QUOTE_ORACLES.
    """
    if quote_oracle not in QUOTE_ORACLES:
        raise ValueError(f"quote_oracle {quote_oracle!r}: one of {', '.join(QUOTE_ORACLES)}")
    oracles = dict(ORACLES) if quote_oracle == "account" else {a: k for a, k in ORACLES.items() if a != "USDC"}
    prices = {asset_of(k): v for k, v in (prices or reference_prices()).items()}
    missing = [a for a in ASSETS if a not in prices]
    if missing:
        raise ValueError(f"bootstrap needs a start price for {', '.join(missing)}")
    slot = svm.get_clock().slot
    pid = DRIFT_PROGRAM_ID
    state = addresses.get_state_public_key(pid)
    signer = addresses.get_drift_client_signer_public_key(pid)

    svm.airdrop(admin.pubkey(), ADMIN_LAMPORTS)
    _write_mint(svm, USDC_MINT, admin.pubkey(), USDC_DECIMALS)
    if svm.get_account(SOL_MINT) is None:
        _write_mint(svm, SOL_MINT, None, SOL_DECIMALS)
    _publish(svm, oracles, prices, slot, now_ts)

    send(svm, admin, [
        ix("initialize", accounts={
            "admin": admin.pubkey(), "state": state, "quote_asset_mint": USDC_MINT, "drift_signer": signer,
            "rent": RENT, "system_program": SYSTEM_PROGRAM_ID, "token_program": TOKEN_PROGRAM_ID}),
        # Mainnet makes a taker wait 10 slots before the AMM may fill it; with few takers here
        # the AMM must backstop place_and_take at once, or a limit taker with no maker fails.
        ix("update_perp_auction_duration", MIN_PERP_AUCTION_DURATION, accounts={"admin": admin.pubkey(), "state": state}),
    ])

    markets: dict[str, Market] = {}
    for i, (name, mint, decimals) in enumerate((("USDC", USDC_MINT, USDC_DECIMALS), ("SOL", SOL_MINT, SOL_DECIMALS))):
        vault = addresses.get_spot_market_vault_public_key(pid, i)
        _write_token_account(svm, vault, mint, signer)
        _write_token_account(svm, addresses.get_insurance_fund_vault_public_key(pid, i), mint, signer)
        oracle_key, source = (oracles[name], "Pyth") if name in oracles else (Pubkey.default(), "QuoteAsset")
        markets[name] = Market(name, "spot", i, addresses.get_spot_market_public_key(pid, i),
                               oracle_key, source, mint, vault)
    for name in PERPS:
        i = spec(name).market_index
        markets[name] = Market(name, "perp", i, addresses.get_perp_market_public_key(pid, i),
                               ORACLES[asset_of(name)], "Pyth")
    ex = Exchange(pid, state, signer, admin, USDC_MINT, markets, oracles)

    fee_tier = decode(svm.get_account(state).data).perp_fee_structure.fee_tiers[0]
    for name in PERPS:
        _write_perp(svm, ex, markets[name], prices[asset_of(name)], fee_tier.fee_numerator, slot, now_ts)
    pnl_pools = PNL_POOL * len(PERPS)
    send(svm, admin, [mint_usdc_ix(ex, markets["USDC"].vault, pnl_pools)])
    _write_spot(svm, ex, markets["USDC"], PRICE_PRECISION, now_ts, deposits=pnl_pools)
    _write_spot(svm, ex, markets["SOL"], prices["SOL"], now_ts)

    st = as_fields(decode(svm.get_account(state).data))
    put(st, number_of_markets=len(PERPS), number_of_spot_markets=2)
    _set_data(svm, state, encode("State", st))
    return ex


def _set_data(svm, address: Pubkey, data: bytes, owner: Pubkey = DRIFT_PROGRAM_ID) -> None:
    old = svm.get_account(address)
    lamports = max(old.lamports if old else 0, _rent(svm, len(data)))
    svm.set_account(address, Account(lamports, data, owner, False, 0))


def _scaled_usdc(amount: int) -> int:
    """A USDC token amount as a spot balance (SPOT_BALANCE_PRECISION at cumulative interest 1.0)."""
    return amount * 10 ** (19 - USDC_DECIMALS) // CUMULATIVE_INTEREST


def _oracle_data(price: int, conf: int, now_ts: int) -> dict:
    return put(blank("HistoricalOracleData"), last_oracle_price=price, last_oracle_conf=conf, last_oracle_delay=0,
               last_oracle_price_twap=price, last_oracle_price_twap5min=price, last_oracle_price_twap_ts=now_ts)


def _write_perp(svm, ex: Exchange, m: Market, price: int, base_fee: int, slot: int, now_ts: int) -> None:
    s, p = spec(m.name), params(m.name)
    # A balanced constant-product curve centred on the oracle: equal reserves, peg = price.
    k = AMM_DEPTH_QUOTE * 10**9 // price
    amm = put(blank("AMM"),
              oracle=m.oracle, oracle_source=variant("OracleSource", "Pyth"),
              historical_oracle_data=_oracle_data(price, conf_for(asset_of(m.name), price), now_ts),
              base_asset_reserve=k, quote_asset_reserve=k, sqrt_k=k, terminal_quote_asset_reserve=k,
              ask_base_asset_reserve=k, ask_quote_asset_reserve=k, bid_base_asset_reserve=k, bid_quote_asset_reserve=k,
              concentration_coef=CONCENTRATION, peg_multiplier=price,
              min_base_asset_reserve=k * 1_000_000 // CONCENTRATION, max_base_asset_reserve=k * CONCENTRATION // 1_000_000,
              last_oracle_normalised_price=price, last_bid_price_twap=price, last_ask_price_twap=price,
              last_mark_price_twap=price, last_mark_price_twap5min=price, last_mark_price_twap_ts=now_ts,
              last_update_slot=slot, last_funding_rate_ts=now_ts, last_trade_ts=now_ts, funding_period=FUNDING_PERIOD,
              order_step_size=s.step_size, order_tick_size=s.tick_size, min_order_size=s.min_order_size,
              base_spread=p.base_spread, max_spread=p.max_spread,
              long_spread=p.base_spread // 2, short_spread=p.base_spread - p.base_spread // 2,
              max_fill_reserve_fraction=100, max_slippage_ratio=50,  # the program's defaults
              curve_update_intensity=100,  # repeg toward the oracle on every AMM update, as mainnet does
              amm_jit_intensity=0,  # no AMM JIT: makers' resting orders get the whole fill
              last_oracle_valid=True, total_fee_minus_distributions=REPEG_BUDGET)
    market = put(blank("PerpMarket"),
                 pubkey=m.pubkey, amm=amm, name=name_bytes(m.name), market_index=m.index,
                 pnl_pool=put(blank("PoolBalance"), scaled_balance=_scaled_usdc(PNL_POOL)),
                 status=variant("MarketStatus", "Active"), contract_type=variant("ContractType", "Perpetual"),
                 contract_tier=variant("ContractTier", CONTRACT_TIER[m.name]),
                 margin_ratio_initial=s.margin_ratio_initial, margin_ratio_maintenance=s.margin_ratio_maintenance,
                 liquidator_fee=LIQUIDATOR_FEE, if_liquidation_fee=IF_LIQUIDATION_FEE,  # mainnet's; the sim charges the same
                 unrealized_pnl_initial_asset_weight=0, unrealized_pnl_maintenance_asset_weight=SPOT_WEIGHT,
                 next_fill_record_id=1, next_funding_rate_record_id=1, next_curve_record_id=1,
                 # The program scales the state's tier-0 fee by (100 + fee_adjustment) / 100.
                 fee_adjustment=s.taker_fee * 100 // base_fee - 100 if base_fee else 0)
    _set_data(svm, m.pubkey, encode("PerpMarket", market))


def _write_spot(svm, ex: Exchange, m: Market, price: int, now_ts: int, deposits: int = 0) -> None:
    quote = m.index == 0
    decimals = USDC_DECIMALS if quote else SOL_DECIMALS
    if quote:
        # The program's own quote-market defaults: weights 1.0, step 1e-4 USDC, orders disabled.
        step, tick, min_size = 10 ** (2 + decimals - 6), 10, 10 ** (2 + decimals - 6)
        weights = dict(initial_asset_weight=SPOT_WEIGHT, maintenance_asset_weight=SPOT_WEIGHT,
                       initial_liability_weight=SPOT_WEIGHT, maintenance_liability_weight=SPOT_WEIGHT)
        rates = dict(optimal_utilization=700_000, optimal_borrow_rate=80_000, max_borrow_rate=1_500_000)
        fees = dict(liquidator_fee=0, if_liquidation_fee=5_000, imf_factor=0)
        conf = USDC_CONF
    else:
        s = spec(m.name)
        step, tick, min_size = s.step_size, s.tick_size, s.min_order_size
        weights = dict(initial_asset_weight=s.asset_weight,
                       maintenance_asset_weight=SPOT_WEIGHT - s.margin_ratio_maintenance,
                       initial_liability_weight=SPOT_WEIGHT + s.margin_ratio_initial,
                       maintenance_liability_weight=SPOT_WEIGHT + s.margin_ratio_maintenance)
        rates = dict(optimal_utilization=700_000, optimal_borrow_rate=60_000, max_borrow_rate=1_000_000)
        fees = dict(liquidator_fee=10_000, if_liquidation_fee=10_000, imf_factor=3_000)
        conf = conf_for(m.name, price)
    index_data = put(blank("HistoricalIndexData"), last_index_bid_price=price, last_index_ask_price=price,
                     last_index_price_twap=price, last_index_price_twap5min=price, last_index_price_twap_ts=now_ts)
    insurance = put(blank("InsuranceFund"), vault=addresses.get_insurance_fund_vault_public_key(ex.program_id, m.index),
               unstaking_period=THIRTEEN_DAYS, revenue_settle_period=3600)
    market = put(blank("SpotMarket"),
                 pubkey=m.pubkey, oracle=m.oracle, mint=m.mint, vault=m.vault, name=name_bytes(m.name),
                 historical_oracle_data=_oracle_data(price, conf, now_ts), historical_index_data=index_data,
                 revenue_pool=put(blank("PoolBalance"), market_index=m.index), insurance_fund=insurance,
                 deposit_balance=_scaled_usdc(deposits) if quote else 0, withdraw_guard_threshold=WITHDRAW_GUARD,
                 cumulative_deposit_interest=CUMULATIVE_INTEREST, cumulative_borrow_interest=CUMULATIVE_INTEREST,
                 last_interest_ts=now_ts, last_twap_ts=now_ts,
                 order_step_size=step, order_tick_size=tick, min_order_size=min_size,
                 next_fill_record_id=1, next_deposit_record_id=1, decimals=decimals, market_index=m.index,
                 orders_enabled=not quote, oracle_source=variant("OracleSource", m.oracle_source),
                 status=variant("MarketStatus", "Active"), asset_tier=variant("AssetTier", "Collateral"),
                 **weights, **rates, **fees)
    _set_data(svm, m.pubkey, encode("SpotMarket", market))
