"""`keeper init`, `keeper deposit`, `keeper status`: the Drift user the keeper trades from."""
from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from decimal import Decimal, InvalidOperation

from driftpy.addresses import get_user_account_public_key, get_user_stats_account_public_key
from driftpy.constants.config import DRIFT_PROGRAM_ID
from driftpy.constants.spot_markets import WRAPPED_SOL_MINT
from spl.token.instructions import get_associated_token_address

from keeper.errors import UserError
from keeper.ui.units import usd
from keeper.venues.drift.accounts import keeper_orders, market_name, open_orders
from keeper.venues.drift.connect import connection, open_client, open_network, sender_config
from keeper.venues.drift.faucet import token_balance, top_up
from keeper.venues.drift.sender import TxSender


# Native SOL kept back from a SOL deposit: the wrapped account's rent (driftpy adds 0.01 SOL)
# and transaction fees.
SOL_FEE_RESERVE = 20_000_000


def _ask(question: str, yes: bool) -> None:
    if yes:
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError(f"{question.rstrip('?')}: there is no terminal to ask; pass --yes")
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise UserError("not confirmed; nothing was done")


def _sender(client, wallet, args) -> TxSender:
    return TxSender(client.connection, wallet, sender_config(args))


@contextlib.asynccontextmanager
async def _drift_user(args, markets: list[str], *, need_user: bool = True, changes_funds: bool = True):
    """Network, wallet and a subscribed DriftClient, closed afterwards; mainnet is confirmed
    first by the commands that move funds."""
    conn = connection(args)
    network, pool, wallet = await open_network(conn, args.yes_mainnet, confirm=changes_funds)
    client, deployment = await open_client(conn, network, pool, wallet, markets, need_user=need_user)
    try:
        yield conn, network, wallet, client, deployment
    finally:
        await client.unsubscribe()
        await client.connection.close()


# -- init -----------------------------------------------------------------------------------------
def init_command(args) -> int:
    return asyncio.run(_init(args))


async def _init(args) -> int:
    async with _drift_user(args, [], need_user=False) as (conn, network, wallet, client, _):
        user = get_user_account_public_key(DRIFT_PROGRAM_ID, wallet.pubkey(), conn.subaccount)
        stats = get_user_stats_account_public_key(DRIFT_PROGRAM_ID, wallet.pubkey())
        have_user, have_stats = [(await client.connection.get_account_info(k)).value is not None for k in (user, stats)]
        if have_user:
            print(f"Drift user {user} (subaccount {conn.subaccount}) already exists for {wallet.pubkey()} on {network.name}.")
            return 0
        _ask(f"Create the Drift user for {wallet.pubkey()} (subaccount {conn.subaccount}) on {network.name}?", args.yes)
        ixs = [] if have_stats else [client.get_initialize_user_stats()]
        ixs.append(client.get_initialize_user_instructions(conn.subaccount, "drift-keeper" if conn.subaccount == 0
                                                           else f"drift-keeper {conn.subaccount}"))
        sent = await _sender(client, wallet, args).send(ixs, "initialize user")
        if not sent.ok:
            raise UserError(f"creating the Drift user failed: {sent.describe()}")
        print(f"Created Drift user {user} (subaccount {conn.subaccount}) for {wallet.pubkey()} on {network.name}.")
        return 0


# -- deposit --------------------------------------------------------------------------------------
def amount_in_units(text: str, decimals: int) -> int:
    """"12.5" USDC -> 12_500_000; more decimals than the token has is an error, not a rounding."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise UserError(f"deposit amount {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise UserError(f"deposit amount must be a positive number, not {text!r}")
    units = value * 10**decimals
    if units != units.to_integral_value():
        raise UserError(f"deposit amount {text} has more than {decimals} decimals")
    return int(units)


def deposit_command(args) -> int:
    return asyncio.run(_deposit(args))


async def _deposit(args) -> int:
    names = [args.market] if args.market != "USDC" else []
    async with _drift_user(args, names) as (conn, network, wallet, client, deployment):
        market = deployment.markets.get(args.market, deployment.quote)
        spot = client.get_spot_market_account(market.spec.market_index)
        amount = amount_in_units(args.amount, spot.decimals)
        source = get_associated_token_address(wallet.pubkey(), spot.mint)
        if network.name == "devnet" and args.market == "USDC":  # devnet USDC is free: mint what the wallet lacks
            minted = await top_up(_sender(client, wallet, args), spot.mint, amount)
            print(f"Minted {Decimal(minted) / 10**spot.decimals} USDC from Drift's devnet token faucet into {source}."
                  if minted else "The wallet already holds enough USDC; nothing minted from Drift's devnet token faucet.")
        if spot.mint == WRAPPED_SOL_MINT:
            # driftpy wraps native SOL into a fresh token account when handed the wallet itself
            source = wallet.pubkey()
            have = (await client.connection.get_balance(source)).value - SOL_FEE_RESERVE
        else:
            have = await token_balance(client.connection, source) or 0  # no token account: the wallet holds none
        if have < amount:
            raise UserError(f"the wallet's {args.market} account {source} holds {Decimal(have) / 10**spot.decimals}, "
                            f"less than {args.amount}")
        ixs = await client.get_deposit_collateral_ix(amount, market.spec.market_index, source, conn.subaccount)
        sent = await _sender(client, wallet, args).send(ixs, f"deposit {args.amount} {args.market}")
        if not sent.ok:
            raise UserError(f"the deposit failed: {sent.describe()}")
        print(f"Deposited {args.amount} {args.market} into subaccount {conn.subaccount} on {network.name}.")
        return 0


# -- status ---------------------------------------------------------------------------------------
def status_command(args) -> int:
    return asyncio.run(_status(args))


async def _status(args) -> int:
    # Read-only, so no mainnet confirmation; open_client subscribes to the markets the user holds.
    async with _drift_user(args, [], changes_funds=False) as (conn, network, wallet, client, _):
        user = client.get_user()
        account = user.get_user_account()
        names = {("perp", m.market_index): market_name(m) for m in client.get_perp_market_accounts()}
        names.update({("spot", m.market_index): market_name(m) for m in client.get_spot_market_accounts()})
        print(f"Drift user {client.get_user_account_public_key()} (subaccount {conn.subaccount}, "
              f"authority {wallet.pubkey()}) on {network.name}")
        print(f"  total collateral  {usd(int(user.get_total_collateral()))}")
        print(f"  free collateral   {usd(int(user.get_free_collateral()))}")
        # a perp gain counts 0 toward free collateral until settle_pnl moves it into USDC
        print(f"  unsettled PnL     {usd(int(user.get_unrealized_pnl(True)))}  (perps, funding in; "
              f"the keeper settles it every settle_pnl_s)")
        positions = [p for p in account.perp_positions if p.base_asset_amount]
        print(f"  perp positions    {len(positions) or 'none'}")
        for p in positions:
            name = names.get(("perp", p.market_index), f"perp {p.market_index}")
            print(f"    {name:<10} {p.base_asset_amount / 1e9:+.4f}  entry quote {usd(-p.quote_entry_amount)}")
        balances = [p for p in account.spot_positions if p.scaled_balance]
        print(f"  spot balances     {len(balances) or 'none'}")
        for p in balances:
            name = names.get(("spot", p.market_index), f"spot {p.market_index}")
            decimals = client.get_spot_market_account(p.market_index).decimals
            print(f"    {name:<10} {Decimal(user.get_token_amount(p.market_index)) / 10**decimals:+,f}")
        print(f"  risk state        {_risk_state(args.archive_dir, str(client.get_user_account_public_key()))}")
        orders = open_orders(account, names)
        ours = keeper_orders(orders)
        print(f"  open orders       {len(orders)} ({len(ours)} tagged by a keeper user_order_id)")
        now = int(time.time())
        for o in orders:
            where = f"oracle{o.oracle_offset / 1e6:+.4f}" if o.oracle_offset is not None else f"{o.price / 1e6:.4f}"
            print(f"    #{o.order_id:<6} uid {o.user_order_id:<3} {o.market:<10} {o.side} {o.remaining / 1e9:.4f} @ {where}"
                  f"{' post-only' if o.post_only else ''}  {_ttl(o.max_ts, now)}")
        return 0


def _ttl(max_ts: int, now: int) -> str:
    if not max_ts:
        return "no expiry"
    if max_ts < now:
        return f"expired {now - max_ts}s ago (no longer fillable)"
    return f"expires in {max_ts - now}s"


def _risk_state(archive_dir: str, user: str) -> str:
    """The risk gate's state in the newest session this user traded in: the gate lives in the
    keeper process, and its archive is where it leaves its state."""
    from pathlib import Path

    from keeper.archive.reader import open_session
    from keeper.model import Execution

    for folder in sorted(Path(archive_dir).glob("*/manifest.json"), reverse=True):
        try:
            session = open_session(folder.parent)
            if session.manifest.get("user") != user:
                continue
        except UserError:  # a damaged session folder is not this command's business
            continue
        summary = session.summary
        if summary is not None and "risk_state" in summary:
            reason = f" ({summary['risk_reason']})" if summary.get("risk_reason") else ""
            return f"{summary['risk_state']}{reason} when session {folder.parent.name} ended"
        last = None
        for record in session.records():
            if isinstance(record.value, Execution):
                last = record.value.risk_state
        return f"{last or 'ACTIVE'} in session {folder.parent.name} (running, or stopped without a summary)"
    return f"no session of this user under {archive_dir}"
