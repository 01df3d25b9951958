"""ECN end to end on the simulator (RFC 9000 §13.4, RFC 9002 §7.1): counts, validation, CE response."""

from __future__ import annotations

import pytest

from rudp.quic.ecn import CE, ECT_0, TESTING_PACKETS, EcnFeedback, EcnPath, EcnState
from rudp.quic.sent import PacketSpace, SentPacket
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import SERVER_ADDR, Sim, make_sim

APP = PacketSpace.APPLICATION
SIZE = 1_000_000


def _transfer(pki: TestPki, sim: Sim, size: int = SIZE, max_time: float = 60.0) -> int:
    sim.handshake(max_time=max_time)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, bytes(size))
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=max_time)
    assert len(sim.server.streams[stream_id]) == size
    return stream_id


def _server_conn(sim: Sim):  # type: ignore[no-untyped-def]
    return sim.server.conn


def test_validation_succeeds_on_both_ends(pki: TestPki) -> None:
    sim = make_sim(pki, link=LinkConfig(delay=0.02))
    _transfer(pki, sim, 200_000)
    client, server = sim.conn, _server_conn(sim)
    assert client.ecn_state is EcnState.CAPABLE
    assert server.ecn_state is EcnState.CAPABLE
    stats = client.stats
    assert stats.ecn_state == "capable"
    assert stats.ecn_marked_sent > 100
    assert stats.ecn_peer_counts[0] > 100 and stats.ecn_peer_counts[1:] == (0, 0)
    # The server counted every ECT(0) packet the client sent and it received (RFC 9000 §13.4.1).
    assert server.stats.ecn_received[0] > 100
    assert client.stats.ecn_received[0] > 0


def test_disabled_by_config_does_not_mark_but_still_reports(pki: TestPki) -> None:
    sim = make_sim(pki, link=LinkConfig(delay=0.02), client={"ecn": False})
    _transfer(pki, sim, 50_000)
    assert sim.conn.ecn_state is EcnState.DISABLED
    assert sim.conn.stats.ecn_marked_sent == 0
    assert _server_conn(sim).stats.ecn_received[0] == 0
    assert sim.conn.stats.ecn_received[0] > 0  # the server marks; the client reports its marks


def test_bleaching_path_fails_validation_and_transfer_completes(pki: TestPki) -> None:
    sim = make_sim(pki, link=LinkConfig(delay=0.02, ecn_bleach=True))
    _transfer(pki, sim, 300_000)
    for conn in (sim.conn, _server_conn(sim)):
        assert conn.ecn_state is EcnState.FAILED
        assert conn.ecn_codepoint == 0
        assert not conn.is_closed
    assert sim.pair.c2s.stats.ecn_bleached > 0
    sent = sim.conn.stats.ecn_marked_sent
    assert sent <= TESTING_PACKETS + 5  # marking stopped once the first ACK showed no counts


def test_wrong_counts_from_the_peer_disable_ecn_without_closing() -> None:
    path, feedback = EcnPath(enabled=True), EcnFeedback()
    packets = [SentPacket(pn, APP, 0.0, 1200, True, True) for pn in range(4)]
    path.on_datagram_sent(packets[:2], True)
    path.on_datagram_sent(packets[2:], True)
    assert path.on_ack(APP, (2, 0, 0), packets[:2], feedback) == 0
    assert path.state is EcnState.CAPABLE
    # Two more ECT(0) packets acknowledged, but the counts grew by one: remarking (RFC 9000 §13.4.2.1).
    assert path.on_ack(APP, (3, 0, 0), packets[2:], feedback) == 0
    assert path.state is EcnState.FAILED and not path.marking
    for counts in [(1, 0, 0), (5, 1, 0), None]:  # decreasing, ECT(1) never sent, missing
        other = EcnPath(enabled=True)
        base = EcnFeedback()
        base.peer[APP] = (2, 0, 0)
        other.on_datagram_sent(packets[:1], True)
        other.on_ack(APP, counts, packets[:1], base)
        assert other.state is EcnState.FAILED, counts


def test_counts_after_validation_ended_keep_the_largest_of_each() -> None:
    # A path that stopped marking (failed or disabled) still records the peer's counts: element by
    # element the largest seen (written inline; compared here with max() of each element).
    for state in (EcnState.FAILED, EcnState.DISABLED):
        path, feedback = EcnPath(enabled=True), EcnFeedback()
        path.state = state
        seen = (0, 0, 0)
        for counts in [(3, 0, 1), (2, 4, 1), (5, 1, 0), (5, 4, 7), (0, 0, 0), (6, 5, 7)]:
            assert path.on_ack_marked(APP, counts, 0, feedback) == 0
            seen = (max(seen[0], counts[0]), max(seen[1], counts[1]), max(seen[2], counts[2]))
            assert feedback.peer[APP] == seen, counts
        assert path.on_ack_marked(APP, None, 0, feedback) == 0
        assert feedback.peer[APP] == seen and path.state is state


def test_ce_increase_is_returned_only_when_counts_validate() -> None:
    path, feedback = EcnPath(enabled=True), EcnFeedback()
    packets = [SentPacket(pn, APP, 0.0, 1200, True, True) for pn in range(3)]
    path.on_datagram_sent(packets, True)
    assert path.on_ack(APP, (1, 0, 2), packets, feedback) == 2
    assert feedback.peer[APP] == (1, 0, 2)


def test_peer_with_wrong_counts_end_to_end(pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server reports ECT(0) counts that never grow: the client disables ECN and carries on.
    from rudp.quic import spaces

    # (The counts the receive path hands the tracker are dropped, so that every ACK builder, the
    # general one and the ACK-only one, reports zeros.)
    # (AckTracker is slotted: a subclass, made by the spaces in its place, carries the flag.)
    class MarkedTracker(spaces.AckTracker):
        __slots__ = ("is_server_side",)

        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            self.is_server_side = False

        def report_ecn_counts(self, counts: tuple[int, int, int]) -> None:
            if not (self.space is APP and self.is_server_side):
                super().report_ecn_counts(counts)

    monkeypatch.setattr(spaces, "AckTracker", MarkedTracker)
    sim = make_sim(pki, link=LinkConfig(delay=0.02))
    sim.handshake()
    for space in sim.server.conn._spaces.values():
        assert isinstance(space.ack, MarkedTracker)
        space.ack.is_server_side = True
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, bytes(100_000))
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=30)
    assert sim.conn.ecn_state is EcnState.FAILED
    assert not sim.conn.is_closed


def _coalesced_counts(pki: TestPki, codepoint: int) -> tuple[list[int], list[int], int]:
    sim = make_sim(pki, link=LinkConfig(delay=0.02), client={"ecn": False}, server={"ecn": False})
    sim.pair.c2s.update(ecn_bleach=False)
    conn = sim.conn
    datagrams = conn.datagrams_to_send(sim.clock.now)
    endpoint = sim.server.target
    for data, _ in datagrams:
        endpoint.receive_datagram(data, ("127.0.0.1", 50000), sim.clock.now, codepoint)
    out = endpoint.datagrams_to_send(sim.clock.now)
    # Feed the server's coalesced Initial+Handshake flight back to the client with the same mark.
    for data, _ in out:
        conn.receive_datagram(data, SERVER_ADDR, sim.clock.now, codepoint)
    fb = conn._receiver.ecn
    return fb.received[PacketSpace.INITIAL], fb.received[PacketSpace.HANDSHAKE], len(out)


@pytest.mark.parametrize("codepoint,index", [(ECT_0, 0), (CE, 2)])
def test_ack_ecn_counts_coalesced_packets_each(pki: TestPki, codepoint: int, index: int) -> None:
    initial, handshake, datagrams = _coalesced_counts(pki, codepoint)
    # The server's first flight coalesces its Initial with Handshake packets: each packet counts once.
    assert initial[index] >= 1 and handshake[index] >= 1
    assert initial[index] + handshake[index] > datagrams - 1
    assert sum(initial) == initial[index] and sum(handshake) == handshake[index]


@pytest.mark.parametrize("congestion", ["newreno", "cubic"])
def test_ce_marks_reduce_the_window_and_avoid_loss(pki: TestPki, congestion: str) -> None:
    link = LinkConfig(delay=0.02, bandwidth=10e6, queue_bytes=200_000, ce_threshold_bytes=15_000)
    results = {}
    for ecn in (False, True):
        sim = make_sim(pki, link=link, client={"ecn": ecn, "congestion": congestion, "pmtu_discovery": False})
        _transfer(pki, sim, 2_000_000)
        results[ecn] = (sim.conn.stats, sim.pair.c2s.stats, sim.conn._paths.current.congestion.controller)
    with_ecn, link_stats, controller = results[True]
    without, _, _ = results[False]
    assert with_ecn.ce_count > 0 and link_stats.ce_marked > 0
    assert sim.conn.ecn_state is EcnState.CAPABLE
    # One reduction per round trip, not one per CE mark.
    assert 0 < controller.congestion_events < with_ecn.ce_count
    assert without.packets_lost > 10
    assert with_ecn.packets_lost * 10 < without.packets_lost, (with_ecn.packets_lost, without.packets_lost)


def test_marked_packets_are_watched_only_until_one_is_acknowledged() -> None:
    """RFC 9000 §13.4.2: validation fails when every packet sent marked while testing is lost, so each
    marked packet's fate is followed (a delivery handler) only until one is acknowledged; packets
    marked after that carry none (one call less per acknowledged packet)."""
    lost_all, feedback = EcnPath(enabled=True), EcnFeedback()
    packets = [SentPacket(pn, APP, 0.0, 1200, True, True) for pn in range(TESTING_PACKETS)]
    lost_all.on_datagram_sent(packets, True)
    assert all(len(packet.handlers) == 1 for packet in packets)
    for packet in packets:
        packet.handlers[0](False)
    assert lost_all.state is EcnState.FAILED and lost_all.failure == "all ECT(0) testing packets lost"

    path = EcnPath(enabled=True)
    first = [SentPacket(pn, APP, 0.0, 1200, True, True) for pn in range(4)]
    path.on_datagram_sent(first, True)
    first[0].handlers[0](True)
    later = [SentPacket(pn, APP, 0.0, 1200, True, True) for pn in range(4, 20)]
    path.on_datagram_sent(later, True)
    assert all(packet.ect0 and not packet.handlers for packet in later)
    for packet in first[1:]:
        packet.handlers[0](False)  # lost, but one marked packet arrived: no failure
    assert path.state is EcnState.UNKNOWN  # testing over (10 sent), not failed
    assert path.on_ack(APP, (1 + len(later), 0, 0), later, feedback) == 0
    assert path.state is EcnState.CAPABLE
