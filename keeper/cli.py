"""The command line: run, strategies, replay, scorecard, archive verify and import, localnet, report, sessions,
fills, doctor.

Every problem the user can fix ends in one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys

from keeper.errors import UserError

LIVE_NETWORKS = "localnet, devnet, mainnet or an RPC URL"


def _live_options(parser: argparse.ArgumentParser, default_network: str) -> None:
    """Where and as whom: the same for run, init, deposit and status."""
    parser.add_argument("--network", default=None,
                        help=f"where: {'local (the embedded simulated exchange), ' if default_network == 'local' else ''}{LIVE_NETWORKS}"
                             f" (default {default_network}; with --rpc alone, whatever its endpoints serve)")
    parser.add_argument("--rpc", metavar="URL[,URL...]",
                        help="RPC endpoints in order of preference; the keeper fails over between them "
                             "(with --network devnet|mainnet|localnet: that deployment's endpoints)")
    parser.set_defaults(default_network=default_network)
    parser.add_argument("--keypair", help="Solana CLI keypair file (default: on localnet the wallet `keeper localnet` "
                                           "funds, data/localnet/wallet.json; elsewhere ~/.config/solana/id.json)")
    parser.add_argument("--subaccount", type=_positive_int, default=0, help="Drift subaccount id (default 0)")
    parser.add_argument("--subscription", choices=("websocket", "polling"), default="websocket",
                        help="how driftpy keeps accounts fresh (default websocket)")
    parser.add_argument("--yes-mainnet", action="store_true", help="confirm trading real money on mainnet")


def _where(args) -> None:
    """--network and --rpc together: --network names the deployment, --rpc its endpoints."""
    from keeper.venues.drift import CUSTOM

    if args.network is None:
        args.network = CUSTOM if args.rpc else args.default_network
    elif args.network == "local" and args.rpc:
        raise UserError("--rpc is for live networks; the local market has no RPC")
    elif args.network == CUSTOM and not args.rpc:
        raise UserError(f"--network {CUSTOM} needs --rpc URL[,URL...]")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        command = self.prog.removeprefix("keeper").strip()
        raise UserError(f"{command}: {message}" if command else message)


def _params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--param wants KEY=VALUE, got {pair!r}")
        params[key.strip()] = value
    return params


def _non_negative(kind: type, what: str):
    """An argparse type: a number of `kind`, at least zero (floats: above zero and finite)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value < 0 or (kind is float and not 0 < value < float("inf")):
            raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
        return value
    return parse


_positive_int = _non_negative(int, "a whole number")


def _fee(text: str):
    if text == "auto":
        return text
    return _positive_int(text)
_positive_float = _non_negative(float, "a number")


def _toxicity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"{text!r} must be from 0 to 1 (the share of informed takers)")
    return value


def _interval(text: str) -> float:
    value = _positive_float(text)
    if value > 86_400:
        raise argparse.ArgumentTypeError(f"{text!r} seconds is more than a day")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1 to 65535)")
    return value


def _queue_models() -> tuple[str, ...]:
    from keeper.venues.sim.queue import QUEUE_MODELS

    return tuple(QUEUE_MODELS)


def _latency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: latency is a whole number of slots, 0 or more")
    return value


def _quote_ttl(text: str) -> int:
    from keeper.reconcile import QUOTE_TTL_BOUNDS

    low, high = QUOTE_TTL_BOUNDS
    value = _positive_int(text)
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: a quote TTL is {low} to {high} seconds")
    return value


@functools.cache
def parser() -> argparse.ArgumentParser:
    """The command line, made once a process: it is the same every time, and argparse's
    translation lookups make building it cost tens of milliseconds (tests and bench/ call main many times)."""
    top = _Parser(prog="keeper", description="A market-making keeper for Drift Protocol v2.")
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="make markets (default: on the embedded local market)")
    _live_options(run, "local")
    run.add_argument("--dry-run", action="store_true", help="live networks: build, sign and simulate every transaction, send none")
    run.add_argument("--post-only", choices=("must", "try"), default="must",
                     help="live networks: MustPostOnly (rejected if it would cross) or TryPostOnly (skipped) (default must)")
    run.add_argument("--priority-fee", default="auto", type=_fee,
                     help="micro-lamports per compute unit, or auto (recent fees on our accounts) (default auto)")
    run.add_argument("--priority-fee-cap", type=_positive_int, default=20_000, help="most that auto pays (default 20000)")
    run.add_argument("--strategy", help="strategy name (skips the picker); see `keeper strategies`")
    run.add_argument("--param", action="append", metavar="KEY=VALUE", help="strategy parameter (repeatable)")
    run.add_argument("--markets", help="comma-separated market names (default: the config file's, else "
                                       "SOL-PERP,BTC-PERP,ETH-PERP)")
    run.add_argument("--config", metavar="TOML", help="strategy, parameters, per-market overrides, markets and risk "
                                                     "from a file (see README); --param and --markets override it")
    run.add_argument("--save-config", metavar="TOML", help="write the chosen strategy, parameters, markets and risk "
                                                          "to a file for --config, then run")
    run.add_argument("--ticks", type=_positive_int, help="stop after N ticks (default: run until Ctrl-C)")
    run.add_argument("--fast", action="store_true", help="run ticks back to back on simulated time")
    run.add_argument("--on-stop", choices=("cancel", "flatten"), default="cancel",
                     help="on Ctrl-C, SIGTERM or the end of --ticks: cancel our orders (default), or first close "
                          "our positions with reduce-only IOC orders within the risk limits, then cancel")
    run.add_argument("--interval", type=_interval, default=1.0, help="seconds per tick (default 1, at most a day)")
    run.add_argument("--quote-ttl", type=_quote_ttl, default=30, metavar="SECONDS",
                     help="every order expires this long after it is placed, and is refreshed before (5 to 3600, default 30)")
    run.add_argument("--seed", type=_positive_int, help="random seed of the local market (default: a fresh one, recorded)")
    run.add_argument("--price-path", metavar="CSV", help="oracle path: CSV of timestamp,price (first market absolute, others relative)")
    run.add_argument("--toxicity", type=_toxicity, metavar="X",
                     help="local market: share of takers who know the next oracle move, 0 to 1 (default 0.3, see README)")
    run.add_argument("--archive-dir", default="data/archived", help="parent folder of the session folder (default data/archived)")
    run.add_argument("--risk", metavar="TOML", help="risk limits file (default: the built-in limits; see README)")
    run.add_argument("--metrics-port", type=_port, metavar="PORT",
                     help="serve Prometheus /metrics and a /health check on 127.0.0.1:PORT")
    run.add_argument("--health-stale-after", type=_positive_float, metavar="SECONDS",
                     help="/health turns 503 when no tick has completed for this long (default: 5 intervals, at least 30 s)")

    sub.add_parser("strategies", help="list the strategies, their descriptions and parameters")

    replay = sub.add_parser("replay", help="replay an archived session through a strategy")
    replay.add_argument("session", metavar="SESSION_DIR")
    replay.add_argument("--strategy", help="strategy to replay (default: the recorded one)")
    replay.add_argument("--param", action="append", metavar="KEY=VALUE", help="strategy parameter (repeatable)")
    replay.add_argument("--verify", action="store_true", help="check that the recorded strategy reproduces every recorded plan")
    replay.add_argument("--json", metavar="FILE", help="also write the summary to FILE as JSON")
    replay.add_argument("--fill-model", default="l3_fifo", choices=_queue_models(), metavar="MODEL",
                        help=f"what-if queue model: {', '.join(_queue_models())} (default l3_fifo: exact with an "
                             f"archived L3 book, risk_averse with only L2)")
    replay.add_argument("--latency-slots", type=_latency, default=1, metavar="N",
                        help="slots from sending an order or cancel to its landing (default 1)")
    replay.add_argument("--archive-dir", metavar="DIR",
                        help="what-if only: also archive the replay as a session folder under DIR (for keeper report, fills)")

    sweep = sub.add_parser("sweep", help="run a grid of strategy parameters through the what-if replay of sessions")
    sweep.add_argument("sessions", nargs="+", metavar="SESSION_DIR")
    sweep.add_argument("--strategy", help="the strategy to sweep (see `keeper strategies`)")
    sweep.add_argument("--grid", action="append", metavar="KEY=V1,V2,...", help="a parameter and its values (repeatable)")
    sweep.add_argument("--walk-forward", metavar="TRAIN:TEST",
                       help="rolling windows of TRAIN then TEST snapshots: the best train point runs out of sample")
    sweep.add_argument("--rank", default="total_pnl_usd", choices=("total_pnl_usd", "sharpe"),
                       help="the figure that picks the best point (default total_pnl_usd)")
    sweep.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1,
                       help="replays at once (default: the CPU count)")
    sweep.add_argument("--backend", choices=("process", "ray"), default="process",
                       help="process: a local pool (default); ray: a local Ray instance, or --ray-address")
    sweep.add_argument("--ray-address", metavar="ADDRESS", help="an existing Ray cluster (ray: --backend ray)")
    sweep.add_argument("--fill-model", default="l3_fifo", choices=_queue_models(), metavar="MODEL",
                       help="queue model of the replays (as keeper replay; default l3_fifo)")
    sweep.add_argument("--latency-slots", type=_latency, default=1, metavar="N", help="as keeper replay (default 1)")
    sweep.add_argument("--out", required=True, metavar="DIR", help="results.csv, results.json and the heatmap go here")

    card = sub.add_parser("scorecard", help="score strategies side by side on fixed, seeded scenarios")
    card.add_argument("--strategy", default="all", help="a strategy name, or all (default all)")
    card.add_argument("--param", action="append", metavar="KEY=VALUE",
                      help="strategy parameter, for every chosen strategy that has it (repeatable)")
    card.add_argument("--scenarios", metavar="LIST", help="comma-separated, of calm, trend, crash, real "
                                                          "(default all four; with --price-path only the path)")
    card.add_argument("--price-path", metavar="CSV", help="also score on this timestamp,price path (scenario 'path')")
    card.add_argument("--seeds", type=_positive_int, default=5, help="seeds per scenario, 1 to N (default 5)")
    card.add_argument("--real-data", metavar="DIR", help="the real DLOB L3 snapshots folder (default "
                                                         "../shared/data/real/drift_dlob_l3_snapshots_2023-12)")
    card.add_argument("--json", metavar="FILE", required=True, help="write the scorecard to FILE as JSON")
    card.add_argument("--png", metavar="FILE", required=True, help="write the bar charts to FILE (PNG)")

    localnet = sub.add_parser("localnet", help="run the real Drift program on a local SVM behind a Solana JSON-RPC endpoint")
    localnet.add_argument("--drift-program", metavar="PATH",
                          help="the Drift program binary (default: $DRIFT_PROGRAM_SO, else ~/.cache/drift-keeper/drift.so)")
    localnet.add_argument("--port", type=_positive_int, default=8899, help="JSON-RPC port; the websocket takes the next (default 8899)")
    localnet.add_argument("--slot-ms", type=_positive_int, default=400, help="milliseconds per slot (default 400)")
    localnet.add_argument("--price-path", metavar="CSV", help="oracle path: CSV of timestamp,price (SOL absolute, BTC and ETH relative)")
    localnet.add_argument("--fund", metavar="KEYPAIR", help="keypair to fund with SOL and USDC (default: data/localnet/wallet.json, created once)")
    localnet.add_argument("--seed", type=_positive_int, default=0, help="seed of the price walk and background flow (default 0)")
    localnet.add_argument("--quote-oracle", choices=("account", "default"), default="account",
                          help="how USDC is priced: a Pyth account pinned at $1 as on mainnet (default), or "
                               "QuoteAsset at the default pubkey as in the program's own tests")

    init = sub.add_parser("init", help="create the Drift user (and user stats) for the keypair, if missing")
    _live_options(init, "localnet")
    init.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    deposit = sub.add_parser("deposit", help="move collateral from the wallet into the Drift user")
    _live_options(deposit, "localnet")
    deposit.add_argument("amount", metavar="AMOUNT", help="amount in the market's units, e.g. 1000 or 0.5")
    deposit.add_argument("--market", default="USDC", help="spot market to deposit into (default USDC)")
    status = sub.add_parser("status", help="collateral, positions, open orders and risk state of the Drift user")
    _live_options(status, "localnet")
    status.add_argument("--archive-dir", default="data/archived", help="where to find the keeper's sessions (default data/archived)")

    fit = sub.add_parser("fit", help="fit a strategy's model on archived sessions (ev_maker's fill model)")
    fit.add_argument("strategy", metavar="STRATEGY", help="the strategy whose model to fit: ev_maker")
    fit.add_argument("sessions", metavar="SESSION_DIR", nargs="+")
    fit.add_argument("--out", metavar="MODEL", required=True, help="the model file to write (JSON)")
    fit.add_argument("--horizon-ticks", type=_positive_int, default=5,
                     help="a fill's value is taken against the oracle this many snapshots later (default 5)")

    archive = sub.add_parser("archive", help="archive tools")
    archive_sub = archive.add_subparsers(dest="archive_command", required=True, parser_class=_Parser)
    verify = archive_sub.add_parser("verify", help="validate every archived document against the schemas")
    verify.add_argument("session", metavar="SESSION_DIR")
    imp = archive_sub.add_parser("import", help="make a session from market data recorded elsewhere (Tardis.dev CSVs)")
    imp.add_argument("out", metavar="OUT_DIR", help="the session folder to create (absent or empty)")
    imp.add_argument("--format", choices=("tardis",), required=True, help="the files' format: tardis (Tardis.dev CSV)")
    imp.add_argument("--book", required=True, metavar="FILE", help="book_snapshot_25 or book_snapshot_5 CSV, plain or .gz")
    imp.add_argument("--trades", required=True, metavar="FILE", help="trades CSV, plain or .gz")
    imp.add_argument("--exchange", help="the files' exchange column (default: the first row's)")
    imp.add_argument("--symbol", help="the files' symbol column (default: the first row's); also the market, without --market")
    imp.add_argument("--market", help="the Drift market the session is of (default: --symbol)")
    imp.add_argument("--tick-size", metavar="X", help="price tick in USD, e.g. 0.0001 (default: the market's)")
    imp.add_argument("--step-size", metavar="Y", help="size step in base units, e.g. 0.01 (default: the market's)")
    imp.add_argument("--every-ms", type=_positive_int, default=0, metavar="N",
                     help="at most one snapshot per N ms of data (default 0: one per book row)")

    report = sub.add_parser("report", help="plot a session: prices and our quotes, fills, inventory, PnL, drawdown")
    report.add_argument("session", metavar="SESSION_DIR")
    report.add_argument("--out", metavar="FILE", help="a .png, or an .html page with the plot and the summary "
                                                      "(default SESSION_DIR/report.png)")
    sessions = sub.add_parser("sessions", help="list past sessions, newest first")
    sessions.add_argument("--archive-dir", default="data/archived", help="where the sessions are (default data/archived)")
    fills = sub.add_parser("fills", help="every fill of a session, in human units")
    fills.add_argument("session", metavar="SESSION_DIR")
    fills.add_argument("--csv", metavar="FILE", help="write them to FILE as CSV instead of printing a table")
    doctor = sub.add_parser("doctor", help="check the set-up: Python, Node, the venv, the SDK, the Drift binary, keypairs")
    doctor.add_argument("--keypair", help="also check this keypair file")
    return top


def _default_keypair(args) -> None:
    """The localnet wallet on localnet (the one `keeper localnet` creates and funds), else the Solana CLI's."""
    if args.command not in ("run", "init", "deposit", "status") or args.keypair is not None:
        return
    from keeper.wallet import DEFAULT_KEYPAIR, LOCALNET_WALLET

    network = args.network if args.network is not None else getattr(args, "default_network", None)
    args.keypair = str(LOCALNET_WALLET) if network == "localnet" else DEFAULT_KEYPAIR


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        if hasattr(args, "default_network"):
            _where(args)
        _default_keypair(args)
        if args.command == "run":
            from keeper.run import run_command

            return run_command(args, _params(args.param), argv if argv is not None else sys.argv[1:])
        if args.command == "strategies":
            from keeper.ui.listing import print_strategies

            print_strategies()
            return 0
        if args.command == "replay":
            from keeper.replay import replay_command

            return replay_command(args, _params(args.param), argv if argv is not None else sys.argv[1:])
        if args.command == "sweep":
            from keeper.research.sweep import sweep_command

            return sweep_command(args)
        if args.command == "scorecard":
            from keeper.research.scorecard import scorecard_command

            return scorecard_command(args, _params(args.param))
        if args.command in ("init", "deposit", "status"):
            from keeper import account

            return getattr(account, f"{args.command}_command")(args)
        if args.command == "localnet":
            from keeper.localnet.command import Options, localnet_command

            return localnet_command(Options(args.drift_program, args.port, args.slot_ms, args.price_path, args.fund, args.seed,
                                            args.quote_oracle))
        if args.command == "fit":
            from keeper.ev_model import fit_command

            return fit_command(args)
        if args.command == "archive" and args.archive_command == "verify":
            from keeper.archive.verify import format_report, verify_session
            from keeper.ui.progress import Progress

            report = verify_session(args.session, progress=lambda total: Progress("verify", total, "snapshots"))
            print(format_report(report))
            return 0 if report.ok else 1
        if args.command == "archive" and args.archive_command == "import":
            from keeper.archive.importer import import_command

            return import_command(args, argv if argv is not None else sys.argv[1:])
        if args.command in ("report", "sessions", "fills", "doctor"):
            from importlib import import_module

            return getattr(import_module(f"keeper.ops.{args.command}"), f"{args.command}_command")(args)
        return 2
    except UserError as exc:
        print(f"keeper: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("keeper: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
