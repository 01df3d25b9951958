"""A rudp client and a rudp server endpoint wired through the simulator, plus a key-log based sniffer
that decrypts (and forges) packets the way Wireshark does with SSLKEYLOGFILE: 1-RTT, Handshake and 0-RTT
packets from the logged secrets, Initial packets from the client's first DCID (RFC 9001 §5.2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from rudp.codec.codes import PacketType, Version
from rudp.codec.frame_codec import encode_frames, parse_frames
from rudp.codec.frames import Frame
from rudp.codec.packet import encode_long_header, encode_short_header, iter_packets
from rudp.config import Config
from rudp.crypto.keys import initial_secrets
from rudp.crypto.protection import TAG_LENGTH, PacketProtection, UnprotectedPacket, min_payload_length
from rudp.crypto.suites import CipherSuite
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.testing import LinkConfig, Pair, TraceCallback, VirtualClock
from rudp.testing.certs import TestPki
from tests.support.peers import RudpPeer

START = 1000.0
CLIENT_ADDR = ("10.0.0.1", 5000)
SERVER_ADDR = ("10.0.0.2", 4433)


@dataclass
class Sim:
    """A client/server pair of rudp peers on a simulated link."""

    pair: Pair
    client: RudpPeer
    server: RudpPeer
    clock: VirtualClock
    client_config: Config
    server_config: Config

    @property
    def conn(self) -> QuicConnection:
        """The client connection."""
        return self.client.conn

    def trace(self, callback: TraceCallback) -> None:
        """Observe every datagram event of both directions."""
        self.pair.c2s.on_trace = callback
        self.pair.s2c.on_trace = callback

    def handshake(self, max_time: float = 10.0) -> None:
        if not self.pair.drive(
            until=lambda: (
                self.client.handshake is not None
                and bool(self.server.connections)
                and self.server.handshake is not None
            ),
            max_time=max_time,
        ):
            raise AssertionError("handshake did not complete")


def make_sim(
    pki: TestPki,
    *,
    link: LinkConfig | None = None,
    s2c: LinkConfig | None = None,
    client: dict[str, object] | None = None,
    server: dict[str, object] | None = None,
) -> Sim:
    link = link or LinkConfig(delay=0.02)
    client_options: dict[str, object] = {"cafile": pki.ca_file, "server_name": "localhost", **(client or {})}
    client_config = Config(**client_options)  # type: ignore[arg-type]
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file, **(server or {}))  # type: ignore[arg-type]
    clock = VirtualClock(START)
    endpoint = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    conn = QuicConnection.client(client_config, server_address=SERVER_ADDR, now=clock.now)
    client_peer, server_peer = RudpPeer(conn), RudpPeer(endpoint)
    pair = Pair(
        client_peer,
        server_peer,
        client_addr=CLIENT_ADDR,
        server_addr=SERVER_ADDR,
        c2s=link,
        s2c=s2c or dataclasses.replace(link, seed=link.seed + 1),
        clock=clock,
    )
    return Sim(pair, client_peer, server_peer, clock, client_config, server_config)


class Sniffer:
    """Decrypts and forges 1-RTT packets of one direction using an SSLKEYLOGFILE."""

    def __init__(self, keylog: Path, label: str, suite: CipherSuite, dcid_length: int = 8) -> None:
        secret = None
        for line in keylog.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == label:
                secret = bytes.fromhex(parts[2])
        if secret is None:
            raise LookupError(f"{label} not in the key log")
        self.protection = PacketProtection(suite, secret, 1)
        self.dcid_length = dcid_length
        self.largest = -1

    @classmethod
    def initial(cls, dcid: bytes, *, client: bool, dcid_length: int = 8) -> Sniffer:
        """The Initial keys of one direction, derived from the client's first DCID as anyone who sees
        (or picks) that DCID can (RFC 9001 §5.2): ``client`` selects the client-to-server keys."""
        client_secret, server_secret = initial_secrets(dcid, Version.V1)
        sniffer = cls.__new__(cls)
        sniffer.protection = PacketProtection(
            CipherSuite.AES_128_GCM_SHA256, client_secret if client else server_secret, Version.V1
        )
        sniffer.dcid_length = dcid_length
        sniffer.largest = -1
        return sniffer

    def frames(self, datagram: bytes) -> list[Frame] | None:
        """The frames of a 1-RTT datagram, or None if it is not one we can read."""
        if not datagram or datagram[0] & 0x80:
            return None
        result = self.protection.unprotect(datagram, 1 + self.dcid_length, self.largest + 1)
        if not isinstance(result, UnprotectedPacket):
            return None
        self.largest = max(self.largest, result.packet_number)
        return [frame for _, frame in parse_frames(result.payload)]

    def forge(self, dcid: bytes, packet_number: int, frames: list[Frame]) -> bytes:
        """Build a valid 1-RTT packet carrying ``frames``."""
        header = encode_short_header(dcid, packet_number=packet_number & 0xFFFFFFFF, pn_length=4)
        payload = encode_frames(frames)
        payload += bytes(max(0, min_payload_length(4) - len(payload)))
        return self.protection.protect(header, payload, packet_number, len(header) - 4, 4)

    def protect_short(self, dcid: bytes, packet_number: int, payload: bytes) -> bytes:
        """A 1-RTT packet carrying ``payload`` as is (the caller pads it; see :func:`pad_front`)."""
        header = encode_short_header(dcid, packet_number=packet_number & 0xFFFFFFFF, pn_length=4)
        return self.protection.protect(header, payload, packet_number, len(header) - 4, 4)

    def protect_long(
        self, packet_type: PacketType, dcid: bytes, scid: bytes, packet_number: int, payload: bytes
    ) -> bytes:
        """An Initial, 0-RTT or Handshake packet carrying ``payload`` as is."""
        header = encode_long_header(
            packet_type, Version.V1, dcid, scid, length=4 + len(payload) + TAG_LENGTH,
            packet_number=packet_number & 0xFFFFFFFF, pn_length=4,
        )
        return self.protection.protect(header, payload, packet_number, len(header) - 4, 4)

    def long_frames(self, datagram: bytes, packet_type: PacketType) -> list[Frame]:
        """The frames of every ``packet_type`` packet of a (coalesced) datagram that these keys open."""
        frames: list[Frame] = []
        for header in iter_packets(datagram, short_dcid_length=self.dcid_length):
            if header.packet_type is not packet_type:
                continue
            packet = datagram[header.start : header.end]
            result = self.protection.unprotect(packet, header.pn_offset - header.start, self.largest + 1)
            if isinstance(result, UnprotectedPacket):
                frames += [frame for _, frame in parse_frames(result.payload)]
        return frames


def pad_front(payload: bytes, size: int = 0) -> bytes:
    """Prefix ``payload`` with PADDING up to ``size`` bytes and to the header-protection minimum.

    Padding goes first so that a last frame without a Length field (STREAM, DATAGRAM) still ends the
    packet (RFC 9000 §19.8, RFC 9221 §4).
    """
    return bytes(max(0, size - len(payload), min_payload_length(4) - len(payload))) + payload


@dataclass
class EndpointWrapper:
    """Stands in for one of the pair's sim endpoints (``side``: "server" or "client") once installed and
    passes everything to it; subclasses change what :meth:`datagrams_to_send` returns."""

    side: ClassVar[str] = "server"
    sim: Sim

    def install(self) -> None:
        self.inner = getattr(self.sim.pair, self.side)
        setattr(self.sim.pair, self.side, self)

    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        self.inner.receive_datagram(data, addr, now)

    def next_timer(self) -> float | None:
        return self.inner.next_timer()

    def handle_timer(self, now: float) -> None:
        self.inner.handle_timer(now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        return self.inner.datagrams_to_send(now)  # type: ignore[no-any-return]


@dataclass
class Recorder(EndpointWrapper):
    """Wraps the server's sim endpoint and keeps every datagram it sends, with its destination."""

    sent: list[tuple[bytes, tuple[str, int]]] = field(default_factory=list)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, tuple[str, int]]]:
        out = self.inner.datagrams_to_send(now)
        self.sent += out
        return out
