"""The PTO backoff cap before handshake confirmation (``HANDSHAKE_PROBES``, rudp/quic/recovery.py),
sans-IO in virtual time: an endpoint probes at least every ``handshake_timeout / HANDSHAKE_PROBES``
(or twice its smallest RTT sample, on a slower path), so a live peer is not given up as silent; a silent
peer still loses its handshake at the same time as before."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

import pytest

from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.handshake_deadline import HANDSHAKE_LIFETIME, HANDSHAKE_PROBES, HandshakeDeadline
from rudp.quic.recovery import LossRecovery
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace
from rudp.testing.certs import TestPki
from tests.quic.recovery.helpers import RecordingController, ack_of, packet

SERVER = ("10.0.0.2", 4433)
CLIENT = ("10.1.0.1", 5000)
NOW = 100.0
TIMEOUT = 10.0
CAP = TIMEOUT / HANDSHAKE_PROBES
HANDSHAKE = PacketSpace.HANDSHAKE


def _recovery(rtt: float) -> LossRecovery:
    """A server's recovery with one Handshake RTT sample of ``rtt`` (srtt rtt, rttvar rtt / 2)."""
    recovery = LossRecovery(RecordingController(), RttEstimator(), is_client=False, handshake_timeout=TIMEOUT)
    recovery.on_packet_sent(packet(0, 0.0, space=HANDSHAKE))
    recovery.on_ack_received(HANDSHAKE, ack_of(0), 0.0, rtt)
    return recovery


def _fire(recovery: LossRecovery, times: int, *, send_probes: bool, first_pn: int = 2) -> list[float]:
    """Run the PTO ``times`` times; with ``send_probes`` a probe is sent at each. Returns when it fired."""
    fired = []
    for pn in range(first_pn, first_pn + times):
        deadline = recovery.loss_detection_deadline()
        assert deadline is not None
        assert recovery.on_loss_detection_timeout(deadline) is not None
        fired.append(deadline)
        if send_probes:
            recovery.on_packet_sent(packet(pn, deadline, space=HANDSHAKE))
    return fired


@pytest.mark.parametrize(
    ("send_probes", "first_gaps"),
    [(True, [0.3, 0.6, 1.2]), (False, [0.3, 0.3, 0.6])],
    ids=["probes", "blocked"],
)
def test_the_pto_backs_off_only_up_to_the_cap_until_confirmation(
    send_probes: bool, first_gaps: list[float]
) -> None:
    """PTO 0.3 s: 0.3, 0.6, 1.2, then CAP (2 s) for ever, not 2.4, 4.8, 9.6 ... Without a probe sent
    (a server at its anti-amplification limit; the uncapped periods count from the last packet sent)
    the capped timer counts from the last PTO: it does not fire again at once."""
    recovery = _recovery(0.1)
    recovery.on_packet_sent(packet(1, 1.0, space=HANDSHAKE))
    fired = _fire(recovery, 8, send_probes=send_probes)
    gaps = [b - a for a, b in itertools.pairwise([1.0, *fired])]
    assert gaps == pytest.approx([*first_gaps, CAP, CAP, CAP, CAP, CAP])
    assert recovery.pto_count == 8  # the backoff still counts; only the period is capped
    # Confirmed: RFC 9002 §6.2.1's doubling applies again (0.3 * 2**8 s after the last packet sent).
    recovery.set_handshake_confirmed()
    last_sent = fired[-1] if send_probes else 1.0
    assert recovery.loss_detection_deadline() == pytest.approx(last_sent + 0.3 * 2**8)


def test_an_inflated_rtt_variance_does_not_space_probes_past_the_cap() -> None:
    """A 1 s first RTT sample (a late ACK under loss): PTO 3 s > CAP, yet probes go every CAP (2 s =
    twice the smallest sample). Then a 12 s sample (one very late ACK) on a 1 s path: the PTO
    without backoff is ~15 s, past a peer's 10 s silence limit; probes still go every 2 s."""
    recovery = _recovery(1.0)
    assert recovery.rtt.pto_base() == pytest.approx(3.0)
    recovery.on_packet_sent(packet(1, 1.0, space=HANDSHAKE))
    fired = _fire(recovery, 4, send_probes=True)
    assert [b - a for a, b in itertools.pairwise([1.0, *fired])] == pytest.approx([CAP] * 4)
    recovery.on_packet_sent(packet(10, 20.0, space=HANDSHAKE))
    recovery.on_ack_received(HANDSHAKE, ack_of(10), 0.0, 32.0)
    assert recovery.rtt.pto_base() > TIMEOUT
    recovery.on_packet_sent(packet(11, 33.0, space=HANDSHAKE))
    fired = _fire(recovery, 3, send_probes=True, first_pn=12)
    assert [b - a for a, b in itertools.pairwise([33.0, *fired])] == pytest.approx([CAP] * 3)
    # Confirmed: the PTO is as specified again (no cap below it).
    recovery.set_handshake_confirmed()
    expected = fired[-1] + recovery.rtt.pto_base() * 2**recovery.pto_count
    assert recovery.loss_detection_deadline() == pytest.approx(expected)


def test_on_a_slow_path_probes_stay_two_smallest_rtts_apart() -> None:
    """Smallest RTT sample 1.5 s (a slow path, not a late ACK): the period stops at 3 s (2 x 1.5),
    above CAP, so the cap never probes faster than the path can answer."""
    recovery = _recovery(1.5)
    recovery.on_packet_sent(packet(1, 1.0, space=HANDSHAKE))
    fired = _fire(recovery, 4, send_probes=True)
    assert [b - a for a, b in itertools.pairwise([1.0, *fired])] == pytest.approx([3.0] * 4)


def test_a_client_facing_a_silent_server_probes_every_cap(pki: TestPki) -> None:
    """Nothing comes back: the client probes at 1, 3, 5, 7, 9 s (was 1, 3, 7, 15 s), and its own
    deadline is still start + handshake_timeout."""
    config = Config(cafile=pki.ca_file, server_name="localhost", handshake_timeout=TIMEOUT)
    client = QuicConnection.client(config, server_address=SERVER, now=NOW)
    sent = [NOW for _ in client.datagrams_to_send(NOW)]
    while (at := client.next_timer()) is not None and at < NOW + 3 * TIMEOUT and not client.is_closed:
        client.handle_timer(at)
        sent.extend(at for _ in client.datagrams_to_send(at))
    probes = sorted(set(sent))
    assert probes[:6] == pytest.approx([NOW + t for t in (0.0, 1.0, 3.0, 5.0, 7.0, 9.0)], abs=0.01)
    assert max(b - a for a, b in itertools.pairwise(probes)) <= CAP + 1e-9
    assert client.handshake_deadline == NOW + TIMEOUT


def _run(pki: TestPki, lost: Callable[[float, bool], bool]) -> tuple[QuicConnection, QuicEndpoint, float]:
    """A client and a rudp server, 5 ms each way; ``lost(t, to_server)`` drops a datagram sent at
    ``NOW + t``. Runs until the handshake completes or the client's deadline comes (when connect()
    gives up); returns both and the end time."""
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file, retry_threshold=None)
    server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    config = Config(cafile=pki.ca_file, server_name="localhost", handshake_timeout=TIMEOUT)
    client = QuicConnection.client(config, server_address=SERVER, now=NOW)
    queue: list[tuple[float, int, bool, bytes]] = []
    order = itertools.count()
    now = NOW
    while now < NOW + 60 and not client.handshake_complete:
        for to_server, sender in ((True, client), (False, server)):
            for data, _ in sender.datagrams_to_send(now):
                if not lost(now - NOW, to_server):
                    heapq.heappush(queue, (now + 0.005, next(order), to_server, data))
        deadline = client.handshake_deadline
        assert deadline is not None
        if now >= deadline:
            break
        timers = [t for t in (client.next_timer(), server.next_timer(), deadline) if t is not None]
        now = min([*timers, queue[0][0]] if queue else timers)
        while queue and queue[0][0] <= now:
            _, _, to_server, data = heapq.heappop(queue)
            if to_server:
                server.receive_datagram(data, CLIENT, now)
            else:
                client.receive_datagram(data, SERVER, now)
        for conn in (client, server):
            if (at := conn.next_timer()) is not None and at <= now:
                conn.handle_timer(now)
    return client, server, now


def test_a_handshake_through_an_8_s_blackout_completes(pki: TestPki) -> None:
    """The server's first flight is lost, then everything both ways from 1 s to 8 s. The client's
    probes came at 1, 3, 7, 15 s: the one at 7 s was lost and its 10 s deadline came first (the
    handshake died). Now the 9 s probe gets through and the handshake completes before 10 s."""
    client, server, end = _run(pki, lambda t, to_server: (not to_server and t < 0.5) or 1.0 <= t < 8.0)
    assert client.handshake_complete and end < NOW + TIMEOUT
    assert server.handshakes_timed_out == 0


def test_a_client_silent_after_its_first_initial_loses_its_slot_at_the_timeout(pki: TestPki) -> None:
    """The flood defence is unchanged: the server's capped probes do not keep a silent client's slot,
    which goes exactly handshake_timeout after the client was last heard, and the server sends no more
    than its anti-amplification limit (three times the client's one 1200-byte datagram)."""
    server_config = Config(
        certfile=pki.cert_file, keyfile=pki.key_file, retry_threshold=None, handshake_timeout=TIMEOUT
    )
    server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    config = Config(cafile=pki.ca_file, server_name="localhost")
    ((first, _),) = QuicConnection.client(config, server_address=SERVER, now=NOW).datagrams_to_send(NOW)
    conn = server.receive_datagram(first, CLIENT, NOW)
    assert conn is not None
    sent = sum(len(data) for data, _ in server.datagrams_to_send(NOW))
    dropped_at = None
    while (at := server.next_timer()) is not None and at <= NOW + 3 * TIMEOUT:
        server.handle_timer(at)
        sent += sum(len(data) for data, _ in server.datagrams_to_send(at))
        if dropped_at is None and server.handshakes_timed_out:
            dropped_at = at
    assert dropped_at == NOW + TIMEOUT and conn.is_closed and server.connections == []
    assert sent <= 3 * len(first)


def test_a_client_probe_sent_before_its_deadline_is_given_its_answer_time() -> None:
    """(HandshakeDeadline.at) Heard at 0, timeout 10, PTO 1: a probe at 9.5 moves the deadline to
    10.5; one at 10.2 (after the deadline) does not count, so the deadline moves once at most; the
    lifetime cap still holds."""
    deadline = HandshakeDeadline(0.0)
    assert deadline.at(TIMEOUT) == TIMEOUT
    assert deadline.at(TIMEOUT, 9.5, 1.0) == 10.5
    assert deadline.at(TIMEOUT, 8.0, 1.0) == TIMEOUT
    assert deadline.at(TIMEOUT, 10.2, 1.0) == TIMEOUT
    assert deadline.at(TIMEOUT, 9.5, 100.0) == HANDSHAKE_LIFETIME * TIMEOUT
    deadline.on_progress(25.0)
    assert deadline.at(TIMEOUT, 29.9, 1.0) == HANDSHAKE_LIFETIME * TIMEOUT
