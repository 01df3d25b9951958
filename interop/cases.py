"""The named interop cases (after the quic-interop-runner's) and the code that runs one in one direction.

Owns :data:`CASES`, :data:`DIRECTIONS`, :func:`prepare` (certificates and the served files) and
:func:`run_case`: start the server of one implementation, put a :class:`~interop.tap.WireTap` in front of
it, carry out the case's :class:`~interop.peers.base.ClientPlan` with the client of the other, then check
what the case claims from three vantage points (the client's report, the server's report, the wire).
Shared by :mod:`interop.run` and ``tests/interop``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from interop.peers.aioquic_client import run_aioquic_client
from interop.peers.aioquic_server import AioquicFileServer
from interop.peers.base import (
    ALPN,
    TLS_CHACHA20_POLY1305_SHA256,
    VERSION_1,
    VERSION_2,
    ClientConnectionResult,
    ClientPlan,
    Digest,
    EndpointReport,
    ServerOptions,
    ServerPeer,
    file_digest,
)
from interop.peers.rudp_peer import RudpFileServer, run_rudp_client
from interop.tap import WireTap
from rudp.testing.certs import make_test_pki

KIB: Final = 1024
MIB: Final = 1024 * KIB
RUDP: Final = "rudp"
AIOQUIC: Final = "aioquic"


@dataclass(frozen=True)
class Direction:
    """Which implementation is the client and which the server."""

    client: str
    server: str

    @property
    def label(self) -> str:
        """``client→server``, e.g. ``rudp→aioquic``."""
        return f"{self.client}→{self.server}"

    @property
    def slug(self) -> str:
        """An ASCII label for file and test names, e.g. ``rudp-aioquic``."""
        return f"{self.client}-{self.server}"


DIRECTIONS: Final = (Direction(RUDP, AIOQUIC), Direction(AIOQUIC, RUDP), Direction(RUDP, RUDP))


@dataclass
class Observation:
    """Everything a case run produced, handed to the case's checks."""

    clients: list[ClientConnectionResult]
    servers: list[EndpointReport]
    tap: WireTap
    expected: dict[str, Digest]


Check = Callable[[Observation], list[str]]


@dataclass(frozen=True)
class Case:
    """One named interop case: the files it serves, how server and client behave, what it verifies."""

    name: str
    description: str
    files: dict[str, int]
    """Served path -> size in bytes."""
    plan: ClientPlan
    server: ServerOptions = field(default_factory=ServerOptions)
    checks: tuple[Check, ...] = ()
    timeout: float = 20.0


# ---------------------------------------------------------------------------------------------- checks


def _common(obs: Observation) -> list[str]:
    """Every case: each connection completed its handshake on both ends with hq-interop, and every body
    arrived whole (size and sha256 equal to the file served)."""
    problems: list[str] = []
    if len(obs.servers) != len(obs.clients):
        problems.append(f"server saw {len(obs.servers)} connections, client made {len(obs.clients)}")
    for index, result in enumerate(obs.clients):
        for end in (result.report, obs.servers[index] if index < len(obs.servers) else None):
            if end is None:
                continue
            if not end.handshake_completed:
                problems.append(f"connection {index}: {end.role} handshake incomplete")
            if end.alpn != ALPN:
                problems.append(f"connection {index}: {end.role} ALPN {end.alpn!r}")
        for path, digest in result.bodies.items():
            if digest != obs.expected[path]:
                problems.append(
                    f"{path}: got {digest.size} bytes {digest.sha256[:12]}, want {obs.expected[path]}"
                )
    return problems


def _version_on_wire(version: int) -> Check:
    def check(obs: Observation) -> list[str]:
        problems = []
        for direction in ("to_server", "to_client"):
            seen = obs.tap.long_header_versions(direction)
            if seen != {version}:
                problems.append(f"{direction} long headers carried versions {sorted(map(hex, seen))}")
        return problems

    return check


def _retry_sent(obs: Observation) -> list[str]:
    retries = obs.tap.count("to_client", "retry")
    return [] if retries == 1 else [f"server sent {retries} Retry packets, want 1"]


def _no_retry(obs: Observation) -> list[str]:
    retries = obs.tap.count("to_client", "retry")
    return [f"unexpected Retry ({retries})"] if retries else []


def _resumed(obs: Observation) -> list[str]:
    problems = []
    for index, result in enumerate(obs.clients):
        want = index > 0
        for end in (result.report, obs.servers[index] if index < len(obs.servers) else None):
            if end is not None and end.session_resumed != want:
                problems.append(f"connection {index}: {end.role} session_resumed={end.session_resumed}")
    return problems


def _early_data(obs: Observation) -> list[str]:
    problems = []
    last = len(obs.clients) - 1
    for end in (obs.clients[last].report, obs.servers[last] if last < len(obs.servers) else None):
        if end is not None and not end.early_data_accepted:
            problems.append(f"{end.role} ({end.impl}) reports 0-RTT not accepted")
    if not obs.tap.count("to_server", "0rtt"):
        problems.append("no 0-RTT packet on the wire")
    return problems


def _suite(suite: int) -> Check:
    def check(obs: Observation) -> list[str]:
        problems = []
        for index, result in enumerate(obs.clients):
            for end in (result.report, obs.servers[index] if index < len(obs.servers) else None):
                if end is not None and end.cipher_suite != suite:
                    got = "unknown" if end.cipher_suite is None else hex(end.cipher_suite)
                    problems.append(f"connection {index}: {end.role} ({end.impl}) negotiated {got}")
        return problems

    return check


def _key_updated(obs: Observation) -> list[str]:
    problems = []
    for index, result in enumerate(obs.clients):
        for end in (result.report, obs.servers[index] if index < len(obs.servers) else None):
            if end is not None and end.key_updates < 1:
                problems.append(f"connection {index}: {end.role} ({end.impl}) went through no key update")
    return problems


# ---------------------------------------------------------------------------------------------- cases


def _files(prefix: str, sizes: list[int]) -> dict[str, int]:
    return {f"/{prefix}/{index:03d}-{size}.bin": size for index, size in enumerate(sizes)}


def _one_connection(files: dict[str, int]) -> tuple[tuple[str, ...], ...]:
    return (tuple(files),)


_HANDSHAKE = _files("handshake", [1 * KIB])
_TRANSFER = _files("transfer", [64 * KIB, 1 * MIB, 3 * MIB])
_MULTIPLEXING = _files("multiplexing", [1 * KIB + 37 * i for i in range(200)])
_RETRY = _files("retry", [64 * KIB])
_RESUMPTION = _files("resumption", [16 * KIB, 16 * KIB])
_ZERORTT = _files("zerortt", [16 * KIB, 16 * KIB])
_CHACHA20 = _files("chacha20", [1 * MIB])
_KEYUPDATE = _files("keyupdate", [2 * MIB])
_V2 = _files("v2", [256 * KIB])

CASES: Final = (
    Case(
        "handshake",
        "one connection, one small file; QUIC v1 on the wire, no Retry",
        _HANDSHAKE,
        ClientPlan(_one_connection(_HANDSHAKE)),
        checks=(_version_on_wire(VERSION_1), _no_retry),
    ),
    Case(
        "transfer",
        "one connection, 64 KiB + 1 MiB + 3 MiB fetched concurrently; sha256 compared",
        _TRANSFER,
        ClientPlan(_one_connection(_TRANSFER)),
        timeout=30.0,
    ),
    Case(
        "multiplexing",
        "one connection, 200 small files requested at once (beyond the peer's initial stream limit)",
        _MULTIPLEXING,
        ClientPlan(_one_connection(_MULTIPLEXING)),
        timeout=30.0,
    ),
    Case(
        "retry",
        "the server validates the client's address with a Retry; exactly one Retry seen on the wire",
        _RETRY,
        ClientPlan(_one_connection(_RETRY)),
        ServerOptions(retry=True),
        checks=(_retry_sent,),
    ),
    Case(
        "resumption",
        "two connections; the second resumes with a session ticket (both ends report it)",
        _RESUMPTION,
        ClientPlan(tuple((path,) for path in _RESUMPTION), resume=True),
        checks=(_resumed,),
    ),
    Case(
        "zerortt",
        "two connections; the second sends its request as 0-RTT data, accepted by the server",
        _ZERORTT,
        ClientPlan(tuple((path,) for path in _ZERORTT), early_data=True),
        checks=(_resumed, _early_data),
    ),
    Case(
        "chacha20",
        "the client offers only TLS_CHACHA20_POLY1305_SHA256; both ends report it; 1 MiB file",
        _CHACHA20,
        ClientPlan(_one_connection(_CHACHA20), cipher_suites=(TLS_CHACHA20_POLY1305_SHA256,)),
        checks=(_suite(TLS_CHACHA20_POLY1305_SHA256),),
    ),
    Case(
        "keyupdate",
        "the client starts a 1-RTT key update once the 2 MiB response flows; both ends count it",
        _KEYUPDATE,
        ClientPlan(_one_connection(_KEYUPDATE), key_update=True),
        checks=(_key_updated,),
        timeout=30.0,
    ),
    Case(
        "v2",
        "the client starts with QUIC v2 (RFC 9369); every long header on the wire is v2",
        _V2,
        ClientPlan(_one_connection(_V2), version=VERSION_2),
        checks=(_version_on_wire(VERSION_2),),
    ),
)
CASES_BY_NAME: Final = {case.name: case for case in CASES}


# ---------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Environment:
    """Certificates and the served files, made once by :func:`prepare` and shared by every run."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    www: Path
    digests: dict[str, Digest]


def prepare(workdir: Path) -> Environment:
    """Write a throwaway PKI and every case's files (random bytes) under ``workdir``."""
    pki = make_test_pki(workdir / "pki")
    www = workdir / "www"
    digests: dict[str, Digest] = {}
    for case in CASES:
        for path, size in case.files.items():
            target = www / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(os.urandom(size))
            digests[path] = file_digest(target)
    return Environment(pki.ca_file, pki.cert_file, pki.key_file, www, digests)


@dataclass
class CaseResult:
    """The outcome of one case in one direction (what the matrix and the JSON show)."""

    case: str
    direction: str
    ok: bool
    seconds: float
    problems: list[str]
    clients: list[dict[str, Any]] = field(default_factory=list)
    servers: list[dict[str, Any]] = field(default_factory=list)
    wire: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return asdict(self)


async def _start_server(direction: Direction, case: Case, env: Environment) -> ServerPeer:
    if direction.server == RUDP:
        return await RudpFileServer(env.www, env.cert_file, env.key_file, case.server).start()
    return await AioquicFileServer(env.www, env.cert_file, env.key_file, case.server).start()


async def _run_client(
    direction: Direction, case: Case, port: int, env: Environment
) -> list[ClientConnectionResult]:
    run = run_rudp_client if direction.client == RUDP else run_aioquic_client
    return await run(case.plan, "127.0.0.1", port, env.ca_file)


async def _exercise(case: Case, direction: Direction, env: Environment, result: CaseResult) -> Observation:
    server = await _start_server(direction, case, env)
    try:
        async with WireTap(("127.0.0.1", server.port)) as tap:
            try:
                clients = await _run_client(direction, case, tap.port, env)
            finally:
                result.wire = tap.summary()
            servers = server.reports()
    finally:
        await server.close()
    result.clients = [asdict(c.report) for c in clients]
    result.servers = [asdict(s) for s in servers]
    expected = {path: env.digests[path] for path in case.files}
    return Observation(clients, servers, tap, expected)


async def run_case(case: Case, direction: Direction, env: Environment) -> CaseResult:
    """Run ``case`` with ``direction``'s client and server within the case's timeout; never raises."""
    result = CaseResult(case.name, direction.label, ok=False, seconds=0.0, problems=[])
    started = time.perf_counter()
    try:
        obs = await asyncio.wait_for(_exercise(case, direction, env, result), case.timeout)
        problems = _common(obs)
        for check in case.checks:
            problems += check(obs)
    except TimeoutError:
        problems = [f"timed out after {case.timeout:g} s"]
    except Exception as exc:
        problems = [f"{type(exc).__name__}: {exc}"]
    result.seconds = time.perf_counter() - started
    result.problems = problems
    result.ok = not problems
    return result


__all__ = [
    "CASES",
    "CASES_BY_NAME",
    "DIRECTIONS",
    "Case",
    "CaseResult",
    "Direction",
    "Environment",
    "Observation",
    "prepare",
    "run_case",
]
