"""What a handshake's PTO probes carry besides the fired space's own data (RFC 9002 §6.2.4).

:func:`owe_coalesced_probes`: a PTO in one handshake space probes the other handshake space too when
that one has ack-eliciting data in flight, in the same datagrams (RFC 9002 §6.2.4 "SHOULD").

Why: a server's PTO fires in the Initial space first (its ServerHello and its Handshake flight go at
the same instant), and its probes carried the ServerHello alone. A client that got one gained
Handshake keys but nothing to use them on, and the Handshake data waited for a PTO of its own,
seconds later under loss (the PTO of a first RTT sample from a late ACK, ~3 s). Of 10,000 handshakes
at 30 % loss each way (``benchmarks/handshake_deadline.py``), 2 never completed and 20 more ended on
the client's 10 s silence rule; with coalesced probes none (p99 9.0 -> 4.0 s).
"""

from __future__ import annotations

from typing import Final

from rudp.quic.recovery import LossRecovery
from rudp.quic.sent import PacketSpace
from rudp.quic.spaces import PacketNumberSpace, PacketSpaces

_HANDSHAKE_SPACES: Final = (PacketSpace.INITIAL, PacketSpace.HANDSHAKE)


def owe_coalesced_probes(
    spaces: PacketSpaces, recovery: LossRecovery, fired: PacketNumberSpace, count: int
) -> None:
    """The PTO fired in the handshake space ``fired``, which now owes ``count`` probes: they carry
    its unacknowledged CRYPTO data, and the other handshake space with ack-eliciting data in flight
    probes as many times, coalesced into the same datagrams (RFC 9002 §6.2.4: "particularly valuable
    when the server has both Initial and Handshake data in flight")."""
    fired.crypto_send.requeue_unacked()
    for space_id in _HANDSHAKE_SPACES:
        if space_id is fired.id or not recovery.ack_eliciting_in_flight(space_id):
            continue
        state = spaces.get(space_id)
        if state is not None and state.keys.write is not None:
            state.owe_probes(max(state.probes, count))
            state.crypto_send.requeue_unacked()
