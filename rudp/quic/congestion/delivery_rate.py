"""Delivery-rate sampling: how fast the path delivered the data acknowledged by each ACK.

Follows draft-cheng-iccrg-delivery-rate-estimation (§3) as restated in draft-ietf-ccwg-bbr ("Delivery
Rate Samples"). Owns the connection-wide counters ``C.delivered``, ``C.delivered_time``,
``C.first_send_time``, ``C.app_limited`` and ``C.lost`` (:class:`DeliveryRateEstimator`), stamps them
into each in-flight :class:`~rudp.quic.sent.SentPacket` when it is sent, and turns the packets one ACK
acknowledged (and the losses it revealed) into one :class:`RateSample`.

It does not own the sent packets, bytes in flight or the RTT estimate (:mod:`rudp.quic.recovery` drives
it and passes them in), and it decides nothing: a rate-based controller (BBR) reads the samples.

Units: bytes and seconds on the connection's clock. Only in-flight packets are sampled (an ACK-only
packet is never acknowledged, RFC 9002 §2); packet numbers are never compared, send times are, so the
three packet number spaces share one estimator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rudp.quic.sent import SentPacket


@dataclass(slots=True)
class RateSample:
    """What one ACK (or one loss-detection timeout) says about the path (draft-cheng §3.3, BBR "rs").

    The ``prior_*``, ``tx_in_flight``, ``lost``, ``is_app_limited`` and ``rtt`` fields describe the most
    recently *sent* packet among those acknowledged (the "newest" packet P), as in the drafts.
    """

    delivery_rate: float = 0.0
    """``delivered / interval`` in bytes/s; 0.0 when no valid rate could be computed (see ``valid``)."""
    valid: bool = False
    """True when ``delivery_rate`` is meaningful: something was acknowledged and the interval was at
    least the minimum RTT (draft-cheng §3.3: shorter intervals overestimate the rate)."""
    interval: float = 0.0
    """max(send_elapsed, ack_elapsed), seconds."""
    send_elapsed: float = 0.0
    """P.send_time - P.first_send_time: how long P's flight took to send."""
    ack_elapsed: float = 0.0
    """C.delivered_time - P.delivered_time: how long the acknowledgments of that flight took."""
    delivered: int = 0
    """Bytes delivered over ``interval`` (C.delivered - P.delivered)."""
    prior_delivered: int = 0
    """C.delivered when P was sent (BBR counts round trips with it)."""
    prior_time: float = 0.0
    """C.delivered_time when P was sent."""
    is_app_limited: bool = False
    """P was sent while the application, not the congestion controller, limited the sending rate."""
    rtt: float = -1.0
    """now - P.send_time, seconds (no ack-delay correction); -1.0 when nothing was acknowledged."""
    send_time: float = 0.0
    """P.send_time."""
    tx_in_flight: int = 0
    """Bytes in flight when P was sent, P included."""
    lost: int = 0
    """Bytes declared lost between P's send and now (C.lost - P.lost)."""
    newly_acked: int = 0
    """Bytes newly acknowledged by this ACK."""
    newly_lost: int = 0
    """Bytes newly declared lost by this ACK (or timeout)."""
    lost_packets: list[SentPacket] = field(default_factory=list)
    """The packets newly declared lost, in the order they were declared."""
    delivered_total: int = 0
    """C.delivered after this ACK."""
    lost_total: int = 0
    """C.lost after this ACK."""
    bytes_in_flight: int = 0
    """Bytes in flight after this ACK (its losses and acknowledgments removed)."""


class DeliveryRateEstimator:
    """The connection's delivery counters and the per-ACK sample being built.

    Call :meth:`on_packet_sent` for each in-flight packet (after adding it to bytes in flight),
    :meth:`on_packet_acked` / :meth:`on_packet_lost` for each newly acknowledged / lost one, then
    :meth:`take_sample` once per ACK frame. :meth:`on_app_limited` marks an application-limited period.
    """

    __slots__ = (
        "_lost_packets",
        "_newest",
        "_newly_acked",
        "_newly_lost",
        "app_limited",
        "delivered",
        "delivered_time",
        "first_sent_time",
        "lost",
    )

    def __init__(self) -> None:
        self.delivered = 0
        """C.delivered: bytes acknowledged so far (in-flight packets only)."""
        self.delivered_time = 0.0
        """C.delivered_time: when ``delivered`` last grew (or when sending restarted from idle)."""
        self.first_sent_time = 0.0
        """C.first_send_time: send time of the newest packet acknowledged (start of the send interval)."""
        self.app_limited = 0
        """C.app_limited: 0, or the ``delivered`` count once which the application-limited period ends."""
        self.lost = 0
        """C.lost: bytes declared lost so far."""
        self._newest: SentPacket | None = None
        self._newly_acked = 0
        self._newly_lost = 0
        self._lost_packets: list[SentPacket] = []

    @property
    def is_app_limited(self) -> bool:
        """True while an application-limited period is in progress."""
        return self.app_limited != 0

    def on_packet_sent(self, packet: SentPacket, bytes_in_flight: int, now: float) -> None:
        """Stamp the connection's delivery state into ``packet`` (draft-cheng §3.2 "Transmitting").

        ``bytes_in_flight`` already counts ``packet``. When nothing else was in flight, the send and
        delivery intervals restart now (an idle connection must not average over its silence).
        """
        if bytes_in_flight <= packet.size_bytes:
            self.first_sent_time = now
            self.delivered_time = now
        packet.first_sent_at = self.first_sent_time
        packet.delivered_at = self.delivered_time
        packet.delivered = self.delivered
        packet.is_app_limited = self.app_limited != 0
        packet.tx_in_flight = bytes_in_flight
        packet.lost_at_send = self.lost

    def on_app_limited(self, bytes_in_flight: int) -> None:
        """The sender has nothing to send although the window allows more (draft-cheng §3.4).

        The period lasts until everything now in flight is delivered: samples of packets sent until
        then are marked application-limited, so a controller does not mistake them for the path's rate.
        """
        self.app_limited = max(self.delivered + bytes_in_flight, 1)

    def on_packet_acked(self, packet: SentPacket, now: float) -> None:
        """Count one newly acknowledged in-flight packet (draft-cheng §3.3 "UpdateRateSample")."""
        size = packet.size_bytes
        self.delivered += size
        self.delivered_time = now
        self._newly_acked += size
        newest = self._newest
        # The newest packet (latest send time) defines the sample: its flight is the most recent one.
        if newest is None or packet.sent_at >= newest.sent_at:
            self._newest = packet
            self.first_sent_time = packet.sent_at

    def on_packet_lost(self, packet: SentPacket) -> None:
        """Count one in-flight packet declared lost."""
        size = packet.size_bytes
        self.lost += size
        self._newly_lost += size
        self._lost_packets.append(packet)

    def take_sample(self, now: float, min_rtt: float, bytes_in_flight: int) -> RateSample | None:
        """The sample of everything counted since the last call (draft-cheng §3.3
        "GenerateRateSample"), or None when nothing was acknowledged or lost.

        ``min_rtt`` is the connection's minimum RTT (0.0 before any sample): intervals shorter than it
        give no rate, since ACK compression would make them overestimate it.
        """
        newest = self._newest
        if newest is None and not self._newly_lost:
            return None
        if self.app_limited and self.delivered > self.app_limited:
            self.app_limited = 0  # the application-limited flight has been delivered
        sample = RateSample(
            newly_acked=self._newly_acked,
            newly_lost=self._newly_lost,
            lost_packets=self._lost_packets,
            delivered_total=self.delivered,
            lost_total=self.lost,
            bytes_in_flight=bytes_in_flight,
        )
        self._newest = None
        self._newly_acked = self._newly_lost = 0
        self._lost_packets = []
        if newest is None:
            return sample
        sample.prior_delivered = newest.delivered
        sample.prior_time = newest.delivered_at
        sample.is_app_limited = newest.is_app_limited
        sample.send_time = newest.sent_at
        sample.rtt = now - newest.sent_at
        sample.tx_in_flight = newest.tx_in_flight
        sample.lost = self.lost - newest.lost_at_send
        sample.send_elapsed = newest.sent_at - newest.first_sent_at
        sample.ack_elapsed = self.delivered_time - newest.delivered_at
        # draft-cheng §3.3: the longer of the two phases bounds the rate (a burst sent faster than the
        # bottleneck, or ACKs compressed on the way back, would otherwise inflate it).
        sample.interval = max(sample.send_elapsed, sample.ack_elapsed)
        sample.delivered = self.delivered - newest.delivered
        if sample.interval > 0 and sample.interval >= min_rtt:
            sample.delivery_rate = sample.delivered / sample.interval
            sample.valid = True
        return sample
