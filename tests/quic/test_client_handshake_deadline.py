"""A client's handshake deadline (``QuicConnection.handshake_deadline``, virtual time): it gives up
``handshake_timeout`` after the server was last heard making progress, and in any case
HANDSHAKE_LIFETIME timeouts after it started. Only authenticated packets from the server's address and
connection ID count, and once a ServerHello gave the client Handshake keys, only packets the holder of
the handshake secret can make (Initial keys are public, RFC 9001 §5.2)."""

from __future__ import annotations

from collections.abc import Callable

from rudp.codec.codes import PacketType
from rudp.codec.frame_codec import encode_frames
from rudp.codec.frames import ConnectionClose, Frame, Ping
from rudp.codec.packet import iter_packets
from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.handshake_deadline import HANDSHAKE_LIFETIME
from rudp.quic.state import State
from rudp.testing.certs import TestPki
from tests.support.sim import Sniffer, pad_front

SERVER = ("10.0.0.2", 4433)
CLIENT = ("10.1.0.1", 5000)
NOW = 100.0
TIMEOUT = 10.0

Deliver = Callable[[float, bytes], bytes | None]


def _client(pki: TestPki) -> QuicConnection:
    config = Config(cafile=pki.ca_file, server_name="localhost", handshake_timeout=TIMEOUT)
    return QuicConnection.client(config, server_address=SERVER, now=NOW)


def _run(
    pki: TestPki, deliver: Deliver, until: float = NOW + 60
) -> tuple[QuicConnection, float, list[float]]:
    """A client and a rudp server on a zero-delay link whose server-to-client datagrams go through
    ``deliver(now, datagram)`` (None: lost). Runs until the handshake completes or the client's
    deadline comes; returns the client, that time, and every deadline the client reported."""
    config = Config(certfile=pki.cert_file, keyfile=pki.key_file, retry_threshold=None)
    server = QuicEndpoint(config, tls_config=config.tls_config(is_client=False))
    client = _client(pki)
    deadlines: list[float] = []
    now = NOW
    while now <= until:
        for data, _ in client.datagrams_to_send(now):
            server.receive_datagram(data, CLIENT, now)
        for data, _ in server.datagrams_to_send(now):
            delivered = deliver(now, data)
            if delivered is not None:
                client.receive_datagram(delivered, SERVER, now)
        if client.handshake_complete:
            return client, now, deadlines
        deadline = client.handshake_deadline
        assert deadline is not None
        deadlines.append(deadline)
        if deadline <= now:
            return client, now, deadlines
        timers = [t for t in (client.next_timer(), server.next_timer()) if t is not None]
        now = min([*timers, deadline])
        if client.next_timer() == now:
            client.handle_timer(now)
        if server.next_timer() == now:
            server.handle_timer(now)
    raise AssertionError("neither completed nor gave up")


def _initial_packets_only(datagram: bytes) -> bytes | None:
    kept = [
        datagram[header.start : header.end]
        for header in iter_packets(datagram, short_dcid_length=8)
        if header.packet_type is PacketType.INITIAL
    ]
    return b"".join(kept) or None


def test_a_client_still_hearing_the_server_completes_past_the_timeout(pki: TestPki) -> None:
    """The server's flights are lost for 6 s, then only its Initial packets arrive (its ServerHello,
    its ACKs) until 12 s, then everything: the client completes at about 15 s, past the 10 s a deadline
    fixed at the start gave it, because it heard the ServerHello at about 7 s."""
    initial_only: list[float] = []

    def deliver(now: float, datagram: bytes) -> bytes | None:
        if now < NOW + 6:
            return None
        if now < NOW + 12:
            initial_only.append(now)
            return _initial_packets_only(datagram)
        return datagram

    client, ended, deadlines = _run(pki, deliver)
    assert client.handshake_complete and not client.is_closed
    assert NOW + TIMEOUT < ended < NOW + HANDSHAKE_LIFETIME * TIMEOUT
    assert deadlines[0] == NOW + TIMEOUT  # nothing heard yet: one timeout after the start
    heard_at = max(deadlines) - TIMEOUT  # the ServerHello's arrival moved it
    assert NOW + 6 <= heard_at < NOW + 12 and ended < max(deadlines)
    # The server's Initial packets after the ServerHello (ACKs of the client's probes) did not move
    # it: once the client has Handshake keys, only Handshake (or 1-RTT) packets show progress.
    assert any(at > heard_at + 1 for at in initial_only)


def test_a_client_whose_server_is_silent_gives_up_at_the_timeout(pki: TestPki) -> None:
    """Nothing from the server: the client's own probes do not move its deadline (the aio client then
    aborts with ConnectTimeout, tests/aio/test_errors.py::test_connect_timeout)."""
    client, ended, deadlines = _run(pki, lambda now, datagram: None)
    assert ended == NOW + TIMEOUT and set(deadlines) == {NOW + TIMEOUT}
    assert not client.handshake_complete and client.stats.packets_sent >= 3  # it probed meanwhile


class _Forger:
    """Forges server Initial packets for a client: their keys derive from the client's first DCID, which
    anyone who saw its first Initial knows (RFC 9001 §5.2)."""

    def __init__(self, client: QuicConnection, now: float) -> None:
        ((first, _),) = client.datagrams_to_send(now)
        self.first = first
        (header,) = iter_packets(first, short_dcid_length=8)
        self.client_dcid = header.dcid
        self.client_scid = header.scid
        self._keys = Sniffer.initial(header.dcid, client=False)
        self._wrong_keys = Sniffer.initial(bytes(8), client=False)
        self._number = 0

    def initial(self, scid: bytes, *, wrong_keys: bool = False, frame: Frame | None = None) -> bytes:
        self._number += 1
        keys = self._wrong_keys if wrong_keys else self._keys
        payload = pad_front(encode_frames([frame or Ping()]), 1100)
        return keys.protect_long(PacketType.INITIAL, self.client_scid, scid, self._number, payload)


def test_only_authenticated_packets_from_the_server_move_the_deadline(pki: TestPki) -> None:
    client = _client(pki)
    forger = _Forger(client, NOW)
    server_scid = b"\x5a" * 8
    assert client.handshake_deadline == NOW + TIMEOUT

    # The first authenticated Initial names the server's connection ID (RFC 9000 §7.2) and counts.
    client.receive_datagram(forger.initial(server_scid), SERVER, NOW + 2)
    assert client.handshake_deadline == NOW + 2 + TIMEOUT
    # None of these does: another source connection ID (RFC 9000 §7.2), another address (§9), the
    # wrong keys, garbage, a truncated copy.
    client.receive_datagram(forger.initial(b"\x77" * 8), SERVER, NOW + 3)
    client.receive_datagram(forger.initial(server_scid), ("10.9.9.9", 4433), NOW + 4)
    client.receive_datagram(forger.initial(server_scid), (SERVER[0], 4434), NOW + 4.5)
    client.receive_datagram(forger.initial(server_scid, wrong_keys=True), SERVER, NOW + 5)
    client.receive_datagram(bytes([0xC0]) + bytes(1199), SERVER, NOW + 6)
    client.receive_datagram(forger.initial(server_scid)[:600], SERVER, NOW + 7)
    client.receive_datagram(bytes(range(256)) * 5, SERVER, NOW + 8)
    assert client.handshake_deadline == NOW + 2 + TIMEOUT
    assert not client.is_closed
    # The positive control: the same forged packet from the right address and connection ID counts.
    client.receive_datagram(forger.initial(server_scid), SERVER, NOW + 9)
    assert client.handshake_deadline == NOW + 9 + TIMEOUT


def test_initial_packets_after_the_server_hello_do_not_move_the_deadline(pki: TestPki) -> None:
    """The real ServerHello arrives at once, then nothing from the server but an on-path forger's
    Initial PINGs (right keys, connection ID and address) every 2 s: the client gives up one timeout
    after the ServerHello. Before it, the same forged packets would have counted (as in the test
    above): Handshake keys make the difference."""
    config = Config(certfile=pki.cert_file, keyfile=pki.key_file, retry_threshold=None)
    server = QuicEndpoint(config, tls_config=config.tls_config(is_client=False))
    client = _client(pki)
    forger = _Forger(client, NOW)
    server.receive_datagram(forger.first, CLIENT, NOW)
    (reply, _), *_ = server.datagrams_to_send(NOW)
    server_initial = _initial_packets_only(reply)
    assert server_initial is not None
    server_scid = next(iter_packets(server_initial, short_dcid_length=8)).scid
    client.receive_datagram(server_initial, SERVER, NOW + 1)  # the ServerHello: Handshake keys
    assert client.handshake_deadline == NOW + 1 + TIMEOUT
    now = NOW + 1
    while (deadline := client.handshake_deadline) is not None and now < deadline:
        now += 2
        client.receive_datagram(forger.initial(server_scid), SERVER, now)
        client.handle_timer(now)
        client.datagrams_to_send(now)
    assert deadline == NOW + 1 + TIMEOUT and now >= deadline and not client.is_closed


def test_a_server_still_talking_is_given_up_at_the_lifetime_cap(pki: TestPki) -> None:
    """Authenticated Initial packets every 4 s (a forger on the path, or a server that never finishes):
    the deadline follows them up to HANDSHAKE_LIFETIME timeouts after the start, no further."""
    client = _client(pki)
    forger = _Forger(client, NOW)
    cap = NOW + HANDSHAKE_LIFETIME * TIMEOUT
    now = NOW
    while now < NOW + 5 * TIMEOUT:
        now += 4
        client.receive_datagram(forger.initial(b"\x5a" * 8), SERVER, now)
        assert client.handshake_deadline == min(now + TIMEOUT, cap)
        client.handle_timer(now)
        client.datagrams_to_send(now)
    assert client.handshake_deadline == cap and not client.handshake_complete


def test_a_client_discards_packets_of_another_server_cid_or_address(pki: TestPki) -> None:
    """RFC 9000 §7.2: once the server's first authenticated packet chose its connection ID, a client
    discards long-header packets with another Source Connection ID; §9: and packets from an address
    that is not the server's. A forged CONNECTION_CLOSE (Initial keys are public) of either kind
    leaves the client open; the same packet with the server's CID from its address closes it."""
    client = _client(pki)
    forger = _Forger(client, NOW)
    server_scid = b"\x5a" * 8
    client.receive_datagram(forger.initial(server_scid), SERVER, NOW + 1)
    dropped = client.stats.packets_dropped
    close = ConnectionClose(error_code=0x0A, reason=b"forged")
    client.receive_datagram(forger.initial(b"\x77" * 8, frame=close), SERVER, NOW + 2)
    client.receive_datagram(forger.initial(server_scid, frame=close), ("10.9.9.9", 4433), NOW + 3)
    client.receive_datagram(forger.initial(server_scid, frame=close), (SERVER[0], 4434), NOW + 4)
    assert client.state is State.HANDSHAKE
    assert client.stats.packets_dropped == dropped + 3
    client.receive_datagram(forger.initial(server_scid, frame=close), SERVER, NOW + 5)
    assert client.state is State.DRAINING  # RFC 9000 §10.2.2
