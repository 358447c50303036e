"""Which Drift deployment, and which of its markets: resolved by name, read from the chain.

On devnet and mainnet driftpy's built-in lists give the market indexes; on localnet or any
other RPC URL the PerpMarket and SpotMarket accounts on the chain are the only truth. Either
way only the chosen markets' accounts are fetched (and, later, subscribed to): loading every
market is what runs users into RPC rate limits.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional
from urllib.parse import urlparse

import base58
from driftpy.addresses import get_perp_market_public_key, get_spot_market_public_key, get_state_public_key
from driftpy.constants.config import DRIFT_PROGRAM_ID
from driftpy.constants.perp_markets import devnet_perp_market_configs, mainnet_perp_market_configs
from driftpy.constants.spot_markets import devnet_spot_market_configs, mainnet_spot_market_configs
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.types import MemcmpOpts
from solders.pubkey import Pubkey

from keeper.drift_idl import decode, discriminator
from keeper.errors import UserError, unknown as unknown_name
from keeper.model import MarketSpec
from keeper.venues.drift import CUSTOM
from keeper.venues.drift.accounts import fee_tier, market_name, perp_spec, spot_spec
from keeper.venues.drift.endpoints import CLUSTERS, MAINNET_GENESIS, parse_urls, redact
from keeper.venues.drift.sender import is_parser_panic, rpc_fault

URLS = {
    "devnet": "https://api.devnet.solana.com",
    "mainnet": "https://api.mainnet-beta.solana.com",
    "localnet": "http://127.0.0.1:8899",
}
QUOTE_SPOT_INDEX = 0  # USDC: collateral and margin are counted in it


@dataclass(frozen=True, slots=True)
class Network:
    name: str  # devnet, mainnet, localnet, or the (redacted) URL
    urls: tuple[str, ...]  # the RPC endpoints, in order of preference
    env: str  # driftpy's env: "devnet" or "mainnet" (any custom URL runs mainnet's program id)
    builtin: bool  # driftpy's market lists apply
    genesis: Optional[str] = None  # the endpoints' genesis hash, once asked (see classified)

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def is_mainnet(self) -> bool:
        return self.name == "mainnet" or self.genesis == MAINNET_GENESIS


def resolve(network: str, rpc: Optional[str] = None) -> Network:
    """--network names the deployment (what to expect of it); --rpc, when given, its endpoints.
    A URL in --network is a deployment of one endpoint."""
    urls = parse_urls(rpc) if rpc else None
    if network in ("devnet", "mainnet"):
        return Network(network, urls or (URLS[network],), network, True)
    if network == "localnet":
        return Network("localnet", urls or (URLS["localnet"],), "mainnet", False)
    if network == CUSTOM and urls:
        return Network(redact(urls[0]), urls, "mainnet", False)
    if urlparse(network).scheme not in ("http", "https") or not urlparse(network).hostname:
        raise UserError(f"--network {redact(network)!r}: use devnet, mainnet, localnet or an http(s) RPC URL")
    if urls:
        raise UserError("--network URL and --rpc: give the endpoints in --rpc alone, or one URL in --network")
    return Network(redact(network), (network,), "mainnet", False)


def classified(network: Network, genesis: str) -> Network:
    """The network as its endpoints' genesis hash says it is. Endpoints serving mainnet-beta or
    devnet are that deployment whatever their URL (its guards and market lists apply); a
    --network devnet or mainnet served by another chain is refused."""
    cluster = CLUSTERS.get(genesis)
    if network.name in ("devnet", "mainnet") and cluster != network.name:
        raise UserError(f"--network {network.name}: the RPC endpoints serve {cluster or 'another chain'} "
                        f"(genesis hash {genesis}), not {network.name}")
    if cluster is not None:
        return Network(cluster, network.urls, cluster, True, genesis)
    return replace(network, genesis=genesis)


@dataclass(frozen=True, slots=True)
class DriftMarket:
    spec: MarketSpec
    pubkey: Pubkey
    oracle: Pubkey
    oracle_source: object  # driftpy OracleSource variant


@dataclass(frozen=True, slots=True)
class Deployment:
    """What the keeper needs to know of the exchange before its first tick."""

    network: Network
    markets: dict[str, DriftMarket]  # the chosen ones, by name
    quote: DriftMarket  # USDC spot, always loaded
    usdc_mint: Pubkey
    available: tuple[str, ...] = ()  # every market name the deployment has

    def by_index(self) -> dict[tuple[str, int], str]:
        return {(m.spec.kind, m.spec.market_index): name for name, m in self.markets.items()}


async def _fetch(connection: AsyncClient, keys: list[Pubkey]) -> list[Optional[bytes]]:
    reply = await connection.get_multiple_accounts(keys, encoding="base64")
    return [bytes(a.data) if a is not None else None for a in reply.value]


async def all_of(connection: AsyncClient, account_type: str) -> list:
    reply = await connection.get_program_accounts(
        DRIFT_PROGRAM_ID, encoding="base64",
        filters=[MemcmpOpts(offset=0, bytes=base58.b58encode(discriminator(account_type)).decode())])
    return [decode(bytes(a.account.data)) for a in reply.value]


def builtin_indexes(env: str) -> tuple[dict[str, int], dict[str, int]]:
    perps = devnet_perp_market_configs if env == "devnet" else mainnet_perp_market_configs
    spots = devnet_spot_market_configs if env == "devnet" else mainnet_spot_market_configs
    return {c.symbol: c.market_index for c in perps}, {c.symbol: c.market_index for c in spots}


async def load_deployment(connection: AsyncClient, network: Network, names: list[str]) -> Deployment:
    """Read the State and the chosen markets. Unknown names are a UserError listing what exists; an
    RPC that fails or answers nonsense (accounts that don't decode as Drift's) is a UserError too."""
    try:
        return await _load_deployment(connection, network, names)
    except UserError:
        raise
    except BaseException as exc:
        if not (isinstance(exc, Exception) or is_parser_panic(exc)):  # cancelled, interrupted: not ours to word
            raise
        if isinstance(exc, (SolanaRpcException, TimeoutError)):  # no answer at all: say why, in the OS's words
            hint = "; is `keeper localnet` running?" if network.name == "localnet" else ""
            raise UserError(f"{network.name}: no answer from the RPC at {redact(network.url)} ({rpc_fault(exc)}){hint}") from None
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        raise UserError(f"{network.name}: cannot read the Drift deployment ({reason})") from None


async def _load_deployment(connection: AsyncClient, network: Network, names: list[str]) -> Deployment:
    state_data = (await _fetch(connection, [get_state_public_key(DRIFT_PROGRAM_ID)]))[0]
    if state_data is None:
        raise UserError(f"{network.name}: no Drift State account at this RPC; is the Drift program deployed there?")
    state = decode(state_data)
    perp_fees, spot_fees = fee_tier(state.perp_fee_structure), fee_tier(state.spot_fee_structure)

    if network.builtin:
        perp_index, spot_index = builtin_indexes(network.env)
        wanted_perps = {n: perp_index[n] for n in names if n in perp_index}
        wanted_spots = {n: spot_index[n] for n in names if n in spot_index}
        wanted_spots.setdefault("USDC", QUOTE_SPOT_INDEX)
        unknown = [n for n in names if n not in perp_index and n not in spot_index]
        available = list(perp_index) + list(spot_index)
        keys = [get_perp_market_public_key(DRIFT_PROGRAM_ID, i) for i in wanted_perps.values()]
        keys += [get_spot_market_public_key(DRIFT_PROGRAM_ID, i) for i in wanted_spots.values()]
        datas = await _fetch(connection, keys)
        perps = [decode(d) for d in datas[: len(wanted_perps)] if d is not None]
        spots = [decode(d) for d in datas[len(wanted_perps):] if d is not None]
    else:
        perps, spots = await all_of(connection, "PerpMarket"), await all_of(connection, "SpotMarket")
        available = [market_name(a) for a in perps + spots]
        unknown = [n for n in names if n not in available]
    if unknown:
        raise UserError(f"{network.name}: {unknown_name('market', unknown[0], available)}")

    markets: dict[str, DriftMarket] = {}
    for account in perps:
        name = market_name(account)
        markets[name] = DriftMarket(perp_spec(account, *perp_fees), account.pubkey, account.amm.oracle,
                                    account.amm.oracle_source)
    for account in spots:
        name = market_name(account)
        markets[name] = DriftMarket(spot_spec(account, *spot_fees), account.pubkey, account.oracle, account.oracle_source)
    quote = next((m for m in markets.values() if m.spec.kind == "spot" and m.spec.market_index == QUOTE_SPOT_INDEX), None)
    if quote is None:
        raise UserError(f"{network.name}: the Drift deployment has no quote spot market (index 0)")
    quote_account = next(a for a in spots if a.market_index == QUOTE_SPOT_INDEX)
    return Deployment(network, {n: markets[n] for n in names}, quote, quote_account.mint, tuple(available))
