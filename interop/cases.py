"""The named interop cases (after the quic-interop-runner's) and the code that runs one in one direction.

Owns :data:`CASES`, :data:`DIRECTIONS`, :func:`prepare` (certificates and the served files) and
:func:`run_case`: start the server of one implementation, put a :class:`~interop.tap.WireTap` in front of
it, carry out the case's :class:`~interop.peers.base.ClientPlan` with the client of the other, then check
what the case claims from three vantage points (the client's report, the server's report, the wire).
Shared by :mod:`interop.run` and ``tests/interop``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from interop.impair import Impairment
from interop.network import (
    LongChain,
    amplification_respected,
    blackhole_survived,
    ecn_marked_and_acknowledged,
    handshakes,
    impaired,
    ipv6_only,
    make_long_chain,
)
from interop.peers.aioquic_client import run_aioquic_client
from interop.peers.aioquic_server import AioquicFileServer
from interop.peers.base import (
    ALPN,
    H3_ALPN,
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
from interop.tap import TapPath, WireTap
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
    alpn: str = ALPN
    """The application protocol both ends must report (the plan's)."""


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
    rebind_after: int | None = None
    """The tap rebinds the client's mapping (a new source port towards the server) once this many bytes
    went to the client; see :meth:`interop.tap.WireTap.rebind`."""
    clients: tuple[str, ...] = (RUDP, AIOQUIC)
    """The implementations whose client can carry out the plan; other directions are not applicable."""
    not_applicable: str = ""
    """Why the directions whose client is not in :attr:`clients` do not run (for the README and matrix)."""

    # network cases (interop.impair, interop.network): the link's impairments, the certificate, tests
    impairment: Impairment | None = None
    """What the tap does to the datagrams (loss, corruption, a blackout, a drop list); None: nothing."""
    long_chain: bool = False
    """The server presents the long certificate chain of :func:`interop.network.make_long_chain`."""
    test_connections: int | None = None
    """``tests/interop`` runs only this many of the plan's connections (see :meth:`for_tests`)."""
    known_bugs: tuple[tuple[str, str], ...] = ()
    """(direction slug, the bug) of cells that can fail because of a known rudp bug not fixed yet:
    ``tests/interop`` marks them xfail (not strict: the failure depends on the loss pattern)."""
    ecn: bool = False
    """The tap reads and forwards ECN codepoints (:mod:`interop.ecn_link`) instead of bleaching them."""
    servers: tuple[str, ...] = (RUDP, AIOQUIC)
    """The implementations whose server the case needs; with other servers it is not applicable."""
    # -- rebind-addr and connectionmigration (issue 12) --
    rebind_host: str | None = None
    """The rebinding also gives the client a new IP address: the tap's new upstream socket is bound
    here (the runner's rebind-addr)."""
    preferred: bool = False
    """The server advertises a preferred address (RFC 9000 §9.6), where the tap listens too (the
    runner's connectionmigration)."""
    host: str = "127.0.0.1"
    """Where the server, the tap and the client meet (``::1`` for the runner's ipv6)."""

    def for_tests(self) -> Case:
        """The case as ``tests/interop`` runs it: the first :attr:`test_connections` connections only."""
        if self.test_connections is None:
            return self
        connections = self.plan.connections[: self.test_connections]
        wanted = {path for paths in connections for path in paths}
        return dataclasses.replace(
            self,
            plan=dataclasses.replace(self.plan, connections=connections),
            files={path: size for path, size in self.files.items() if path in wanted},
        )

    def applies_to(self, direction: Direction) -> bool:
        """Whether this case runs in ``direction`` (its client can carry out the plan)."""
        return direction.client in self.clients and direction.server in self.servers


# ---------------------------------------------------------------------------------------------- checks


def _common(obs: Observation) -> list[str]:
    """Every case: each connection completed its handshake on both ends with the plan's ALPN
    (hq-interop, h3 for http3), and every body arrived whole (size and sha256 equal to the file served)."""
    problems: list[str] = []
    if len(obs.servers) != len(obs.clients):
        problems.append(f"server saw {len(obs.servers)} connections, client made {len(obs.clients)}")
    for index, result in enumerate(obs.clients):
        for end in (result.report, obs.servers[index] if index < len(obs.servers) else None):
            if end is None:
                continue
            if not end.handshake_completed:
                problems.append(f"connection {index}: {end.role} handshake incomplete")
            if end.alpn != obs.alpn:
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


MIN_BYTES_AFTER_MOVE: Final = 1 * MIB
"""What the server must send over the client's new path for the transfer to count as continuing there."""
AMPLIFICATION_FACTOR: Final = 3
"""RFC 9000 §8.1 and §9.3: to an address not yet validated, at most three times what came from it."""


def _new_path_problems(old: TapPath, new: TapPath, server: EndpointReport | None) -> list[str]:
    """The server moved to ``new`` and validated it; a rudp server also says so itself.

    Path validation (PATH_CHALLENGE/PATH_RESPONSE) is encrypted, so it is judged by behaviour: until a
    new address is validated the server may send it at most three times what it received from it, so
    more than that (and at least :data:`MIN_BYTES_AFTER_MOVE`) can only follow a validation.
    """
    sent, received = new.bytes["to_client"], new.bytes["to_server"]
    if not new.datagrams["to_client"]:
        return [f"server never sent to the new port {new.port} (old port {old.port})"]
    problems = []
    if sent <= AMPLIFICATION_FACTOR * received or sent < MIN_BYTES_AFTER_MOVE:
        problems.append(
            f"server sent only {sent} bytes over the new path against {received} from the client:"
            " a trickle, as to an address it never validated"
        )
    if server is not None and server.path_changes is not None:
        if server.path_changes < 1:
            problems.append(f"server ({server.impl}) counts no path change")
        if server.peer_port != new.port:
            problems.append(
                f"server ({server.impl}) ends up sending to port {server.peer_port}, not {new.port}"
            )
    return problems


def _rebound(obs: Observation) -> list[str]:
    """The tap rebinding: one client address, two upstream ports, the server followed to the new one."""
    if obs.tap.rebinds != 1 or len(obs.tap.paths) != 2:
        return [f"the tap made {obs.tap.rebinds} rebindings and {len(obs.tap.paths)} paths, want 1 and 2"]
    old, new = obs.tap.paths
    problems = []
    if old.client != new.client:
        problems.append(f"the client itself moved from {old.client} to {new.client}")
    return problems + _new_path_problems(old, new, obs.servers[0] if obs.servers else None)


def _migrated(obs: Observation) -> list[str]:
    """Active migration: a new client address, a fresh DCID on it, the server followed to the new port."""
    paths = obs.tap.paths
    if len(paths) < 2 or paths[-1].client == paths[0].client:
        return ["the client never sent from a new address"]
    old, new = paths[0], paths[-1]
    problems = []
    if not new.dcids:
        problems.append("no short-header packet from the client's new address")
    first_old = next(iter(old.dcids), None)
    for dcid, count in new.dcids.items():
        if dcid == first_old:
            problems.append(f"the client kept connection ID {dcid.hex()} after migrating")
        elif dcid in old.dcids:
            # RFC 9000 §9.5: one connection ID used from two local addresses links them.
            problems.append(
                f"connection ID {dcid.hex()} was sent from the old address ({old.dcids[dcid]} packets)"
                f" as well as from the new one ({count})"
            )
    client = obs.clients[0].report
    if client.path_changes is not None and client.path_changes < 1:
        problems.append(f"client ({client.impl}) counts no path change")
    return problems + _new_path_problems(old, new, obs.servers[0] if obs.servers else None)


# -- rebind-addr and connectionmigration (issue 12) ----------------------------------------------------

REBIND_HOST: Final = "127.0.0.3"
"""The client's new IP address in rebind-addr (any address of 127.0.0.0/8 reaches the server)."""
PREFERRED_HOST: Final = "127.0.0.2"
"""Where the tap listens for the server's preferred address in connectionmigration."""


def _rebound_address(obs: Observation) -> list[str]:
    """rebind-addr: as rebind, and the new path comes from another IP address the server followed."""
    problems = _rebound(obs)
    if len(obs.tap.paths) != 2:
        return problems
    old, new = obs.tap.paths
    if new.host is None or new.host == old.host:
        problems.append(f"the rebinding kept the client's IP address ({new.host or '127.0.0.1'})")
        return problems
    server = obs.servers[0] if obs.servers else None
    if server is not None and server.peer_host is not None and server.peer_host != new.host:
        problems.append(f"server ({server.impl}) ends up sending to {server.peer_host}, not {new.host}")
    return problems


def _moved_to_preferred(obs: Observation) -> list[str]:
    """connectionmigration: the client validated the server's preferred address and the transfer went
    on there; the tap saw it (a path through its preferred listener carrying most of the body)."""
    preferred = [path for path in obs.tap.paths if path.preferred]
    if not preferred:
        return ["no datagram reached the server's preferred address"]
    old, new = obs.tap.paths[0], max(preferred, key=lambda path: path.bytes["to_client"])
    problems = []
    if old.preferred:
        problems.append("the handshake itself went to the preferred address")
    if new.bytes["to_client"] <= old.bytes["to_client"]:
        problems.append(
            f"the preferred address carried {new.bytes['to_client']} bytes to the client, the original"
            f" one {old.bytes['to_client']}: the transfer did not move"
        )
    client = obs.clients[0].report
    if client.path_changes is not None and client.path_changes < 1:
        problems.append(f"client ({client.impl}) counts no path change")
    return problems + _new_path_problems(old, new, obs.servers[0] if obs.servers else None)


def _free_port(host: str) -> int:
    """A port free on ``host`` now (the tap binds it right after the server starts)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _migration_cases() -> tuple[Case, ...]:
    """Called where :data:`CASES` is built (after the helpers of the cases section)."""
    rebind_addr = _files("rebind-addr", [4 * MIB])
    connectionmigration = _files("connectionmigration", [4 * MIB])
    return (
        Case(
            "rebind-addr",
            f"NAT rebinding of the address: 1 MiB into a 4 MiB download the tap sends the client's"
            f" packets from a new port on {REBIND_HOST}; the server follows and validates the new path",
            rebind_addr,
            ClientPlan(_one_connection(rebind_addr)),
            checks=(_rebound_address,),
            timeout=30.0,
            rebind_after=MOVE_AFTER,
            rebind_host=REBIND_HOST,
        ),
        Case(
            "connectionmigration",
            "the server advertises a preferred address (RFC 9000 §9.6); once the handshake is confirmed"
            " the client validates it and the 4 MiB download continues there",
            connectionmigration,
            ClientPlan(_one_connection(connectionmigration)),
            checks=(_moved_to_preferred,),
            timeout=30.0,
            preferred=True,
            servers=(RUDP,),
            not_applicable="aioquic's server cannot advertise a preferred address"
            " (QuicConfiguration has no such setting)",
        ),
    )


# -- end of rebind-addr and connectionmigration ---------------------------------------------------------


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
_REBIND = _files("rebind", [4 * MIB])
_MIGRATION = _files("migration", [4 * MIB])
_IPV6 = _files("ipv6", [5 * KIB, 10 * KIB, 1 * MIB])
_HTTP3 = _files("http3", [1 * KIB, 64 * KIB, 1 * MIB, 3 * MIB])
MOVE_AFTER: Final = 1 * MIB
"""When the rebinding and migration cases move the client: after this much of the 4 MiB response."""

# -- the runner's network cases: the tap impairs the link (interop.impair), interop.network checks ------

HANDSHAKE_RUNS: Final = 50
"""The runner's handshakeloss/handshakecorruption: 50 connections, one 1 KiB file each."""
HANDSHAKE_TEST_RUNS: Final = 5
"""How many of them ``tests/interop`` runs (each costs up to a few retransmission timeouts)."""
_MULTICONNECT = _files("multiconnect", [1 * KIB] * 5)
_HANDSHAKELOSS = _files("handshakeloss", [1 * KIB] * HANDSHAKE_RUNS)
_HANDSHAKECORRUPTION = _files("handshakecorruption", [1 * KIB] * HANDSHAKE_RUNS)
_TRANSFERLOSS = _files("transferloss", [2 * MIB])
_TRANSFERCORRUPTION = _files("transfercorruption", [2 * MIB])
_BLACKHOLE = _files("blackhole", [4 * MIB])
_AMPLIFICATION = _files("amplificationlimit", [5 * KIB])
_ECN = _files("ecn", [100 * KIB])
HEAVY_LOSS: Final = 0.30
MODERATE_LOSS: Final = 0.02
BLACKOUT_AFTER: Final = 1 * MIB
BLACKOUT_SECONDS: Final = 2.0


def _each_alone(files: dict[str, int]) -> tuple[tuple[str, ...], ...]:
    return tuple((path,) for path in files)


NETWORK_CASES: Final = (
    Case(
        "multiconnect",
        "five connections one after the other, one 1 KiB file each; five handshakes on the wire",
        _MULTICONNECT,
        ClientPlan(_each_alone(_MULTICONNECT)),
        checks=(handshakes,),
    ),
    Case(
        "handshakeloss",
        f"{HANDSHAKE_RUNS} connections, one 1 KiB file each, 30 % of the datagrams dropped both ways"
        " (at most 3 in a row)",
        _HANDSHAKELOSS,
        ClientPlan(_each_alone(_HANDSHAKELOSS)),
        checks=(handshakes, impaired("dropped")),
        timeout=300.0,
        impairment=Impairment(drop_to_server=HEAVY_LOSS, drop_to_client=HEAVY_LOSS),
        test_connections=HANDSHAKE_TEST_RUNS,
    ),
    Case(
        "transferloss",
        "one connection, 2 MiB, 2 % of the datagrams dropped both ways (at most 3 in a row)",
        _TRANSFERLOSS,
        ClientPlan(_one_connection(_TRANSFERLOSS)),
        checks=(handshakes, impaired("dropped")),
        timeout=60.0,
        impairment=Impairment(drop_to_server=MODERATE_LOSS, drop_to_client=MODERATE_LOSS),
    ),
    Case(
        "handshakecorruption",
        f"{HANDSHAKE_RUNS} connections, one 1 KiB file each, one bit flipped in 30 % of the datagrams"
        " both ways (at most 3 in a row)",
        _HANDSHAKECORRUPTION,
        ClientPlan(_each_alone(_HANDSHAKECORRUPTION)),
        checks=(handshakes, impaired("corrupted")),
        timeout=300.0,
        impairment=Impairment(corrupt_to_server=HEAVY_LOSS, corrupt_to_client=HEAVY_LOSS),
        test_connections=HANDSHAKE_TEST_RUNS,
    ),
    Case(
        "transfercorruption",
        "one connection, 2 MiB, one bit flipped in 2 % of the datagrams both ways (at most 3 in a row)",
        _TRANSFERCORRUPTION,
        ClientPlan(_one_connection(_TRANSFERCORRUPTION)),
        checks=(handshakes, impaired("corrupted")),
        timeout=60.0,
        impairment=Impairment(corrupt_to_server=MODERATE_LOSS, corrupt_to_client=MODERATE_LOSS),
    ),
    Case(
        "blackhole",
        f"one connection, 4 MiB; once 1 MiB went to the client the link drops everything for"
        f" {BLACKOUT_SECONDS:g} s, then carries on",
        _BLACKHOLE,
        ClientPlan(_one_connection(_BLACKHOLE)),
        checks=(handshakes, blackhole_survived),
        timeout=60.0,
        impairment=Impairment(blackhole_after=BLACKOUT_AFTER, blackhole_seconds=BLACKOUT_SECONDS),
    ),
    Case(
        "amplificationlimit",
        "the server's certificate chain is 9 certificates long (about 9 KB); the client's 2nd to 7th"
        " datagrams are dropped; the server never sends more than 3x what it received before the"
        " client's first Handshake packet",
        _AMPLIFICATION,
        ClientPlan(_one_connection(_AMPLIFICATION)),
        checks=(handshakes, amplification_respected),
        impairment=Impairment(drop_list_to_server=(2, 3, 4, 5, 6, 7)),
        long_chain=True,
    ),
    Case(
        "ecn",
        "one connection, 100 KiB; both sides mark every datagram with one ECT codepoint (seen on the wire,"
        " none Not-ECT or CE), both send ACK_ECN counts and validate ECN",
        _ECN,
        ClientPlan(_one_connection(_ECN)),
        checks=(ecn_marked_and_acknowledged,),
        ecn=True,
        clients=(RUDP,),
        servers=(RUDP,),
        not_applicable="aioquic 1.x has no ECN: it neither marks its packets nor sends ACK_ECN frames",
    ),
)

# -- end of the network cases --------------------------------------------------------------------------

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
    Case(
        "rebind",
        "NAT rebinding: 1 MiB into a 4 MiB download the tap sends the client's packets from a new port;"
        " the server follows and validates the new path",
        _REBIND,
        ClientPlan(_one_connection(_REBIND)),
        checks=(_rebound,),
        timeout=30.0,
        rebind_after=MOVE_AFTER,
    ),
    Case(
        "migration",
        "active migration: 1 MiB into a 4 MiB download the client moves to a new socket and a fresh"
        " connection ID; the server follows and validates the new path",
        _MIGRATION,
        ClientPlan(_one_connection(_MIGRATION), migrate_after=MOVE_AFTER),
        checks=(_migrated,),
        timeout=30.0,
        clients=(RUDP,),
        not_applicable="aioquic's public API cannot move a client connection to a new socket",
    ),
    *NETWORK_CASES,
    *_migration_cases(),
    Case(
        "ipv6",
        "one connection over ::1, 5 KiB + 10 KiB + 1 MiB; every path the tap saw is IPv6",
        _IPV6,
        ClientPlan(_one_connection(_IPV6)),
        checks=(ipv6_only,),
        host="::1",
    ),
    Case(
        "http3",
        "one connection with ALPN h3, 1 KiB + 64 KiB + 1 MiB + 3 MiB as concurrent HTTP/3 GETs",
        _HTTP3,
        ClientPlan(_one_connection(_HTTP3), alpn=H3_ALPN),
        timeout=30.0,
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
    long_chain: LongChain | None = None
    """The amplificationlimit case's certificates (see :func:`interop.network.make_long_chain`)."""


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
    long_chain = make_long_chain(workdir / "long-chain")
    return Environment(pki.ca_file, pki.cert_file, pki.key_file, www, digests, long_chain)


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
    seed: int | None = None
    """The impairment's seed (None: the case impairs nothing); ``interop.run --seed`` replays it."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return asdict(self)


def _pki(case: Case, env: Environment) -> tuple[Path, Path, Path]:
    """(CA, certificate chain, key) the case's server and client use."""
    if case.long_chain:
        if env.long_chain is None:
            raise ValueError(f"{case.name} needs the long certificate chain: prepare() writes it")
        return env.long_chain.ca_file, env.long_chain.cert_file, env.long_chain.key_file
    return env.ca_file, env.cert_file, env.key_file


async def _start_server(direction: Direction, case: Case, env: Environment) -> ServerPeer:
    _ca, cert, key = _pki(case, env)
    if direction.server == RUDP:
        return await RudpFileServer(env.www, cert, key, case.server).start(case.host)
    return await AioquicFileServer(env.www, cert, key, case.server).start(case.host)


async def _run_client(
    direction: Direction, case: Case, port: int, env: Environment
) -> list[ClientConnectionResult]:
    run = run_rudp_client if direction.client == RUDP else run_aioquic_client
    return await run(case.plan, case.host, port, _pki(case, env)[0])


async def _exercise(case: Case, direction: Direction, env: Environment, result: CaseResult) -> Observation:
    preferred = (PREFERRED_HOST, _free_port(PREFERRED_HOST)) if case.preferred else None
    if preferred is not None:  # connectionmigration: advertised by the server, served by the tap
        case = dataclasses.replace(case, server=dataclasses.replace(case.server, preferred_address=preferred))
    server = await _start_server(direction, case, env)
    try:
        async with WireTap(
            (case.host, server.port),
            case.host,
            cid_length=server.cid_length,
            rebind_after=case.rebind_after,
            impairment=case.impairment,
            seed=result.seed or 0,
            ecn=case.ecn,
            rebind_host=case.rebind_host,
            preferred=preferred,
        ) as tap:
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
    return Observation(clients, servers, tap, expected, case.plan.alpn)


async def run_case(
    case: Case, direction: Direction, env: Environment, *, seed: int | None = None
) -> CaseResult:
    """Run ``case`` with ``direction``'s client and server within the case's timeout; never raises.

    ``seed`` seeds the case's impairment (a random one when None; :attr:`CaseResult.seed` tells which).

    Raises:
        ValueError: the case does not apply to ``direction`` (see :meth:`Case.applies_to`).
    """
    if not case.applies_to(direction):
        raise ValueError(f"{case.name} does not apply to {direction.label}: {case.not_applicable}")
    result = CaseResult(case.name, direction.label, ok=False, seconds=0.0, problems=[])
    if case.impairment is not None:
        result.seed = random.randrange(1 << 32) if seed is None else seed
    started = time.perf_counter()
    try:
        obs = await asyncio.wait_for(_exercise(case, direction, env, result), case.timeout)
        problems = _common(obs)
        for check in case.checks:
            problems += check(obs)
    except TimeoutError as exc:
        if time.perf_counter() - started >= case.timeout:
            problems = [f"timed out after {case.timeout:g} s"]
        else:  # raised by a peer (a handshake or ticket timeout), not by the case's own deadline
            problems = [f"TimeoutError: {exc or 'no detail'}"]
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
