"""RPC endpoints: which chain they serve, how healthy each is, and the one in use.

`keeper run --rpc A,B,C` gives endpoints in order of preference. At start every one is asked
for its genesis hash: the hash, not the URL, says which chain it is (a provider's URL that
serves mainnet-beta is mainnet), and endpoints that answer with different hashes are refused.
One endpoint is in use at a time, and ALL traffic goes to it: driftpy's client and loaders, our
own reads, the sender and the book users share one AsyncClient whose provider reads the URL
from here, and their websockets are reopened on the new endpoint after a switch (the pool's
listeners do that). Only the health probes below talk to the others.

Health: every HTTP answer routed through the pool counts (a timeout, a refused or reset
connection, HTTP 429 or 5xx is a fault; anything else an answer), and a probe every PROBE_S
asks each endpoint for its slot. FAIL_AFTER faults in a row on the endpoint in use, or a slot
LAG_SLOTS behind the best endpoint's, move the keeper to the next healthy endpoint in the
list; the one left sits out a Backoff (doubling while it keeps failing). When a preferred
endpoint (earlier in the list) has answered RECOVER_PROBES probes in a row and its time out
is over, the keeper moves back to it. The score is a moving average of answers (1) and faults
(0); an endpoint under MIN_SCORE is not healthy.

URLs often carry an API key (in the query or the path): logs name endpoints by `label`, whose
URL is redacted.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Optional
from urllib.parse import urlsplit

import httpx
from solana.rpc.async_api import AsyncClient
from solana.rpc.providers.async_http import AsyncHTTPProvider

from keeper.backoff import Backoff, unless_cancelled
from keeper.errors import UserError
from keeper.venues.drift.sender import rpc_fault
from keeper.wallet import redact_url as redact

log = logging.getLogger(__name__)

MAINNET_GENESIS = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d"
DEVNET_GENESIS = "EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG"
CLUSTERS = {MAINNET_GENESIS: "mainnet", DEVNET_GENESIS: "devnet"}

FAIL_AFTER = 2  # faults in a row on the endpoint in use before moving on
LAG_SLOTS = 20  # behind the best endpoint's slot: lagging
PROBE_S = 2.0
PROBE_TIMEOUT_S = 3.0
RECOVER_PROBES = 3  # answered probes in a row before a preferred endpoint is taken back
STABLE_S = 60.0  # in use this long without a fault: its time-out backoff starts over
TIMEOUT_FIRST_S, TIMEOUT_MAX_S = 2.0, 60.0  # an endpoint left behind sits out this long, doubling
MIN_SCORE = 0.5
SCORE_WEIGHT = 0.2  # of the newest outcome in the moving average


def check_url(url: str, flag: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{flag} {redact(url)!r}: not an http(s) RPC URL")
    return url


def parse_urls(text: str) -> tuple[str, ...]:
    urls = tuple(u.strip() for u in text.split(","))
    if not all(urls):
        raise UserError(f"--rpc wants URL[,URL...], got an empty entry in {redact(text)!r}")
    for url in urls:
        check_url(url, "--rpc")
    if len(set(urls)) != len(urls):
        raise UserError("--rpc: an endpoint is listed twice")
    return urls


def _key(url: str) -> str:
    """A URL as httpx sends it, to match a request to its endpoint."""
    return str(httpx.Request("POST", url).url)


@dataclass
class Endpoint:
    index: int  # 1-based, its place in --rpc
    url: str
    genesis: Optional[str] = None  # unknown until it answers getGenesisHash
    slot: int = 0  # from its last answered probe
    score: float = 1.0  # until it says otherwise
    faults: int = 0  # in a row
    probes_ok: int = 0  # answered probes in a row
    last_fault: str = ""
    excluded: str = ""  # why it is never used (it serves another chain)
    timeout: Backoff = field(default_factory=lambda: Backoff(TIMEOUT_FIRST_S, TIMEOUT_MAX_S))
    in_use_since: float = 0.0

    @property
    def label(self) -> str:
        return f"#{self.index} {redact(self.url)}"

    def outcome(self, ok: bool) -> None:
        self.score += SCORE_WEIGHT * ((1.0 if ok else 0.0) - self.score)


class Endpoints:
    def __init__(self, urls: tuple[str, ...]):
        if not urls:
            raise ValueError("at least one RPC endpoint")
        self.endpoints = [Endpoint(i + 1, url) for i, url in enumerate(urls)]
        self.current = self.endpoints[0]
        self.genesis: Optional[str] = None
        self.switches = 0
        self._by_key = {_key(e.url): e for e in self.endpoints}
        self._listeners: list[Callable[[], None]] = []
        self._http = httpx.AsyncClient(timeout=PROBE_TIMEOUT_S)
        self._task: Optional[asyncio.Task] = None
        self._stuck_said = False  # "no other endpoint is healthy" was logged for this outage
        self._faulting_since: Optional[float] = None

    @property
    def in_use(self) -> str:
        """For the live view and logs: the endpoint in use, its URL redacted."""
        return self.current.label

    def on_switch(self, listener: Callable[[], None]) -> None:
        """Called (in the event loop) after every move to another endpoint."""
        self._listeners.append(listener)

    def client(self, commitment, timeout: float) -> AsyncClient:
        """One AsyncClient whose every HTTP request goes to the endpoint in use."""
        client = AsyncClient(self.current.url, commitment=commitment, timeout=timeout)
        client._provider = PooledProvider(self, timeout)  # noqa: SLF001 - solana-py has no other hook
        return client

    # -- start ---------------------------------------------------------------------------
    async def classify(self) -> str:
        """Ask every endpoint for its genesis hash and slot; refuse endpoints of different
        chains; start on the first healthy one. Returns the genesis hash."""
        await asyncio.gather(*(self._probe(e) for e in self.endpoints))
        hashes = {e.genesis for e in self.endpoints if e.genesis}
        if not hashes:
            if len(self.endpoints) == 1:
                e = self.endpoints[0]
                raise UserError(f"no answer from the RPC at {redact(e.url)} ({e.last_fault})")
            raise UserError("no RPC endpoint answered: " + "; ".join(f"{e.label} ({e.last_fault})" for e in self.endpoints))
        if len(hashes) > 1:
            listed = ", ".join(f"{e.label} has genesis {e.genesis}" for e in self.endpoints if e.genesis)
            raise UserError(f"the RPC endpoints serve different chains ({listed}); give endpoints of one chain")
        self.genesis = hashes.pop()
        healthy = [e for e in self.endpoints if self._healthy(e)]
        self.current = healthy[0] if healthy else next(e for e in self.endpoints if e.genesis)
        self.current.in_use_since = time.monotonic()
        for e in self.endpoints:
            if e is not self.current and not self._healthy(e):
                log.warning("rpc: %s not usable at start (%s); probing it every %g s", e.label, self._unhealthy(e), PROBE_S)
        log.info("rpc: using %s (genesis %s)", self.current.label, self.genesis)
        return self.genesis

    def start(self) -> None:
        """Probe in the background (only with more than one endpoint: one has nowhere to go)."""
        if self._task is None and len(self.endpoints) > 1:
            self._task = asyncio.ensure_future(self._probing())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        await self._http.aclose()

    # -- outcomes ------------------------------------------------------------------------
    def answered(self, endpoint: Endpoint) -> None:
        endpoint.outcome(True)
        endpoint.faults = 0
        if endpoint is self.current:
            self._faulting_since = None
            if endpoint.timeout.failures and time.monotonic() - endpoint.in_use_since > STABLE_S:
                endpoint.timeout.reset()

    def faulted(self, endpoint: Endpoint, why: str) -> None:
        endpoint.outcome(False)
        endpoint.faults += 1
        endpoint.last_fault = why
        if endpoint is self.current:
            if self._faulting_since is None:
                self._faulting_since = time.monotonic()
            if endpoint.faults >= FAIL_AFTER:
                self._fail_over(why)

    def routed(self, url: str) -> Optional[Endpoint]:
        return self._by_key.get(url)

    # -- choosing ------------------------------------------------------------------------
    def _lag(self, endpoint: Endpoint) -> int:
        slots = [e.slot for e in self.endpoints if e.genesis == self.genesis and e.probes_ok]
        return max(slots, default=0) - endpoint.slot

    def _healthy(self, endpoint: Endpoint) -> bool:
        return not self._unhealthy(endpoint)

    def _unhealthy(self, e: Endpoint) -> str:
        """Why the endpoint can't be moved to now, or ""."""
        if e.excluded:
            return e.excluded
        if e.genesis is None or not e.probes_ok:
            return e.last_fault or "not probed yet"
        if e.genesis != self.genesis:
            return f"genesis {e.genesis}"
        if e.score < MIN_SCORE:
            return f"health {e.score:.2f} (under {MIN_SCORE})"
        if e.timeout.held():
            return f"sitting out {e.timeout.left():.0f} s more"
        lag = self._lag(e)
        return f"{lag} slots behind" if lag > LAG_SLOTS else ""

    def _fail_over(self, why: str) -> None:
        left = self.current
        order = self.endpoints[left.index:] + self.endpoints[:left.index - 1]  # the next ones, wrapping
        healthy = [e for e in order if self._healthy(e)]
        if not healthy:
            if not self._stuck_said:
                log.warning("rpc: %s is failing (%s) and no other endpoint is healthy; staying on it", left.label, why)
                self._stuck_said = True
            return
        left.timeout.failed()
        self._switch(healthy[0], f"{why}; {left.label} sits out {left.timeout.wait():g} s")

    def _switch(self, to: Endpoint, why: str) -> None:
        left, since = self.current, self._faulting_since
        after = f" after {time.monotonic() - since:.1f} s of faults" if since is not None else ""
        log.warning("rpc: moving from %s to %s%s (%s)", left.label, to.label, after, why)
        self.current, self.switches = to, self.switches + 1
        to.in_use_since, to.faults = time.monotonic(), 0
        self._faulting_since, self._stuck_said = None, False
        for listener in self._listeners:
            listener()

    # -- probing -------------------------------------------------------------------------
    async def _probing(self) -> None:
        while True:
            await asyncio.sleep(PROBE_S)
            try:
                await self.probe()
            except Exception as exc:  # a probe round must never end the probing
                unless_cancelled(exc)
                log.exception("rpc: probe round failed")

    async def probe(self) -> None:
        """One round: every endpoint's slot (and genesis hash, until known); then move off a
        lagging endpoint, or back to a preferred one that recovered."""
        await asyncio.gather(*(self._probe(e) for e in self.endpoints))
        current = self.current
        if current.probes_ok and self._lag(current) > LAG_SLOTS:
            self._fail_over(f"{self._lag(current)} slots behind the best endpoint")
        if self.current is current:
            preferred = [e for e in self.endpoints[:current.index - 1]
                         if self._healthy(e) and e.probes_ok >= RECOVER_PROBES]
            if preferred:
                self._switch(preferred[0], f"{preferred[0].label} is healthy again")

    async def _probe(self, endpoint: Endpoint) -> None:
        try:
            if endpoint.genesis is None:
                genesis = str(await self._ask(endpoint, "getGenesisHash"))
                endpoint.genesis = genesis
                if self.genesis is not None and genesis != self.genesis:
                    endpoint.excluded = f"it serves another chain (genesis {genesis}, not {self.genesis})"
                    log.error("rpc: %s is not used: %s", endpoint.label, endpoint.excluded)
            endpoint.slot = int(await self._ask(endpoint, "getSlot", [{"commitment": "confirmed"}]))
        except Exception as exc:  # noqa: BLE001 - any failure is the endpoint's fault, said in a few words
            endpoint.probes_ok = 0
            self.faulted(endpoint, describe(exc))
        else:
            endpoint.probes_ok += 1
            self.answered(endpoint)

    async def _ask(self, endpoint: Endpoint, method: str, params: Optional[list] = None):
        body = {"jsonrpc": "2.0", "id": 1, "method": method, **({"params": params} if params else {})}
        response = await self._http.post(endpoint.url, json=body)
        response.raise_for_status()
        answer = response.json()
        if not isinstance(answer, dict) or "result" not in answer:
            raise ValueError(f"{method}: no result in the answer")
        return answer["result"]


def describe(exc: BaseException) -> str:
    """A fault in a few words, with no URL in them (they may carry a key): the sender's words,
    the OS's reason for a refused connection included."""
    if isinstance(exc, ValueError):
        return "malformed answer"
    return rpc_fault(exc)


class PoolTransport(httpx.AsyncBaseTransport):
    """httpx's transport, counting each answer or fault against the endpoint it went to."""

    def __init__(self, pool: Endpoints):
        self.pool = pool
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        endpoint = self.pool.routed(str(request.url))
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            if endpoint is not None:
                self.pool.faulted(endpoint, describe(exc))
            raise
        if endpoint is not None:
            if response.status_code == 429 or response.status_code >= 500:
                self.pool.faulted(endpoint, f"HTTP {response.status_code}")
            else:
                self.pool.answered(endpoint)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class PooledProvider(AsyncHTTPProvider):
    """solana-py's provider, whose URL is the pool's endpoint in use at each request. Closing
    it (AsyncClient.close) stops the pool's probes too."""

    def __init__(self, pool: Endpoints, timeout: float):
        self.pool = pool
        super().__init__(pool.current.url, timeout=timeout)
        self.session = httpx.AsyncClient(timeout=timeout, transport=PoolTransport(pool))

    @property
    def endpoint_uri(self) -> str:
        return self.pool.current.url

    @endpoint_uri.setter
    def endpoint_uri(self, _value) -> None:
        pass  # solana-py's __init__ sets it; the pool decides

    async def close(self) -> None:
        try:
            await self.session.aclose()
        finally:
            await self.pool.close()
