"""The long header an endpoint parses to route a datagram goes with it to the connection, which does not
parse it again (issue 13, server handshake CPU); without it (or for bytes it was not parsed from) the
connection parses the datagram itself, to the same effect."""

from __future__ import annotations

import pytest

from rudp.codec import packet as packet_module
from rudp.codec.packet import PacketHeader, iter_packets, parse_header
from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.testing.certs import TestPki

SERVER = ("10.0.0.2", 4433)
CLIENT = ("10.0.0.1", 5000)
NOW = 100.0


def _handshake(pki: TestPki, parsed: list[int]) -> tuple[QuicConnection, QuicConnection, list[int]]:
    """A full handshake through a server endpoint; returns both connections and, per long-header
    datagram the server received, how many headers were parsed for it minus its packets."""
    config = Config(certfile=pki.cert_file, keyfile=pki.key_file)
    server = QuicEndpoint(config, tls_config=config.tls_config(is_client=False))
    client = QuicConnection.client(
        Config(cafile=pki.ca_file, server_name="localhost"), server_address=SERVER, now=NOW
    )
    extra: list[int] = []
    accepted: QuicConnection | None = None
    for _ in range(20):
        moved = False
        for data, _ in client.datagrams_to_send(NOW):
            moved = True
            before = len(parsed)
            new = server.receive_datagram(data, CLIENT, NOW)
            accepted = accepted or new
            if data[0] & 0x80:
                extra.append(len(parsed) - before - len(list(iter_packets(data, short_dcid_length=8))))
        for data, _ in server.datagrams_to_send(NOW):
            moved = True
            client.receive_datagram(data, SERVER, NOW)
        if not moved:
            break
    assert accepted is not None
    return client, accepted, extra


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    parsed: list[int] = []
    original = packet_module.parse_header

    def counting(data: bytes | memoryview, offset: int = 0, *, short_dcid_length: int = 0) -> PacketHeader:
        parsed.append(offset)
        return original(data, offset, short_dcid_length=short_dcid_length)

    monkeypatch.setattr(packet_module, "parse_header", counting)
    monkeypatch.setattr("rudp.quic.endpoint.parse_header", counting)
    return parsed


def test_a_routed_long_header_is_parsed_once(pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each long-header datagram the server gets (the client's first Initial, accepted, and the
    coalesced Initial and Handshake packets routed to its connection) has each header parsed once."""
    client, server, extra = _handshake(pki, _counting(monkeypatch))
    assert client.handshake_complete and server.handshake_complete
    assert len(extra) >= 2 and extra == [0] * len(extra)


def test_without_the_endpoints_header_the_connection_parses_and_ends_the_same(
    pki: TestPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The general path (no header handed over: each header parsed twice) completes the same
    handshake, with the same packets received by the server."""
    original = QuicConnection.receive_datagram

    def without_header(
        self: QuicConnection, data: bytes, addr: tuple[str, int], now: float, ecn: int = 0, **options: object
    ) -> None:
        options.pop("header", None)
        original(self, data, addr, now, ecn, **options)  # type: ignore[arg-type]

    parsed = _counting(monkeypatch)
    _, server, handed = _handshake(pki, parsed)
    monkeypatch.setattr(QuicConnection, "receive_datagram", without_header)
    client2, server2, general = _handshake(pki, parsed)
    assert client2.handshake_complete and server2.handshake_complete
    assert general == [1] * len(handed)  # the first header of each parsed by the endpoint and again
    for field in ("datagrams_received", "bytes_received", "packets_dropped", "packets_sent"):
        assert getattr(server.stats, field) == getattr(server2.stats, field), field


def test_a_header_is_used_only_for_the_bytes_it_came_from(pki: TestPki) -> None:
    """The receiver takes the handed header for its own datagram only: a short header is ignored, and
    a copy of the datagram (a view, copied on the general path) is parsed again, to the same effect."""
    config = Config(cafile=pki.ca_file, server_name="localhost")
    first = QuicConnection.client(config, server_address=SERVER, now=NOW).datagrams_to_send(NOW)[0][0]
    header = parse_header(first, short_dcid_length=8)
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file)
    tls = server_config.tls_config(is_client=False)
    results = []
    for data, handed in (
        (first, header),
        (first, None),
        (memoryview(first), header),
        (first, header._replace(is_long=False)),  # (a short header: never taken)
    ):
        conn = QuicConnection.server(
            server_config, tls, client_address=CLIENT, original_dcid=header.dcid, client_scid=header.scid,
            version=1, now=NOW,
        )
        conn.receive_datagram(data, CLIENT, NOW, header=handed)  # type: ignore[arg-type]
        assert conn._receiver._parsed is None  # nothing kept past the call
        stats = conn.stats
        answer = [len(d) for d, _ in conn.datagrams_to_send(NOW)]
        results.append((stats.datagrams_received, stats.packets_dropped, answer))
    assert results[0][:2] == (1, 0) and results[0][2]  # opened, and answered (the server's flight)
    assert results.count(results[0]) == len(results)
