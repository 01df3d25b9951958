"""Receiving: datagram → packets → unprotect → dedup → frame dispatch (RFC 9000 §12, §13; RFC 9001 §5).

Owns the receive path of :class:`~rudp.quic.connection.QuicConnection`: coalesced packets, keys per
level and key phase, Retry and Version Negotiation on the client, address changes, and one handler per
frame kind. Protocol violations raise :class:`~rudp.errors.TransportError`, turned into a
CONNECTION_CLOSE at :meth:`ReceiveMixin._receive_datagram`, the single place that converts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from rudp.codec import frames as f
from rudp.codec.codes import PacketType
from rudp.codec.frame_codec import parse_frames
from rudp.codec.packet import PacketHeader, iter_packets
from rudp.crypto.protection import AUTHENTICATION_FAILED, DecryptFailed, UnprotectedPacket
from rudp.crypto.retry import verify_retry_integrity
from rudp.errors import DecodeError, TransportError, TransportErrorCode
from rudp.quic.events import ConnectionTerminated, DatagramReceived
from rudp.quic.handshake import HandshakeMixin
from rudp.quic.paths import Address, Path
from rudp.quic.sent import PacketSpace
from rudp.quic.spaces import LEVEL_OF_TYPE, SPACE_OF_LEVEL, TYPE_OF_LEVEL
from rudp.quic.state import State
from rudp.tls.engine import EncryptionLevel

_PV = TransportErrorCode.PROTOCOL_VIOLATION
MAX_PENDING_PACKETS = 16

PROBING_FRAMES: Final = frozenset({f.PathChallenge, f.PathResponse, f.NewConnectionId, f.Padding})
"""Frames of a probing packet (RFC 9000 §9.1): such a packet does not move us to its address."""
NOT_ACK_ELICITING: Final = frozenset({f.Ack, f.Padding, f.ConnectionClose})
"""Frames that do not make a packet ack-eliciting (RFC 9000 §13.2.1)."""


@dataclass(slots=True)
class Inbound:
    """One authenticated packet while its frames are handed out: where it came from, and what its
    frames asked of the receiver (filled in by the route handlers)."""

    header: PacketHeader
    level: EncryptionLevel
    space: PacketSpace
    path: Path
    """The path it arrived on (a PATH_CHALLENGE is answered there, RFC 9000 §8.2.2)."""
    now: float
    ack_eliciting: bool = False
    probing: bool = True
    """Only probing frames so far (RFC 9000 §9.1)."""
    ping: bool = False
    """It carried a PING: acknowledge at once (the peer is probing or measuring)."""
    closed: bool = False
    """It carried CONNECTION_CLOSE: stop handling frames."""


class ReceiveMixin(HandshakeMixin):
    """The receive side of :class:`~rudp.quic.connection.QuicConnection`."""

    def _receive_datagram(self, data: bytes, addr: Address, now: float, ecn: int = 0) -> None:
        """Process one datagram (the body of ``QuicConnection.receive_datagram``); ``ecn`` is the ECN
        codepoint of its IP header, counted once for each QUIC packet it carries (RFC 9000 §13.4.1)."""
        if self._state in (State.CLOSED, State.DRAINING):
            return
        self._traffic.on_received(len(data))
        if self._state is State.CLOSING:
            self._receive_while_closing(data, now)
            return
        path = self._paths.get(addr)
        if path is not None:
            path.on_datagram_received(len(data))
        packets = iter_packets(data, short_dcid_length=self._config.connection_id_length)
        try:
            while True:
                try:
                    header = next(packets)
                except StopIteration:
                    break
                except DecodeError:
                    # An undecodable header (not yet authenticated): drop the rest of the datagram.
                    self._traffic.on_dropped()
                    break
                # Errors in an authenticated packet (malformed frames included) close the connection.
                self._receive_packet(data, header, addr, now, ecn)
                if not self._is_active():
                    return
            self._replay_pending(now)
        except TransportError as exc:
            self._on_local_error(exc, now)

    def _receive_while_closing(self, data: bytes, now: float) -> None:
        # RFC 9000 §10.2.1: answer with CONNECTION_CLOSE, but rate-limited (backoff doubles each time).
        self._closing.on_datagram_received()

    def _receive_packet(
        self, data: bytes, header: PacketHeader, addr: Address, now: float, ecn: int = 0
    ) -> None:
        if header.is_long and header.version != self.version:
            if header.packet_type is PacketType.VERSION_NEGOTIATION:
                self._on_version_negotiation(header, now)
            return
        if header.packet_type is PacketType.RETRY:
            self._on_retry(data, header)
            return
        if header.packet_type is None or header.packet_type is PacketType.VERSION_NEGOTIATION:
            return
        if header.packet_type is PacketType.ZERO_RTT and self.is_client:
            # RFC 9000 §17.2.3: 0-RTT carries early data from client to server. A client has no 0-RTT
            # read keys and must not hold such packets waiting for some.
            self._traffic.on_dropped()
            return
        level = LEVEL_OF_TYPE[header.packet_type]
        protection = self._keys.read.get(level)
        packet = memoryview(data)[header.start : header.end]
        if protection is None:
            if len(self._pending_packets) < MAX_PENDING_PACKETS and level != EncryptionLevel.INITIAL:
                self._pending_packets.append((bytes(packet), addr, now, ecn))
            return
        space = SPACE_OF_LEVEL[level]
        tracker = self._spaces[space].ack  # keys in use: the space is there
        expected = 0 if tracker.largest_received is None else tracker.largest_received + 1
        result = protection.unprotect(packet, header.pn_offset - header.start, expected)
        if level == EncryptionLevel.APPLICATION:
            result = self._check_key_phase(result, packet, header.pn_offset - header.start, expected, now)
        if isinstance(result, DecryptFailed):
            if not header.is_long and self._peer_cids.is_stateless_reset(data):
                self._terminate(
                    ConnectionTerminated(0, "stateless reset", True, False), now, state=State.DRAINING
                )
                return
            self._traffic.on_dropped()
            if result is AUTHENTICATION_FAILED:
                self._keys.usage.on_forged(level)  # RFC 9001 §6.6: may close (AEAD_LIMIT_REACHED)
            return
        # RFC 9000 §17.2, §17.3.1: reserved bits must be zero once header protection is removed.
        if result.first_byte & (0x0C if header.is_long else 0x18):
            raise TransportError(_PV, "reserved header bits are not zero")
        if tracker.is_duplicate(result.packet_number):
            return
        self._qlog.packet_received(
            header.packet_type, result.packet_number, result.payload, header.end - header.start, now
        )
        self._on_authenticated_packet(header, level, addr, now)
        paths = self._paths
        path = paths.current
        if addr != path.address and self._state is State.ESTABLISHED:
            path = paths.on_authenticated(addr, len(data))
        largest_before = tracker.largest_received
        inbound = self._dispatch_frames(header, level, result, path, now)
        tracker.on_packet_received(
            result.packet_number, ack_eliciting=inbound.ack_eliciting, now=now, immediate=inbound.ping
        )
        if ecn:
            # RFC 9000 §13.4.1: count each processed (authenticated, non-duplicate) packet in its space.
            counts = self._ecn_feedback.on_packet_received(space, ecn)
            if counts is not None and space in self._spaces:
                tracker.ecn_counts = counts
        self._liveness.on_packet_received(now)
        if (
            path is not paths.current
            and not inbound.probing
            and (largest_before is None or result.packet_number > largest_before)
            and self._state is State.ESTABLISHED
            and not self.is_client
        ):
            # RFC 9000 §9.3: only the highest-numbered non-probing packet moves us to the peer's new
            # address (a reordered older packet, or a peer's probe, does not).
            self._on_peer_moved(path, now)

    def _check_key_phase(
        self,
        result: UnprotectedPacket | DecryptFailed,
        packet: memoryview,
        pn_offset: int,
        expected: int,
        now: float,
    ) -> UnprotectedPacket | DecryptFailed:
        keys = self._keys
        if isinstance(result, UnprotectedPacket):
            if result.key_phase != keys.key_phase:
                raise TransportError(TransportErrorCode.KEY_UPDATE_ERROR, "key phase bit does not match keys")
            return result
        # RFC 9001 §6.3: a packet with the other key phase is either from the next generation (the peer
        # updated) or a late packet from the previous one.
        if keys.previous_read is not None:
            late = keys.previous_read.unprotect(packet, pn_offset, expected)
            if isinstance(late, UnprotectedPacket):
                return late
        if keys.next_read is not None:
            updated = keys.next_read.unprotect(packet, pn_offset, expected)
            if isinstance(updated, UnprotectedPacket):
                keys.on_peer_update(now + 3 * self._pto())
                return updated
        return result

    def _on_authenticated_packet(
        self, header: PacketHeader, level: EncryptionLevel, addr: Address, now: float
    ) -> None:
        if self.is_client and header.is_long and self._peer_initial_scid is None:
            # RFC 9000 §7.2: the client switches to the server's chosen CID.
            self._peer_initial_scid = header.scid
            self._peer_cids.set_initial(header.scid)
        if level == EncryptionLevel.HANDSHAKE and not self.is_client:
            # RFC 9001 §4.9.1: a server discards Initial keys on its first Handshake packet, which also
            # validates the client's address (RFC 9000 §8.1).
            self._paths.current.mark_validated()
            self._discard_level(EncryptionLevel.INITIAL)

    def _dispatch_frames(
        self, header: PacketHeader, level: EncryptionLevel, packet: UnprotectedPacket, path: Path, now: float
    ) -> Inbound:
        """Hand every frame of a packet to its owner through :data:`ROUTES` (RFC 9000 §12.4)."""
        # RFC 9000 §12.4, §12.5: the frames allowed depend on the packet type, which is the level's.
        # (PacketType.INITIAL is IntEnum 0: never test a packet type or a level for truth.)
        inbound = Inbound(header, level, SPACE_OF_LEVEL[level], path, now)
        for _, frame in parse_frames(packet.payload, TYPE_OF_LEVEL[level]):
            kind = type(frame)
            route = ROUTES.get(kind)
            if route is None:
                raise TransportError(_PV, f"unhandled frame {kind.__name__}")
            if kind not in PROBING_FRAMES:
                inbound.probing = False
            if kind not in NOT_ACK_ELICITING:
                inbound.ack_eliciting = True
            route(self, frame, inbound)
            if inbound.closed:
                inbound.ack_eliciting = False
                break
        return inbound

    # -- the frames the connection itself answers for --------------------------------------------

    def _on_ack_frame(self, frame: f.Ack, inbound: Inbound) -> None:
        self._on_ack(inbound.space, frame, inbound.now)

    def _on_crypto_frame(self, frame: f.Crypto, inbound: Inbound) -> None:
        self._on_crypto(inbound.level, frame, inbound.now)

    def _on_connection_close(self, frame: f.ConnectionClose, inbound: Inbound) -> None:
        self._enter_draining(frame, inbound.now)
        inbound.closed = True

    def _on_new_token(self, frame: f.NewToken, inbound: Inbound) -> None:
        if not self.is_client:
            raise TransportError(_PV, "NEW_TOKEN sent by a client", 0x07)  # RFC 9000 §19.7
        self.new_token = frame.token

    def _on_new_connection_id(self, frame: f.NewConnectionId, inbound: Inbound) -> None:
        if not self._peer_cids.current.cid:
            raise TransportError(_PV, "NEW_CONNECTION_ID with a zero-length CID in use", 0x18)
        self._peer_cids.on_new_connection_id(frame)

    def _on_handshake_done(self, frame: f.HandshakeDone, inbound: Inbound) -> None:
        if not self.is_client:
            raise TransportError(_PV, "HANDSHAKE_DONE sent by a client", 0x1E)  # RFC 9000 §19.20
        self._confirm_handshake(inbound.now)

    def _on_datagram_frame(self, frame: f.Datagram, inbound: Inbound) -> None:
        local_max = self._local_params.max_datagram_frame_size
        if local_max is None or len(frame.data) + 3 > local_max:
            raise TransportError(_PV, "unexpected or oversized DATAGRAM frame", 0x30)  # RFC 9221 §3
        self._events.append(DatagramReceived(frame.data))

    def _on_ack(self, space: PacketSpace, frame: f.Ack, now: float) -> None:
        state = self._spaces.get(space)
        if state is None:
            return  # discarded by an earlier frame of this packet (RFC 9001 §4.9)
        skipped = state.never_sent_in(frame.ranges)
        if skipped is not None:
            # RFC 9000 §21.4: acknowledging a packet we never sent is an optimistic-ACK attack.
            reason = f"ACK of packet {skipped}, which was never sent"
            raise TransportError(_PV, reason, (frame.ecn and 3) or 2)
        ack_delay = 0.0
        if space is PacketSpace.APPLICATION and self._peer_params is not None:
            ack_delay = frame.ack_delay * (1 << self._peer_params.ack_delay_exponent) / 1e6
        acked = self._recovery.on_ack_received(space, frame, ack_delay, now)
        if acked:
            # RFC 9000 §13.4.2.1: validate the counts against the newly acknowledged ECT(0) packets;
            # RFC 9002 §7.1: an increase of the CE count on a path that validates is congestion.
            ecn = self._paths.current.ecn
            before = ecn.state
            ce = ecn.on_ack(space, frame.ecn, acked, self._ecn_feedback)
            if ce > 0:
                self._recovery.on_ecn_ce(ce, now)
            if ecn.state is not before:
                self._qlog.ecn_state_updated(ecn.state, ecn.failure, now)
        if self._recovery.persistent_congestion_count != self._persistent_congestion_seen:
            self._persistent_congestion_seen = self._recovery.persistent_congestion_count
            if self._max_datagram_size > self._base_datagram_size:
                # RFC 8899 §4.3: persistent loss at a probed size may be a PMTU black hole.
                self._pmtud.on_black_hole()
        if not acked:
            return
        tracker = state.ack
        keys = self._keys
        for packet in acked:
            if packet.largest_acked_in_ack is not None:
                tracker.on_ack_acked(packet.largest_acked_in_ack)
            if (
                space is PacketSpace.APPLICATION
                and keys.update_pending_ack
                and (keys.first_pn_in_phase is not None and packet.packet_number >= keys.first_pn_in_phase)
            ):
                keys.update_pending_ack = False
                keys.usage.on_phase_acked(now, self._pto())  # RFC 9001 §6.5: next update 3 PTOs later

    def _on_retry(self, data: bytes, header: PacketHeader) -> None:
        # RFC 9000 §17.2.5.2: one Retry at most, before any server Initial, with a valid tag.
        if not self.is_client or self._retry_source_cid is not None or self._peer_initial_scid is not None:
            return
        if header.scid == self.original_dcid or not header.token:
            return
        if not verify_retry_integrity(data[header.start : header.end], self.original_dcid, self.version):
            return
        self._retry_source_cid = header.scid
        self._token = header.token
        self._peer_cids.set_initial(header.scid)
        self._keys.install_initial(header.scid, is_client=True)
        # RFC 9002 §6.3: a Retry resets loss recovery (recovery owns that); the ClientHello is sent
        # again (in a new packet, with the token) from the crypto stream, as is any 0-RTT data.
        self._recovery.on_retry_received()
        self._spaces[PacketSpace.INITIAL].crypto_send.requeue_unacked()

    def _on_version_negotiation(self, header: PacketHeader, now: float) -> None:
        # RFC 9000 §6.2: only before any other packet from the server, and ignore it if it lists ours.
        if (
            not self.is_client
            or self._peer_initial_scid is not None
            or self.version in header.supported_versions
        ):
            return
        if header.dcid != self._local_cids.active[0].cid:
            return
        offered = ", ".join(f"{v:#x}" for v in header.supported_versions)
        self._terminate(
            ConnectionTerminated(0, f"version negotiation: server supports {offered}", True, False), now
        )

    def _on_peer_moved(self, path: Path, now: float) -> None:
        # RFC 9000 §9.3: the peer moved (migration or NAT rebinding): send to the new address, validate
        # it, and until validated respect the anti-amplification limit on it (the Path counts).
        if self._paths.on_peer_moved(path, now, self._pto()):
            # RFC 9000 §9.4: a new IP address is a new network path: congestion control and the RTT
            # estimator start afresh, and packets sent on the old path no longer count in either.
            self._congestion.on_path_change(now)
            self._rtt.reset()
            self._recovery.on_path_change()

    def _replay_pending(self, now: float) -> None:
        if not self._pending_packets:
            return
        pending, self._pending_packets = self._pending_packets, []
        for packet, addr, received_at, ecn in pending:
            for header in iter_packets(packet, short_dcid_length=self._config.connection_id_length):
                level = LEVEL_OF_TYPE.get(header.packet_type) if header.packet_type is not None else None
                if level is not None and level in self._keys.read:
                    self._receive_packet(packet, header, addr, max(now, received_at), ecn)
                elif len(self._pending_packets) < MAX_PENDING_PACKETS:
                    self._pending_packets.append((packet, addr, received_at, ecn))


def _on_ping(conn: ReceiveMixin, frame: f.Ping, inbound: Inbound) -> None:
    inbound.ping = True


def _ignore(conn: ReceiveMixin, frame: f.Frame, inbound: Inbound) -> None:
    return


Route = Callable[[ReceiveMixin, Any, Inbound], object]
"""A frame's handler: the connection, the frame (of the type it is routed by) and its packet."""

ROUTES: Final[dict[type[f.Frame], Route]] = {
    # streams and flow control (rudp.quic.streams)
    f.Stream: lambda conn, frame, _: conn._streams.on_stream(frame),
    f.MaxData: lambda conn, frame, _: conn._streams.on_max_data(frame),
    f.MaxStreamData: lambda conn, frame, _: conn._streams.on_max_stream_data(frame),
    f.ResetStream: lambda conn, frame, _: conn._streams.on_reset_stream(frame),
    f.StopSending: lambda conn, frame, _: conn._streams.on_stop_sending(frame),
    f.MaxStreams: lambda conn, frame, _: conn._streams.on_max_streams(frame),
    f.DataBlocked: lambda conn, frame, _: conn._streams.on_data_blocked(frame),
    f.StreamDataBlocked: lambda conn, frame, _: conn._streams.on_stream_data_blocked(frame),
    f.StreamsBlocked: lambda conn, frame, _: conn._streams.on_streams_blocked(frame),
    # connection IDs (rudp.quic.cids)
    f.NewConnectionId: ReceiveMixin._on_new_connection_id,
    f.RetireConnectionId: lambda conn, frame, inbound: conn._local_cids.on_retire(frame, inbound.header.dcid),
    # paths (rudp.quic.paths): a challenge is answered on the path it came on (RFC 9000 §8.2.2)
    f.PathChallenge: lambda conn, frame, inbound: inbound.path.owe_response(frame.data),
    f.PathResponse: lambda conn, frame, inbound: conn._paths.on_response(inbound.path, frame.data),
    # recovery and the ACK trackers, the TLS glue, the lifecycle
    f.Ack: ReceiveMixin._on_ack_frame,
    f.Crypto: ReceiveMixin._on_crypto_frame,
    f.HandshakeDone: ReceiveMixin._on_handshake_done,
    f.ConnectionClose: ReceiveMixin._on_connection_close,
    f.NewToken: ReceiveMixin._on_new_token,
    f.Datagram: ReceiveMixin._on_datagram_frame,
    f.Ping: _on_ping,
    f.Padding: _ignore,
}
"""Every frame type -> the subsystem that owns it (RFC 9000 §19); parse_frames already refused the
frames a packet type may not carry (§12.4)."""
