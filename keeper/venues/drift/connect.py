"""Opening a Drift deployment: RPC, keypair, markets, driftpy subscription, DLOB helper, sender."""
from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from typing import Optional

from driftpy.account_subscription_config import AccountSubscriptionConfig
from driftpy.accounts.bulk_account_loader import BulkAccountLoader
from driftpy.addresses import get_user_account_public_key
from driftpy.constants.config import DRIFT_PROGRAM_ID
from driftpy.types import OracleInfo
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair

from keeper.backoff import Backoff, unless_cancelled
from keeper.drift_idl import decode
from keeper.errors import UserError
from keeper.venues.drift.client import KeeperDriftClient
from keeper.venues.drift.endpoints import Endpoints, redact
from keeper.venues.drift import CUSTOM
from keeper.venues.drift.markets import Deployment, Network, classified, load_deployment, resolve
from keeper.venues.drift.sender import SendConfig, TxSender, is_parser_panic
from keeper.wallet import load_keypair, loose_permissions

log = logging.getLogger(__name__)
POLL_S = 1.0  # BulkAccountLoader counts its frequency in seconds


class SteadyLoader(BulkAccountLoader):
    """driftpy's polling loader, minus its failure mode: its loop dies on the first RPC error
    that isn't a timeout (a 429, a 5xx, a malformed answer), and every polled account (the
    oracles too) silently stops updating. This loop logs the error, backs off, and goes on."""

    def _start_loading(self):
        if self.task is None:
            self.task = asyncio.create_task(self._steady())

    async def _steady(self):
        backoff = Backoff(2 * self.frequency, 8 * self.frequency)
        while True:
            try:
                await self.load()
                backoff.reset()
            except Exception as exc:  # any answer at all must not end the polling
                # ...but a cancel must: the HTTP client can turn a cancel that lands mid-request
                # into a ReadError, and a loop that swallowed it would keep the process alive.
                unless_cancelled(exc)
                if not backoff.failures:
                    log.warning("driftpy account polling failed (%s: %s); retrying", type(exc).__name__, str(exc)[:120])
                backoff.failed()
            await asyncio.sleep(backoff.wait() or self.frequency)


@dataclass(frozen=True)
class Connection:
    """Where and as whom: shared by run, init, deposit and status."""

    network: str = "localnet"
    keypair: str = "~/.config/solana/id.json"
    subaccount: int = 0
    subscription: str = "websocket"  # or "polling"
    rpc: Optional[str] = None  # --rpc: the endpoints, comma-separated, in order of preference


def connection(args) -> Connection:
    return Connection(args.network, args.keypair, args.subaccount, args.subscription, getattr(args, "rpc", None))


async def open_network(conn: Connection, yes_mainnet: bool, confirm: bool = True
                       ) -> tuple[Network, Endpoints, Keypair]:
    """The endpoints, asked which chain they serve, then the mainnet guards if it is mainnet
    (whatever the URL): the confirmation (when `confirm`, for commands that trade or move
    funds) and the keypair-permission refusal. Returns the network as classified."""
    network = resolve(conn.network, conn.rpc)
    named = network.is_mainnet
    if confirm:  # --network mainnet: confirmed before anything goes out
        confirm_mainnet(network, yes_mainnet)
    # and so is a missing or broken keypair file (a loose one too, when mainnet by name)
    wallet = wallet_for(conn, network) if named else load_keypair(conn.keypair)
    pool = Endpoints(network.urls)
    try:
        try:
            genesis = await pool.classify()
        except UserError as exc:
            if not named:  # no chain to name: still say the keypair is loose
                wallet_for(conn, network)
            hint = "; is `keeper localnet` running?" if network.name == "localnet" else ""
            raise UserError(f"{network.name}: {exc}{hint}") from None
        network = classified(network, genesis)
        if not named:  # mainnet by its genesis hash, whatever the URL said, is mainnet
            if confirm:
                confirm_mainnet(network, yes_mainnet)
            wallet = wallet_for(conn, network)
    except BaseException:
        await pool.close()
        raise
    return network, pool, wallet


async def open_client(conn: Connection, network: Network, pool: Endpoints, wallet: Keypair, markets: list[str],
                      need_user: bool = True) -> tuple[KeeperDriftClient, Deployment]:
    """A DriftClient subscribed to the chosen markets, their oracles and our user only; all its
    traffic goes through `pool`'s endpoint in use. Closing its connection closes the pool."""
    rpc, deployment, held = await _read(conn, network, pool, wallet, markets, need_user)
    held_perps, held_spots = held or (set(), set())
    chosen = list(deployment.markets.values()) + [deployment.quote]
    # driftpy's collateral maths visits every perp and spot slot of the user, empty slots (which
    # say market 0) included, so those markets are loaded too; their oracles come with them.
    perps = sorted({0, *held_perps, *(m.spec.market_index for m in chosen if m.spec.kind == "perp")})
    spots = sorted({*held_spots, *(m.spec.market_index for m in chosen if m.spec.kind == "spot")})
    # A QuoteAsset market has no oracle account (Pubkey.default()); driftpy skips it and
    # KeeperDriftClient prices it at 1.0.
    oracles = {m.oracle: OracleInfo(m.oracle, m.oracle_source) for m in chosen}
    if conn.subscription == "polling":
        subscription = AccountSubscriptionConfig("polling", SteadyLoader(rpc, Confirmed, POLL_S))
    else:
        subscription = AccountSubscriptionConfig("websocket")
    client = KeeperDriftClient(
        rpc, wallet, env=network.env,
        market_lookup_tables=[],  # our sender builds plain v0 transactions; a custom chain has no tables anyway
        perp_market_indexes=perps, spot_market_indexes=spots, oracle_infos=list(oracles.values()),
        account_subscription=subscription, active_sub_account_id=conn.subaccount, sub_account_ids=[conn.subaccount],
    )
    if held is not None:
        await client.subscribe()
    else:
        await client.account_subscriber.subscribe()
    pool.start()
    return client, deployment


async def _read(conn: Connection, network: Network, pool: Endpoints, wallet: Keypair, markets: list[str],
                need_user: bool):
    """(the RPC client, the deployment with our markets, the perp and spot markets our user holds
    or None when it has no user account), read once; a chain that cannot be read, a market it lacks or a missing user is one line (UserError),
    with the client closed."""
    rpc = pool.client(Confirmed, timeout=10)
    user = get_user_account_public_key(DRIFT_PROGRAM_ID, wallet.pubkey(), conn.subaccount)
    try:
        deployment = await load_deployment(rpc, network, markets)
        info = (await rpc.get_account_info(user)).value
        held = None if info is None else _held_markets(info)
    except UserError:
        await rpc.close()
        raise
    except BaseException as exc:  # the RPC is down or answered nonsense: one line, not a traceback
        await rpc.close()
        if not (isinstance(exc, Exception) or is_parser_panic(exc)):
            raise
        raise UserError(f"{network.name}: cannot read the Drift deployment and our user at {pool.in_use} "
                        f"({type(exc).__name__}: {str(exc)[:160]})") from None
    if need_user and held is None:
        await rpc.close()
        raise UserError(f"no Drift user for {wallet.pubkey()} (subaccount {conn.subaccount}) on {network.name}; "
                        f"create it with `keeper init {_where(conn)}`")
    return rpc, deployment, held


async def check_ready(args, markets: list[str]) -> None:
    """What `keeper run` on a live network needs before it asks anything: a chain that answers,
    our keypair, our markets on it and our Drift user. A problem is one line (UserError), said
    before the strategy questions rather than after them; nothing stays open."""
    conn = connection(args)
    network, pool, wallet = await open_network(conn, args.yes_mainnet, confirm=False)
    rpc, _, _ = await _read(conn, network, pool, wallet, markets, need_user=True)
    await rpc.close()


def _where(conn: Connection) -> str:
    """The flags that name this deployment again, keys redacted."""
    if conn.rpc:
        urls = ",".join(redact(u) for u in conn.rpc.split(","))
        return f"--rpc {urls}" if conn.network == CUSTOM else f"--network {conn.network} --rpc {urls}"
    return f"--network {redact(conn.network)}"


def _held_markets(info) -> tuple[set[int], set[int]]:
    account = decode(bytes(info.data))
    return {p.market_index for p in account.perp_positions}, {p.market_index for p in account.spot_positions}


def sender_config(args, max_tx_per_s: float = SendConfig.max_tx_per_s) -> SendConfig:
    """From `keeper run`'s flags and risk limits; init and deposit have none and take the defaults."""
    default = SendConfig()
    fee = getattr(args, "priority_fee", default.priority_fee)
    return SendConfig(priority_fee=fee if fee == "auto" else int(fee),
                      fee_cap=getattr(args, "priority_fee_cap", default.fee_cap),
                      dry_run=getattr(args, "dry_run", default.dry_run), max_tx_per_s=max_tx_per_s)


def confirm_mainnet(network: Network, yes: bool) -> None:
    """Mainnet trades real money: it takes --yes-mainnet, or typing "mainnet" at a terminal."""
    if not network.is_mainnet or yes:
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("mainnet trades real money: pass --yes-mainnet to confirm")
    answer = input('This trades real money on Drift mainnet. Type "mainnet" to go on: ')
    if answer.strip() != "mainnet":
        raise UserError("not confirmed; nothing was done")


def wallet_for(conn: Connection, network: Network) -> Keypair:
    """The keypair; on mainnet (by name or by genesis hash) a file others can read is refused."""
    wallet = load_keypair(conn.keypair)
    if loose_permissions(conn.keypair):
        if network.is_mainnet:
            raise UserError(f"keypair {conn.keypair}: readable by group or others; `chmod 600` it before using it on mainnet")
        log.warning("keypair %s is readable by group or others; `chmod 600` it", conn.keypair)
    return wallet


async def open_drift_venue(args, markets: list[str], max_tx_per_s: float = SendConfig.max_tx_per_s):
    from keeper.venues.drift.dlob import DlobHelper
    from keeper.venues.drift.orderbook import BookUsers
    from keeper.venues.drift.reference import PythReference
    from keeper.venues.drift.watch import StreamWatch
    from keeper.venues.drift.venue import DriftVenue

    conn = connection(args)
    network, pool, wallet = await open_network(conn, args.yes_mainnet)
    client, deployment = await open_client(conn, network, pool, wallet, markets)
    helper = DlobHelper()
    try:
        await helper.start()
    except Exception as exc:
        await client.unsubscribe()
        await client.connection.close()
        raise UserError(f"the Node DLOB helper did not start ({exc}); run `npm ci` in the project folder") from None
    sender = TxSender(client.connection, wallet, sender_config(args, max_tx_per_s))
    reference = PythReference({name: (m.oracle, m.oracle_source) for name, m in deployment.markets.items()})
    book_users = BookUsers(client.connection, helper, subscription=conn.subscription)
    watch = StreamWatch(client, book_users) if conn.subscription == "websocket" else None
    if watch is not None:  # after a move to another endpoint the websockets follow it; HTTP does by itself
        pool.on_switch(watch.follow)
    return DriftVenue(deployment, client, sender, helper, book_users, reference,
                      post_only=args.post_only, endpoints=pool, watch=watch)
