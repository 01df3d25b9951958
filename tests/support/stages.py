"""A rudp client and server connection stopped at a chosen handshake stage, with a forger for packets of
one type addressed to one of them (the *target*) as its peer would protect them.

The two connections are wired directly (no endpoint, no link): each exchange hands one side's datagrams
to the other. The keys come from the client's SSLKEYLOGFILE (Handshake, 0-RTT, 1-RTT) or from the
client's first DCID (Initial, RFC 9001 §5.2), through :class:`tests.support.sim.Sniffer`.

Stages, by packet type of the forged packet:

- Initial: the target has sent its first Initial flight (a server: it answered the ClientHello) and
  holds Initial keys.
- Handshake: the target has sent Handshake packets and still holds Handshake keys (a client has just
  sent its Finished; a server has not received it).
- 0-RTT: a resumed connection with early data; a server has accepted it and holds 0-RTT read keys, a
  client has just sent its first flight (clients have no 0-RTT read keys: only they send 0-RTT).
- 1-RTT: the handshake is confirmed on both sides.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from rudp.codec import frames as f
from rudp.codec.codes import PacketType
from rudp.codec.packet import parse_header
from rudp.config import Config
from rudp.crypto.suites import CipherSuite
from rudp.quic import events as ev
from rudp.quic.connection import QuicConnection
from rudp.testing.certs import TestPki
from rudp.tls.config import TlsConfig
from rudp.tls.tickets import TicketStore
from tests.support.sim import CLIENT_ADDR, SERVER_ADDR, START, Sniffer, pad_front

SUITE = CipherSuite.AES_128_GCM_SHA256
PACKET_TYPES = (PacketType.INITIAL, PacketType.ZERO_RTT, PacketType.HANDSHAKE, PacketType.ONE_RTT)


@dataclass
class Staged:
    """A target connection at one stage and a way to send it packets of ``packet_type``."""

    target: QuicConnection
    peer: QuicConnection
    packet_type: PacketType
    forger: Sniffer
    dcid: bytes
    """Destination CID of forged packets (one the target issued, or the client's first DCID)."""
    scid: bytes
    """Source CID of forged long-header packets (the peer's)."""
    now: float
    reader: Sniffer | None = None
    """Opens the target's own packets of :attr:`packet_type` (None at the 0-RTT stage)."""
    events: list[ev.Event] = field(default_factory=list)
    next_pn: int = 1_000

    @property
    def is_client(self) -> bool:
        """True when the target is the client."""
        return self.target.is_client

    @property
    def source(self) -> tuple[str, int]:
        """The address forged packets come from (the peer's)."""
        return SERVER_ADDR if self.is_client else CLIENT_ADDR

    def packet(self, payload: bytes, packet_number: int | None = None) -> bytes:
        """One protected packet of :attr:`packet_type` carrying ``payload`` (padded in front)."""
        if packet_number is None:
            packet_number = self.next_pn
            self.next_pn += 1
        # RFC 9000 §14.1: datagrams with a client Initial are at least 1200 bytes; pad every Initial.
        size = 1200 - 80 if self.packet_type is PacketType.INITIAL else 0
        payload = pad_front(payload, size)
        if self.packet_type is PacketType.ONE_RTT:
            return self.forger.protect_short(self.dcid, packet_number, payload)
        return self.forger.protect_long(self.packet_type, self.dcid, self.scid, packet_number, payload)

    def inject(self, payload: bytes, packet_number: int | None = None) -> None:
        """Hand the target one datagram with one forged packet, then collect its events."""
        self.now += 0.001
        self.target.receive_datagram(self.packet(payload, packet_number), self.source, self.now)
        self.collect()

    def collect(self) -> None:
        """Drain the target's events into :attr:`events`."""
        while (event := self.target.next_event()) is not None:
            self.events.append(event)

    def output(self) -> list[bytes]:
        """The target's datagrams due now."""
        return [data for data, _ in self.target.datagrams_to_send(self.now)]

    def sent_frames(self) -> list[tuple[int, f.Frame]]:
        """``(packet number, frame)`` for every frame the target sends now in :attr:`packet_type`."""
        if self.reader is None:
            raise LookupError("no keys to read the target's packets at this stage")
        out: list[tuple[int, f.Frame]] = []
        self.reader.dcid_length = len(self.target.destination_cid)  # the peer may have changed it
        for datagram in self.output():
            if self.packet_type is PacketType.ONE_RTT:
                frames = self.reader.frames(datagram) or []
                out += [(self.reader.largest, frame) for frame in frames]
            else:
                out += [(-1, frame) for frame in self.reader.long_frames(datagram, self.packet_type)]
        return out


def owed_path_responses(conn: QuicConnection) -> list[int]:
    """The length of every queue of PATH_RESPONSEs ``conn`` owes: one per path where the connection
    keeps a table of paths, else the connection's single queue."""
    paths = getattr(conn, "_paths", None)
    if paths is not None:
        return [len(path.responses) for path in paths]
    return [len(getattr(conn, "_path_responses"))]  # noqa: B009 - absent once paths have their table


class _Pair:
    def __init__(self, pki: TestPki, keylog: Path, client: dict[str, object], server: dict[str, object]):
        self.now = START
        client = {"cafile": pki.ca_file, "server_name": "localhost", "secrets_log": keylog,
                  "cipher_suites": [SUITE], **client}
        self.client_config = Config(**client)  # type: ignore[arg-type]
        self.server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file, **server)  # type: ignore[arg-type]
        self.server_tls: TlsConfig = self.server_config.tls_config(is_client=False)

    def tick(self) -> float:
        self.now += 0.001
        return self.now

    def client(self) -> QuicConnection:
        return QuicConnection.client(self.client_config, server_address=SERVER_ADDR, now=self.tick())

    def server_for(self, first: bytes) -> QuicConnection:
        header = parse_header(first)
        return QuicConnection.server(
            self.server_config, self.server_tls, client_address=CLIENT_ADDR, original_dcid=header.dcid,
            client_scid=header.scid, version=header.version or 1, now=self.now,
        )

    def send(self, source: QuicConnection, target: QuicConnection | None) -> list[bytes]:
        datagrams = [data for data, _ in source.datagrams_to_send(self.tick())]
        if target is not None:
            addr = CLIENT_ADDR if source.is_client else SERVER_ADDR  # where it comes from
            for data in datagrams:
                target.receive_datagram(data, addr, self.tick())
        return datagrams

    def first_flight(self, client: QuicConnection) -> QuicConnection:
        datagrams = self.send(client, None)
        server = self.server_for(datagrams[0])
        for data in datagrams:
            server.receive_datagram(data, CLIENT_ADDR, self.tick())
        return server

    def complete(self, client: QuicConnection, server: QuicConnection) -> None:
        for _ in range(8):
            sent = self.send(server, client) + self.send(client, server)
            if not sent and client.handshake_confirmed and server.handshake_complete:
                return
        if not (client.handshake_confirmed and server.handshake_confirmed):
            raise AssertionError("handshake did not complete")

    def drain(self, *conns: QuicConnection) -> None:
        for conn in conns:
            while conn.next_event() is not None:
                pass


def _new_cid() -> bytes:
    return os.urandom(8)


def stage(
    pki: TestPki,
    directory: Path,
    packet_type: PacketType,
    *,
    client_target: bool,
    client: dict[str, object] | None = None,
    server: dict[str, object] | None = None,
    seed: int | None = None,
) -> Staged:
    """Build the stage for ``packet_type`` with the client (or the server) as the target.

    With ``seed``, the connection IDs, tokens and packet-number skips of both sides come from seeded
    generators, so that a seeded test replays the same connections (TLS key shares stay random).
    """
    keylog = directory / f"keys-{os.urandom(4).hex()}.log"
    if seed is not None:
        client = {"randbytes": random.Random(seed).randbytes, **(client or {})}
        server = {"randbytes": random.Random(~seed).randbytes, **(server or {})}
    if packet_type is PacketType.ZERO_RTT:
        client = {"session_ticket_store": TicketStore(), "enable_0rtt": True, **(client or {})}
        server = {"enable_0rtt": True, **(server or {})}
    pair = _Pair(pki, keylog, {"datagrams": True, **(client or {})}, {"datagrams": True, **(server or {})})
    if packet_type is PacketType.ZERO_RTT:
        return _zero_rtt_stage(pair, keylog, client_target=client_target)
    c = pair.client()
    original_dcid = c.destination_cid
    if packet_type is PacketType.INITIAL:
        if client_target:
            pair.send(c, None)
            forger = Sniffer.initial(original_dcid, client=False)
            staged = _staged(pair, c, c, PacketType.INITIAL, forger, c.local_cids()[0], _new_cid())
            staged.reader = Sniffer.initial(original_dcid, client=True)
            return staged
        s = pair.first_flight(c)
        pair.send(s, None)  # the server's Initial (ServerHello) and Handshake flight, not delivered
        forger = Sniffer.initial(original_dcid, client=True)
        staged = _staged(pair, s, c, PacketType.INITIAL, forger, original_dcid, c.local_cids()[0])
        staged.reader = Sniffer.initial(original_dcid, client=False)
        return staged
    s = pair.first_flight(c)
    pair.send(s, c)  # the client now holds Handshake and 1-RTT keys, all logged
    if packet_type is PacketType.HANDSHAKE:
        if client_target:
            pair.send(c, None)  # its Finished (Handshake pn 0): Initial keys are gone now
            forger = Sniffer(keylog, "SERVER_HANDSHAKE_TRAFFIC_SECRET", SUITE)
            staged = _staged(pair, c, s, PacketType.HANDSHAKE, forger, c.local_cids()[0], s.local_cids()[0])
            staged.reader = Sniffer(keylog, "CLIENT_HANDSHAKE_TRAFFIC_SECRET", SUITE)
            return staged
        forger = Sniffer(keylog, "CLIENT_HANDSHAKE_TRAFFIC_SECRET", SUITE)
        staged = _staged(pair, s, c, PacketType.HANDSHAKE, forger, s.local_cids()[0], c.local_cids()[0])
        staged.reader = Sniffer(keylog, "SERVER_HANDSHAKE_TRAFFIC_SECRET", SUITE)
        return staged
    pair.complete(c, s)
    if client_target:
        forger = Sniffer(keylog, "SERVER_TRAFFIC_SECRET_0", SUITE)
        staged = _staged(pair, c, s, PacketType.ONE_RTT, forger, c.local_cids()[0], b"")
        staged.reader = Sniffer(keylog, "CLIENT_TRAFFIC_SECRET_0", SUITE)
        return staged
    forger = Sniffer(keylog, "CLIENT_TRAFFIC_SECRET_0", SUITE)
    staged = _staged(pair, s, c, PacketType.ONE_RTT, forger, s.local_cids()[0], b"")
    staged.reader = Sniffer(keylog, "SERVER_TRAFFIC_SECRET_0", SUITE)
    return staged


def _zero_rtt_stage(pair: _Pair, keylog: Path, *, client_target: bool) -> Staged:
    store = pair.client_config.session_ticket_store
    if not isinstance(store, TicketStore):
        raise TypeError("a 0-RTT stage needs a TicketStore")
    first = pair.client()
    first_server = pair.first_flight(first)
    pair.complete(first, first_server)
    if len(store) == 0:
        raise AssertionError("no session ticket")
    c = pair.client()
    if not c.early_data_attempted:
        raise AssertionError("the resumed client does not attempt 0-RTT")
    original_dcid = c.destination_cid
    forger = Sniffer(keylog, "CLIENT_EARLY_TRAFFIC_SECRET", SUITE)
    if client_target:
        pair.send(c, None)
        # A "reflected" 0-RTT packet: the client's own early keys, towards the client.
        return _staged(pair, c, first_server, PacketType.ZERO_RTT, forger, c.local_cids()[0], _new_cid())
    s = pair.first_flight(c)
    pair.send(s, None)
    if not s.early_data_accepted:
        raise AssertionError("the server did not accept 0-RTT")
    return _staged(pair, s, c, PacketType.ZERO_RTT, forger, original_dcid, c.local_cids()[0])


def _staged(
    pair: _Pair,
    target: QuicConnection,
    peer: QuicConnection,
    packet_type: PacketType,
    forger: Sniffer,
    dcid: bytes,
    scid: bytes,
) -> Staged:
    staged = Staged(target, peer, packet_type, forger, dcid, scid, pair.tick())
    staged.collect()
    staged.events.clear()  # only what the forged packets cause
    return staged
