"""The ACK frequency extension (draft-ietf-quic-ack-frequency) between two rudp endpoints, against
aioquic (which does not support it), under loss, and the receiver's checks on the frames.

Counted, not timed: ACK-only datagrams the receiver sends per data datagram it receives, on the
simulator (virtual clock).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from aioquic.quic.configuration import QuicConfiguration

from rudp.codec import frames as f
from rudp.codec.codes import FrameType, PacketType
from rudp.codec.frame_codec import encode_frames
from rudp.errors import TransportErrorCode
from rudp.quic.ack_frequency import MAX_THRESHOLD, RATE_SAMPLING_MAX_THRESHOLD, AckFrequency
from rudp.quic.acks import AckTracker
from rudp.quic.sent import PacketSpace
from rudp.quic.state import State
from rudp.testing import LinkConfig, Pair
from rudp.testing.certs import TestPki
from tests.support.peers import AioquicPeer, RudpPeer
from tests.support.sim import CLIENT_ADDR, SERVER_ADDR, make_sim
from tests.support.stages import stage

PV = TransportErrorCode.PROTOCOL_VIOLATION
BODY = bytes(range(256)) * 4096  # 1 MiB


def _upload(
    pki: TestPki, *, client: dict[str, object], server: dict[str, object], link: LinkConfig
) -> tuple[float, RudpPeer, RudpPeer]:
    """Upload BODY from a rudp client to a rudp server; return (datagrams the server sent per datagram
    it received during the transfer, client, server)."""
    common = {"max_datagram_size": 1452, "pmtu_discovery": False}
    sim = make_sim(pki, link=link, client={**common, **client}, server={**common, **server})
    sim.handshake()
    sid = sim.conn.open_stream()
    c2s, s2c = sim.pair.c2s.stats, sim.pair.s2c.stats
    sent_before, acks_before = c2s.sent, s2c.sent
    sim.client.send(sid, BODY, fin=True)
    assert sim.pair.drive(until=lambda: sid in sim.server.finished, max_time=120)
    assert hashlib.sha256(sim.server.streams[sid]).digest() == hashlib.sha256(BODY).digest()
    return (s2c.sent - acks_before) / (c2s.sent - sent_before), sim.client, sim.server


def test_negotiated_between_rudp_endpoints_cuts_acks(pki: TestPki) -> None:
    link = LinkConfig(delay=0.01, bandwidth=100e6)
    ratio_on, client, server = _upload(pki, client={}, server={}, link=link)
    ratio_off, _, _ = _upload(pki, client={"ack_frequency": False}, server={}, link=link)
    # RFC 9000 §13.2.2 alone: an ACK every second packet. Negotiated: the sender asked for one per
    # eighth of its window, up to every MAX_THRESHOLD + 1 packets.
    assert 0.45 <= ratio_off <= 0.55
    assert ratio_on < 0.2
    requested = client.conn._receiver._ack_frequency.requested
    assert requested is not None and 1 < requested.ack_eliciting_threshold <= MAX_THRESHOLD
    tracker = server.conn._spaces.application.ack
    assert tracker.ack_eliciting_threshold == requested.ack_eliciting_threshold
    assert tracker.reordering_threshold == 1


def test_only_one_side_announcing_means_no_ack_frequency(pki: TestPki) -> None:
    link = LinkConfig(delay=0.01, bandwidth=100e6)
    ratio, client, server = _upload(pki, client={}, server={"ack_frequency": False}, link=link)
    assert client.conn._receiver._ack_frequency.requested is None  # the server did not announce it
    assert server.conn._spaces.application.ack.ack_eliciting_threshold == 1
    assert 0.45 <= ratio <= 0.55


def test_loss_recovery_with_sparse_acks(pki: TestPki) -> None:
    # 2 % random loss both ways: every lost packet is recovered (the body arrives intact), and the
    # gaps still bring immediate ACKs (reordering threshold 1), so losses are detected by packet
    # threshold rather than only by PTO.
    link = LinkConfig(delay=0.01, bandwidth=50e6, loss=0.02, seed=7)
    ratio, client, _ = _upload(pki, client={}, server={}, link=link)
    stats = client.conn.stats
    assert stats.packets_lost > 0
    assert stats.pto_count < stats.packets_lost  # most losses found by the ACKs, not by timeouts
    assert client.conn._receiver._ack_frequency.requested is not None
    assert ratio < 0.5


@pytest.mark.parametrize("rudp_is_client", [True, False])
def test_aioquic_peer_without_the_extension(pki: TestPki, rudp_is_client: bool) -> None:
    """aioquic ignores min_ack_delay; rudp never sends it ACK_FREQUENCY (it would be an unknown frame)."""
    from rudp.config import Config
    from rudp.quic.connection import QuicConnection
    from rudp.quic.endpoint import QuicEndpoint

    common = {"max_datagram_size": 1452, "pmtu_discovery": False}
    if rudp_is_client:
        config = Config(cafile=pki.ca_file, server_name="localhost", alpn=["hq-interop"], **common)
        conn = QuicConnection.client(config, server_address=SERVER_ADDR, now=0.0)
        rudp_peer = RudpPeer(conn)
        aio_config = QuicConfiguration(is_client=False, alpn_protocols=["hq-interop"])
        aio_config.load_cert_chain(pki.cert_file, pki.key_file)
        aio = AioquicPeer(aio_config)
        pair = Pair(rudp_peer, aio, client_addr=CLIENT_ADDR, server_addr=SERVER_ADDR,
                    c2s=LinkConfig(delay=0.01), s2c=LinkConfig(delay=0.01))
    else:
        config = Config(certfile=pki.cert_file, keyfile=pki.key_file, alpn=["hq-interop"], **common)
        endpoint = QuicEndpoint(config, tls_config=config.tls_config(is_client=False))
        rudp_peer = RudpPeer(endpoint)
        aio_config = QuicConfiguration(is_client=True, alpn_protocols=["hq-interop"], server_name="localhost")
        aio_config.load_verify_locations(pki.ca_file)
        aio = AioquicPeer(aio_config)
        pair = Pair(aio, rudp_peer, client_addr=CLIENT_ADDR, server_addr=SERVER_ADDR,
                    c2s=LinkConfig(delay=0.01), s2c=LinkConfig(delay=0.01))
        aio.connect(SERVER_ADDR, 0.0)
    assert pair.drive(until=lambda: rudp_peer.handshake is not None, max_time=10)
    conn = rudp_peer.conn
    sid = conn.open_stream()
    rudp_peer.send(sid, BODY, fin=True)
    assert pair.drive(until=lambda: sid in aio.finished, max_time=60)
    assert bytes(aio.streams[sid]) == BODY
    assert conn._receiver._ack_frequency.requested is None
    assert conn.close_cause is None and aio.terminated is None


# -- the receiver's checks (draft-ietf-quic-ack-frequency §3, §4) ---------------------------------------


def test_ack_frequency_without_our_min_ack_delay_is_protocol_violation(pki: TestPki, tmp_path: Path) -> None:
    staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=False, server={"ack_frequency": False})
    staged.inject(encode_frames([f.AckFrequency(0, 3, 25_000, 1)]))
    cause = staged.target.close_cause
    assert cause is not None and (cause.code, cause.frame_type) == (PV, FrameType.ACK_FREQUENCY)
    assert staged.target.state is State.CLOSING


@pytest.mark.parametrize("delay", [999, (1 << 14) * 1000])
def test_ack_frequency_delay_out_of_bounds(pki: TestPki, tmp_path: Path, delay: int) -> None:
    # Our min_ack_delay is the 1 ms timer granularity; 2^14 ms is not a valid max_ack_delay.
    staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=True)
    staged.inject(encode_frames([f.AckFrequency(0, 3, delay, 1)]))
    cause = staged.target.close_cause
    assert cause is not None and (cause.code, cause.frame_type) == (PV, FrameType.ACK_FREQUENCY)


def test_older_ack_frequency_is_ignored(pki: TestPki, tmp_path: Path) -> None:
    staged = stage(pki, tmp_path, PacketType.ONE_RTT, client_target=False)
    tracker = staged.target._spaces.application.ack
    staged.inject(encode_frames([f.AckFrequency(5, 7, 20_000, 0)]))
    staged.inject(encode_frames([f.AckFrequency(4, 2, 2_000, 1)]))  # reordered: older
    def asked() -> tuple[int, float, int]:
        return tracker.ack_eliciting_threshold, tracker.max_ack_delay, tracker.reordering_threshold

    assert asked() == (7, 0.02, 0)
    staged.inject(encode_frames([f.AckFrequency(6, 2, 2_000, 3)]))
    assert asked() == (2, 0.002, 3)
    assert staged.target.close_cause is None


# -- the tracker honouring a request (draft-ietf-quic-ack-frequency §6) -----------------------------------


def _tracker(threshold: int, reordering: int) -> AckTracker:
    tracker = AckTracker(PacketSpace.APPLICATION)
    tracker.configure(threshold=threshold, max_ack_delay=0.01, reordering_threshold=reordering)
    return tracker


def test_threshold_counts_ack_eliciting_packets() -> None:
    tracker = _tracker(4, 1)
    for pn in range(4):
        tracker.on_packet_received(pn, ack_eliciting=True, now=1.0)
        assert not tracker.ack_needed(1.0)
    assert tracker.ack_needed(1.01)  # max_ack_delay as requested
    tracker.on_packet_received(4, ack_eliciting=True, now=1.0)
    assert tracker.ack_needed(1.0)  # more than the threshold


def test_immediate_request_and_reordering_thresholds() -> None:
    tracker = _tracker(9, 1)
    tracker.on_packet_received(0, ack_eliciting=True, now=1.0)
    tracker.on_packet_received(2, ack_eliciting=True, now=1.0)  # a gap: RFC 9000 §13.2.1
    assert tracker.ack_needed(1.0)
    ignoring = _tracker(9, 0)
    ignoring.on_packet_received(0, ack_eliciting=True, now=1.0)
    ignoring.on_packet_received(5, ack_eliciting=True, now=1.0)
    assert not ignoring.ack_needed(1.0)  # threshold 0: reordering alone never hurries an ACK
    ignoring.on_packet_received(6, ack_eliciting=True, now=1.0, immediate=True)  # IMMEDIATE_ACK / PING
    assert ignoring.ack_needed(1.0)
    three = _tracker(9, 3)
    for pn in (0, 2, 3):
        three.on_packet_received(pn, ack_eliciting=True, now=1.0)
        assert not three.ack_needed(1.0)  # packet 1 missing, but fewer than 3 above it
    three.on_packet_received(4, ack_eliciting=True, now=1.0)
    assert three.ack_needed(1.0)
    three.on_ack_sent(1.0)
    three.on_packet_received(5, ack_eliciting=True, now=1.0)
    assert not three.ack_needed(1.0)  # the hole was reported already


def test_policy_follows_the_congestion_window() -> None:
    sent: list[f.AckFrequency] = []
    policy = AckFrequency(1000, sent.append)
    args: dict[str, Any] = {
        "max_datagram_size": 1000, "smoothed_rtt": 0.04, "peer_min_ack_delay": 1000, "peer_max_ack_delay": 25
    }
    policy.update(congestion_window=12_000, now=0.0, **args)
    assert sent == []  # 12 packets: an ACK every second packet is what the peer does already
    policy.update(congestion_window=64_000, now=0.1, **args)
    assert sent[-1] == f.AckFrequency(0, 7, 10_000, 1)  # 64/8 packets per ACK, RTT/4
    policy.update(congestion_window=80_000, now=0.15, **args)
    assert len(sent) == 1  # not different enough
    policy.update(congestion_window=10_000_000, now=0.13, **args)
    assert len(sent) == 1  # not within one RTT of the last
    policy.update(congestion_window=10_000_000, now=0.3, **args)
    assert sent[-1] == f.AckFrequency(1, MAX_THRESHOLD, 10_000, 1)
    policy.update(congestion_window=16_000, now=0.4, **{**args, "peer_min_ack_delay": None})
    assert len(sent) == 2  # a peer that did not announce min_ack_delay gets no frame


def test_policy_keeps_acks_dense_for_a_rate_sampling_controller() -> None:
    """BBR's estimate is the best delivery-rate sample of a round: it never asks for fewer than one ACK
    per RATE_SAMPLING_MAX_THRESHOLD + 1 packets, however large the window."""
    sent: list[f.AckFrequency] = []
    policy = AckFrequency(1000, sent.append)
    args: dict[str, Any] = {
        "max_datagram_size": 1000, "smoothed_rtt": 0.04, "peer_min_ack_delay": 1000, "peer_max_ack_delay": 25
    }
    policy.update(congestion_window=10_000_000, now=0.0, rate_sampling=True, **args)
    assert sent == [f.AckFrequency(0, RATE_SAMPLING_MAX_THRESHOLD, 10_000, 1)]
    assert RATE_SAMPLING_MAX_THRESHOLD < MAX_THRESHOLD
    policy.update(congestion_window=10_000_000, now=1.0, rate_sampling=False, **args)
    assert sent[-1].ack_eliciting_threshold == MAX_THRESHOLD  # a window-based controller: sparse ACKs


def test_bbr_sender_asks_for_an_ack_every_few_packets(pki: TestPki) -> None:
    """End to end: a BBR sender's ACK_FREQUENCY frames never ask for a threshold above the limit."""
    link = LinkConfig(delay=0.01, bandwidth=100e6)
    ratio, client, server = _upload(pki, client={"congestion": "bbr"}, server={}, link=link)
    requested = client.conn._receiver._ack_frequency.requested
    assert requested is not None and 1 < requested.ack_eliciting_threshold <= RATE_SAMPLING_MAX_THRESHOLD
    assert server.conn._spaces.application.ack.ack_eliciting_threshold == requested.ack_eliciting_threshold
    assert 0.2 <= ratio < 0.45  # sparser than every second packet, denser than CUBIC's one per 16
