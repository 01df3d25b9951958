"""Compatible version negotiation between QUIC v1 and v2 (RFC 9368, RFC 9369 §4) over the simulator:
a v1 client offering v2 switched by a server preferring v2, the version_information both sides send,
the validation of a peer's version_information (VERSION_NEGOTIATION_ERROR), servers and clients that
keep v1, a Retry before the switch, and the server reading the client's original-version Initials."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import pytest

from rudp.codec.codes import PacketType, Version
from rudp.codec.packet import PacketHeader, iter_packets
from rudp.codec.transport_params import (
    TransportParameters,
    VersionInformation,
    decode_transport_parameters,
    encode_transport_parameters,
    version_information_of,
)
from rudp.config import Config
from rudp.errors import ConfigError, TransportError, TransportErrorCode
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.keys import KeyPair
from rudp.quic.spaces import PacketSpaces
from rudp.quic.versions import VersionNegotiation
from rudp.testing import LinkConfig, Pair, VirtualClock
from rudp.testing.certs import TestPki
from rudp.tls.client import TlsClient
from rudp.tls.config import TlsConfig
from rudp.tls.engine import EncryptionLevel
from rudp.tls.tickets import SessionTicket, TicketSealer, TicketStore
from tests.support.peers import RudpPeer
from tests.support.sim import SERVER_ADDR, Sim, make_sim

V1, V2 = int(Version.V1), int(Version.V2)
VNE = TransportErrorCode.VERSION_NEGOTIATION_ERROR
PREFER_V2: dict[str, object] = {"versions": (Version.V2, Version.V1)}


class Wire:
    """The long-header versions of every datagram each way, and the packet types per version."""

    def __init__(self) -> None:
        self.c2s: list[tuple[int, PacketType | None]] = []
        self.s2c: list[tuple[int, PacketType | None]] = []

    def recorder(self, into: list[tuple[int, PacketType | None]]) -> Callable[[bytes, int], bool]:
        def record(data: bytes, _index: int) -> bool:
            for header in iter_packets(data, short_dcid_length=8):
                if header.is_long and header.version is not None:
                    into.append((header.version, header.packet_type))
            return False

        return record


def _sim(
    pki: TestPki, *, client: dict[str, object] | None = None, server: dict[str, object] | None = None
) -> tuple[Sim, Wire]:
    wire = Wire()
    c2s = LinkConfig(delay=0.02, drop_filter=wire.recorder(wire.c2s))
    s2c = LinkConfig(delay=0.02, seed=7, drop_filter=wire.recorder(wire.s2c))
    return make_sim(pki, link=c2s, s2c=s2c, client=client, server=server), wire


def _transfer(sim: Sim, size: int = 200_000) -> None:
    stream_id = sim.conn.open_stream()
    data = os.urandom(size)
    sim.client.send(stream_id, data)
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=10)
    assert bytes(sim.server.streams[stream_id]) == data


def _info(sim: Sim, *, of_server: bool) -> VersionInformation | None:
    """The version_information one side received from the other (as authenticated by TLS)."""
    conn = sim.conn if of_server else sim.server.conn
    params = conn._handshake.peer_params
    assert params is not None
    return params.version_information


def test_v1_client_switched_to_v2_by_a_server_preferring_it(pki: TestPki) -> None:
    sim, wire = _sim(pki, server=PREFER_V2)
    sim.handshake()
    _transfer(sim)
    assert sim.conn.version == V2 and sim.server.conn.version == V2
    # The client's first flight is v1; every server long-header packet is v2 (it had the client's
    # transport parameters before its first CRYPTO frame), and the client follows from then on.
    assert wire.c2s[0] == (V1, PacketType.INITIAL)
    first_v2 = next(i for i, (version, _) in enumerate(wire.c2s) if version == V2)
    assert all(version == V1 for version, _ in wire.c2s[:first_v2])
    assert all(version == V2 for version, _ in wire.c2s[first_v2:])
    assert {version for version, _ in wire.s2c} == {V2}
    assert (V2, PacketType.HANDSHAKE) in wire.c2s and (V2, PacketType.HANDSHAKE) in wire.s2c
    # RFC 9368 §3: the client offers v1 (its choice, first) then v2; the server names v2 and lists
    # the versions it fully supports.
    assert _info(sim, of_server=False) == VersionInformation(V1, (V1, V2))
    server_info = _info(sim, of_server=True)
    assert server_info is not None and server_info.chosen_version == V2
    assert set(server_info.available_versions) == {V1, V2}


def test_client_preference_order_is_what_it_offers(pki: TestPki) -> None:
    sim, _ = _sim(pki, client=PREFER_V2, server=PREFER_V2)
    sim.handshake()
    assert _info(sim, of_server=False) == VersionInformation(V1, (V2, V1))
    assert sim.conn.version == V2


def test_default_server_keeps_the_clients_version(pki: TestPki) -> None:
    sim, wire = _sim(pki)
    sim.handshake()
    _transfer(sim, 50_000)
    assert sim.conn.version == V1 and sim.server.conn.version == V1
    assert {version for version, _ in wire.c2s + wire.s2c} == {V1}
    assert _info(sim, of_server=False) == VersionInformation(V1, (V1, V2))
    assert _info(sim, of_server=True) == VersionInformation(V1, (V1, V2))


def test_server_preferring_v1_keeps_v1_and_v2_clients_stay_v2_by_default(pki: TestPki) -> None:
    sim, wire = _sim(pki, server={"versions": (Version.V1,)})
    sim.handshake()
    assert sim.server.conn.version == V1 and {v for v, _ in wire.s2c} == {V1}
    sim2, wire2 = _sim(pki, client={"version": Version.V2})
    sim2.handshake()
    _transfer(sim2, 50_000)
    assert sim2.server.conn.version == V2 and {v for v, _ in wire2.c2s + wire2.s2c} == {V2}
    assert _info(sim2, of_server=False) == VersionInformation(V2, (V2, V1))


def test_client_that_offers_only_v1_is_not_switched(pki: TestPki) -> None:
    sim, wire = _sim(pki, client={"versions": (Version.V1,)}, server=PREFER_V2)
    sim.handshake()
    assert sim.conn.version == V1 and {v for v, _ in wire.c2s + wire.s2c} == {V1}
    assert _info(sim, of_server=False) == VersionInformation(V1, (V1,))


def test_v2_client_switched_down_to_v1_by_a_server_preferring_v1(pki: TestPki) -> None:
    # v1 and v2 are compatible both ways (RFC 9369 §4).
    sim, wire = _sim(pki, client={"version": Version.V2}, server={"versions": (Version.V1, Version.V2)})
    sim.handshake()
    _transfer(sim, 50_000)
    assert sim.conn.version == V1 and wire.c2s[0][0] == V2 and {v for v, _ in wire.s2c} == {V1}


def test_switch_after_retry(pki: TestPki) -> None:
    # RFC 9369 §4.1: the Retry is in the original version; the switch comes after it.
    sim, wire = _sim(pki, server={**PREFER_V2, "retry": True})
    sim.handshake()
    _transfer(sim, 50_000)
    assert wire.s2c[0] == (V1, PacketType.RETRY)
    assert sim.conn.version == V2 and {v for v, _ in wire.s2c[1:]} == {V2}


def _patch_information(monkeypatch: pytest.MonkeyPatch, *, client: bool, info: VersionInformation) -> None:
    """Make one side send ``info`` as its version_information (a forged or mistaken peer)."""
    original = VersionNegotiation.local_information

    def forged(self: VersionNegotiation) -> VersionInformation:
        return info if self._is_client == client else original(self)

    monkeypatch.setattr(VersionNegotiation, "local_information", forged)


def _closed_with(sim: Sim, code: int) -> None:
    assert sim.pair.drive(until=lambda: sim.client.terminated is not None, max_time=5)
    assert sim.client.handshake is None
    assert sim.client.terminated is not None and sim.client.terminated.code == code


def test_client_chosen_version_not_the_packet_version(pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 9368 §4: a v1 first flight whose version_information says v2 was chosen.
    _patch_information(monkeypatch, client=True, info=VersionInformation(V2, (V2, V1)))
    sim, _ = _sim(pki, server=PREFER_V2)
    _closed_with(sim, VNE)
    assert sim.client.terminated is not None and sim.client.terminated.by_peer


def test_server_chosen_version_not_the_one_it_speaks(pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server switches to v2 but its version_information says v1 (RFC 9368 §4: the client checks).
    _patch_information(monkeypatch, client=False, info=VersionInformation(V1, (V1, V2)))
    sim, _ = _sim(pki, server=PREFER_V2)
    _closed_with(sim, VNE)
    assert sim.client.terminated is not None and not sim.client.terminated.by_peer


def test_server_chosen_version_not_offered(pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_information(monkeypatch, client=False, info=VersionInformation(V2, (V1, V2)))
    sim, _ = _sim(pki, client={"versions": (Version.V1,)}, server=PREFER_V2)
    _closed_with(sim, VNE)


def test_malformed_client_information_is_a_parameter_error(
    pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RFC 9368 §4: a Chosen Version missing from the client's Available Versions is a parse failure.
    _patch_information(monkeypatch, client=True, info=VersionInformation(V1, (V2,)))
    sim, _ = _sim(pki, server=PREFER_V2)
    _closed_with(sim, TransportErrorCode.TRANSPORT_PARAMETER_ERROR)


# -- the negotiation object alone --------------------------------------------------------------------


def _spaces(version: int) -> PacketSpaces:
    return PacketSpaces(version, os.urandom, max_ack_delay=0.025, ack_delay_exponent=3)


def _initial_header(version: int) -> PacketHeader:
    return PacketHeader(0xC0, True, version, PacketType.INITIAL, b"d" * 8, b"s" * 8)


def test_server_keeps_original_initial_keys_until_a_handshake_packet() -> None:
    spaces = _spaces(V1)
    spaces.install_initial(b"dcid5678", is_client=False)
    original = spaces.read_keys(EncryptionLevel.INITIAL)
    versions = VersionNegotiation(spaces, is_client=False, preferred=(V2, V1))
    client = TransportParameters(version_information=VersionInformation(V1, (V1, V2)))
    assert versions.choose(client, b"dcid5678")
    assert spaces.version == V2 and versions.switched
    new = spaces.read_keys(EncryptionLevel.INITIAL)
    assert new is not None and new.version == V2
    assert new.secret == KeyPair.initial(b"dcid5678", V2, is_client=False).read.secret  # type: ignore[union-attr]
    # RFC 9369 §4.1: v1 Initials of the client still open, until a v2 Handshake packet arrives.
    assert versions.keys_for(_initial_header(V1), b"dcid5678") is original
    versions.on_handshake_packet()
    assert versions.keys_for(_initial_header(V1), b"dcid5678") is None


def test_client_follows_only_an_offered_version_before_server_crypto() -> None:
    spaces = _spaces(V1)
    spaces.install_initial(b"dcid5678", is_client=True)
    versions = VersionNegotiation(spaces, is_client=True, preferred=(V1,))
    assert versions.local_information() == VersionInformation(V1, (V1,))
    assert versions.keys_for(_initial_header(V2), b"dcid5678") is None  # v2 not offered
    offering = VersionNegotiation(spaces, is_client=True, preferred=None)
    keys = offering.keys_for(_initial_header(V2), b"dcid5678")
    assert keys is not None and keys.version == V2 and spaces.version == V1  # not before it opens
    offering.on_opened(_initial_header(V2))
    assert spaces.version == V2 and offering.switched


def test_server_rejects_zero_and_mismatched_versions() -> None:
    versions = VersionNegotiation(_spaces(V1), is_client=False, preferred=None)
    bad = TransportParameters(version_information=VersionInformation(V1, (V1, 0)))
    with pytest.raises(TransportError) as caught:
        versions.choose(bad, b"dcid5678")
    assert caught.value.code == TransportErrorCode.TRANSPORT_PARAMETER_ERROR
    wrong = TransportParameters(version_information=VersionInformation(V2, (V2, V1)))
    with pytest.raises(TransportError) as caught:
        versions.choose(wrong, b"dcid5678")
    assert caught.value.code == VNE
    assert not versions.choose(TransportParameters(), b"dcid5678")  # RFC 9368 §4: may be missing


@pytest.mark.parametrize("versions", [(), (Version.V1, Version.V1), (0x5,), [Version.V1]])
def test_config_rejects_bad_version_lists(versions: object) -> None:
    with pytest.raises(ConfigError):
        Config(versions=versions)  # type: ignore[arg-type]


# -- tickets and 0-RTT across versions (RFC 9369 §5, RFC 9368 §7.3) -------------------------------------


def _connect(
    endpoint: QuicEndpoint, config: Config, clock: VirtualClock, payload: bytes
) -> tuple[RudpPeer, Pair]:
    """A client connection to ``endpoint`` sending ``payload`` as soon as it can (0-RTT if offered)."""
    conn = QuicConnection.client(config, server_address=SERVER_ADDR, now=clock.now)
    client, server = RudpPeer(conn), RudpPeer(endpoint)
    pair = Pair(
        client,
        server,
        client_addr=("10.0.0.3", 6000),
        server_addr=SERVER_ADDR,
        c2s=LinkConfig(delay=0.02),
        s2c=LinkConfig(delay=0.02, seed=3),
        clock=clock,
    )
    if not conn.early_data_attempted:  # streams open once the handshake gives the limits
        assert pair.drive(until=lambda: client.handshake is not None, max_time=5)
    stream_id = conn.open_stream()
    client.send(stream_id, payload)
    assert pair.drive(until=lambda: stream_id in server.finished and client.handshake is not None, max_time=5)
    assert bytes(server.streams[stream_id]) == payload
    return client, pair


def test_client_does_not_resume_a_v2_session_in_v1(pki: TestPki) -> None:
    store = TicketStore()
    client_config = Config(
        cafile=pki.ca_file, server_name="localhost", session_ticket_store=store, enable_0rtt=True
    )
    server_config = Config(
        certfile=pki.cert_file, keyfile=pki.key_file, enable_0rtt=True, versions=(Version.V2, Version.V1)
    )
    tls = server_config.tls_config(is_client=False)  # one ticket key for every endpoint below
    clock = VirtualClock(1000.0)
    client, pair = _connect(QuicEndpoint(server_config, tls_config=tls), client_config, clock, b"first")
    assert client.conn.version == V2
    assert pair.drive(until=lambda: len(store) > 0, max_time=2)
    # The ticket comes from a v2 connection: a v1 start does not use it (RFC 9369 §5) ...
    client, pair = _connect(
        QuicEndpoint(server_config, tls_config=tls), client_config, clock, os.urandom(3000)
    )
    assert client.handshake is not None and not client.handshake.session_resumed
    assert not client.conn.early_data_attempted and client.conn.version == V2
    assert pair.drive(until=lambda: len(store) > 0, max_time=2)  # (tickets are used once)
    # ... a v2 start does, with 0-RTT (no switch: the server already speaks its preferred version).
    v2_config = dataclasses.replace(client_config, version=Version.V2)
    client, _ = _connect(QuicEndpoint(server_config, tls_config=tls), v2_config, clock, os.urandom(3000))
    assert client.handshake is not None and client.handshake.session_resumed
    assert client.handshake.early_data_accepted and client.conn.version == V2


@pytest.mark.parametrize("switching", [False, True])
def test_server_refuses_a_v1_ticket_once_switched_to_v2(pki: TestPki, switching: bool) -> None:
    store = TicketStore()
    client_config = Config(
        cafile=pki.ca_file, server_name="localhost", session_ticket_store=store, enable_0rtt=True
    )
    plain = Config(certfile=pki.cert_file, keyfile=pki.key_file, enable_0rtt=True)
    tls = plain.tls_config(is_client=False)  # one ticket key for both endpoints
    clock = VirtualClock(1000.0)
    _, pair = _connect(QuicEndpoint(plain, tls_config=tls), client_config, clock, b"first")
    assert pair.drive(until=lambda: len(store) > 0, max_time=2)
    second = dataclasses.replace(plain, versions=(Version.V2, Version.V1) if switching else None)
    payload = os.urandom(5000)
    client, _ = _connect(QuicEndpoint(second, tls_config=tls), client_config, clock, payload)
    assert client.conn.early_data_attempted
    handshake = client.handshake
    assert handshake is not None
    # Without a switch the v1 ticket resumes with 0-RTT; with one, the server refuses both (the 0-RTT
    # data arrived all the same, sent again in 1-RTT: checked by _connect).
    assert (handshake.session_resumed, handshake.early_data_accepted) == (not switching, not switching)
    assert client.conn.version == (V2 if switching else V1)


def _ticket_from(config: Config, server: Config, tls: TlsConfig, clock: VirtualClock) -> SessionTicket:
    """The ticket a connection of ``config`` to a ``server`` endpoint (ticket key in ``tls``) leaves in
    the client's store, taken out of it."""
    store = config.session_ticket_store
    assert store is not None
    _, pair = _connect(QuicEndpoint(server, tls_config=tls), config, clock, b"first")
    assert pair.drive(until=lambda: len(store) > 0, max_time=2)
    ticket = store.get("localhost")
    assert ticket is not None and len(store) == 0
    return ticket


def _without_version_information(encoded: bytes | None) -> bytes:
    """Transport parameters as a server without RFC 9368 support would have sent them."""
    assert encoded is not None
    params = decode_transport_parameters(encoded, from_server=True)
    assert params.version_information is not None
    return encode_transport_parameters(dataclasses.replace(params, version_information=None))


def _start(client: Config, server: Config, tls: TlsConfig, clock: VirtualClock, version: int) -> RudpPeer:
    """A connection of ``client`` starting in ``version`` (sending a payload: in 0-RTT if offered)."""
    endpoint = QuicEndpoint(server, tls_config=tls)
    peer, _ = _connect(endpoint, dataclasses.replace(client, version=version), clock, b"x")
    return peer


def _offered(peer: RudpPeer) -> SessionTicket | None:
    tls = peer.conn._handshake.tls
    assert isinstance(tls, TlsClient)
    return tls.session_ticket


def _resumption_configs(pki: TestPki) -> tuple[Config, Config, TlsConfig]:
    client = Config(
        cafile=pki.ca_file, server_name="localhost", session_ticket_store=TicketStore(), enable_0rtt=True
    )
    server = Config(certfile=pki.cert_file, keyfile=pki.key_file, enable_0rtt=True)
    return client, server, server.tls_config(is_client=False)  # one ticket key for every endpoint


@pytest.mark.parametrize(
    ("start", "server_versions", "negotiated"),
    [(V1, None, V1), (V2, None, V2), (V1, (Version.V2, Version.V1), V2), (V2, (Version.V1, Version.V2), V1)],
)
def test_a_ticket_is_stamped_with_the_negotiated_version(
    pki: TestPki, start: int, server_versions: tuple[int, ...] | None, negotiated: int
) -> None:
    """RFC 9369 §5: after compatible version negotiation a ticket maps to the negotiated version."""
    client, server, tls = _resumption_configs(pki)
    client = dataclasses.replace(client, version=start)
    server = dataclasses.replace(server, versions=server_versions)
    assert _ticket_from(client, server, tls, VirtualClock(1000.0)).quic_version == negotiated


@pytest.mark.parametrize(("issued", "other"), [(V1, V2), (V2, V1)])
def test_a_stamped_ticket_is_offered_only_in_its_version(pki: TestPki, issued: int, other: int) -> None:
    """The client's stamp decides even when the server's remembered parameters carry no
    version_information (a server without RFC 9368): the ticket is not offered on a start in the other
    version, stays in the store, and resumes (with 0-RTT) a start in its own version."""
    client, server, tls = _resumption_configs(pki)
    clock = VirtualClock(1000.0)
    ticket = _ticket_from(dataclasses.replace(client, version=issued), server, tls, clock)
    stripped = _without_version_information(ticket.transport_parameters)
    store = client.session_ticket_store
    assert store is not None and ticket.quic_version == issued
    store.add(dataclasses.replace(ticket, transport_parameters=stripped))
    peer = _start(client, server, tls, clock, other)
    assert _offered(peer) is None
    assert not peer.conn.early_data_attempted and peer.conn.version == other
    assert peer.handshake is not None and not peer.handshake.session_resumed
    # The other version's connection left its own ticket; ours is still there, untouched.
    mine = store.get("localhost", accept=lambda t: t.quic_version == issued)
    assert mine is not None and mine.ticket == ticket.ticket
    store.add(mine)
    peer = _start(client, server, tls, clock, issued)
    assert peer.conn.early_data_attempted and peer.conn.version == issued
    assert peer.handshake is not None and peer.handshake.session_resumed
    assert peer.handshake.early_data_accepted


@pytest.mark.parametrize("remembered_version", [True, False])
def test_an_old_ticket_record_without_a_stamp(pki: TestPki, remembered_version: bool) -> None:
    """A ticket saved before rudp stamped the version still loads; the client then goes by the
    server's remembered version_information, or (without one) offers it, and the server refuses a
    ticket of another version itself (RFC 9369 §5): a full handshake without 0-RTT."""
    client, server, tls = _resumption_configs(pki)
    clock = VirtualClock(1000.0)
    ticket = _ticket_from(client, server, tls, clock)
    record = {k: v for k, v in ticket.to_dict().items() if k != "quic_version"}
    if not remembered_version:
        record["transport_parameters"] = _without_version_information(ticket.transport_parameters)
    old = SessionTicket.from_dict(record)
    assert old.quic_version is None
    store = client.session_ticket_store
    assert store is not None
    store.add(old)
    peer = _start(client, server, tls, clock, V2)
    assert (_offered(peer) is not None) is (not remembered_version)
    assert peer.conn.early_data_attempted is (not remembered_version)
    assert peer.handshake is not None and not peer.handshake.session_resumed
    assert not peer.handshake.early_data_accepted and peer.conn.version == V2


@pytest.mark.parametrize(("issued", "other"), [(V1, V2), (V2, V1)])
def test_the_server_refuses_a_ticket_of_another_version(pki: TestPki, issued: int, other: int) -> None:
    """RFC 9369 §5: servers validate the originating version themselves: a client that presents a
    ticket in the other version (here one whose stamp lies) gets a full handshake, 0-RTT refused."""
    client, server, tls = _resumption_configs(pki)
    clock = VirtualClock(1000.0)
    ticket = _ticket_from(dataclasses.replace(client, version=issued), server, tls, clock)
    stripped = _without_version_information(ticket.transport_parameters)
    forged = dataclasses.replace(ticket, quic_version=other, transport_parameters=stripped)
    store = client.session_ticket_store
    assert store is not None
    store.add(forged)
    peer = _start(client, server, tls, clock, other)
    assert _offered(peer) is not None
    assert peer.conn.early_data_attempted and peer.conn.version == other  # offered, with 0-RTT
    assert peer.handshake is not None and not peer.handshake.session_resumed
    assert not peer.handshake.early_data_accepted


def test_the_server_refuses_a_ticket_that_cannot_show_its_version(pki: TestPki) -> None:
    """A ticket whose sealed server parameters carry no version_information (not one a rudp server
    seals today) cannot prove its version: refused, a full handshake."""
    client, server, tls = _resumption_configs(pki)
    clock = VirtualClock(1000.0)
    ticket = _ticket_from(client, server, tls, clock)
    assert tls.ticket_key is not None
    sealer = TicketSealer(tls.ticket_key)
    state = sealer.unseal(ticket.ticket)
    assert state is not None
    assert version_information_of(state.transport_parameters or b"") == VersionInformation(V1, (V1, V2))
    store = client.session_ticket_store
    assert store is not None
    for strip in (False, True):
        params = state.transport_parameters
        if strip:
            params = _without_version_information(params)
        identity = sealer.seal(dataclasses.replace(state, transport_parameters=params), os.urandom(12))
        store.add(dataclasses.replace(ticket, ticket=identity))
        peer = _start(client, server, tls, clock, V1)
        assert _offered(peer) is not None
        assert peer.handshake is not None and peer.handshake.session_resumed is (not strip)
        assert peer.handshake.early_data_accepted is (not strip)
