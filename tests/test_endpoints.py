"""RPC endpoints: classification by genesis hash, health, failover and failback, redaction,
and the one backoff. Real JSON-RPC servers (keeper localnet's, on LiteSVM's built-in programs,
no Drift binary needed) behind the fault-injecting proxy."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import pytest
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair

from keeper.backoff import Backoff
from keeper.errors import UserError
from keeper.localnet.chain import Chain
from keeper.localnet.server import listening
from keeper.venues.drift import endpoints as E
from keeper.venues.drift.endpoints import DEVNET_GENESIS, MAINNET_GENESIS, Endpoints
from keeper.venues.drift.markets import classified, resolve
from keeper.wallet import redact_argv, redact_url, write_keypair
from tests.conftest import KEEPER
from tests.faulty_rpc import Answer, Fault, FaultyRpc

LOCAL_GENESIS = "11111111111111111111111111111111"  # keeper localnet's: the default hash


def _dead_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@contextlib.asynccontextmanager
async def _proxies(count: int, chain: Chain | None = None):
    chain = chain or Chain()
    async with listening(chain) as url, contextlib.AsyncExitStack() as stack:
        yield chain, [await stack.enter_async_context(FaultyRpc(url)) for _ in range(count)]


async def _until(condition, what: str, seconds: float = 30.0, step=None) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, f"never: {what}"
        if step is not None:
            await step()
        await asyncio.sleep(0.05)


async def _slot_until_answered(client, tries: int = 10) -> int:
    for _ in range(tries):
        try:
            return (await client.get_slot()).value
        except Exception:  # noqa: BLE001 - the faults being failed over
            continue
    raise AssertionError(f"no answer in {tries} tries")


# -- the backoff ------------------------------------------------------------------------------
def test_backoff_doubles_to_its_cap_holds_and_starts_over_after_a_success():
    backoff = Backoff(0.5, 4.0)
    assert backoff.wait() == 0 and not backoff.held()
    assert [backoff.failed() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.held() and 0 < backoff.left() <= 4.0
    backoff.reset()
    assert not backoff.held() and backoff.failed() == 0.5


def test_jittered_backoff_stays_within_half_to_all_of_the_wait():
    backoff = Backoff(1.0, 8.0, jitter=True)
    waits = [backoff.failed() for _ in range(5)]
    for wait, full in zip(waits, [1, 2, 4, 8, 8]):
        assert full / 2 <= wait <= full


def test_a_backoff_needs_a_positive_first_wait_within_its_cap():
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(2, 1)


# -- redaction --------------------------------------------------------------------------------
@pytest.mark.parametrize("url,shown", [
    ("https://mainnet.helius-rpc.com/?api-key=0b1c2d3e-aaaa", "https://mainnet.helius-rpc.com/?api-key=***"),
    ("https://solana-mainnet.g.alchemy.com/v2/AbCdEf123456", "https://solana-mainnet.g.alchemy.com/v2/***"),
    ("https://x.solana-mainnet.quiknode.pro/0123456789abcdef0123/", "https://x.solana-mainnet.quiknode.pro/***/"),
    ("https://user:pw@rpc.example.com/rpc", "https://***@rpc.example.com/rpc"),
    ("http://127.0.0.1:8899", "http://127.0.0.1:8899"),
])
def test_urls_lose_what_may_be_an_api_key(url, shown):
    assert redact_url(url) == shown


def test_a_recorded_command_line_has_its_rpc_urls_redacted():
    argv = ["run", "--rpc", "https://a.example/?api-key=SECRET1,https://b.example/v2/SECRET22",
            "--network=https://c.example/?token=SECRET3"]
    recorded = " ".join(redact_argv(argv))
    assert "SECRET" not in recorded and "a.example" in recorded and "c.example" in recorded


# -- --network and --rpc ----------------------------------------------------------------------
def test_network_names_the_deployment_and_rpc_its_endpoints():
    assert resolve("devnet", "http://a:1,http://b:2").urls == ("http://a:1", "http://b:2")
    assert resolve("devnet").urls == ("https://api.devnet.solana.com",)
    assert resolve("http://a:1").urls == ("http://a:1",)
    assert resolve("custom", "http://a:1/?api-key=K").name == "http://a:1/?api-key=***"
    for network, rpc, needle in [("http://a:1", "http://b:2", "--rpc alone"), ("devnet", "http://a,,http://b", "empty"),
                                 ("devnet", "ftp://a", "not an http"), ("devnet", "http://a,http://a", "twice")]:
        with pytest.raises(UserError, match=needle):
            resolve(network, rpc)


def test_the_genesis_hash_says_which_chain_whatever_the_url():
    provider = resolve("https://rpc.example.com/?api-key=K")
    mainnet = classified(provider, MAINNET_GENESIS)
    assert mainnet.is_mainnet and mainnet.name == "mainnet" and mainnet.builtin and mainnet.genesis == MAINNET_GENESIS
    assert classified(resolve("localnet"), DEVNET_GENESIS).name == "devnet"
    local = classified(resolve("localnet"), LOCAL_GENESIS)
    assert not local.is_mainnet and local.name == "localnet" and local.genesis == LOCAL_GENESIS
    with pytest.raises(UserError, match="serve mainnet"):
        classified(resolve("devnet"), MAINNET_GENESIS)
    with pytest.raises(UserError, match="another chain"):
        classified(resolve("mainnet"), LOCAL_GENESIS)


# -- the pool ---------------------------------------------------------------------------------
async def test_start_skips_a_dead_and_a_429_storming_endpoint_for_the_healthy_third():
    async with _proxies(2) as (_, (storming, healthy)):
        storming.plan("*", [], then=Fault.HTTP_429)
        pool = Endpoints((_dead_url(), storming.url, healthy.url))
        try:
            assert await pool.classify() == LOCAL_GENESIS
            assert pool.current.index == 3
            client = pool.client(Confirmed, 5)
            await client.get_slot()
            assert healthy.count("getSlot") >= 2 and storming.count("getSlot") == 0  # the probe, then ours
        finally:
            await pool.close()


async def test_endpoints_of_different_chains_are_refused_in_one_line():
    async with _proxies(2) as (_, (local, other)):
        other.plan("getGenesisHash", [], then=Answer(MAINNET_GENESIS))
        pool = Endpoints((local.url, other.url))
        try:
            with pytest.raises(UserError, match="different chains") as refused:
                await pool.classify()
            assert MAINNET_GENESIS in str(refused.value) and "\n" not in str(refused.value)
        finally:
            await pool.close()


async def test_no_endpoint_answering_is_one_line_naming_each():
    pool = Endpoints((_dead_url(), _dead_url()))
    try:
        with pytest.raises(UserError, match=r"no RPC endpoint answered: #1 .*\(cannot connect: .*\); #2"):
            await pool.classify()
    finally:
        await pool.close()


async def test_faults_on_the_endpoint_in_use_move_every_request_to_the_next_healthy_one(caplog):
    async with _proxies(3) as (_, (first, second, third)):
        secret_first = first.url + "/?api-key=SECRET"  # the proxy serves any path
        pool = Endpoints((secret_first, second.url, third.url))
        switches = []
        pool.on_switch(lambda: switches.append(pool.current.index))
        client = pool.client(Confirmed, 5)
        try:
            await pool.classify()
            assert pool.current.index == 1
            await client.get_slot()
            first.plan("*", [], then=Fault.RESET)  # dead from now on
            second.plan("*", [], then=Fault.HTTP_429)  # and the next one storms
            await pool.probe()  # the probe sees the storm (and #1's death)
            with caplog.at_level(logging.INFO):
                await _slot_until_answered(client)
            assert pool.current.index == 3 and switches[-1] == 3
            before = (first.count("getSlot"), second.count("getSlot"))
            await client.get_slot()
            await client.get_latest_blockhash()
            assert (first.count("getSlot"), second.count("getSlot")) == before
            assert third.count("getLatestBlockhash") == 1
            assert "rpc: moving from #1" in caplog.text and "SECRET" not in caplog.text
            assert pool.in_use == f"#3 {third.url}"
        finally:
            await client.close()


async def test_the_keeper_goes_back_to_a_preferred_endpoint_once_it_recovers():
    async with _proxies(2) as (_, (first, second)):
        pool = Endpoints((first.url, second.url))
        client = pool.client(Confirmed, 5)
        try:
            await pool.classify()
            first.plan("*", [], then=Fault.HTTP_503)
            await _slot_until_answered(client)
            assert pool.current.index == 2
            first.plan("*", [], then=Fault.PASS)
            # back once it answered RECOVER_PROBES probes in a row and sat out its backoff
            await _until(lambda: pool.current.index == 1, "failback to #1", step=pool.probe)
            assert pool.switches == 2
            await client.get_slot()
            assert first.calls[-1].method == "getSlot"
        finally:
            await client.close()


async def test_an_endpoint_lagging_behind_the_others_is_left():
    behind, ahead = Chain(), Chain()
    for _ in range(E.LAG_SLOTS + 5):
        ahead.advance()
    async with listening(behind) as slow, listening(ahead) as fast:
        pool = Endpoints((slow, fast))
        try:
            await pool.classify()
            assert pool.current.index == 2  # already behind at start: the healthy one is taken
            pool.current = pool.endpoints[0]  # as if it had fallen behind while in use
            await pool.probe()
            assert pool.current.index == 2
        finally:
            await pool.close()


async def test_an_endpoint_that_first_answers_with_another_chain_is_never_used():
    async with _proxies(2) as (_, (local, late)):
        late.plan("*", [], then=Fault.HTTP_503)
        pool = Endpoints((local.url, late.url))
        try:
            await pool.classify()
            late.plan("*", [], then=Fault.PASS)
            late.plan("getGenesisHash", [], then=Answer(DEVNET_GENESIS))
            await pool.probe()
            assert pool.endpoints[1].excluded and not pool._healthy(pool.endpoints[1])  # noqa: SLF001
        finally:
            await pool.close()


# -- mainnet by its genesis hash, whatever the URL ---------------------------------------------
async def _keeper(cwd, *args) -> tuple[int, str]:
    child = await asyncio.create_subprocess_exec(*KEEPER, *args, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(child.communicate(), 120)
    return child.returncode, err.decode()


def _one_line(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("keeper: error:"), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "SECRET" not in err  # the URLs' API key


@pytest.fixture
def keypairs(tmp_path):
    tight = write_keypair(tmp_path / "tight.json", Keypair())
    loose = write_keypair(tmp_path / "loose.json", Keypair())
    loose.chmod(0o640)
    return tight, loose


async def test_an_rpc_url_serving_mainnet_gets_the_mainnet_guards(tmp_path, keypairs):
    """A provider's URL that serves mainnet-beta (the proxy answers getGenesisHash with its
    hash) is mainnet: trading needs --yes-mainnet, and a keypair others can read is refused,
    by `keeper run` with the URL in --network or in --rpc, and by every command."""
    tight, loose = keypairs
    async with _proxies(1) as (_, (mainnet,)):
        mainnet.plan("getGenesisHash", [], then=Answer(MAINNET_GENESIS))
        url = mainnet.url + "/?api-key=SECRET"
        run = ["run", "--ticks", "1", "--archive-dir", str(tmp_path / "sessions"), "--strategy", "fixed_spread"]
        for where in (["--network", url], ["--network", "localnet", "--rpc", url], ["--rpc", url]):
            code, err = await _keeper(tmp_path, *run, *where, "--keypair", str(tight))
            _one_line(code, err, "mainnet trades real money", "--yes-mainnet")
            code, err = await _keeper(tmp_path, *run, *where, "--keypair", str(loose), "--yes-mainnet")
            _one_line(code, err, str(loose), "readable by group or others", "chmod 600")
        for command in (["status"], ["init", "--yes", "--yes-mainnet"], ["deposit", "1", "--yes-mainnet"]):
            code, err = await _keeper(tmp_path, *command, "--network", url, "--keypair", str(loose))
            _one_line(code, err, "readable by group or others")
        code, err = await _keeper(tmp_path, "init", "--yes", "--network", url, "--keypair", str(tight))
        _one_line(code, err, "--yes-mainnet")
    assert not (tmp_path / "sessions").exists()  # refused before a session began


async def test_endpoints_must_agree_and_match_the_named_network(tmp_path, keypairs):
    tight, _ = keypairs
    async with _proxies(2) as (_, (mainnet, local)):
        mainnet.plan("getGenesisHash", [], then=Answer(MAINNET_GENESIS))
        code, err = await _keeper(tmp_path, "status", "--rpc", f"{local.url},{mainnet.url}", "--keypair", str(tight))
        _one_line(code, err, "different chains", MAINNET_GENESIS, LOCAL_GENESIS)
        code, err = await _keeper(tmp_path, "status", "--network", "devnet", "--rpc", mainnet.url,
                                  "--keypair", str(tight))
        _one_line(code, err, "--network devnet", "serve mainnet", "not devnet")
