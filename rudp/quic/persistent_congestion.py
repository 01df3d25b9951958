"""Persistent congestion (RFC 9002 §7.6): the rule that decides it from a set of lost packets.

Owns nothing: :func:`in_persistent_congestion` is a pure function of the packets declared lost, the
space's ledger (what was acknowledged between them), the time of the first RTT sample and the duration
(:meth:`~rudp.quic.recovery.LossRecovery.persistent_congestion_duration`). Loss recovery asks it on
every loss event and acts on the answer.
"""

from __future__ import annotations

from rudp.quic.sent import SentPacket, SentPackets


def in_persistent_congestion(
    state: SentPackets, lost: list[SentPacket], first_sample_at: float | None, duration: float
) -> bool:
    """RFC 9002 §7.6.2, within the space that was acknowledged (which §7.6.2 allows).

    Two ack-eliciting lost packets, both sent after the first RTT sample (``first_sample_at``; None:
    no sample yet, never), with nothing acknowledged between them, sent further apart than
    ``duration`` seconds.
    """
    if first_sample_at is None:
        return False
    run_start: SentPacket | None = None
    previous: int | None = None
    for packet in lost:
        if packet.sent_at <= first_sample_at:
            continue
        if previous is not None and state.acked_between(previous, packet.packet_number):
            run_start = None
        previous = packet.packet_number
        if not packet.ack_eliciting:
            continue
        if run_start is None:
            run_start = packet
        elif packet.sent_at - run_start.sent_at > duration:
            return True
    return False


__all__ = ["in_persistent_congestion"]
