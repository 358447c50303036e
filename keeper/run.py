"""`keeper run`: choose a strategy, open a session folder, run the loop, summarise."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import secrets
import shutil
import signal
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import strategies
from keeper.archive.writer import ArchiveError
from keeper.errors import UserError
from keeper.loop import FLATTEN, Loop
from keeper.model import QUOTE_PRECISION
from keeper.report import ReportObserver, format_summary
from keeper.risk import HALTED, RiskConfig, RiskGate, from_dict, read, recorded
from keeper.strategy_config import StrategyConfig, dumps, load, save
from keeper.ui.logs import FILE_ONLY, SessionLog
from strategies.base import source_sha256
from keeper.wallet import redact_argv

log = logging.getLogger("keeper")

COLLATERAL = 10_000 * QUOTE_PRECISION  # the local market's starting USDC


DEFAULT_MARKETS = "SOL-PERP,BTC-PERP,ETH-PERP"


def picks(name: str | None, raw_params: dict[str, str], interactive: bool, config: StrategyConfig | None) -> bool:
    """Whether the strategy comes from the picker: on a terminal, when no flag or config names it."""
    return interactive and config is None and not (name or raw_params)


def choose_strategy(name: str | None, raw_params: dict[str, str], interactive: bool, markets: list[str],
                    config: StrategyConfig | None = None) -> strategies.Strategy:
    """The strategy from the config file, the flags, or the picker; checked against the markets."""
    try:
        if config is not None:
            try:
                strategies.build(config.strategy, config.raw_params, markets=markets)
            except ValueError as exc:
                raise UserError(f"config file {config.source}: {exc}") from None
            return strategies.build(config.strategy, {**config.raw_params, **raw_params}, markets=markets)
        if not picks(name, raw_params, interactive, config):
            return strategies.build(name or strategies.DEFAULT, raw_params, markets=markets)
        from keeper.ui.picker import pick

        chosen, values = pick(strategies.discover(), markets)
        return strategies.build(chosen, values=values, markets=markets)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def versions() -> dict[str, str]:
    return {
        "keeper": metadata.version("drift-keeper"),
        "driftpy": metadata.version("driftpy"),
        "python": platform.python_version(),
    }


def json_params(strategy: strategies.Strategy) -> dict:
    """Parameter values as JSON: Decimals and per-market values as text, so they survive exactly."""
    params = {p.name: p for p in strategy.params}
    return {k: params[k].to_json(v) for k, v in strategy.values.items()}


def invocation() -> str:
    """How this user starts the keeper, so a printed command can be pasted as it is."""
    here = Path(sys.executable).parent / "keeper"
    on_path = shutil.which("keeper")
    if on_path and Path(on_path).resolve() == here.resolve():
        return "keeper"
    if here.exists():
        try:
            return str(here.relative_to(Path.cwd()))
        except ValueError:
            return str(here)
    return f"{sys.executable} -m keeper"


async def drive(loop: Loop, ticks: int | None) -> int:
    running = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        running.add_signal_handler(sig, loop.stop)
    # the kill switch: cancel everything and halt, recorded as such (a plain stop is not a halt)
    running.add_signal_handler(signal.SIGUSR1, lambda: (loop.risk.halt("kill switch: SIGUSR1"), loop.stop()))
    try:
        return await loop.run(ticks)
    finally:
        await loop.venue.close()


def toxicity_of(args) -> float:
    from keeper.venues.local import DEFAULT_TOXICITY

    return DEFAULT_TOXICITY if args.toxicity is None else args.toxicity


async def open_venue(args, markets: list[str], seed: int, price_path, interval_ms: int, risk: RiskConfig):
    """The local market, or a live Drift deployment (localnet, devnet, mainnet, an RPC URL).
    The risk file's markets are checked against the venue's before anything is sent."""
    where = f"risk file {args.risk}" if args.risk else f"config file {args.config} [risk]"
    if args.network == "local":
        from keeper.venues.local import LocalVenue
        from keeper.venues.local.specs import names

        risk.check_markets(names(), where)
        return LocalVenue(markets, seed=seed, price_path=price_path, interval_ms=interval_ms, collateral=COLLATERAL,
                          toxicity=toxicity_of(args))
    from keeper.venues.drift.connect import open_drift_venue

    venue = await open_drift_venue(args, markets, float(risk.account.max_tx_per_s))
    try:
        risk.check_markets(venue.deployment.available, where)
    except UserError:
        await venue.close()
        raise
    return venue


def liquidations(venue) -> int:
    """How often the simulated exchange liquidated us (live: the program does, and the tape shows it)."""
    return getattr(getattr(venue, "exchange", None), "liquidations", 0)


def open_metrics(args, report):
    """`--metrics-port`: Prometheus metrics and /health, served while the loop runs; opened
    before the venue, so a busy port is refused before anything connects."""
    if not args.metrics_port:
        return None
    from keeper.ops.metrics import MetricsServer

    try:
        stale_after = args.health_stale_after or max(30.0, 5 * args.interval)
        return MetricsServer(report, args.metrics_port, stale_after_s=stale_after)
    except OSError as exc:
        raise UserError(f"--metrics-port {args.metrics_port}: cannot listen on 127.0.0.1 "
                        f"({exc.strerror or exc})") from None


async def session(args, strategy, markets: list[str], seed, price_path, interval_ms: int, argv: list[str],
                  interactive: bool, risk_settings: dict, risk_config: RiskConfig):
    from keeper.archive.writer import SessionWriter
    from keeper.ui.live import make_views

    logs = SessionLog(interactive)  # from here on every record reaches keeper.log, the early ones once it opens
    report = ReportObserver()
    metrics = open_metrics(args, report)
    try:
        venue = await open_venue(args, markets, seed, price_path, interval_ms, risk_config)
    except BaseException:
        if metrics:
            metrics.close()
        raise
    if metrics and getattr(venue, "sender", None) is not None:  # the live venue: transaction landing times
        venue.sender.on_landing = metrics.on_landing
    local = args.network == "local"
    deployment = getattr(venue, "deployment", None)
    manifest = {
        # a live venue's network as its endpoints' genesis hash says, any URL in it redacted
        "network": deployment.network.name if deployment is not None else args.network,
        "strategy": strategy.name,
        "strategy_sha256": source_sha256(type(strategy)),
        "params": json_params(strategy),
        "seed": seed if local else None,
        "markets": markets,
        "interval_ms": interval_ms,
        "quote_ttl_s": args.quote_ttl,
        "price_path": str(Path(args.price_path).resolve()) if args.price_path else None,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "argv": ["keeper", *redact_argv(argv)],  # a key pasted where a path belongs is not archived
    }
    if local:
        manifest["collateral"] = COLLATERAL
        manifest["toxicity"] = toxicity_of(args)
    manifest["risk"] = recorded(risk_settings)
    if getattr(venue, "user", None):
        manifest["user"] = venue.user
    if deployment is not None and deployment.network.genesis:
        manifest["genesis_hash"] = deployment.network.genesis
    try:
        writer = SessionWriter.create(args.archive_dir, manifest)
    except BaseException:
        await venue.close()
        if metrics:
            metrics.close()
        raise
    logs.open_file(writer.path / "keeper.log")
    log.info("session %s: strategy %s %s on %s, %s", writer.path, strategy.name, manifest["params"], ",".join(markets),
             f"seed {seed}" if local else f"network {manifest['network']}")
    endpoints = getattr(venue, "endpoints", None)
    if endpoints is not None:
        log.info("rpc: %d endpoint(s); in use %s", len(endpoints.endpoints), endpoints.in_use)
    views = make_views(interactive, report, strategy.name, logs.screen, markets, fast=args.fast,
                       interval_s=args.interval, endpoint=(lambda: endpoints.in_use) if endpoints is not None else None)
    risk = RiskGate(risk_config)
    observers = (report, *([metrics] if metrics else []), *views)
    loop = Loop(venue, strategy, risk, writer, observers, interval_s=args.interval, fast=args.fast,
                kill_file=risk.config.account.kill_file, quote_ttl_s=args.quote_ttl, on_stop=args.on_stop)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(logs.capture())  # after the venue opened: a mainnet prompt must reach the terminal
            for view in views:
                stack.enter_context(view)
            if metrics:
                stack.callback(metrics.close, writer.path)
            cancelled = await drive(loop, args.ticks)
    finally:
        try:
            writer.close()
        except ArchiveError as exc:  # already logged and halted on when a record failed
            log.error("closing the archive: %s", exc)
    return writer, loop, report, cancelled


def run_command(args, raw_params: dict[str, str], argv: list[str]) -> int:
    from keeper.venues.local import load_price_path

    config = load(args.config, strategies.discover()) if args.config else None
    if config is not None and args.strategy:
        raise UserError(f"--strategy and --config {args.config} both name the strategy; drop one")
    if config is not None and config.risk is not None and args.risk:
        raise UserError(f"--risk and --config {args.config} both set the risk limits; drop one")
    chosen = args.markets or (",".join(config.markets) if config is not None and config.markets else DEFAULT_MARKETS)
    markets = [m.strip() for m in chosen.split(",") if m.strip()]
    if not markets:
        raise UserError("--markets needs at least one market name")
    if args.network != "local" and (args.price_path or args.seed is not None or args.fast or args.toxicity is not None):
        raise UserError("--price-path, --seed, --fast and --toxicity are for the local market; a live network has its own prices, clock and flow")
    price_path = load_price_path(args.price_path) if args.price_path else None
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if args.network != "local" and picks(args.strategy, raw_params, interactive, config):
        from keeper.venues.drift.connect import check_ready

        asyncio.run(check_ready(args, markets))  # a missing user or a chain that is down, said before the questions
    strategy = choose_strategy(args.strategy, raw_params, interactive, markets, config)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    interval_ms = max(1, round(args.interval * 1000))
    if config is not None and config.risk is not None:
        risk_settings, risk_where = config.risk, (f"risk file {config.risk_source}" if config.risk_source
                                                  else f"config file {args.config} [risk]")
    else:
        risk_settings, risk_where = (read(args.risk) if args.risk else {}), f"risk file {args.risk}"
    risk_config = from_dict(risk_settings, risk_where)  # a bad file is refused before anything starts
    if args.save_config:
        risk_path = args.risk or (config.risk_source if config is not None else None)
        save(args.save_config, dumps(strategy, markets, risk_settings or None, risk_path))
        print(f"config saved to {args.save_config}; run it again with: {invocation()} run --config {args.save_config}")
    writer, loop, report, cancelled = asyncio.run(
        session(args, strategy, markets, seed, price_path, interval_ms, argv, interactive, risk_settings, risk_config))

    summary = report.summary()
    if args.on_stop == FLATTEN:
        summary["on_stop"] = {"mode": FLATTEN, "ticks": loop.flatten_ticks, "left": loop.left}
    risk = loop.risk
    try:
        writer.finish({"ticks": loop.ticks, "skipped_ticks": loop.skipped, "skipped_reasons": dict(loop.skip_reasons),
                       "cancelled_on_shutdown": cancelled,
                       "snapshots_unarchived": loop.unarchived["write_snapshot"],
                       "liquidations": liquidations(loop.venue),
                       "risk_state": risk.state, "risk_reason": risk.reason,
                       "max_drawdown_quote": risk.drawdown.max_drawdown, **summary})
    except ArchiveError as exc:  # the disk that halted the run: the summary below is all there is
        print(f"keeper: summary.json not written: {exc}", file=sys.stderr)
    text = format_summary(summary)
    log.info("summary after %d ticks:\n%s", loop.ticks, text, extra=FILE_ONLY)  # stdout has it once, below
    skipped = f" ({loop.skipped} more skipped, nothing quoted)" if loop.skipped else ""
    flattened = f", then {loop.flatten_ticks} flatten tick(s)" if args.on_stop == FLATTEN else ""
    print(f"\n{loop.ticks} ticks of {strategy.name} on {','.join(markets)}{skipped}{flattened};\n"
          f"{cancelled} keeper order(s) cancelled on shutdown.")
    if liquidations(loop.venue):
        print(f"  liquidated {liquidations(loop.venue)} time(s): the account fell below Drift's maintenance margin")
    for reason, count in loop.skip_reasons.most_common():
        print(f"  skipped {count}x: {reason}")
    print(text)
    print(f"\nsession: {writer.path}")
    print(f"replay:  {invocation()} replay {writer.path}")
    if risk.state == HALTED:
        print(f"halted by the risk gate: {risk.reason}", file=sys.stderr)
        return 3
    if loop.skipped and not loop.ticks:
        reason = loop.skip_reasons.most_common(1)[0][0]
        print(f"keeper: error: no tick could be quoted in {loop.skipped} attempt(s): {reason}", file=sys.stderr)
        return 4
    return 0
