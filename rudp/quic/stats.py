"""ConnectionStats: a read-only snapshot of a connection's counters and estimates; TrafficCounters: the
datagram and byte counts the connection keeps for it; RecoveryStats: loss recovery's snapshot."""

from __future__ import annotations

from dataclasses import dataclass

from rudp.quic.congestion.undo import K_PACKET_THRESHOLD, K_TIME_THRESHOLD


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    """Counters and estimates of one connection at one moment (times in seconds)."""

    smoothed_rtt: float
    """Smoothed RTT estimate (RFC 9002 §5.3)."""
    min_rtt: float
    """Minimum RTT seen."""
    latest_rtt: float
    """Most recent RTT sample."""
    congestion_window: int
    """Current congestion window in bytes."""
    bytes_in_flight: int
    """Bytes sent and neither acknowledged nor declared lost."""
    packets_sent: int
    """Packets sent (all spaces)."""
    packets_lost: int
    """Packets declared lost."""
    bytes_lost: int
    """Bytes in packets declared lost (the retransmission cost: their data is re-sent in new packets)."""
    pto_count: int
    """PTO expirations so far."""
    datagrams_sent: int
    """UDP datagrams produced."""
    datagrams_received: int
    """UDP datagrams received."""
    bytes_sent: int
    """UDP payload bytes produced."""
    bytes_received: int
    """UDP payload bytes received."""
    packets_dropped: int
    """Received packets dropped (undecryptable or undecodable)."""
    key_updates: int
    """1-RTT key updates so far (ours, requested or automatic, and the peer's)."""
    path_changes: int
    """Times the peer's address changed."""
    key_phase_packets: int = 0
    """Packets protected with the current 1-RTT key (a key update restarts the count; RFC 9001 §6.6
    caps it at the confidentiality limit, and ``Config.key_update_interval`` may lower that)."""
    forged_packets: int = 0
    """Received packets that failed authentication, all keys together (RFC 9001 §6.6: past the
    integrity limit the connection closes with AEAD_LIMIT_REACHED)."""
    send_buffered_bytes: int = 0
    """Stream bytes held for sending (unsent or unacknowledged), all streams together."""
    recv_buffered_bytes: int = 0
    """Received stream bytes not yet read by the application, all streams together."""
    persistent_congestion_count: int = 0
    """Times persistent congestion collapsed the congestion window (RFC 9002 §7.6)."""
    max_datagram_size: int = 0
    """The largest datagram sent now: the base size, or what PMTU discovery confirmed."""
    ecn_state: str = "disabled"
    """ECN validation state of the current path: testing, unknown, capable, failed or disabled."""
    ecn_marked_sent: int = 0
    """Packets sent marked ECT(0) on the current path."""
    ecn_received: tuple[int, ...] = (0, 0, 0)
    """ECT(0), ECT(1), CE counts of the packets received (all spaces: what our ACK_ECN frames report)."""
    ecn_peer_counts: tuple[int, ...] = (0, 0, 0)
    """ECT(0), ECT(1), CE counts the peer reported (all spaces, last validated ACK_ECN of each)."""
    ce_count: int = 0
    """CE marks reported by the peer and treated as congestion (RFC 9002 §7.1)."""
    datagrams_expired: int = 0
    """RFC 9221 datagrams dropped unsent: queued longer than ``Config.datagram_max_age``, or the oldest
    beyond the queue's bound (``rudp.quic.control.MAX_QUEUED_DATAGRAMS``)."""


class TrafficCounters:
    """Datagrams and bytes a connection sent and received, and packets it dropped (every datagram
    counts, whatever it carried: data, probes, CONNECTION_CLOSE)."""

    __slots__ = ("bytes_received", "bytes_sent", "datagrams_received", "datagrams_sent", "packets_dropped")

    def __init__(self) -> None:
        self.datagrams_sent = 0
        self.bytes_sent = 0
        self.datagrams_received = 0
        self.bytes_received = 0
        self.packets_dropped = 0

    def on_sent(self, size: int) -> None:
        """A datagram of ``size`` bytes left."""
        self.datagrams_sent += 1
        self.bytes_sent += size

    def on_datagrams_sent(self, count: int, size: int) -> None:
        """``count`` datagrams of ``size`` bytes in all left (a packet train)."""
        self.datagrams_sent += count
        self.bytes_sent += size

    def on_received(self, size: int) -> None:
        """A datagram of ``size`` bytes arrived."""
        self.datagrams_received += 1
        self.bytes_received += size

    def on_datagrams_received(self, count: int, size: int) -> None:
        """``count`` datagrams of ``size`` bytes in all arrived (one receive batch)."""
        self.datagrams_received += count
        self.bytes_received += size

    def on_dropped(self) -> None:
        """A packet was dropped (undecryptable, undecodable header, or not allowed here)."""
        self.packets_dropped += 1


@dataclass(frozen=True, slots=True)
class RecoveryStats:
    """A snapshot of loss-recovery counters and estimates."""

    packets_sent: int
    """Packets handed to :meth:`LossRecovery.on_packet_sent`."""
    bytes_sent: int
    """Their total size."""
    packets_acked: int
    """Packets newly acknowledged."""
    packets_lost: int
    """Packets declared lost (excluding those dropped with a discarded space)."""
    bytes_lost: int
    """Their total size."""
    pto_count: int
    """Consecutive PTOs without an acknowledgment (the current backoff exponent)."""
    total_ptos: int
    """PTO expirations since the start."""
    persistent_congestion_count: int
    """Times persistent congestion was established."""
    latest_rtt: float
    """Seconds."""
    smoothed_rtt: float
    """Seconds."""
    rttvar: float
    """Seconds."""
    min_rtt: float
    """Seconds (0.0 before the first sample)."""
    congestion_window: int
    """Bytes."""
    bytes_in_flight: int
    """Bytes."""
    spurious_losses: int = 0
    """Packets declared lost and acknowledged afterwards (reordering, not loss)."""
    undone_events: int = 0
    """Congestion events undone because all their losses proved spurious."""
    packet_threshold: int = K_PACKET_THRESHOLD
    """The packet reordering threshold now (RFC 9002 §6.1.1, widened by spurious losses)."""
    time_threshold: float = K_TIME_THRESHOLD
    """The time threshold now, a multiple of the RTT (RFC 9002 §6.1.2, widened by spurious losses)."""
