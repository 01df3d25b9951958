"""A server endpoint under handshake floods and churn: no state for garbage, automatic Retry above a
threshold, CONNECTION_REFUSED past the cap, NEW_TOKEN tokens, stateless resets recognised, and every
per-connection table back to its starting size (RFC 9000 §5.2.2, §8.1, §10.3)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import random
from collections.abc import Iterator
from functools import partial

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rudp.codec.codes import PacketType, TransportErrorCode, Version
from rudp.codec.frames import Ack, Crypto, Padding, Ping
from rudp.codec.packet import parse_header
from rudp.config import Config
from rudp.crypto.keys import initial_secrets
from rudp.crypto.protection import PacketProtection
from rudp.crypto.suites import CipherSuite
from rudp.quic.admission import STATELESS_REPLIES_PER_SECOND, Admission, RateLimit, derive_secret
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.events import ConnectionTerminated
from rudp.testing.certs import TestPki

SERVER = ("10.0.0.2", 4433)
NOW = 100.0
EMPTY = {
    "connections": 0,
    "routes": 0,
    "by_address": 0,
    "reset_tokens": 0,
    "handshakes": 0,
    "handshake_deadlines": 0,
    "dirty": 0,
    "timer_heap": 0,
    "stateless_queue": 0,
}


def _server(pki: TestPki, **options: object) -> QuicEndpoint:
    config = Config(certfile=pki.cert_file, keyfile=pki.key_file, **options)  # type: ignore[arg-type]
    return QuicEndpoint(config, tls_config=config.tls_config(is_client=False))


def _client_config(pki: TestPki, **options: object) -> Config:
    return Config(cafile=pki.ca_file, server_name="localhost", **options)  # type: ignore[arg-type]


def _client_addresses() -> Iterator[tuple[str, int]]:
    for i in range(1 << 16):
        yield (f"10.1.{i >> 8}.{i & 0xFF}", 5000 + i % 1000)


def _first_flight(config: Config, now: float = NOW) -> bytes:
    client = QuicConnection.client(config, server_address=SERVER, now=now)
    ((datagram, _),) = client.datagrams_to_send(now)
    return datagram


def _exchange(
    server: QuicEndpoint, clients: dict[tuple[str, int], QuicConnection], now: float
) -> list[tuple[bytes, tuple[str, int]]]:
    """Shuttle datagrams with zero delay until quiet; return what the server sent."""
    sent: list[tuple[bytes, tuple[str, int]]] = []
    for _ in range(200):
        moved = False
        for addr, client in clients.items():
            for data, _ in client.datagrams_to_send(now):
                server.receive_datagram(data, addr, now)
                moved = True
        for data, addr in server.datagrams_to_send(now):
            sent.append((data, addr))
            if addr in clients:
                clients[addr].receive_datagram(data, SERVER, now)
            moved = True
        if not moved:
            return sent
    raise AssertionError("traffic never settled")


def _packet_type(datagram: bytes) -> PacketType | None:
    return parse_header(datagram, short_dcid_length=8).packet_type


def test_garbage_initials_create_no_state(pki: TestPki) -> None:
    server = _server(pki)
    rng = random.Random(7)
    real = _first_flight(_client_config(pki))
    header = parse_header(real)
    prefix_end = header.pn_offset  # first byte .. Length field: a well-formed Initial header
    for i, addr in zip(range(300), _client_addresses(), strict=False):
        garbage = bytearray(real)
        garbage[6 : 6 + 8] = rng.randbytes(8)  # a fresh DCID: a new "client" each time
        if i % 2:
            garbage[prefix_end:] = rng.randbytes(len(garbage) - prefix_end)  # random payload
        else:
            garbage[-1] ^= 0x01  # one flipped bit: the AEAD tag fails
        assert server.receive_datagram(bytes(garbage), addr, NOW) is None
    assert server.datagrams_to_send(NOW) == []  # not even a reply
    assert server.state_sizes() == EMPTY
    assert server.admission.initials_dropped == 300


def test_an_accepted_initial_is_derived_and_opened_once(
    pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admission check's Initial keys, holding the opened packet, go to the new connection: one
    read key and one write key are derived per accepted client, and the ClientHello is still answered."""
    server = _server(pki)
    first = _first_flight(_client_config(pki))
    built: list[bytes] = []
    opened: list[int] = []
    original_init = PacketProtection.__init__

    def counting_init(self: PacketProtection, suite: CipherSuite, secret: bytes, version: int) -> None:
        built.append(secret)
        original_init(self, suite, secret, version)

    class CountingAesGcm:
        def __init__(self, key: bytes) -> None:
            self._aead = AESGCM(key)
            self.encrypt = self._aead.encrypt

        def decrypt(self, nonce: bytes, data: bytes, associated: bytes | None) -> bytes:
            opened.append(len(data))
            return self._aead.decrypt(nonce, data, associated)

    monkeypatch.setattr(PacketProtection, "__init__", counting_init)
    monkeypatch.setattr("rudp.crypto.protection.AESGCM", CountingAesGcm)
    conn = server.receive_datagram(first, ("10.0.0.1", 5000), NOW)
    assert conn is not None
    client_secret, server_secret = initial_secrets(parse_header(first).dcid, 1)
    assert built.count(client_secret) == 1 and built.count(server_secret) == 1
    assert len(opened) == 1  # the connection used the admission's opened packet
    replies = server.datagrams_to_send(NOW)
    assert replies and _packet_type(replies[0][0]) is PacketType.INITIAL  # the ServerHello went out


def test_an_accepted_initial_is_parsed_once(pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    """The frames the admission check parsed go with the opened packet to the new connection, which
    routes them without parsing the payload again (and still answers the ClientHello)."""
    from rudp.codec import frame_codec

    server = _server(pki)
    first = _first_flight(_client_config(pki))
    parsed: list[bytes] = []

    def counting_parse(payload: bytes, packet_type: PacketType | None = None) -> list[tuple[int, object]]:
        parsed.append(bytes(payload))
        return frame_codec.parse_frames(payload, packet_type)

    # (the admission's parser is bound to parse_frames once: a partial for the Initial's frames)
    initial_parse = partial(counting_parse, packet_type=PacketType.INITIAL)
    monkeypatch.setattr("rudp.quic.admission._initial_frames", initial_parse)
    monkeypatch.setattr("rudp.quic.receiving.parse_frames", counting_parse)
    conn = server.receive_datagram(first, ("10.0.0.1", 5000), NOW)
    assert conn is not None and len(parsed) == 1
    replies = server.datagrams_to_send(NOW)
    assert replies and _packet_type(replies[0][0]) is PacketType.INITIAL  # the ServerHello went out


def test_retry_kicks_in_above_the_threshold_and_the_client_still_connects(pki: TestPki) -> None:
    server = _server(pki, retry_threshold=5)
    config = _client_config(pki)
    addresses = _client_addresses()
    for _ in range(5):  # five half-open handshakes whose clients never answer
        assert server.receive_datagram(_first_flight(config), next(addresses), NOW) is not None
    server.datagrams_to_send(NOW)
    assert server.handshakes_in_progress == 5

    addr = next(addresses)
    client = QuicConnection.client(config, server_address=SERVER, now=NOW)
    sent = _exchange(server, {addr: client}, NOW)
    assert next(_packet_type(d) for d, a in sent if a == addr) is PacketType.RETRY
    assert server.admission.retries_sent == 1
    assert client.handshake_complete
    assert server.handshakes_in_progress == 5  # the validated client finished its handshake
    assert len(server.connections) == 6


def test_past_the_cap_clients_are_refused_with_connection_refused(pki: TestPki) -> None:
    server = _server(pki, retry_threshold=None, max_handshakes=8)
    config = _client_config(pki)
    addresses = _client_addresses()
    for _ in range(8):
        assert server.receive_datagram(_first_flight(config), next(addresses), NOW) is not None
    server.datagrams_to_send(NOW)

    addr = next(addresses)
    client = QuicConnection.client(config, server_address=SERVER, now=NOW)
    _exchange(server, {addr: client}, NOW)
    assert client.close_cause is not None
    events = []
    while (event := client.next_event()) is not None:
        events.append(event)
    closes = [e for e in events if isinstance(e, ConnectionTerminated)]
    assert closes and closes[0].code == TransportErrorCode.CONNECTION_REFUSED and closes[0].by_peer
    assert server.admission.refusals_sent == 1
    assert len(server.connections) == 8 and server.handshakes_in_progress == 8


def test_the_connection_cap_counts_established_connections(pki: TestPki) -> None:
    server = _server(pki, max_connections=3)
    config = _client_config(pki)
    addresses = [("10.1.0.1", 1), ("10.1.0.2", 2), ("10.1.0.3", 3)]
    clients = {addr: QuicConnection.client(config, server_address=SERVER, now=NOW) for addr in addresses}
    _exchange(server, clients, NOW)
    assert all(c.handshake_complete for c in clients.values()) and server.handshakes_in_progress == 0
    late = QuicConnection.client(config, server_address=SERVER, now=NOW)
    _exchange(server, {("10.1.0.4", 4): late}, NOW)
    assert late.close_cause is not None
    assert late.close_cause.code == TransportErrorCode.CONNECTION_REFUSED


def test_refusals_are_rate_limited(pki: TestPki) -> None:
    server = _server(pki, retry_threshold=None, max_handshakes=1)
    config = _client_config(pki)
    server.receive_datagram(_first_flight(config), ("10.9.9.9", 9), NOW)
    server.datagrams_to_send(NOW)
    flights = [_first_flight(config) for _ in range(40)]
    for i, addr in zip(range(STATELESS_REPLIES_PER_SECOND + 100), _client_addresses(), strict=False):
        server.receive_datagram(flights[i % 40], addr, NOW)
    replies = server.datagrams_to_send(NOW)
    assert all(_packet_type(d) is PacketType.INITIAL for d, _ in replies)
    assert len(replies) == server.admission.refusals_sent == STATELESS_REPLIES_PER_SECOND
    assert len(server.connections) == 1


def _connect(client: QuicEndpoint, server: QuicEndpoint, conn_addr: tuple[str, int]) -> QuicConnection:
    """A connection of ``client`` (its datagrams sent from ``conn_addr``), run until quiet, no delay."""
    conn = client.connect(SERVER, NOW)
    for _ in range(200):
        moved = False
        for data, _ in client.datagrams_to_send(NOW):
            server.receive_datagram(data, conn_addr, NOW)
            moved = True
        for data, to in server.datagrams_to_send(NOW):
            if to == conn_addr:
                client.receive_datagram(data, SERVER, NOW)
                moved = True
        if not moved:
            return conn
    raise AssertionError("traffic never settled")


def test_a_new_token_lets_a_returning_client_skip_the_retry(pki: TestPki) -> None:
    server = _server(pki, retry=True)
    config = _client_config(pki)
    client_endpoint = QuicEndpoint(config)
    addr = ("10.1.0.1", 5000)

    first = _connect(client_endpoint, server, addr)
    assert first.handshake_complete and server.admission.retries_sent == 1
    assert first.new_token is not None and list(config.address_tokens) == ["10.0.0.2 4433 0x1"]
    second = _connect(client_endpoint, server, ("10.1.0.1", 6000))  # same IP, new port: the token
    assert second.handshake_complete and server.admission.retries_sent == 1  # counts (RFC 9000 §8.1.3)
    # From another IP the token is no proof: a Retry again.
    third = _connect(client_endpoint, server, ("10.1.0.2", 6000))
    assert third.handshake_complete and server.admission.retries_sent == 2


V1, V2 = int(Version.V1), int(Version.V2)
KEY_V1, KEY_V2 = "10.0.0.2 4433 0x1", "10.0.0.2 4433 0x6b3343cf"


def test_a_client_presents_a_new_token_only_in_its_version(pki: TestPki) -> None:
    """RFC 9369 §5: a token from a v1 connection is not used to start a v2 one, nor the reverse: the
    client keys its tokens by version, so the other version's start meets a Retry."""
    server = _server(pki, retry=True)
    v1 = _client_config(pki)
    v2 = dataclasses.replace(v1, version=Version.V2)  # (the same address_tokens dict)
    addr = ("10.1.0.1", 5000)
    assert _connect(QuicEndpoint(v1), server, addr).version == V1
    assert server.admission.retries_sent == 1 and list(v1.address_tokens) == [KEY_V1]
    conn = _connect(QuicEndpoint(v2), server, addr)
    assert conn.handshake_complete and conn.version == V2
    assert server.admission.retries_sent == 2  # the v1 token was not presented
    assert sorted(v1.address_tokens) == [KEY_V1, KEY_V2]
    for config in (v1, v2):  # each version's token now skips the Retry in its own version
        conn = _connect(QuicEndpoint(config), server, addr)
        assert conn.handshake_complete and conn.version == config.version
    assert server.admission.retries_sent == 2


@pytest.mark.parametrize(("issued", "presented"), [(V1, V2), (V2, V1), (V1, V1), (V2, V2)])
def test_a_server_accepts_a_token_only_in_its_version(pki: TestPki, issued: int, presented: int) -> None:
    """RFC 9369 §5: the server binds the version into its NEW_TOKEN tokens: one presented in an Initial
    of another version leaves the address unverified (a Retry, when retry is required)."""
    server = _server(pki, retry=True)
    token = server.admission.new_token(("10.1.0.1", 5000), NOW, issued)
    config = _client_config(pki, version=presented)
    conn = QuicConnection.client(config, server_address=SERVER, now=NOW, token=token)
    _exchange(server, {("10.1.0.1", 7000): conn}, NOW)
    assert conn.handshake_complete and conn.version == presented
    assert server.admission.retries_sent == (0 if issued == presented else 1)


def test_a_token_after_compatible_version_negotiation_is_for_the_negotiated_version(pki: TestPki) -> None:
    """RFC 9369 §5: a v1 client switched to v2 gets (and keeps) a v2 token, good for a v2 start only."""
    server = _server(pki, retry=True, versions=(Version.V2, Version.V1))
    v1 = _client_config(pki)
    addr = ("10.1.0.1", 5000)
    assert _connect(QuicEndpoint(v1), server, addr).version == V2
    assert server.admission.retries_sent == 1 and list(v1.address_tokens) == [KEY_V2]
    assert _connect(QuicEndpoint(v1), server, addr).handshake_complete  # a v1 start: Retry again
    assert server.admission.retries_sent == 2
    conn = _connect(QuicEndpoint(dataclasses.replace(v1, version=Version.V2)), server, addr)
    assert conn.handshake_complete and conn.version == V2 and server.admission.retries_sent == 2


def test_address_tokens_are_bound_to_the_ip_and_expire(pki: TestPki) -> None:
    server = _server(pki, address_token_lifetime=60.0)
    admission = server.admission
    token = admission.new_token(("10.1.0.1", 5000), NOW, V1)
    assert admission.open_token(token, ("10.1.0.1", 7000), NOW + 59, V1) is not None
    assert admission.open_token(token, ("10.1.0.1", 7000), NOW + 59, V2) is None  # RFC 9369 §5
    assert admission.open_token(token, ("10.1.0.2", 5000), NOW, V1) is None
    assert admission.open_token(token, ("10.1.0.1", 5000), NOW + 60, V1) is None
    retry = admission.retry_token(("10.1.0.1", 5000), b"odcid---", NOW, V2)
    assert admission.open_token(retry, ("10.1.0.1", 5000), NOW + 1, V2) is not None
    assert admission.open_token(retry, ("10.1.0.1", 5000), NOW + 1, V1) is None  # RFC 9369 §5
    assert admission.open_token(retry, ("10.1.0.1", 5001), NOW + 1, V2) is None  # Retry: IP and port
    assert admission.open_token(retry, ("10.1.0.1", 5000), NOW + 11, V2) is None
    tampered = bytearray(token)
    tampered[-1] ^= 1
    assert admission.open_token(bytes(tampered), ("10.1.0.1", 5000), NOW, V1) is None
    assert admission.open_token(b"", ("10.1.0.1", 5000), NOW, V1) is None


class _NoScan(dict[bytes, QuicConnection]):
    """A routing table that fails the test if anyone walks it."""

    def items(self):  # type: ignore[no-untyped-def, override]
        raise AssertionError("the whole routing table was scanned")

    def __iter__(self):  # type: ignore[no-untyped-def, override]
        raise AssertionError("the whole routing table was scanned")

    def values(self):  # type: ignore[no-untyped-def, override]
        raise AssertionError("the whole routing table was scanned")


def test_churn_returns_every_table_to_its_starting_size_without_scans(pki: TestPki) -> None:
    server = _server(pki)
    server._routes = _NoScan()  # closing must cost O(own CIDs), not O(all routes)
    server._by_reset_token = _NoScan()
    config = _client_config(pki)
    now = NOW
    for i, addr in zip(range(150), _client_addresses(), strict=False):
        client = QuicConnection.client(config, server_address=SERVER, now=now)
        _exchange(server, {addr: client}, now)
        assert client.handshake_complete
        stream_id = client.open_stream()
        client.send_stream(stream_id, b"x" * (i + 1), fin=True)
        _exchange(server, {addr: client}, now)
        if i % 2:  # half of the clients vanish without closing: the server's idle timer cleans up
            client.close(0, "done")
            _exchange(server, {addr: client}, now)
        now += 0.01
    deadline = server.next_timer()
    while deadline is not None:
        now = max(now, deadline)
        server.handle_timer(now)
        server.datagrams_to_send(now)
        deadline = server.next_timer()
    assert server.state_sizes() == EMPTY


def test_half_open_states_expire_in_linear_time(pki: TestPki) -> None:
    server = _server(pki, retry_threshold=None, max_handshakes=2000)
    server._routes = _NoScan()
    config = _client_config(pki)
    flights = [_first_flight(config) for _ in range(20)]
    for i, addr in zip(range(1000), _client_addresses(), strict=False):
        datagram = bytearray(flights[i % 20])
        assert server.receive_datagram(bytes(datagram), addr, NOW) is not None or i >= 20
    server.datagrams_to_send(NOW)
    assert server.handshakes_in_progress == 20  # the same DCID twice routes to the first connection
    now = NOW + 3600
    server.handle_timer(now)
    server.datagrams_to_send(now)
    assert server.state_sizes() == EMPTY


def test_the_timer_heap_stays_bounded_while_deadlines_move(pki: TestPki) -> None:
    server = _server(pki)
    config = _client_config(pki)
    addr = ("10.1.0.1", 5000)
    client = QuicConnection.client(config, server_address=SERVER, now=NOW)
    _exchange(server, {addr: client}, NOW)
    now = NOW
    for _ in range(2000):  # every exchange moves the server's idle deadline
        now += 0.001
        client.ping()
        _exchange(server, {addr: client}, now)
    assert len(server._timer_heap) <= 2 * len(server.connections) + 64


def test_a_client_endpoint_recognises_a_stateless_reset_it_cannot_route(pki: TestPki) -> None:
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file)
    server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    client_endpoint = QuicEndpoint(_client_config(pki))
    conn = client_endpoint.connect(SERVER, NOW)
    addr = ("10.1.0.1", 5000)
    for _ in range(50):
        for data, _ in client_endpoint.datagrams_to_send(NOW):
            server.receive_datagram(data, addr, NOW)
        for data, _ in server.datagrams_to_send(NOW):
            client_endpoint.receive_datagram(data, SERVER, NOW)
    assert conn.handshake_complete
    client_endpoint.datagrams_to_send(NOW)
    # The server restarts with the same private key: its reset key is the same (derived from it).
    restarted = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    stream_id = conn.open_stream()
    conn.send_stream(stream_id, b"anyone there?")
    (data, _), *_ = client_endpoint.datagrams_to_send(NOW + 1)
    restarted.receive_datagram(data, addr, NOW + 1)
    ((reset, _),) = restarted.datagrams_to_send(NOW + 1)
    assert len(reset) < len(data)  # RFC 9000 §10.3.3: smaller than its trigger
    assert client_endpoint.receive_datagram(reset, SERVER, NOW + 1) is None
    assert conn.close_cause is not None and conn.close_cause.reason == "stateless reset"
    # ... and the client endpoint does not answer a reset (or anything unroutable) with a reset.
    assert client_endpoint.datagrams_to_send(NOW + 1) == []
    client_endpoint.receive_datagram(reset, SERVER, NOW + 1)
    assert client_endpoint.datagrams_to_send(NOW + 1) == []
    deadline = client_endpoint.next_timer()  # the draining period ends, and the connection goes
    assert deadline is not None and deadline < NOW + 10
    client_endpoint.handle_timer(deadline)
    assert client_endpoint.datagrams_to_send(deadline) == []
    assert conn.is_closed and client_endpoint.state_sizes() == EMPTY


def test_stateless_resets_are_rate_limited_and_never_loop(pki: TestPki) -> None:
    server = _server(pki)
    rng = random.Random(3)
    for _ in range(STATELESS_REPLIES_PER_SECOND * 3):
        server.receive_datagram(bytes([0x40]) + rng.randbytes(60), ("10.1.0.1", 5000), NOW)
    replies = server.datagrams_to_send(NOW)
    assert 0 < len(replies) <= STATELESS_REPLIES_PER_SECOND
    assert all(len(reply) <= 43 for reply, _ in replies)
    # Two servers bouncing resets at each other shrink them until they stop (§10.3.3).
    other = _server(pki)
    packet = replies[0][0]
    for hop in range(40):
        target = other if hop % 2 == 0 else server
        target.receive_datagram(packet, ("10.1.0.1", 5000), NOW + 2 + hop)
        out = target.datagrams_to_send(NOW + 2 + hop)
        if not out:
            break
        assert len(out[0][0]) < len(packet)
        packet = out[0][0]
    else:
        pytest.fail("resets kept bouncing")
    assert server.state_sizes()["connections"] == 0


def test_rate_limit_refills_over_time() -> None:
    limit = RateLimit(10)
    assert sum(limit.allow(0.0) for _ in range(50)) == 10
    assert sum(limit.allow(0.5) for _ in range(50)) == 5
    assert sum(limit.allow(0.4) for _ in range(50)) == 0  # time going backwards gives nothing
    assert sum(limit.allow(100.0) for _ in range(50)) == 10


_REAL_INITIALS: list[bytes] = []


def _real_initials() -> list[bytes]:
    if not _REAL_INITIALS:
        from rudp.testing.flood import initial_variants

        _REAL_INITIALS.extend(initial_variants(8, SERVER))
    return _REAL_INITIALS


@st.composite
def _hostile_datagram(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(min_size=1, max_size=1500))
    base = bytearray(draw(st.sampled_from(_real_initials())))
    if kind == 1:  # bit flips anywhere in a valid Initial
        for position in draw(st.lists(st.integers(0, len(base) - 1), min_size=1, max_size=4, unique=True)):
            base[position] ^= 1 << draw(st.integers(0, 7))
        return bytes(base)
    if kind == 2:  # truncated, with or without garbage after the cut
        cut = draw(st.integers(1, len(base) - 1))
        return bytes(base[:cut]) + draw(st.binary(max_size=200))
    # a short header that names no connection, of any size
    return bytes([0x40 | draw(st.integers(0, 63))]) + draw(st.binary(max_size=1400))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(datagrams=st.lists(_hostile_datagram(), min_size=1, max_size=12))
def test_endpoint_fuzz_garbage_creates_no_state(pki: TestPki, datagrams: list[bytes]) -> None:
    server = _FUZZ_SERVERS.get(id(pki)) or _FUZZ_SERVERS.setdefault(id(pki), _server(pki))
    for i, data in enumerate(datagrams):
        assert server.receive_datagram(data, (f"10.2.0.{i + 1}", 4000 + i), NOW) is None
    for reply, _ in server.datagrams_to_send(NOW):
        assert len(reply) < 1200  # only small stateless replies (resets, version negotiation)
    sizes = server.state_sizes()
    assert sizes == EMPTY, sizes


_FUZZ_SERVERS: dict[int, QuicEndpoint] = {}


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=40))
def test_derive_secret_is_hmac_sha256_of_the_labelled_input(master: bytes, label: bytes) -> None:
    # The endpoint's reset and token keys: an endpoint restarted with the same master secret must
    # derive the same ones (RFC 9000 §10.3.2), so the bytes are fixed: RFC 2104 HMAC-SHA256.
    expected = hmac.new(master, b"rudp endpoint secret: " + label, hashlib.sha256).digest()
    assert derive_secret(master, label) == expected


def test_reset_key_is_the_configured_one_else_derived_from_the_master_secret() -> None:
    master = bytes(range(32))
    derived = Admission(Config(alpn=["x"]), master, lambda n: bytes(n)).reset_key
    assert derived == derive_secret(master, b"stateless reset")
    configured = Admission(Config(alpn=["x"], stateless_reset_key=bytes(16)), master, lambda n: bytes(n))
    assert configured.reset_key == bytes(16)


@pytest.mark.parametrize(
    ("frames", "accepted"),
    [
        ([Ping(), Padding(1100)], False),  # RFC 9000 §17.2.2: a first Initial carries the ClientHello
        ([Padding(5), Ping(), Crypto(0, b"\x01\x00\x00\x00"), Padding(1100)], True),
        ([Ack(((0, 0),), 0), Padding(1100)], False),
    ],
)
def test_only_an_initial_that_carries_crypto_is_accepted(frames: list[object], accepted: bool) -> None:
    """open_initial keeps the keys of a first Initial only when it decrypts and one of its frames is
    CRYPTO (wherever it is among them)."""
    from rudp.codec.frame_codec import encode_frames
    from rudp.codec.packet import encode_long_header

    dcid, scid = bytes(range(8)), b"client"
    payload = encode_frames(frames)  # type: ignore[arg-type]
    client_secret, _ = initial_secrets(dcid, 1)
    protection = PacketProtection(CipherSuite.AES_128_GCM_SHA256, client_secret, 1)
    head = encode_long_header(
        PacketType.INITIAL, 1, dcid, scid, length=2 + len(payload) + 16, packet_number=0, pn_length=2
    )
    datagram = protection.protect(head, payload, 0, len(head) - 2, 2)
    admission = Admission(Config(), b"s" * 32, random.Random(1).randbytes)
    opened = admission.open_initial(datagram, parse_header(datagram))
    assert (opened is not None) is accepted
    assert admission.initial_decrypts(datagram, parse_header(datagram)) is accepted
