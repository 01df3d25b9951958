"""What the network cases (loss, corruption, blackhole, amplification limit, many handshakes) check, and
the long certificate chain of the amplification case.

Owns the checks of those cases (each reads the :class:`~interop.cases.Observation` of one run: the
ends' reports and the tap with its :class:`~interop.impair.Impairer` counts and datagram history) and
:func:`make_long_chain`. The cases themselves are in :data:`interop.cases.CASES`.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from interop.ecn_link import CE, CODEPOINT_NAMES, ECT_0, ECT_1, NOT_ECT
from interop.impair import DIRECTIONS, Direction, Fate

if TYPE_CHECKING:
    from interop.cases import Observation

Check = Callable[["Observation"], list[str]]

AMPLIFICATION_FACTOR: Final = 3
"""RFC 9000 §8.1: before validating the client's address, at most three times what it received."""
CHAIN_INTERMEDIATES: Final = 8
"""The runner's amplificationlimit chain: a root, 8 intermediates and a leaf with 20 long names."""
MIN_SERVER_FLIGHT: Final = 7500
"""The runner fails amplificationlimit when the server's Handshake CRYPTO data stays below this: the
chain was not used, so the limit was never in the way."""


# ---------------------------------------------------------------------------------------------- checks


def impaired(fate: Fate, directions: tuple[Direction, ...] = DIRECTIONS) -> Check:
    """The tap really did it: at least one datagram met ``fate`` in each of ``directions``."""

    def check(obs: Observation) -> list[str]:
        impairer = obs.tap.impairer
        if impairer is None:
            return ["the tap impaired nothing (no impairment configured)"]
        return [
            f"the tap left every datagram {direction} un{fate} (seed {impairer.seed}):"
            " the case tested nothing"
            for direction in directions
            if impairer.count(direction, fate) < 1
        ]

    return check


def handshakes(obs: Observation) -> list[str]:
    """As many handshakes as the plan has connections, counted as the runner counts them: the distinct
    source connection IDs of the server's Initial packets."""
    want = len(obs.clients)
    got = len(obs.tap.server_initial_scids)
    if got == want:
        return []
    return [f"the server's Initial packets carried {got} source connection IDs, want {want}"]


def blackhole_survived(obs: Observation) -> list[str]:
    """The blackout happened mid-transfer, hid datagrams from the client, and the transfer then resumed."""
    impairer = obs.tap.impairer
    if impairer is None or impairer.blackhole_started is None:
        return ["the blackout never started"]
    problems = []
    if impairer.count("to_client", "blackholed") < 1:
        problems.append("the blackout swallowed no datagram towards the client")
    if not impairer.blackhole_ended or impairer.delivered_after_blackhole["to_client"] < 1:
        problems.append("nothing reached the client after the blackout")
    return problems


def ecn_marked_and_acknowledged(obs: Observation) -> list[str]:
    """The runner's ecn check: each side marked every packet it sent, all with the same ECT codepoint
    (the runner's ``_check_ecn_marks``: no Not-ECT, no CE, ECT(0) or ECT(1) but not both), read on the
    wire through the tap's IP_RECVTOS; each side sent ACK_ECN counts (encrypted, so taken from the other
    end's report of what those frames said); and each end validated ECN on its path."""
    if obs.tap.ecn_link is None:
        return ["the tap did not read ECN codepoints (ecn=False)"]
    problems = []
    for direction in DIRECTIONS:
        marks = {mark: obs.tap.ecn_marks[(direction, mark)] for mark in range(4)}
        if not marks[ECT_0] + marks[ECT_1]:
            seen = ", ".join(f"{CODEPOINT_NAMES[m]} {n}" for m, n in marks.items() if n) or "nothing"
            problems.append(f"no ECT-marked datagram {direction} (seen: {seen})")
        elif marks[ECT_0] and marks[ECT_1]:
            problems.append(f"both ECT(0) and ECT(1) datagrams {direction} ({marks[ECT_0]}, {marks[ECT_1]})")
        if marks[NOT_ECT] and marks[ECT_0] + marks[ECT_1]:
            problems.append(f"{marks[NOT_ECT]} datagrams {direction} not marked ECT")
        if marks[CE]:
            problems.append(f"{marks[CE]} datagrams {direction} arrived marked CE")
    for index, result in enumerate(obs.clients):
        ends = (result.report, obs.servers[index] if index < len(obs.servers) else None)
        for end, peer in (ends, ends[::-1]):
            if end is None or peer is None:
                continue
            if end.ecn_peer_counts is None:
                problems.append(f"connection {index}: {end.role} ({end.impl}) does not tell ACK_ECN counts")
            elif not sum(end.ecn_peer_counts[:2]):
                problems.append(f"connection {index}: the {peer.role} ({peer.impl}) sent no ACK_ECN counts")
            if end.ecn_state not in (None, "capable"):
                problems.append(f"connection {index}: {end.role} ({end.impl}) ECN state {end.ecn_state}")
    return problems


def ipv6_only(obs: Observation) -> list[str]:
    """The runner's ipv6: no IPv4 on the wire. Every client address the tap served and the server's
    address are IPv6, and a server that tells (rudp) ends up sending to an IPv6 address."""
    addresses = [("the server", obs.tap.server[0])]
    addresses += [(f"path {index}'s client", path.client[0]) for index, path in enumerate(obs.tap.paths)]
    problems = [f"{who} is {host} (not IPv6)" for who, host in addresses if not _is_ipv6(host)]
    if not obs.tap.paths:
        problems.append("the tap saw no client")
    for index, server in enumerate(obs.servers):
        if server.peer_host is not None and not _is_ipv6(server.peer_host):
            problems.append(f"connection {index}: server ({server.impl}) sends to {server.peer_host}")
    return problems


def _is_ipv6(host: str) -> bool:
    """An IPv6 address that is not an IPv4 one in disguise (``::ffff:a.b.c.d`` travels as IPv4)."""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None


@dataclass
class AmplificationBudget:
    """The server's bytes against three times the client's, up to the client's first Handshake packet."""

    client_bytes: int = 0
    server_bytes: int = 0
    validated: bool = False
    exceeded_at: int | None = None
    """The server's byte count when it first went beyond the limit (None: never)."""


def amplification_budget(history: Sequence[tuple[str, int, tuple[str, ...], Fate]]) -> AmplificationBudget:
    """Walk the tap's datagrams in order, as the runner walks the server's trace: each datagram that
    reached the server adds to the budget, each one the server sent spends it, until a datagram with a
    Handshake packet reaches the server (receiving one validates the client's address, RFC 9000 §8.1)."""
    budget = AmplificationBudget()
    for direction, size, kinds, fate in history:
        if direction == "to_server":
            if fate not in ("delivered", "corrupted"):
                continue  # the server never got it
            if "handshake" in kinds:
                budget.validated = True
                break
            budget.client_bytes += size
        else:
            budget.server_bytes += size
            limit = AMPLIFICATION_FACTOR * budget.client_bytes
            if budget.exceeded_at is None and budget.server_bytes > limit:
                budget.exceeded_at = budget.server_bytes
    return budget


def amplification_respected(obs: Observation) -> list[str]:
    """Before the client's address was validated the server sent at most three times what it received,
    and its handshake flight was big enough (the long chain) that the limit was really in the way."""
    budget = amplification_budget(obs.tap.history)
    problems = []
    if not budget.validated:
        problems.append("no Handshake packet from the client reached the server")
    if budget.exceeded_at is not None:
        problems.append(
            f"the server sent {budget.exceeded_at} bytes to an unvalidated address that had sent"
            f" {budget.client_bytes}: more than {AMPLIFICATION_FACTOR} times"
        )
    flight = sum(
        size
        for direction, size, kinds, _fate in obs.tap.history
        if direction == "to_client" and "handshake" in kinds
    )
    if flight < MIN_SERVER_FLIGHT or flight <= AMPLIFICATION_FACTOR * budget.client_bytes:
        problems.append(
            f"the server's Handshake datagrams carried only {flight} bytes against {budget.client_bytes}"
            " from the client: the limit was never in the way (no long certificate chain?)"
        )
    return problems


# ---------------------------------------------------------------------------------------------- chain


@dataclass(frozen=True)
class LongChain:
    """PEM files of :func:`make_long_chain`."""

    ca_file: Path
    cert_file: Path
    """The leaf followed by every intermediate (what the server sends)."""
    key_file: Path


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, text)])


def make_long_chain(directory: Path, intermediates: int = CHAIN_INTERMEDIATES) -> LongChain:
    """A root CA, ``intermediates`` CA certificates below it and a leaf for localhost/127.0.0.1 inflated
    with 20 made-up 250-character DNS names, as the runner builds the amplificationlimit chain."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=10)

    def issue(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
            )
        )

    ca_usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    keys = [ec.generate_private_key(ec.SECP256R1())]
    root_name = _name("rudp interop root")
    certs = [
        issue("rudp interop root", keys[0], root_name, keys[0])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ca_usage, critical=True)
        .sign(keys[0], hashes.SHA256())
    ]
    for level in range(1, intermediates + 1):
        keys.append(ec.generate_private_key(ec.SECP256R1()))
        certs.append(
            issue(f"rudp interop intermediate {level}", keys[-1], certs[-1].subject, keys[-2])
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(ca_usage, critical=True)
            .sign(keys[-2], hashes.SHA256())
        )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    label = "x" * 60
    padding = [x509.DNSName(f"n{index:02d}.{label}.{label}.{label}.invalid") for index in range(20)]
    loopback = x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), loopback, *padding]
    leaf = (
        issue("rudp interop leaf", leaf_key, certs[-1].subject, keys[-1])
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(keys[-1], hashes.SHA256())
    )
    chain = LongChain(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    pem = serialization.Encoding.PEM
    chain.ca_file.write_bytes(certs[0].public_bytes(pem))
    chain.cert_file.write_bytes(b"".join(c.public_bytes(pem) for c in [leaf, *reversed(certs[1:])]))
    chain.key_file.write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return chain


__all__ = [
    "AMPLIFICATION_FACTOR",
    "AmplificationBudget",
    "LongChain",
    "amplification_budget",
    "amplification_respected",
    "blackhole_survived",
    "ecn_marked_and_acknowledged",
    "handshakes",
    "impaired",
    "make_long_chain",
]
