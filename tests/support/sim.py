"""A rudp client and a rudp server endpoint wired through the simulator, plus a key-log based sniffer
that decrypts (and forges) 1-RTT packets the way Wireshark does with SSLKEYLOGFILE.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from rudp.codec.frame_codec import encode_frames, parse_frames
from rudp.codec.frames import Frame
from rudp.codec.packet import encode_short_header
from rudp.config import Config
from rudp.crypto.protection import PacketProtection, UnprotectedPacket, min_payload_length
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
