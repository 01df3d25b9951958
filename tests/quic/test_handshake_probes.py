"""Handshake probes under loss (rudp/quic/handshake_probes.py), sans-IO in virtual time: a server's PTO
probes its Initial and Handshake data together (RFC 9002 §6.2.4), a client holding Handshake keys
sends its anti-deadlock probe as a Handshake packet (§6.2.2.1), and neither breaks the server's
anti-amplification limit (RFC 9000 §8.1)."""

from __future__ import annotations

from rudp.codec.codes import PacketType
from rudp.codec.frame_codec import encode_frames
from rudp.codec.frames import Crypto, Ping
from rudp.codec.packet import iter_packets
from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.handshake_deadline import HANDSHAKE_LIFETIME
from rudp.testing.certs import TestPki
from tests.support.sim import Sniffer, pad_front

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


def test_forged_and_replayed_client_probes_buy_no_more_than_3x_nor_a_longer_slot(pki: TestPki) -> None:
    """Initial keys are public (RFC 9001 §5.2): anyone who saw the client's first Initial can send the
    server what a client probe looks like, a fresh Initial with the ClientHello's CRYPTO data again,
    here every 8 s, each datagram delivered twice (a replay). Nothing of the server's arrives
    anywhere. Its coalesced probes (two datagrams per PTO, one PTO every 2 s) would send more than it
    may: they never take it past three times the bytes received from the address (RFC 9000 §8.1),
    checked after every step, and the slot still goes HANDSHAKE_LIFETIME timeouts after the start."""
    client, server = _pair(pki)
    timeout = Config().handshake_timeout
    ((hello, _),) = client.datagrams_to_send(NOW)
    assert server.receive_datagram(hello, CLIENT, NOW) is not None
    (header,) = iter_packets(hello, short_dcid_length=8)
    forger = Sniffer.initial(header.dcid, client=True)
    crypto = [frame for frame in forger.long_frames(hello, INITIAL) if isinstance(frame, Crypto)]
    received, sent = len(hello), sum(len(data) for data, _ in server.datagrams_to_send(NOW))
    closed_at = None
    bound = False
    for number, now in enumerate(NOW + 8.0 * step for step in range(1, 20)):
        while (at := server.next_timer()) is not None and at <= now:
            server.handle_timer(at)
            sent += sum(len(data) for data, _ in server.datagrams_to_send(at))
            assert sent <= 3 * received
            if closed_at is None and server.handshakes_timed_out:
                closed_at = at
        bound = bound or sent > 3 * received - 1200  # the limit, not the PTO, held it back
        if closed_at is not None:
            break
        forged = forger.protect_long(
            INITIAL, header.dcid, header.scid, 100 + number, pad_front(encode_frames([*crypto, Ping()]), 1150)
        )
        for _ in range(2):
            server.receive_datagram(forged, CLIENT, now)
            received += len(forged)
            sent += sum(len(data) for data, _ in server.datagrams_to_send(now))
            assert sent <= 3 * received
    assert bound and sent > 3 * len(hello)
    assert server.handshakes_timed_out == 1 and server.connections == []
    assert (
        closed_at is not None
        and NOW + HANDSHAKE_LIFETIME * timeout <= closed_at <= NOW + HANDSHAKE_LIFETIME * timeout + 8.0
    )
