"""ACK-only 1-RTT datagrams: the lean builder of the packet a receiver sends after a batch (issue 13).

A connection that mostly receives (the receiving end of a bulk transfer) sends, after each batch of
datagrams, one datagram holding one short-header packet with one ACK frame (ACK_ECN with the counts,
RFC 9000 §13.4.1), sometimes with a PING (RFC 9000 §13.2.4). When the general path of
:meth:`Sender._build_datagram <rudp.quic.sending.Sender>` has found that this is all there is to send
(1-RTT keys alone, no probe owed, no path frames, an ACK due, and no frame source with anything to
send: no CRYPTO, stream data, stream or flow-control frames, connection IDs, control frames or
datagrams), :class:`AckOnlyDatagrams` builds those bytes directly instead of through frame objects and
:class:`~rudp.quic.packetizer.DatagramBuilder`: the ACK frame encoded by its tracker
(:meth:`AckTracker.take_encoded_ack <rudp.quic.acks.AckTracker.take_encoded_ack>`), the PING when the
general path would add it, the header and its protection (RFC 9001 §5.3, §5.4), and the after-send
bookkeeping of ``Sender._after_datagram`` for such a datagram. A path not yet validated (whose budget
the general path keeps, RFC 9000 §8.1) or a logging qlog leaves the datagram to the general path: the
builder then builds nothing and changes nothing.
"""

from __future__ import annotations

from rudp.codec.packet import FIXED_BIT, KEY_PHASE_BIT, encode_packet_number
from rudp.crypto.protection import SAMPLE_LENGTH, SAMPLE_OFFSET, TAG_LENGTH
from rudp.quic.cids import PeerConnectionIds
from rudp.quic.liveness import Liveness
from rudp.quic.paths import Path
from rudp.quic.qlog import NullQlog
from rudp.quic.recovery import LossRecovery
from rudp.quic.sent import PacketSpace, SentPacket
from rudp.quic.spaces import PacketSpaces
from rudp.quic.stats import TrafficCounters

_APPLICATION = PacketSpace.APPLICATION  # bound once (enum member lookups are slow in 3.11)
_PING = b"\x01"  # RFC 9000 §19.2
_PAYLOAD_BEFORE_SAMPLE = SAMPLE_OFFSET + SAMPLE_LENGTH - TAG_LENGTH
"""Packet number and payload bytes a packet needs for a header-protection sample (RFC 9001 §5.4.2)."""


class AckOnlyDatagrams:
    """Builds the ACK-only 1-RTT datagram of a connection when that is all it has to send (see the
    module docstring). Owned by the sender; holds no state of its own between calls but the header
    template of the last datagram (a cache of bytes derived from the connection ID, key phase and packet
    number length it was built for)."""

    __slots__ = ("_liveness", "_peer_cids", "_qlog", "_recovery", "_spaces", "_template", "_traffic")

    def __init__(
        self,
        spaces: PacketSpaces,
        recovery: LossRecovery,
        peer_cids: PeerConnectionIds,
        liveness: Liveness,
        traffic: TrafficCounters,
        qlog: NullQlog,
    ) -> None:
        self._spaces = spaces
        self._recovery = recovery
        self._peer_cids = peer_cids
        self._liveness = liveness
        self._traffic = traffic
        self._qlog = qlog
        self._template: tuple[bytes, int, int, bytes] = (b"", -1, 0, b"")
        """(destination connection ID, key phase, packet number length, the header's first byte and
        that connection ID): the short header up to the packet number, rebuilt when one changes."""

    def build(self, now: float, path: Path, marked: bool) -> bytes | None:
        """The ACK-only datagram for the current ``path``, which the caller found to be all there is to
        send now (``marked``: the batch leaves ECT(0), RFC 9000 §13.4.2); None, having changed
        nothing, when the general path must build it."""
        if self._qlog.records or path.datagram_allowance() is not None:
            return None
        spaces = self._spaces
        state = spaces.application
        ack = state.ack
        phase = spaces.phase
        protection = phase.write
        if protection is None:
            return None
        # Read before the ACK is taken: whether it answers a flow of data (Sender.ack_only_needs_ping).
        answering = ack.answers_flow
        recovery = self._recovery
        packet_number = state.next_pn
        pn_value, pn_length = encode_packet_number(packet_number, recovery.largest_acked(_APPLICATION))
        dcid = self._peer_cids.current.cid
        taken = ack.take_encoded_ack(now)
        if taken is None:
            return None  # every range pruned: the general path decides (a PING alone, or nothing)
        payload, largest, handler = taken
        handlers = [handler]
        eliciting = False
        # RFC 9000 §13.2.4: an ACK-only packet answering a flow elicits an ACK when none of ours is in
        # flight (as Sender._write_packet: the PING's loss is answered by AckTracker.on_keepalive_delivery).
        if answering and recovery.ack_eliciting_in_flight(_APPLICATION) == 0:
            payload += _PING
            handlers.append(ack.on_keepalive_delivery)
            eliciting = True
        in_flight = eliciting
        short = _PAYLOAD_BEFORE_SAMPLE - pn_length - len(payload)
        if short > 0:
            payload += bytes(short)  # PADDING, so header protection can sample (puts it in flight)
            in_flight = True
        key_phase = phase.key_phase
        cached_dcid, cached_phase, cached_length, prefix = self._template
        if cached_dcid is not dcid or cached_phase != key_phase or cached_length != pn_length:
            # RFC 9000 §17.3.1: the first byte (fixed bit, key phase, packet number length), the DCID.
            first = FIXED_BIT | (KEY_PHASE_BIT if key_phase else 0) | (pn_length - 1)
            prefix = bytes((first,)) + dcid
            self._template = (dcid, key_phase, pn_length, prefix)
        header = prefix + pn_value.to_bytes(pn_length, "big")
        datagram = protection.protect(header, payload, packet_number, 1 + len(dcid), pn_length)
        size = len(datagram)
        # Positional (keywords cost a name match each): packet number, space, sent at, size,
        # ack-eliciting, in flight, handlers, is_crypto, largest acknowledged in its ACK.
        sent = SentPacket(
            packet_number, _APPLICATION, now, size, eliciting, in_flight, handlers, False, largest
        )
        # As Sender._advance, then Sender._after_datagram for one 1-RTT packet on the current path.
        state.advance()
        phase.on_packet_sent(packet_number)
        path.ecn.on_datagram_sent([sent], marked)
        recovery.on_packet_sent(sent)
        self._liveness.on_datagram_sent(now, ack_eliciting=eliciting)
        if in_flight:
            path.congestion.pacer.on_sent(size, now)
        path.on_datagram_sent(size)
        self._traffic.on_sent(size)
        return datagram


__all__ = ["AckOnlyDatagrams"]
