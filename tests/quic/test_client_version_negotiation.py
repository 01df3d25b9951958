"""How a client reacts to Version Negotiation packets (RFC 9000 §6.2, §17.2.1; RFC 9368 §4), against
forged ones: one that echoes both connection IDs of its first Initial, sent before anything else from
the server, and not listing its version ends the attempt; every other one is ignored."""

from __future__ import annotations

from typing import Any

from rudp.codec.codes import Version
from rudp.codec.packet import encode_version_negotiation, iter_packets
from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.testing.certs import TestPki

SERVER = ("10.0.0.2", 4433)
CLIENT = ("10.1.0.1", 5000)
NOW = 100.0
UNKNOWN = 0x1A2A3A4A


def _client(pki: TestPki, **options: Any) -> tuple[QuicConnection, bytes, bytes, bytes]:
    """A client that sent its first Initial: (client, that datagram, its DCID, its SCID)."""
    config = Config(cafile=pki.ca_file, server_name="localhost", **options)
    client = QuicConnection.client(config, server_address=SERVER, now=NOW)
    ((first, _),) = client.datagrams_to_send(NOW)
    header = next(iter_packets(first, short_dcid_length=8))
    return client, first, header.dcid, header.scid


def _ended_by_version_negotiation(client: QuicConnection) -> bool:
    cause = client.close_cause
    return client.is_closed and cause is not None and cause.reason.startswith("version negotiation")


def test_a_valid_version_negotiation_ends_the_attempt(pki: TestPki) -> None:
    client, _, dcid, scid = _client(pki)
    client.receive_datagram(encode_version_negotiation(scid, dcid, [UNKNOWN, 0x5A5A5A5A]), SERVER, NOW + 0.1)
    assert _ended_by_version_negotiation(client)
    assert client.close_cause is not None and client.close_cause.by_peer
    assert client.close_cause.reason == "version negotiation: server supports 0x1a2a3a4a, 0x5a5a5a5a"
    assert client.datagrams_to_send(NOW + 0.1) == []  # no new attempt, nothing more sent


def test_a_version_negotiation_listing_our_version_is_ignored(pki: TestPki) -> None:
    """RFC 9000 §6.2: a client MUST discard it (an attacker's downgrade, or a confused server)."""
    for version, listed in ((Version.V1, [UNKNOWN, Version.V1]), (Version.V2, [Version.V2])):
        client, _, dcid, scid = _client(pki, version=version)
        client.receive_datagram(encode_version_negotiation(scid, dcid, listed), SERVER, NOW + 0.1)
        assert not client.is_closed


def test_a_version_negotiation_not_echoing_our_connection_ids_is_ignored(pki: TestPki) -> None:
    """RFC 9000 §17.2.1: the server copies our SCID into its DCID and our DCID into its SCID; a packet
    that gets either wrong does not come from anyone who saw our Initial."""
    client, _, dcid, scid = _client(pki)
    client.receive_datagram(encode_version_negotiation(bytes(8), dcid, [UNKNOWN]), SERVER, NOW + 0.1)
    client.receive_datagram(encode_version_negotiation(scid, bytes(8), [UNKNOWN]), SERVER, NOW + 0.2)
    assert not client.is_closed
    # With a zero-length connection ID of ours, only our random DCID tells a forger apart.
    client, _, dcid, scid = _client(pki, connection_id_length=0)
    assert scid == b""
    client.receive_datagram(encode_version_negotiation(b"", b"\x01" * 8, [UNKNOWN]), SERVER, NOW + 0.1)
    assert not client.is_closed
    client.receive_datagram(encode_version_negotiation(b"", dcid, [UNKNOWN]), SERVER, NOW + 0.2)
    assert _ended_by_version_negotiation(client)


def _server(pki: TestPki, **options: Any) -> QuicEndpoint:
    config = Config(certfile=pki.cert_file, keyfile=pki.key_file, **options)
    return QuicEndpoint(config, tls_config=config.tls_config(is_client=False))


def test_a_version_negotiation_after_a_server_initial_is_ignored(pki: TestPki) -> None:
    client, first, dcid, scid = _client(pki)
    server = _server(pki, retry_threshold=None)
    server.receive_datagram(first, CLIENT, NOW)
    for data, _ in server.datagrams_to_send(NOW):
        client.receive_datagram(data, SERVER, NOW + 0.05)
    client.receive_datagram(encode_version_negotiation(scid, dcid, [UNKNOWN]), SERVER, NOW + 0.1)
    assert not client.is_closed


def test_a_version_negotiation_after_a_retry_is_ignored(pki: TestPki) -> None:
    """RFC 9000 §6.2: discarded once any other packet was processed, a Retry included (the attempt
    is then known to reach a server speaking our version)."""
    client, first, dcid, scid = _client(pki)
    server = _server(pki, retry=True)
    server.receive_datagram(first, CLIENT, NOW)
    ((retry, _),) = server.datagrams_to_send(NOW)
    client.receive_datagram(retry, SERVER, NOW + 0.05)
    assert client.datagrams_to_send(NOW + 0.05)  # the ClientHello again, with the Retry's token
    client.receive_datagram(encode_version_negotiation(scid, dcid, [UNKNOWN]), SERVER, NOW + 0.1)
    assert not client.is_closed
