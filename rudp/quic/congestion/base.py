"""The congestion controller interface (RFC 9002 §7) and a base class with no-op defaults.

Owns :class:`CongestionController` (the :class:`typing.Protocol` that loss recovery drives) and
:class:`BaseCongestionController` (initial/minimum window, a fixed window and neutral hooks). It does
not own loss detection, bytes-in-flight accounting or pacing timers: :mod:`rudp.quic.recovery` counts
bytes in flight and passes them to :meth:`CongestionController.can_send`.

Rate-based controllers (BBR) need more than the window hooks: a delivery-rate sample per ACK (how fast
the path delivered the acknowledged data, whether the application limited it, the losses since each
packet was sent) and a pacing rate of their own. They opt in with ``uses_rate_samples = True`` and
:meth:`BaseCongestionController.on_rate_sample` (:class:`RateSampleConsumer`); loss recovery then runs a
:class:`~rudp.quic.congestion.delivery_rate.DeliveryRateEstimator` for them. The default is off, so
NewReno, CUBIC and user controllers behave (and cost) exactly as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from rudp.quic.congestion.delivery_rate import RateSample
    from rudp.quic.rtt import RttEstimator
    from rudp.quic.sent import SentPacket

K_LOSS_REDUCTION_FACTOR: Final = 0.5
"""Window multiplier on a congestion event (RFC 9002 §7.3.2, kLossReductionFactor)."""
SLOW_START_PACING_GAIN: Final = 2.0
"""N in ``rate = N * cwnd / smoothed_rtt`` (RFC 9002 §7.7) in slow start, while the window is below
half the slow start threshold: slow start doubles the window each round trip, so a pacer slower than
2 x cwnd / srtt would spread a round's data over more than a round trip (Linux's tcp_pacing_ss_ratio)."""
AVOIDANCE_PACING_GAIN: Final = 1.25
"""N in congestion avoidance, recovery and near the slow start threshold (RFC 9002 §7.7's example
value; Linux's tcp_pacing_ca_ratio is 1.2)."""


def pacing_gain_for(cwnd: int, ssthresh: int | None) -> float:
    """The pacing gain of a window-based controller in slow start (``ssthresh`` None: the initial
    one) or in congestion avoidance: 2 while ``cwnd < ssthresh / 2``, 1.25 from there on."""
    if ssthresh is None or 2 * cwnd < ssthresh:
        return SLOW_START_PACING_GAIN
    return AVOIDANCE_PACING_GAIN


def initial_window(max_datagram_size: int) -> int:
    """``min(10 * mds, max(14720, 2 * mds))`` bytes (RFC 9002 §7.2, kInitialWindow), as comparisons
    (the pacer asks it per look at its bucket; the builtins' argument parsing costs more)."""
    floor = 2 * max_datagram_size
    if floor < 14720:
        floor = 14720
    window = 10 * max_datagram_size
    return floor if floor < window else window


def newest_in_flight_sent_at(packets: list[SentPacket]) -> float | None:
    """Send time of the most recently sent in-flight packet among ``packets`` (a loss event's start,
    RFC 9002 §7.3.2), or None when none counted in flight."""
    times = [packet.sent_at for packet in packets if packet.in_flight]
    return max(times) if times else None


def minimum_window(max_datagram_size: int) -> int:
    """Two datagrams (RFC 9002 §7.2, kMinimumWindow)."""
    return 2 * max_datagram_size


@runtime_checkable
class CongestionController(Protocol):
    """What loss recovery needs from a congestion controller.

    All times are seconds on the connection's clock; all sizes are bytes of QUIC packets (header and
    AEAD tag included, UDP/IP overhead excluded). Hooks are called synchronously from the sans-IO core
    and must not block or raise.
    """

    @property
    def congestion_window(self) -> int:
        """The current congestion window in bytes."""
        ...

    def on_packet_sent(self, packet: SentPacket, now: float) -> None:
        """A packet was sent (called for every packet, in flight or not)."""
        ...

    def on_packets_acked(self, packets: list[SentPacket], now: float, rtt: RttEstimator) -> None:
        """Packets were newly acknowledged (ascending packet numbers; RTT already updated)."""
        ...

    def on_packets_lost(self, packets: list[SentPacket], now: float) -> None:
        """Packets were declared lost (RFC 9002 §6.1); may start a congestion event."""
        ...

    def on_persistent_congestion(self, now: float) -> None:
        """Persistent congestion was established (RFC 9002 §7.6); called after ``on_packets_lost``."""
        ...

    def on_ecn_ce(self, count: int, now: float) -> None:
        """The peer reported ``count`` more ECN-CE marked packets (RFC 9002 §7.1)."""
        ...

    def on_path_change(self, now: float) -> None:
        """The path changed (migration); the controller should restart (RFC 9000 §9.4)."""
        ...

    def can_send(self, bytes_in_flight: int) -> bool:
        """True if a packet may be sent, ``bytes_in_flight`` counting that packet too.

        Loss recovery passes the bytes that would be outstanding once the packet is sent. PTO probes
        are sent regardless of the answer (RFC 9002 §7.5).
        """
        ...

    def pacing_rate(self, rtt: RttEstimator) -> float | None:
        """Desired pacing rate in bytes per second, or None for no pacing preference."""
        ...

    def metrics(self) -> dict[str, float]:
        """Numbers worth logging (qlog ``metrics_updated``), e.g. ``cwnd`` and ``ssthresh``."""
        ...


class RateSampleConsumer(CongestionController, Protocol):
    """A controller that consumes delivery-rate samples (an optional extension of the interface).

    Loss recovery looks for ``uses_rate_samples`` once, when the connection starts; when it is true, it
    stamps every in-flight packet with the delivery state and calls :meth:`on_rate_sample` once per
    ACK frame (after :meth:`~CongestionController.on_packets_lost` and
    :meth:`~CongestionController.on_packets_acked`) and once per loss-detection timeout that
    declared losses. The connection reports application-limited periods to the estimator.
    """

    uses_rate_samples: bool

    def on_rate_sample(self, sample: RateSample, now: float) -> None:
        """One ACK's (or loss timeout's) delivery-rate sample, with the packets it declared lost."""
        ...


class BaseCongestionController:
    """A fixed-window controller: subclass it and override the hooks you need.

    Every hook is a no-op; the window stays at the initial window (RFC 9002 §7.2) unless a subclass
    changes :attr:`cwnd`. :meth:`can_send` compares bytes in flight (with the new packet) with the window, and
    :meth:`pacing_rate` returns None (the pacer derives a rate from cwnd/srtt by default, times
    :meth:`window_pacing_gain`).
    """

    uses_rate_samples: bool = False
    """True to receive :meth:`on_rate_sample` calls (:class:`RateSampleConsumer`); off by default."""
    uses_prr: bool = False
    """True to be driven by Proportional Rate Reduction during recovery periods (RFC 6937,
    :mod:`rudp.quic.congestion.prr`): loss recovery then lets the flight shrink to the window in
    proportion to what is delivered instead of asking :meth:`can_send`. Off by default."""
    send_hook_keeps_window: bool = False
    """True if :meth:`on_packet_sent` never moves the window (nor :meth:`congestion_window`): a packet
    train then checks the window once (``LossRecovery.train_window``). Without an override of the
    hook, it is never called and this does not matter."""

    def __init__(self, max_datagram_size: int = 1200) -> None:
        self.max_datagram_size = max_datagram_size
        self.initial_window_bytes = initial_window(max_datagram_size)
        self.minimum_window_bytes = 2 * max_datagram_size  # minimum_window(), inline (per connection)
        self.cwnd = self.initial_window_bytes

    @property
    def congestion_window(self) -> int:
        """The current congestion window in bytes."""
        return self.cwnd

    def on_packet_sent(self, packet: SentPacket, now: float) -> None:
        """No-op."""

    def on_packets_acked(self, packets: list[SentPacket], now: float, rtt: RttEstimator) -> None:
        """No-op."""

    def on_packets_lost(self, packets: list[SentPacket], now: float) -> None:
        """No-op."""

    def on_persistent_congestion(self, now: float) -> None:
        """No-op."""

    def on_ecn_ce(self, count: int, now: float) -> None:
        """No-op."""

    def on_path_change(self, now: float) -> None:
        """No-op."""

    def on_rate_sample(self, sample: RateSample, now: float) -> None:
        """No-op (only called when :attr:`uses_rate_samples` is true)."""

    def can_send(self, bytes_in_flight: int) -> bool:
        """True while ``bytes_in_flight`` (including the new packet) fits the congestion window."""
        return bytes_in_flight <= self.congestion_window

    def pacing_rate(self, rtt: RttEstimator) -> float | None:
        """None: no preference."""
        return None

    def window_pacing_gain(self) -> float:
        """N for the pacer's ``N * cwnd / smoothed_rtt`` when :meth:`pacing_rate` is None (RFC 9002
        §7.7): 1.25 here; NewReno and CUBIC raise it to 2 in slow start (:func:`pacing_gain_for`).
        Optional for controllers not derived from this class (the pacer then uses 1.25)."""
        return AVOIDANCE_PACING_GAIN

    def metrics(self) -> dict[str, float]:
        """``{"cwnd": ...}``."""
        return {"cwnd": float(self.congestion_window)}
