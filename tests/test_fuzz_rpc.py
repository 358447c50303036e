"""Fuzzing RPC responses: a JSON-RPC endpoint on loopback (aiohttp, port 0) in front of the
localnet's own Solana RPC (keeper.localnet: a real in-memory chain) answers some calls
honestly and others with a damaged body: a value of the wrong type, a missing field, an
error object, an HTTP error, bytes that are no JSON, a dropped connection, a slow answer.

- TxSender.send always ends in a Sent (a transport fault is retried, never raised); it is
  CONFIRMED only when a status reply said the transaction landed without error.
- load_deployment returns the chosen markets or raises one UserError line.

Each case draws a plan (which answers to damage, how, and a seed for the details) and counts as
one bad-input case. Run with --hypothesis-show-statistics to see how many cases each test tried.
"""
from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import json
import random
import socket
from typing import Optional

import orjson
import pytest
from aiohttp import web
from driftpy.addresses import get_perp_market_public_key, get_spot_market_public_key, get_state_public_key
from driftpy.constants.config import DRIFT_PROGRAM_ID
from hypothesis import event, given
from hypothesis import strategies as st
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.account import Account
from solders.keypair import Keypair
from solders.system_program import TransferParams, transfer

from keeper import drift_idl
from keeper.errors import UserError
from keeper.localnet.chain import Chain
from keeper.localnet.rpc import Rpc
from keeper.localnet.server import answer
from keeper.venues.drift.markets import Deployment, Network, load_deployment
from keeper.venues.drift.sender import SendConfig, Sent, Status, TxSender
from tests.conftest import SHARED
from tests.fuzzing import fuzz

SOL = 1_000_000_000


# -- damage to one response ------------------------------------------------------------------------

_ERRORS = [  # error objects real nodes send
    {"code": -32002, "message": "Transaction simulation failed: Error processing Instruction 2: custom program error: 0x1779",
     "data": {"err": {"InstructionError": [2, {"Custom": 6009}]}, "logs": ["Program log: x"], "accounts": None,
              "unitsConsumed": 1234, "returnData": None}},
    {"code": -32002, "message": "Transaction simulation failed: Blockhash not found",
     "data": {"err": "BlockhashNotFound", "logs": [], "accounts": None, "unitsConsumed": 0, "returnData": None}},
    {"code": -32002, "message": "already processed", "data": {"err": "AlreadyProcessed", "logs": None, "accounts": None,
                                                              "unitsConsumed": None, "returnData": None}},
    {"code": -32005, "message": "Node is behind by 42 slots", "data": {"numSlotsBehind": 42}},
    {"code": -32603, "message": "Internal error"},
    {"code": -32601, "message": "Method not found"},
    {"code": 429, "message": "Too many requests for a specific RPC call"},
]
_ODD = [2**64, -1, 2**63 - 1, 10**30, "", "1.5", "not base58", "AAAA", "💥", "processed", "finalized", True, False,
        None, [], {}, [1, 2], {"a": 1}, 0.5, -0.0, 1e308, 0, 3]
HOWS = ["mutate", "mutate", "mutate", "error", "http", "bytes", "json", "drop", "slow", "cut"]

# The answers depend on the chain (a blockhash, a slot), so their damage can't be drawn from
# hypothesis' data as they happen: a case must draw the same way when replayed. A case draws a
# plan up front (which calls, what damage, a seed); the damage itself comes from random.Random(seed).


def damage_plan(methods: list[str]) -> st.SearchStrategy[list[tuple[str, str, int]]]:
    """[(method, or "*" for whichever call comes next; the damage; a seed)]: its n-th entry for a
    method damages that method's n-th answer."""
    return st.lists(st.tuples(st.sampled_from([*methods, "*"]), st.sampled_from(HOWS), st.integers(0, 2**32 - 1)),
                    min_size=1, max_size=6)


def odd_value(rng: random.Random):
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(_ODD)
    if kind == 1:
        return rng.randint(-(2**70), 2**70)
    if kind == 2:
        return rng.uniform(-1e6, 1e6)
    return "".join(chr(rng.randrange(32, 0xD000)) for _ in range(rng.randrange(8)))


def random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(6 if depth < 3 else 4)
    if kind < 4:
        return odd_value(rng)
    if kind == 4:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(odd_value(rng))[:6]: random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def mutated(rng: random.Random, body):
    """`body` damaged at one place: a value of the wrong type, or a field gone."""
    doc = copy.deepcopy(body)
    parent, key, node = None, None, doc
    while isinstance(node, (dict, list)) and node and (parent is None or rng.randrange(4)):
        parent, key = node, rng.choice(list(node) if isinstance(node, dict) else range(len(node)))
        node = parent[key]
    if parent is None:
        return random_json(rng)
    if isinstance(parent, dict) and rng.randrange(5) == 0:
        del parent[key]
    else:
        parent[key] = odd_value(rng)
    return doc


def damaged(how: str, rng: random.Random, payload, honest) -> tuple[int, bytes]:
    """(HTTP status, body) of a damaged answer."""
    if how == "mutate":
        return 200, json.dumps(mutated(rng, honest)).encode()
    if how == "error":
        error = rng.choice(_ERRORS)
        request_id = payload.get("id") if isinstance(payload, dict) else None
        return 200, json.dumps({"jsonrpc": "2.0", "id": request_id,
                                "error": mutated(rng, error) if rng.randrange(2) else error}).encode()
    if how == "http":
        return rng.choice([400, 401, 403, 404, 413, 429, 500, 502, 503, 504]), rng.randbytes(rng.randrange(30))
    if how == "bytes":
        return 200, rng.randbytes(rng.randrange(60))
    if how == "json":
        return 200, json.dumps(random_json(rng)).encode()
    full = orjson.dumps(honest)
    if how == "cut":  # a body cut short
        return 200, full[: rng.randrange(len(full))]
    return 200, full  # slow, drop: the honest answer, late or never


class Endpoint:
    """The loopback JSON-RPC endpoint: the localnet's answer, or a damaged one as the case's plan says."""

    def __init__(self, chain: Chain):
        self.chain = chain
        self.rpc = Rpc(chain)
        self.plan: dict[str, list[tuple[str, int]]] = {}  # method (or "*") -> [(damage, seed)] for its next answers
        self.fixed: dict[str, bytes] = {}  # method -> the body every answer to it has
        self.advance_on = "getSignatureStatuses"  # each status poll is a new slot: blockhashes expire
        self.damaged: list[str] = []
        self.url = ""
        self._runner: Optional[web.AppRunner] = None

    def set_plan(self, plan: list[tuple[str, str, int]]) -> None:
        self.plan, self.damaged = {}, []
        for method, how, seed in plan:
            self.plan.setdefault(method, []).append((how, seed))

    async def __aenter__(self) -> "Endpoint":
        app = web.Application(client_max_size=8 << 20)
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        payload = orjson.loads(await request.read())
        method = payload.get("method", "?") if isinstance(payload, dict) else "batch"
        if method == self.advance_on:
            self.chain.advance()
        honest = answer(self.rpc, payload) if isinstance(payload, dict) else [answer(self.rpc, p) for p in payload]
        if method in self.fixed:
            return web.Response(body=self.fixed[method], content_type="application/json")
        queue = self.plan.get(method) or self.plan.get("*")
        if not queue:
            return web.Response(body=orjson.dumps(honest), content_type="application/json")
        how, seed = queue.pop(0)
        self.damaged.append(f"{method}: {how}")
        status, body = damaged(how, random.Random(seed), payload, honest)
        if how == "slow":  # longer than the client waits
            await asyncio.sleep(0.35)
        if how == "drop":  # acted on, then the connection ends with no answer
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)
        return web.Response(status=status, body=body, content_type="application/json")


class Rig:
    """One event loop, one chain, one endpoint and one client for a whole test."""

    def __init__(self, setup) -> None:
        self.loop = asyncio.new_event_loop()
        self.chain = Chain()
        setup(self.chain)
        self.endpoint = Endpoint(self.chain)
        self.run(self.endpoint.__aenter__())
        self.client = AsyncClient(self.endpoint.url, commitment=Confirmed, timeout=0.3)

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def case(self, plan: list[tuple[str, str, int]]) -> Endpoint:
        self.endpoint.set_plan(plan)
        return self.endpoint

    def done(self) -> None:
        """The case is over: later requests (a late retry) get honest answers."""
        self.endpoint.plan = {}

    def close(self) -> None:
        self.endpoint.plan = {}
        self.run(self.client.close())
        self.run(self.endpoint.__aexit__())
        self.loop.close()


# -- TxSender --------------------------------------------------------------------------------------

PAYER = Keypair.from_seed(bytes(range(32)))
SENDER_METHODS = ["getRecentPrioritizationFees", "getLatestBlockhash", "sendTransaction", "getBlockHeight",
                  "getSignatureStatuses", "getTransaction", "simulateTransaction"]
FAST = SendConfig(priority_fee=0, poll_interval=0.001, resend_interval=0.01, request_timeout=0.3,
                  backoff_base=0.001, backoff_max=0.005, confirm_timeout=1.5)


@pytest.fixture(scope="module")
def sender_rig():
    rig = Rig(lambda chain: chain.airdrop(PAYER.pubkey(), 1_000 * SOL))
    yield rig
    rig.close()


@fuzz(60)
@given(data=st.data())
def test_the_sender_ends_every_send_in_a_sent(sender_rig, data):
    rig = sender_rig
    config = dataclasses.replace(FAST, priority_fee=data.draw(st.sampled_from([0, 7, "auto"]), label="fee"),
                                 dry_run=data.draw(st.booleans(), label="dry_run"))
    to = Keypair().pubkey()  # a new transaction every case (the same bytes would be AlreadyProcessed)
    before = rig.chain.get_balance(to)
    endpoint = rig.case(data.draw(damage_plan(SENDER_METHODS), label="damage"))
    sender = TxSender(rig.client, PAYER, config)
    try:
        sent = rig.run(sender.send([transfer(TransferParams(from_pubkey=PAYER.pubkey(), to_pubkey=to, lamports=1))], "fuzz"))
    finally:
        rig.done()
    event(f"sent: {sent.status}")
    event(f"damaged answers: {len(endpoint.damaged)}")
    assert isinstance(sent, Sent) and sent.status in Status
    assert len(sent.describe().splitlines()) == 1
    assert sent.error is None or type(sent.error) is str
    assert sent.code is None or type(sent.code) is int
    landed = rig.chain.get_balance(to) - before
    assert landed in (0, 1)  # signed once: it can never land twice
    if sent.status is Status.CONFIRMED:  # only a status reply can say so
        assert landed == 1 or any(d.startswith("getSignatureStatuses") for d in endpoint.damaged), endpoint.damaged
    if config.dry_run:
        assert landed == 0 and sent.status in (Status.DRY_RUN, Status.UNSENT)


# -- load_deployment -------------------------------------------------------------------------------

def _dumps() -> dict[tuple[str, int], bytes]:
    """Real mainnet PerpMarket and SpotMarket accounts, by (kind, market index)."""
    out = {}
    with open(SHARED / "drift_account_dumps.jsonl") as f:
        for line in f:
            row = json.loads(line)
            if row["account_type"] in ("PerpMarket", "SpotMarket") and row["network"] == "mainnet-beta":
                data = base64.b64decode(row["data_base64"])
                kind = "perp" if row["account_type"] == "PerpMarket" else "spot"
                out.setdefault((kind, drift_idl.decode(data).market_index), data)
    return out


def _deploy(chain: Chain) -> None:
    """A Drift deployment's accounts on the chain: a State, and real markets at their addresses."""
    def put(key, data: bytes) -> None:
        chain.set_account(key, Account(chain.minimum_balance_for_rent_exemption(len(data)), data, DRIFT_PROGRAM_ID, False, 0))

    put(get_state_public_key(DRIFT_PROGRAM_ID), drift_idl.encode("State", drift_idl.blank("State")))
    for (kind, index), data in _dumps().items():
        if (kind, index) in (("perp", 0), ("perp", 1), ("perp", 2), ("spot", 0), ("spot", 1)):
            address = (get_perp_market_public_key if kind == "perp" else get_spot_market_public_key)(DRIFT_PROGRAM_ID, index)
            put(address, data)


@pytest.fixture(scope="module")
def deployment_rig(shared_data):
    rig = Rig(_deploy)
    yield rig
    rig.close()


@pytest.fixture(scope="module")
def shared_data():
    if not SHARED.exists():
        pytest.skip(f"real data not found at {SHARED} (../shared beside the repo)")
    return SHARED


@pytest.mark.parametrize("builtin", [False, True])
def test_an_honest_deployment_loads(deployment_rig, builtin):
    rig = deployment_rig
    rig.case([])
    network = Network("fuzz", (rig.endpoint.url,), "mainnet", builtin)
    deployment = rig.run(load_deployment(rig.client, network, ["SOL-PERP", "BTC-PERP", "SOL"]))
    assert list(deployment.markets) == ["SOL-PERP", "BTC-PERP", "SOL"] and deployment.quote.spec.name == "USDC"


@fuzz(60)
@given(data=st.data())
def test_load_deployment_returns_the_markets_or_one_user_error_line(deployment_rig, data):
    rig = deployment_rig
    names = data.draw(st.lists(st.sampled_from(["SOL-PERP", "BTC-PERP", "ETH-PERP", "SOL", "USDC", "DOGE-PERP", "x"]),
                               min_size=1, max_size=3, unique=True), label="markets")
    network = Network("fuzz", (rig.endpoint.url,), "mainnet", data.draw(st.booleans(), label="builtin lists"))
    rig.case(data.draw(damage_plan(["getMultipleAccounts", "getProgramAccounts"]), label="damage"))
    try:
        deployment = rig.run(load_deployment(rig.client, network, names))
    except UserError as exc:
        message = str(exc)
        assert len(message.splitlines()) == 1 and "Traceback" not in message, message
        assert len(message) < 500, message
        event("UserError")
    else:
        assert isinstance(deployment, Deployment) and list(deployment.markets) == names
        event("loaded")
    finally:
        rig.done()


@pytest.mark.parametrize("body", [
    b"<html>502 Bad Gateway</html>",
    b'{"jsonrpc": "2.0", "id": 1, "error": {"code": -32002, "message": "x", "data": 5}}',  # solders panics on it
])
def test_open_client_with_a_nonsense_user_account_answer_is_one_line(deployment_rig, body):
    from keeper.venues.drift.connect import Connection, open_client
    from keeper.venues.drift.endpoints import Endpoints
    from keeper.venues.drift.markets import classified, resolve

    async def open_it():
        conn = Connection(rig.endpoint.url)
        network = resolve(conn.network)
        pool = Endpoints(network.urls)
        await open_client(conn, classified(network, await pool.classify()), pool, Keypair(), ["SOL-PERP"])

    rig = deployment_rig
    rig.case([])
    rig.endpoint.fixed = {"getAccountInfo": body}
    try:
        with pytest.raises(UserError):
            rig.run(open_it())
    finally:
        rig.endpoint.fixed = {}


# -- the live venue --------------------------------------------------------------------------------

PANIC = b'{"jsonrpc": "2.0", "id": 1, "error": {"code": -32002, "message": "x", "data": 5}}'  # solders panics on it


def test_a_parser_panic_mid_snapshot_is_a_skipped_tick(deployment_rig, shared_data):
    from driftpy.account_subscription_config import AccountSubscriptionConfig
    from driftpy.accounts.bulk_account_loader import BulkAccountLoader
    from driftpy.addresses import get_user_account_public_key
    from driftpy.drift_client import DriftClient

    from keeper.venues.base import SkipTick
    from keeper.venues.drift.dlob import DlobHelper
    from keeper.venues.drift.orderbook import BookUsers
    from keeper.venues.drift.reference import PythReference
    from keeper.venues.drift.venue import DriftVenue

    rig = deployment_rig
    rig.case([])
    wallet = Keypair()
    with open(SHARED / "drift_account_dumps.jsonl") as f:  # a real User account, as ours
        user = next(base64.b64decode(row["data_base64"]) for row in map(json.loads, f) if row["account_type"] == "User")
    rig.chain.set_account(get_user_account_public_key(DRIFT_PROGRAM_ID, wallet.pubkey(), 0),
                          Account(10**9, user, DRIFT_PROGRAM_ID, False, 0))
    deployment = rig.run(load_deployment(rig.client, Network("fuzz", (rig.endpoint.url,), "mainnet", False), ["SOL-PERP"]))
    loader = BulkAccountLoader(rig.client, Confirmed, 60.0)
    client = DriftClient(rig.client, wallet, env="mainnet", market_lookup_tables=[], perp_market_indexes=[0],
                         spot_market_indexes=[0], oracle_infos=[], sub_account_ids=[0], active_sub_account_id=0,
                         account_subscription=AccountSubscriptionConfig("polling", loader))
    rig.run(client.add_user(0))
    helper = DlobHelper()
    venue = DriftVenue(deployment, client, TxSender(rig.client, wallet, FAST), helper,
                       BookUsers(rig.client, helper, subscription="polling"),
                       PythReference({n: (m.oracle, m.oracle_source) for n, m in deployment.markets.items()}))
    rig.endpoint.fixed = {"getMultipleAccounts": PANIC}
    try:
        with pytest.raises(SkipTick):
            rig.run(venue.snapshot())
    finally:
        rig.endpoint.fixed = {}
        rig.run(helper.close())
        loader._stop_loading()  # driftpy's polling task
