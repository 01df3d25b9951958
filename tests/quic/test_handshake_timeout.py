"""Half-open server connections end at ``Config.handshake_timeout`` (virtual time): a client that sends
its first Initial and goes silent loses its handshake slot then, silently, and every per-connection
table returns to zero; a slow handshake that completes in time is kept."""

from __future__ import annotations

import heapq
import itertools
import json
from pathlib import Path

from rudp.codec.codes import PacketType, TransportErrorCode
from rudp.codec.frame_codec import encode_frames
from rudp.codec.frames import Ping
from rudp.codec.packet import iter_packets
from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.events import ConnectionTerminated
from rudp.quic.handshake_deadline import HANDSHAKE_LIFETIME
from rudp.quic.qlog import RECORD_SEPARATOR
from rudp.testing.certs import TestPki
from tests.support.sim import Sniffer, pad_front

SERVER = ("10.0.0.2", 4433)
NOW = 100.0
TIMEOUT = 10.0


def _server(pki: TestPki, **options: object) -> QuicEndpoint:
    config = Config(certfile=pki.cert_file, keyfile=pki.key_file, **options)  # type: ignore[arg-type]
    return QuicEndpoint(config, tls_config=config.tls_config(is_client=False))


def _client(pki: TestPki, now: float = NOW) -> QuicConnection:
    config = Config(cafile=pki.ca_file, server_name="localhost")
    return QuicConnection.client(config, server_address=SERVER, now=now)


def _silent_client(server: QuicEndpoint, pki: TestPki, addr: tuple[str, int], now: float) -> QuicConnection:
    """A client whose first Initial reaches the server, and then never another datagram."""
    ((first, _),) = _client(pki, now).datagrams_to_send(now)
    conn = server.receive_datagram(first, addr, now)
    assert conn is not None
    return conn


def _run_timers(server: QuicEndpoint, until: float) -> list[tuple[float, bytes]]:
    """Drive the endpoint by its own next_timer() up to ``until``; return (time, datagram) sent."""
    sent = []
    while (deadline := server.next_timer()) is not None and deadline <= until:
        server.handle_timer(deadline)
        sent.extend((deadline, data) for data, _ in server.datagrams_to_send(deadline))
    return sent


def test_a_client_that_goes_silent_after_its_first_initial_is_dropped_at_the_timeout(pki: TestPki) -> None:
    server = _server(pki, handshake_timeout=TIMEOUT, retry_threshold=None)
    conn = _silent_client(server, pki, ("10.1.0.1", 5000), NOW)
    assert server.datagrams_to_send(NOW)  # the server's first flight
    assert server.handshakes_in_progress == 1
    assert server.state_sizes()["handshake_deadlines"] == 1

    before = _run_timers(server, NOW + TIMEOUT - 0.001)
    assert conn in server.connections and not conn.is_closed  # retransmissions, still waiting
    assert all(at < NOW + TIMEOUT for at, _ in before)
    # The endpoint's own timer wakes it at the deadline (the connection's idle timer is 30 s away).
    assert server.next_timer() == NOW + TIMEOUT
    assert _run_timers(server, NOW + TIMEOUT) == []  # dropped silently: no CONNECTION_CLOSE
    assert conn.is_closed and conn.close_cause is not None
    assert conn.close_cause.reason == "handshake timeout" and not conn.close_cause.by_peer
    assert server.handshakes_timed_out == 1
    assert server.connections == [] and server.handshakes_in_progress == 0
    sizes = server.state_sizes()
    assert sizes == dict.fromkeys(sizes, 0), sizes
    assert server.next_timer() is None


def test_timed_out_handshakes_free_their_slots_for_new_clients(pki: TestPki) -> None:
    server = _server(pki, handshake_timeout=TIMEOUT, retry_threshold=None, max_handshakes=3)
    silent = [_silent_client(server, pki, ("10.1.0.1", 5000 + i), NOW + i) for i in range(3)]
    server.datagrams_to_send(NOW + 2)

    def connect(addr: tuple[str, int], now: float) -> QuicConnection:
        client = _client(pki, now)
        for _ in range(50):
            for data, _ in client.datagrams_to_send(now):
                server.receive_datagram(data, addr, now)
            for data, to in server.datagrams_to_send(now):
                if to == addr:
                    client.receive_datagram(data, SERVER, now)
        return client

    refused = connect(("10.2.0.1", 6000), NOW + 5)  # every slot is taken by a silent client
    assert refused.close_cause is not None
    assert refused.close_cause.code == TransportErrorCode.CONNECTION_REFUSED

    _run_timers(server, NOW + TIMEOUT)  # only the first silent client's deadline has come
    assert server.handshakes_timed_out == 1 and silent[0].is_closed
    assert not silent[1].is_closed and server.handshakes_in_progress == 2
    admitted = connect(("10.2.0.2", 6000), NOW + TIMEOUT)
    assert admitted.handshake_complete

    _run_timers(server, NOW + TIMEOUT + 2)
    assert server.handshakes_timed_out == 3 and all(conn.is_closed for conn in silent)
    assert server.handshakes_in_progress == 0 and len(server.connections) == 1  # the admitted one
    assert server.state_sizes()["handshake_deadlines"] == 0


def test_a_slow_handshake_that_completes_in_time_is_kept(pki: TestPki) -> None:
    """4.5 s each way: the server accepts the client at 4.5 s and its Finished arrives 9 s later, under
    the 10 s bound (counted from acceptance). Retransmissions on both sides meanwhile."""
    delay = 4.5
    server = _server(pki, handshake_timeout=TIMEOUT, retry_threshold=None)
    client = _client(pki)
    client_addr = ("10.1.0.1", 5000)
    in_flight: list[tuple[float, int, bool, bytes]] = []  # (arrival, order, to the server?, datagram)
    order = itertools.count()

    def send(now: float) -> None:
        for data, _ in client.datagrams_to_send(now):
            heapq.heappush(in_flight, (now + delay, next(order), True, data))
        for data, _ in server.datagrams_to_send(now):
            heapq.heappush(in_flight, (now + delay, next(order), False, data))

    send(NOW)
    now = NOW
    while now < NOW + TIMEOUT + 5:
        timers = [t for t in (client.next_timer(), server.next_timer()) if t is not None]
        now = min([*timers, *(in_flight[:1] and [in_flight[0][0]])])
        while in_flight and in_flight[0][0] <= now:
            _, _, to_server, data = heapq.heappop(in_flight)
            if to_server:
                server.receive_datagram(data, client_addr, now)
            else:
                client.receive_datagram(data, SERVER, now)
        if client.next_timer() is not None and client.next_timer() <= now:  # type: ignore[operator]
            client.handle_timer(now)
        server.handle_timer(now)
        send(now)
    (conn,) = server.connections
    assert conn.handshake_complete and not conn.is_closed and client.handshake_complete
    assert server.handshakes_timed_out == 0 and server.handshakes_in_progress == 0
    assert server.state_sizes()["handshake_deadlines"] == 0


def test_many_handshakes_expire_in_deadline_order_without_scanning(pki: TestPki) -> None:
    server = _server(pki, handshake_timeout=TIMEOUT, retry_threshold=None)
    conns = [_silent_client(server, pki, ("10.1.0.1", 5000 + i), NOW + i * 0.5) for i in range(10)]
    server.datagrams_to_send(NOW + 5)
    for i, conn in enumerate(conns):
        expected = NOW + i * 0.5 + TIMEOUT
        assert server.next_timer() is not None and server.next_timer() <= expected  # type: ignore[operator]
        _run_timers(server, expected)
        assert conn.is_closed and server.handshakes_timed_out == i + 1
        assert all(not later.is_closed for later in conns[i + 1 :])
    events = []
    while (event := conns[0].next_event()) is not None:
        events.append(event)
    assert isinstance(events[-1], ConnectionTerminated) and events[-1].reason == "handshake timeout"
    sizes = server.state_sizes()
    assert sizes == dict.fromkeys(sizes, 0), sizes


def test_a_dropped_handshake_closes_its_qlog_file(pki: TestPki, tmp_path: Path) -> None:
    server = _server(pki, handshake_timeout=TIMEOUT, retry_threshold=None, qlog_dir=tmp_path)
    conn = _silent_client(server, pki, ("10.1.0.1", 5000), NOW)
    server.datagrams_to_send(NOW)
    _run_timers(server, NOW + TIMEOUT)
    assert conn.is_closed and server.connections == []
    (path,) = tmp_path.glob("*_server.sqlog")
    last = json.loads(path.read_text().split(RECORD_SEPARATOR)[-1])
    # The last record is the final state, written by the sync that closes the file.
    assert last["data"]["new"] == "closed", last


def _lossy_run(
    server: QuicEndpoint,
    client: QuicConnection,
    until: float,
    server_heard_from: float,
    client_heard_until: float = float("inf"),
) -> tuple[list[float], float | None]:
    """Zero-delay link on which every server datagram sent before ``server_heard_from`` is lost, and
    every client datagram from ``client_heard_until`` on. Returns when the server received client
    datagrams, and when its connection closed (None: open)."""
    addr = ("10.1.0.1", 5000)
    received: list[float] = []
    closed_at = None
    now = NOW
    while now <= until:
        for data, _ in client.datagrams_to_send(now):
            if now < client_heard_until:
                received.append(now)
                server.receive_datagram(data, addr, now)
        for data, _ in server.datagrams_to_send(now):
            if now >= server_heard_from:
                client.receive_datagram(data, SERVER, now)
        for data, _ in client.datagrams_to_send(now):  # the client's answer, at once
            if now < client_heard_until:
                received.append(now)
                server.receive_datagram(data, addr, now)
        server.datagrams_to_send(now)  # and the server's reply to it (delivered next round)
        timers = [t for t in (client.next_timer(), server.next_timer()) if t is not None]
        if not timers:
            break
        now = min(timers)
        if client.next_timer() == now:
            client.handle_timer(now)
        if server.next_timer() == now:
            server.handle_timer(now)
            if closed_at is None and server.handshakes_timed_out:
                closed_at = now
    return received, closed_at


def test_a_client_still_probing_keeps_its_handshake_past_the_timeout(pki: TestPki) -> None:
    """The interop handshakecorruption failure (issue 15): the server's flights are lost for 11 s while
    the client's probes (PTO at 1, 3, 7 s after its first Initial) arrive. The handshake completes when
    the server is heard at last (the client's 15 s probe gets an answer): a deadline fixed at
    acceptance (10 s) had dropped it, silently, though the client was talking."""
    server = _server(pki, handshake_timeout=TIMEOUT, retry_threshold=None)
    client = _client(pki)
    received, closed_at = _lossy_run(server, client, NOW + 30, server_heard_from=NOW + 11)
    assert any(NOW + TIMEOUT - 5 < at < NOW + TIMEOUT for at in received)  # heard shortly before 10 s
    (conn,) = server.connections
    assert closed_at is None and conn.handshake_complete and client.handshake_complete
    assert server.handshakes_timed_out == 0 and server.state_sizes()["handshake_deadlines"] == 0


def test_a_client_silent_for_the_timeout_is_dropped_though_it_probed_before(pki: TestPki) -> None:
    """Nothing from the server ever arrives: the client's probes keep the slot only while they come.
    They stop arriving at 15 s (the client gave up or its path died); the slot is dropped one timeout
    after the last probe heard, silently. (A client that probes on is kept up to HANDSHAKE_LIFETIME
    timeouts: since its PTO backoff is capped during the handshake, its probes never leave a timeout
    of silence; test_talking_extends_a_handshake_only_up_to_its_lifetime covers that cap.)"""
    server = _server(pki, handshake_timeout=TIMEOUT, retry_threshold=None)
    client = _client(pki)
    received, closed_at = _lossy_run(
        server, client, NOW + 60, server_heard_from=float("inf"), client_heard_until=NOW + 15
    )
    assert closed_at is not None and server.handshakes_timed_out == 1
    heard_before = [at for at in received if at < closed_at]
    assert len(heard_before) >= 3 and heard_before[-1] > NOW + 1  # probes extended it
    assert closed_at == heard_before[-1] + TIMEOUT  # exactly one timeout of silence
    assert server.connections == [] and server.handshakes_in_progress == 0


def test_talking_extends_a_handshake_only_up_to_its_lifetime(pki: TestPki) -> None:
    """Initial keys are public (RFC 9001 §5.2): a peer that forges a fresh Initial PING every few seconds
    under the client's first DCID is "heard", yet never finishes. Its slot goes HANDSHAKE_LIFETIME
    timeouts after acceptance, not at the end of the run (without the cap it was kept for ever)."""
    server = _server(pki, handshake_timeout=TIMEOUT, retry_threshold=None)
    ((first, _),) = _client(pki).datagrams_to_send(NOW)
    addr = ("10.1.0.1", 5000)
    assert server.receive_datagram(first, addr, NOW) is not None
    (header,) = iter_packets(first, short_dcid_length=8)
    forger = Sniffer.initial(header.dcid, client=True)
    closed_at = None
    now = NOW
    for number in itertools.count(100):
        now += TIMEOUT / 2
        if now > NOW + 10 * TIMEOUT:
            break
        ping = pad_front(encode_frames([Ping()]), 1100)
        forged = forger.protect_long(PacketType.INITIAL, header.dcid, header.scid, number, ping)
        server.receive_datagram(forged, addr, now)
        server.datagrams_to_send(now)
        while (at := server.next_timer()) is not None and at <= now:
            server.handle_timer(at)
        if closed_at is None and server.handshakes_timed_out:
            closed_at = now
    (conn,) = server.connections if server.connections else (None,)
    assert conn is None and server.handshakes_timed_out == 1
    assert closed_at is not None and NOW + HANDSHAKE_LIFETIME * TIMEOUT <= closed_at <= NOW + (
        HANDSHAKE_LIFETIME + 1
    ) * TIMEOUT
    assert server.handshakes_in_progress == 0 and server.state_sizes()["handshake_deadlines"] == 0
