"""Sans-IO connection lifecycle and error handling over the simulator: closing, draining, idle timeout,
keep-alive, PTO backoff, persistent congestion, flow-control and stream-limit violations (forged with a
key-log sniffer), Retry, Version Negotiation, QUIC v2, anti-amplification, datagrams and key update."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from rudp.codec.codes import PacketType, Version
from rudp.codec.frames import Ack, MaxStreamData, ResetStream, Stream
from rudp.codec.packet import encode_long_header, parse_header
from rudp.crypto.suites import CipherSuite
from rudp.errors import StreamLimitReached, TransportErrorCode
from rudp.quic import events as ev
from rudp.quic.congestion.base import minimum_window
from rudp.quic.state import State
from rudp.testing import LinkConfig, TraceEvent
from rudp.testing.certs import TestPki
from tests.support.sim import CLIENT_ADDR, SERVER_ADDR, Sim, Sniffer, make_sim

SUITE = CipherSuite.AES_128_GCM_SHA256


def _keyed_sim(pki: TestPki, tmp_path: Path, **kwargs: object) -> tuple[Sim, Sniffer]:
    keylog = tmp_path / "keys.log"
    client = dict(kwargs.pop("client", {}) or {})  # type: ignore[call-overload]
    client.update(secrets_log=keylog, cipher_suites=[SUITE])
    sim = make_sim(pki, client=client, **kwargs)  # type: ignore[arg-type]
    sim.handshake()
    return sim, Sniffer(keylog, "CLIENT_TRAFFIC_SECRET_0", SUITE)


def _inject(sim: Sim, sniffer: Sniffer, frames: list[object]) -> None:
    """Deliver a forged client 1-RTT packet to the server endpoint."""
    dcid = sim.server.conn.local_cids()[0]
    packet = sniffer.forge(dcid, 1_000_000, frames)  # type: ignore[arg-type]
    sim.server.receive_datagram(packet, CLIENT_ADDR, sim.clock.now)


def _terminated(sim: Sim) -> tuple[ev.ConnectionTerminated, ev.ConnectionTerminated]:
    assert sim.pair.drive(
        until=lambda: sim.client.terminated is not None and sim.server.terminated is not None, max_time=5
    )
    assert sim.client.terminated is not None and sim.server.terminated is not None
    return sim.client.terminated, sim.server.terminated


def test_application_close_is_seen_by_peer_then_both_close(pki: TestPki) -> None:
    sim = make_sim(pki)
    sim.handshake()
    sim.conn.close(0x42, "bye now")
    client_end, server_end = _terminated(sim)
    assert (server_end.code, server_end.reason, server_end.by_peer, server_end.application) == (
        0x42,
        "bye now",
        True,
        True,
    )
    assert not client_end.by_peer and client_end.code == 0x42
    server_conn = sim.server.conn
    assert server_conn.state is State.DRAINING and sim.conn.state is State.CLOSING
    # Closing and draining last three PTOs, then the connections are gone.
    assert sim.pair.drive(until=lambda: sim.conn.is_closed and not sim.server.target.connections, max_time=5)  # type: ignore[union-attr]


def test_draining_swallows_late_packets(pki: TestPki, tmp_path: Path) -> None:
    sim, sniffer = _keyed_sim(pki, tmp_path)
    server_conn = sim.server.conn
    sim.conn.close(1, "done")
    assert sim.pair.drive(until=lambda: server_conn.state is State.DRAINING, max_time=2)
    _inject(sim, sniffer, [Stream(0, 0, b"late", True)])
    assert server_conn.datagrams_to_send(sim.clock.now) == []
    assert server_conn.state is State.DRAINING


def test_closing_answers_late_packets_rate_limited(pki: TestPki, tmp_path: Path) -> None:
    sim, sniffer = _keyed_sim(pki, tmp_path)
    server_conn = sim.server.conn
    server_conn.close(7, "server going away")
    assert server_conn.datagrams_to_send(sim.clock.now)  # the first CONNECTION_CLOSE
    answers = 0
    for _ in range(8):
        _inject(sim, sniffer, [Stream(0, 0, b"x")])
        answers += len(server_conn.datagrams_to_send(sim.clock.now))
    assert 1 <= answers <= 4  # 1st, 2nd, 4th, 8th stray packet get an answer


def test_idle_timeout_closes_silently(pki: TestPki) -> None:
    sent_after_idle: list[TraceEvent] = []
    sim = make_sim(pki, client={"idle_timeout": 1.0}, server={"idle_timeout": 2.0})
    sim.handshake()
    start = sim.clock.now
    sim.pair.run_for(0.3)  # let the handshake's last ACKs settle
    sim.trace(lambda event: sent_after_idle.append(event) if event.kind == "sent" else None)
    client_end, server_end = _terminated(sim)
    for end in (client_end, server_end):
        assert end.reason == "idle timeout" and not end.by_peer and end.code == 0
    assert sim.clock.now >= start + 1.0  # the smaller of the two idle timeouts (RFC 9000 §10.1)
    assert sim.clock.now < start + 2.0
    assert sent_after_idle == []  # silent: no CONNECTION_CLOSE on the wire


def test_keepalive_keeps_idle_connection_open(pki: TestPki) -> None:
    sim = make_sim(pki, client={"idle_timeout": 1.0, "keepalive_interval": 0.3}, server={"idle_timeout": 1.0})
    sim.handshake()
    sim.pair.run_for(5.0)
    assert sim.client.terminated is None and sim.server.terminated is None
    assert sim.conn.state is State.ESTABLISHED


def test_pto_backoff_doubles(pki: TestPki) -> None:
    sim = make_sim(pki, link=LinkConfig(delay=0.02))
    sim.handshake()
    sim.pair.run_for(0.2)
    sends: list[float] = []
    sim.trace(
        lambda event: sends.append(event.time) if event.kind == "sent" and event.direction == "c2s" else None
    )
    sim.pair.c2s.update(loss=1.0)  # a black hole from client to server
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, b"probe me", fin=False)
    sim.pair.run_for(3.0)
    gaps = [b - a for a, b in itertools.pairwise(sends) if b - a > 0.001]
    assert len(gaps) >= 4
    for earlier, later in itertools.pairwise(gaps):
        assert later == pytest.approx(2 * earlier, rel=0.01)


def test_persistent_congestion_collapses_window(pki: TestPki) -> None:
    sim = make_sim(pki, link=LinkConfig(delay=0.01))
    sim.handshake()
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, bytes(3_000_000))
    sim.pair.run_for(0.1)
    before = sim.conn.stats.congestion_window
    assert before > 20 * minimum_window(1350)
    sim.pair.c2s.update(loss=1.0)
    sim.pair.run_for(2.0)
    assert sim.conn.stats.persistent_congestion_count == 0  # nothing can be declared without an ACK
    sim.pair.c2s.update(loss=0.0)
    # RFC 9002 §7.6.2: the first ACK after the black hole reveals losses spanning more than the
    # persistent congestion duration: the window collapses to the minimum and slow start begins anew.
    assert sim.pair.drive(until=lambda: sim.conn.stats.persistent_congestion_count == 1, max_time=5)
    assert sim.conn.stats.congestion_window < 4 * minimum_window(1350)
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=60)
    assert len(sim.server.streams[stream_id]) == 3_000_000


def test_flow_control_violation_closes_with_flow_control_error(pki: TestPki, tmp_path: Path) -> None:
    sim, sniffer = _keyed_sim(
        pki, tmp_path, server={"initial_max_stream_data": 1000, "max_stream_window": 1000}
    )
    _inject(sim, sniffer, [Stream(0, 5000, b"beyond the window")])
    client_end, server_end = _terminated(sim)
    assert server_end.code == TransportErrorCode.FLOW_CONTROL_ERROR and not server_end.by_peer
    assert client_end.code == TransportErrorCode.FLOW_CONTROL_ERROR and client_end.by_peer


def test_final_size_error(pki: TestPki, tmp_path: Path) -> None:
    sim, sniffer = _keyed_sim(pki, tmp_path)
    _inject(sim, sniffer, [Stream(0, 0, b"0123456789", fin=True), ResetStream(0, 1, 5)])
    _, server_end = _terminated(sim)
    assert server_end.code == TransportErrorCode.FINAL_SIZE_ERROR


def test_stream_limits(pki: TestPki, tmp_path: Path) -> None:
    sim, sniffer = _keyed_sim(pki, tmp_path, server={"max_streams_bidi": 2})
    sim.conn.open_stream()
    sim.conn.open_stream()
    with pytest.raises(StreamLimitReached):
        sim.conn.open_stream()
    _inject(sim, sniffer, [Stream(4 * 10, 0, b"stream beyond the limit")])
    _, server_end = _terminated(sim)
    assert server_end.code == TransportErrorCode.STREAM_LIMIT_ERROR


def test_stream_state_error_for_peer_data_on_our_send_only_stream(pki: TestPki, tmp_path: Path) -> None:
    sim, sniffer = _keyed_sim(pki, tmp_path)
    # Stream 3 is server-initiated unidirectional: the client must not send on it... but stream 2 is
    # client-initiated unidirectional, so MAX_STREAM_DATA for it from the client is a violation.
    _inject(sim, sniffer, [MaxStreamData(2, 100)])
    _, server_end = _terminated(sim)
    assert server_end.code == TransportErrorCode.STREAM_STATE_ERROR


def test_reset_and_stop_sending_reach_the_peer(pki: TestPki) -> None:
    sim = make_sim(pki)
    sim.handshake()
    first, second = sim.conn.open_stream(), sim.conn.open_stream()
    sim.client.send(first, b"partial", fin=False)
    sim.client.send(second, b"x", fin=False)
    sim.pair.run_for(0.2)
    sim.conn.reset_stream(first, 0x11)
    sim.server.conn.stop_sending(second, 0x22)
    assert sim.pair.drive(
        until=lambda: (
            any(isinstance(e, ev.StreamReset) for e in sim.server.events)
            and any(isinstance(e, ev.StopSendingReceived) for e in sim.client.events)
        ),
        max_time=2,
    )
    reset = next(e for e in sim.server.events if isinstance(e, ev.StreamReset))
    stop = next(e for e in sim.client.events if isinstance(e, ev.StopSendingReceived))
    assert (reset.stream_id, reset.error_code) == (first, 0x11)
    assert (stop.stream_id, stop.error_code) == (second, 0x22)


def test_rtt_estimate_matches_the_virtual_link(pki: TestPki) -> None:
    sim = make_sim(
        pki, link=LinkConfig(delay=0.015), client={"max_ack_delay": 0.0}, server={"max_ack_delay": 0.0}
    )
    sim.handshake()
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, os.urandom(200_000))
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=10)
    stats = sim.conn.stats
    assert stats.min_rtt == pytest.approx(0.03, abs=1e-9)
    assert stats.smoothed_rtt == pytest.approx(0.03, abs=0.002)


def test_retry_then_handshake(pki: TestPki) -> None:
    sim = make_sim(pki, server={"retry": True})
    events: list[TraceEvent] = []
    sim.trace(events.append)
    sim.handshake()
    assert any(e.kind == "delivered" and e.direction == "s2c" and e.size < 200 for e in events)  # the Retry
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, b"after retry")
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=2)


def test_version_negotiation_for_unknown_version(pki: TestPki) -> None:
    sim = make_sim(pki)
    endpoint = sim.server.target
    header = encode_long_header(
        PacketType.INITIAL, Version.V1, bytes(8), b"c", length=1200, packet_number=0, pn_length=1
    )
    forged = bytearray(header + bytes(1199))
    forged[1:5] = (0x1A2A3A4A).to_bytes(4, "big")
    endpoint.receive_datagram(bytes(forged), CLIENT_ADDR, sim.clock.now)  # type: ignore[union-attr]
    [(packet, addr)] = endpoint.datagrams_to_send(sim.clock.now)
    parsed = parse_header(packet)
    assert addr == CLIENT_ADDR and parsed.packet_type is PacketType.VERSION_NEGOTIATION
    assert set(parsed.supported_versions) == {Version.V1, Version.V2}
    assert parsed.dcid == b"c" and parsed.scid == bytes(8)


def test_quic_v2(pki: TestPki) -> None:
    sim = make_sim(pki, client={"version": Version.V2})
    sim.handshake()
    stream_id = sim.conn.open_stream()
    data = os.urandom(300_000)
    sim.client.send(stream_id, data)
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=10)
    assert bytes(sim.server.streams[stream_id]) == data
    assert sim.server.conn.version == Version.V2


def test_anti_amplification_limit(pki: TestPki) -> None:
    delivered_to_server = 0
    sent_by_server = 0

    def count(event: TraceEvent) -> None:
        nonlocal delivered_to_server, sent_by_server
        if event.direction == "c2s" and event.kind == "delivered":
            delivered_to_server += event.size
        elif event.direction == "s2c" and event.kind == "sent":
            sent_by_server += event.size

    # Only the client's first datagram gets through, so the server never validates the address and
    # may send at most three times what it received (RFC 9000 §8.1), however often its PTO fires.
    sim = make_sim(pki, link=LinkConfig(delay=0.02, drop_filter=lambda _data, index: index > 0))
    sim.trace(count)
    sim.pair.run_for(3.0)
    assert delivered_to_server == 1200
    assert sim.server.connections and sim.server.conn.stats.pto_count > 0
    assert 1200 <= sent_by_server <= 3 * delivered_to_server


def test_datagrams(pki: TestPki) -> None:
    sim = make_sim(pki, client={"datagrams": True}, server={"datagrams": True})
    sim.handshake()
    sim.conn.send_datagram(b"unreliable hello")
    assert sim.pair.drive(
        until=lambda: any(isinstance(e, ev.DatagramReceived) for e in sim.server.events), max_time=2
    )
    got = next(e for e in sim.server.events if isinstance(e, ev.DatagramReceived))
    assert got.data == b"unreliable hello"


def test_key_update_during_transfer(pki: TestPki) -> None:
    sim = make_sim(pki)
    sim.handshake()
    sim.pair.run_for(0.1)
    stream_id = sim.conn.open_stream()
    data = os.urandom(1_000_000)
    sim.client.send(stream_id, data)
    sim.pair.run_for(0.1)
    assert sim.conn.request_key_update()
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=20)
    assert bytes(sim.server.streams[stream_id]) == data
    assert sim.conn.stats.key_updates == 1 and sim.server.conn.stats.key_updates == 1


def test_garbage_datagrams_are_ignored(pki: TestPki) -> None:
    sim = make_sim(pki)
    sim.handshake()
    for junk in (b"", b"\x00" * 50, os.urandom(1300), b"\xc0" + os.urandom(40), b"\x40" + os.urandom(60)):
        sim.server.receive_datagram(junk, CLIENT_ADDR, sim.clock.now)
        sim.client.receive_datagram(junk, SERVER_ADDR, sim.clock.now)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, b"still fine")
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=2)
    assert sim.client.terminated is None and sim.server.terminated is None


def test_alpn_mismatch_closes_with_crypto_error(pki: TestPki) -> None:
    sim = make_sim(pki, client={"alpn": ["h3"]}, server={"alpn": ["hq-interop"]})
    client_end, server_end = _terminated(sim)
    assert server_end.code == 0x100 + 120 and not server_end.by_peer  # no_application_protocol
    assert client_end.code == 0x100 + 120 and client_end.by_peer and not client_end.application


def test_untrusted_certificate_closes_with_crypto_error(pki: TestPki, tmp_path: Path) -> None:
    from rudp.testing.certs import make_test_pki

    other = make_test_pki(tmp_path / "other")
    sim = make_sim(pki, client={"cafile": other.ca_file})
    client_end, server_end = _terminated(sim)
    assert client_end.code == 0x100 + 48 and not client_end.by_peer  # unknown_ca
    assert server_end.code == 0x100 + 48 and server_end.by_peer


def test_pto_probe_carries_the_lost_tail(pki: TestPki, tmp_path: Path) -> None:
    # RFC 9002 §6.2.4: with nothing new to send, the probe re-sends the oldest unacknowledged data (and
    # its FIN), so a lost last packet is repaired by the probe itself, one round trip sooner than by a
    # PING followed by loss detection and a retransmission.
    sim, sniffer = _keyed_sim(pki, tmp_path, link=LinkConfig(delay=0.02))
    sim.pair.run_for(0.3)
    data_sends: list[float] = []

    def drop_first_copy(datagram: bytes, index: int) -> bool:
        frames = sniffer.frames(datagram) or []
        if any(isinstance(frame, Stream) and frame.stream_id == 0 for frame in frames):
            data_sends.append(sim.clock.now)
            return len(data_sends) == 1
        return False

    sim.pair.c2s.update(drop_filter=drop_first_copy)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, b"the only packet of this request", fin=True)
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=5)
    assert sim.conn.stats.pto_count >= 1
    assert len(data_sends) == 2  # the lost original, then the probe: no third copy was needed
    assert sim.clock.now == pytest.approx(data_sends[1] + 0.02, abs=1e-6)  # delivered by the probe


def test_acks_carry_ecn_counts(pki: TestPki, tmp_path: Path) -> None:
    # Issue 4: the ECN counts field is carried; issue 14: it counts the ECT(0) packets received.
    sim, sniffer = _keyed_sim(pki, tmp_path)
    acks = []

    def record(datagram: bytes, index: int) -> bool:
        acks.extend(frame for frame in sniffer.frames(datagram) or [] if isinstance(frame, Ack))
        return False

    sim.pair.c2s.update(drop_filter=record)
    sim.server.conn.ping()
    sim.pair.run_for(0.2)
    assert acks and all(ack.ecn is not None and ack.ecn[0] > 0 and ack.ecn[1:] == (0, 0) for ack in acks)
