"""The ACK frequency extension (draft-ietf-quic-ack-frequency): both halves of one connection's use.

Owns :class:`AckFrequency`:

* the receive half: whether we announced min_ack_delay (and so take ACK_FREQUENCY frames, §3), the
  checks on each frame (§4: PROTOCOL_VIOLATION without our min_ack_delay or below it; frames not above
  the largest sequence number seen are ignored). The ACK tracker of the Application space applies what
  a frame asks (:meth:`~rudp.quic.acks.AckTracker.configure`).
* the send half: when the peer announced min_ack_delay too, what to ask of it as the congestion window
  changes. RFC 9000 §13.2.2 acknowledges every second packet; a sender with a window of many packets
  needs far fewer ACKs to keep its clock (quinn, quiche and picoquic ask for about one per eighth of a
  window). We ask for an ACK after every ``cwnd / 8`` packets (at least 2, at most
  :data:`MAX_THRESHOLD` + 1), within a quarter of the smoothed RTT (no less than the peer's
  min_ack_delay, no more than its max_ack_delay, so our PTO, which counts the peer's max_ack_delay,
  stays valid), and an immediate ACK on any reordering (threshold 1, RFC 9000 §13.2.1's behaviour:
  loss is noticed as soon as without the extension). A new frame goes out when the wish halves or
  doubles, at most once per smoothed RTT.

Sending the frame (and re-sending a lost one that is still the latest) is
:class:`~rudp.quic.control.ControlFrames`' job; this module only decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from rudp.codec.codes import FrameType
from rudp.codec.frames import AckFrequency as AckFrequencyFrame
from rudp.errors import TransportError, TransportErrorCode

MAX_THRESHOLD: Final = 15
"""The largest Ack-Eliciting Threshold we ask for: an ACK at least every 16 packets."""
RATE_SAMPLING_MAX_THRESHOLD: Final = 3
"""The largest threshold we ask for while our controller consumes delivery-rate samples (BBR): an ACK
at least every 4 packets. BBR's bandwidth estimate is the largest delivery-rate sample of a round, and
its loss response (draft-ietf-ccwg-bbr) cuts its short-term bound to the round's best sample: with an
ACK per 16 packets a round gave ~5 samples and the estimate fell (on the simulator at 1 % random
loss, 20 Mbit/s, 40 ms: 83 % of the link with ACK frequency off, 69-70 % with 15, 80 % with 7, 84 %
with 3)."""
PACKETS_PER_ACK_DIVISOR: Final = 8
"""We ask for one ACK per this fraction of the congestion window (in packets)."""
MAX_REQUEST_DELAY_US: Final = (1 << 14) * 1000
"""A Requested Max Ack Delay at or above 2^14 ms is refused, as max_ack_delay is (RFC 9000 §18.2)."""

_PV = TransportErrorCode.PROTOCOL_VIOLATION


class AckFrequency:
    """Negotiation, validation and the sender's policy (see the module docstring)."""

    __slots__ = (
        "_largest_sequence", "_last_sent_at", "_next_sequence", "_send", "local_min_ack_delay", "requested"
    )

    def __init__(self, local_min_ack_delay: int | None, send: Callable[[AckFrequencyFrame], None]) -> None:
        self.local_min_ack_delay = local_min_ack_delay
        """Our min_ack_delay transport parameter in microseconds; None: not announced."""
        self._send = send
        self._largest_sequence = -1
        self._next_sequence = 0
        self._last_sent_at: float | None = None
        self.requested: AckFrequencyFrame | None = None
        """The last ACK_FREQUENCY frame we sent (what we asked the peer for)."""

    # -- receive half ---------------------------------------------------------------------------------

    def accept(self, frame: AckFrequencyFrame) -> bool:
        """Check a received ACK_FREQUENCY frame; True if it is newer than every one before (apply it).

        Raises:
            TransportError: PROTOCOL_VIOLATION when we did not announce min_ack_delay (§3), or the
                requested delay is below it (§4) or not a valid max_ack_delay (RFC 9000 §18.2).
        """
        local = self.local_min_ack_delay
        frame_type = FrameType.ACK_FREQUENCY
        if local is None:
            raise TransportError(_PV, "ACK_FREQUENCY without our min_ack_delay", frame_type)
        if frame.request_max_ack_delay < local:
            raise TransportError(_PV, "ACK_FREQUENCY asks for less than our min_ack_delay", frame_type)
        if frame.request_max_ack_delay >= MAX_REQUEST_DELAY_US:
            raise TransportError(_PV, "ACK_FREQUENCY asks for a delay of 2^14 ms or more", frame_type)
        if frame.sequence <= self._largest_sequence:
            return False  # §4: an older (reordered) frame changes nothing
        self._largest_sequence = frame.sequence
        return True

    # -- send half ------------------------------------------------------------------------------------

    def resting(self, now: float, smoothed_rtt: float) -> bool:
        """True when :meth:`update` would change nothing at ``now`` whatever the window: a request went
        out less than a smoothed RTT ago (the caller may skip gathering its arguments, per ACK)."""
        last_sent_at = self._last_sent_at
        return self.requested is not None and last_sent_at is not None and now - last_sent_at < smoothed_rtt

    def update(
        self,
        *,
        congestion_window: int,
        max_datagram_size: int,
        smoothed_rtt: float,
        peer_min_ack_delay: int | None,
        peer_max_ack_delay: int,
        now: float,
        rate_sampling: bool = False,
    ) -> None:
        """After an ACK moved the congestion window: ask the peer for a new ACK frequency if ours changed
        enough (``peer_min_ack_delay`` in microseconds, None when the peer did not announce it and so
        takes no ACK_FREQUENCY; ``peer_max_ack_delay`` in milliseconds, its transport parameter;
        ``rate_sampling``: our controller consumes delivery-rate samples, see
        :data:`RATE_SAMPLING_MAX_THRESHOLD`)."""
        if self.local_min_ack_delay is None or peer_min_ack_delay is None:
            return
        last = self.requested
        if last is not None and self._last_sent_at is not None and now - self._last_sent_at < smoothed_rtt:
            return
        packets = congestion_window // max(1, max_datagram_size)
        limit = RATE_SAMPLING_MAX_THRESHOLD if rate_sampling else MAX_THRESHOLD
        threshold = max(1, min(limit, packets // PACKETS_PER_ACK_DIVISOR - 1))
        ceiling = peer_max_ack_delay * 1000
        delay = min(ceiling, max(peer_min_ack_delay, round(smoothed_rtt * 250_000)))
        if last is not None:
            old_threshold, old_delay = last.ack_eliciting_threshold, last.request_max_ack_delay
            if not (_halved_or_doubled(old_threshold, threshold) or _halved_or_doubled(old_delay, delay)):
                return
        elif threshold == 1:
            return  # the peer acknowledges every second packet already (RFC 9000 §13.2.2)
        frame = AckFrequencyFrame(self._next_sequence, threshold, delay, 1)
        self._next_sequence += 1
        self.requested = frame
        self._last_sent_at = now
        self._send(frame)


def _halved_or_doubled(old: int, new: int) -> bool:
    return new >= 2 * old or 2 * new <= old
