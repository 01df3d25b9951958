"""Handshake probes under loss (rudp/quic/handshake_probes.py), sans-IO in virtual time: a server's PTO
probes its Initial and Handshake data together (RFC 9002 §6.2.4), a client holding Handshake keys
sends its anti-deadlock probe as a Handshake packet (§6.2.2.1), and neither breaks the server's
anti-amplification limit (RFC 9000 §8.1)."""

from __future__ import annotations

from rudp.codec.codes import PacketType
from rudp.codec.packet import iter_packets
from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.testing.certs import TestPki

SERVER = ("10.0.0.2", 4433)
CLIENT = ("10.1.0.1", 5000)
NOW = 100.0
INITIAL, HANDSHAKE = PacketType.INITIAL, PacketType.HANDSHAKE


def _types(datagram: bytes) -> list[PacketType]:
    return [header.packet_type for header in iter_packets(datagram)]


def _pair(pki: TestPki) -> tuple[QuicConnection, QuicEndpoint]:
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file, retry_threshold=None)
    server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    client = QuicConnection.client(
        Config(cafile=pki.ca_file, server_name="localhost"), server_address=SERVER, now=NOW
    )
    return client, server


def _next_flight(endpoint: QuicEndpoint | QuicConnection) -> tuple[float, list[bytes]]:
    """Run ``endpoint``'s timers until it sends something; return when and what."""
    for _ in range(20):
        at = endpoint.next_timer()
        assert at is not None
        endpoint.handle_timer(at)
        sent = [data for data, _ in endpoint.datagrams_to_send(at)]
        if sent:
            return at, sent
    raise AssertionError("nothing sent")


def test_a_server_pto_probes_initial_and_handshake_data_together(pki: TestPki) -> None:
    """The server's first flight (ServerHello in an Initial, the rest in Handshake packets) is lost.
    Its PTO fires in the Initial space; each probe datagram also carries the Handshake data in
    flight, so one arriving datagram gives the client everything (it was two Initial-only probes: the
    client got Handshake keys but nothing to use them on, and waited for the Handshake PTO). The
    whole exchange stays within three times the client's one datagram."""
    client, server = _pair(pki)
    ((hello, _),) = client.datagrams_to_send(NOW)
    server.receive_datagram(hello, CLIENT, NOW)
    first = [data for data, _ in server.datagrams_to_send(NOW)]
    assert first  # lost
    at, probes = _next_flight(server)
    assert at > NOW
    assert [_types(datagram) for datagram in probes] == [[INITIAL, HANDSHAKE]] * len(probes)
    assert sum(map(len, first + probes)) <= 3 * len(hello)
    client.receive_datagram(probes[0], SERVER, at + 0.005)
    assert client.handshake_complete


def test_a_client_with_handshake_keys_probes_in_the_handshake_space(pki: TestPki) -> None:
    """The client got the server's Initial (ServerHello) but none of its Handshake packets, and its
    Initial ACK was lost. Its anti-deadlock probe is a Handshake packet (RFC 9002 §6.2.2.1: a client
    with Handshake keys MUST send one), not another padded Initial: it validates the client's address
    at the server, which then discards its Initial keys and is no longer held to 3x."""
    client, server = _pair(pki)
    ((hello, _),) = client.datagrams_to_send(NOW)
    conn = server.receive_datagram(hello, CLIENT, NOW)
    assert conn is not None
    first = [data for data, _ in server.datagrams_to_send(NOW)]
    initial = next(h for h in iter_packets(first[0]) if h.packet_type is INITIAL)
    client.receive_datagram(first[0][initial.start : initial.end], SERVER, NOW + 0.005)
    assert not client.handshake_complete
    assert [_types(data) for data, _ in client.datagrams_to_send(NOW + 0.005)] == [[INITIAL]]  # lost
    at, probe = _next_flight(client)
    assert [_types(datagram) for datagram in probe] == [[HANDSHAKE]]
    server.receive_datagram(probe[0], CLIENT, at + 0.005)
    sent = [data for data, _ in server.datagrams_to_send(at + 0.005)]
    _, pto = _next_flight(server)  # (its flight still waits for its PTO)
    assert all(_types(data) == [HANDSHAKE] for data in sent + pto)  # its Initial keys are gone
    for data in sent + pto:
        client.receive_datagram(data, SERVER, at + 10.0)
    assert client.handshake_complete
