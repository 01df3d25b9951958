"""Sending: assembling datagrams from every level and subsystem (RFC 9000 §12.2, §13, §14; RFC 9002).

Owns :meth:`SendMixin._datagrams_to_send`: which levels get a packet, in which order subsystems write
frames, ACK piggybacking, probes after a PTO, padding of Initial datagrams, the congestion window and
the anti-amplification limit, and CONNECTION_CLOSE while closing.
"""

from __future__ import annotations

from functools import partial

from rudp.codec.frames import (
    ConnectionClose,
    Ping,
)
from rudp.codec.packet import (
    FIXED_BIT,
    HEADER_FORM_LONG,
    KEY_PHASE_BIT,
    MIN_INITIAL_DATAGRAM_SIZE,
    long_type_bits,
)
from rudp.codec.varint import encode_varint
from rudp.crypto.protection import PacketProtection
from rudp.errors import TransportError, TransportErrorCode
from rudp.quic.handshake import HandshakeMixin
from rudp.quic.packetizer import DatagramBuilder
from rudp.quic.paths import Address, Path
from rudp.quic.pmtud import PmtuDiscovery
from rudp.quic.sent import PacketSpace
from rudp.quic.spaces import ACK_ELICITING_THRESHOLD, SEND_ORDER, SPACE_OF_LEVEL, TYPE_OF_LEVEL
from rudp.quic.state import MIN_SENDABLE_BYTES, State
from rudp.tls.engine import EncryptionLevel

MAX_DATAGRAMS_PER_CALL = 64


class SendMixin(HandshakeMixin):
    """The send side of :class:`~rudp.quic.connection.QuicConnection`."""

    def _datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """The datagrams to send now (the body of ``QuicConnection.datagrams_to_send``)."""
        if self._state in (State.CLOSED, State.DRAINING):
            return []
        if self._state is State.CLOSING:
            return self._close_datagrams(now)
        out: list[tuple[bytes, Address]] = []
        self._pacing_blocked = False
        self._pacer.max_datagram_size = self._max_datagram_size  # the current path's, as the pacer's unit
        for path in self._paths.others_with_frames():
            # RFC 9000 §8.2.2: a PATH_RESPONSE goes on the path its challenge came on, at once.
            datagram = self._build_path_datagram(path, now)
            if datagram:
                out.append((datagram, path.address))
        current = self._paths.current
        if (
            current.pmtud.searching
            and current.validated  # RFC 9000 §8.1: no probing (nor its bytes) before validation
            and self._handshake_confirmed
            and self._state is State.ESTABLISHED
            and self._streams.has_data_to_send()  # probe while busy: larger packets help only then
        ):
            # The probe goes first, so a full congestion window cannot starve it.
            probe = self._build_pmtu_probe(now)
            if probe:
                out.append((probe, current.address))
        keys = self._keys
        while len(out) < MAX_DATAGRAMS_PER_CALL:
            try:  # RFC 9001 §6, §6.6: update keys when due; close if the limit leaves no way out
                keys.usage.maintain(keys, now, confirmed=self._handshake_confirmed, qlog=self._qlog)
            except TransportError as exc:
                self._on_local_error(exc, now)
                return out + self._close_datagrams(now)
            datagram = self._build_datagram(now)
            if not datagram:
                break
            out.append((datagram, current.address))
        if not self._has_paced_data():
            self._recovery.on_app_limited()  # delivery-rate samples: the application limits the rate
        return out

    def _build_path_datagram(self, path: Path, now: float) -> bytes:
        """A datagram of path frames only, for a path other than the current one (within its allowance)."""
        protection = self._keys.write.get(EncryptionLevel.APPLICATION)
        allowance = path.datagram_allowance()
        size = self._base_datagram_size if allowance is None else min(self._base_datagram_size, allowance)
        if protection is None or size < MIN_SENDABLE_BYTES:
            return b""
        builder = self._qlog.builder(size, now)
        space = PacketSpace.APPLICATION
        if not self._start_packet(builder, EncryptionLevel.APPLICATION, space, protection, dcid=path.dcid):
            return b""
        path.write_frames(builder, now, self._randbytes)
        if builder.end_packet() is None:
            return b""
        self._advance_packet_number(space)
        datagram = builder.finish(MIN_INITIAL_DATAGRAM_SIZE)
        self._after_datagram(builder, datagram, path, now)
        return datagram

    # -- PMTU probes (RFC 9000 §14.3) -----------------------------------------------------------------

    def _build_pmtu_probe(self, now: float) -> bytes:
        protection = self._keys.write.get(EncryptionLevel.APPLICATION)
        if protection is None:
            return b""
        path = self._paths.current
        pmtud = path.pmtud
        size = pmtud.probe_size(now)
        if size is None:
            return b""
        if not self._may_send_new(size, now):
            pmtud.cancel_probe(size)
            return b""
        builder = self._qlog.builder(size, now)
        space = PacketSpace.APPLICATION
        self._start_packet(builder, EncryptionLevel.APPLICATION, space, protection)
        builder.push_frame(Ping(), partial(self._on_pmtu_probe, pmtud, size))
        sent = builder.end_packet()
        datagram = builder.finish(size)
        if sent is None or not datagram:
            return b""
        sent.is_pmtu_probe = True
        self._advance_packet_number(space)
        self._after_datagram(builder, datagram, path, now, probe=True)
        return datagram

    def _on_pmtu_probe(self, pmtud: PmtuDiscovery, size: int, acked: bool) -> None:
        if acked:
            pmtud.on_probe_acked(size)  # the path's datagrams grow at once
        else:
            pmtud.on_probe_lost(size, retry_delay=self._pto())

    # -- one datagram -----------------------------------------------------------------------------

    def _amplification_allowance(self) -> int | None:
        # RFC 9000 §8.1, §9.3: to an unvalidated address we send at most 3x what came from it.
        return self._paths.current.datagram_allowance()

    def _datagram_budget(self) -> int:
        """Bytes the next datagram may have, or 0 when the anti-amplification limit forbids sending."""
        size = self._max_datagram_size
        if size > self._base_datagram_size:
            # Large (probed) datagrams must not stall a small congestion window: shrink to what fits.
            room = self._congestion.congestion_window - self._recovery.bytes_in_flight
            size = max(self._base_datagram_size, min(size, room))
        allowance = self._amplification_allowance()
        if allowance is None:
            return size
        # RFC 9000 §8.1: what the limit leaves. Initials still need 1200 bytes for their padding (a
        # client's first datagram always leaves 3600); other packets may be smaller.
        need = (
            MIN_INITIAL_DATAGRAM_SIZE if EncryptionLevel.INITIAL in self._keys.write else MIN_SENDABLE_BYTES
        )
        return min(size, allowance) if allowance >= need else 0

    def _build_datagram(self, now: float) -> bytes:
        if self._one_rtt_only():
            return self._build_short_datagram(now)
        size = self._datagram_budget()
        if not size:
            return b""
        probing = any(state.probes for state in self._spaces.values())
        pending = self._has_paced_data()
        blocked = not probing and (not pending or not self._may_send_new(size, now))
        path = self._paths.current
        path_frames = path.has_frames() and self._has_one_rtt_keys()
        if blocked and not probing and not path_frames and not self._any_ack_needed(now):
            return b""  # the common "nothing to do" answer, without building anything
        builder = self._qlog.builder(size, now)
        pad = False
        wrote_handshake = False
        for level in SEND_ORDER:
            protection = self._keys.write.get(level)
            if protection is None or (level == EncryptionLevel.EARLY_DATA and self._has_one_rtt_keys()):
                continue
            space = SPACE_OF_LEVEL[level]
            if not self._level_has_data(level, space, now, blocked) and not (
                path_frames and level == EncryptionLevel.APPLICATION
            ):
                continue
            if not self._start_packet(builder, level, space, protection):
                break
            pad = self._write_level(builder, level, space, now, blocked) or pad
            sent = builder.end_packet()
            if sent is None:
                continue
            self._advance_packet_number(space)
            if level == EncryptionLevel.INITIAL and (self.is_client or sent.ack_eliciting):
                pad = True
            if level == EncryptionLevel.HANDSHAKE:
                wrote_handshake = True
            if level == EncryptionLevel.APPLICATION and self._keys.first_pn_in_phase is None:
                self._keys.first_pn_in_phase = sent.packet_number
        # RFC 9000 §8.2.1: path probes travel in datagrams of at least 1200 bytes (within the
        # anti-amplification allowance, which bounds the builder), proving the path's MTU.
        datagram = builder.finish(MIN_INITIAL_DATAGRAM_SIZE if pad else 0)
        if not datagram:
            return b""
        self._after_datagram(builder, datagram, path, now)
        if wrote_handshake and self.is_client:
            # RFC 9001 §4.9.1: a client discards Initial keys when it first sends a Handshake packet.
            self._discard_level(EncryptionLevel.INITIAL)
        return datagram

    def _one_rtt_only(self) -> bool:
        """True once only 1-RTT keys are left for writing (the steady state after the handshake)."""
        write = self._keys.write
        return len(write) == 1 and EncryptionLevel.APPLICATION in write

    def _build_short_datagram(self, now: float) -> bytes:
        """The steady-state path: one 1-RTT packet per datagram, with the fewest checks possible."""
        size = self._datagram_budget()
        if not size:
            return b""
        space = PacketSpace.APPLICATION
        state = self._spaces[space]
        probe = state.probes
        pending = bool(
            self._streams.has_data_to_send()
            or self._datagram_queue.has_data()
            or self._application_control_pending()
        )
        blocked = not probe and (not pending or not self._may_send_new(size, now))
        tracker = state.ack
        path = self._paths.current
        if blocked and not probe and not tracker.ack_needed(now) and not path.has_frames():
            return b""
        builder = self._qlog.builder(size, now)
        keys = self._keys
        builder.start_packet(
            space=space,
            protection=keys.write[EncryptionLevel.APPLICATION],
            first_byte=FIXED_BIT | (KEY_PHASE_BIT if keys.key_phase else 0),
            prefix=self._peer_cids.current.cid,
            is_long=False,
            packet_number=state.next_pn,
            largest_acked=self._recovery.largest_acked(space),
        )
        answering = tracker.eliciting_unacknowledged
        pad = self._write_level(builder, EncryptionLevel.APPLICATION, space, now, blocked)
        if self._ack_only_needs_ping(builder, answering):
            builder.push_frame(Ping())
        sent = builder.end_packet()
        if sent is None:
            return b""
        self._advance_packet_number(space)
        if keys.first_pn_in_phase is None:
            keys.first_pn_in_phase = sent.packet_number
        datagram = builder.finish(MIN_INITIAL_DATAGRAM_SIZE if pad else 0)
        self._after_datagram(builder, datagram, path, now)
        return datagram

    def _after_datagram(
        self, builder: DatagramBuilder, datagram: bytes, path: Path, now: float, *, probe: bool = False
    ) -> None:
        """Bookkeeping for every datagram about to leave: recovery, idle timer, pacer, path, statistics.

        A PMTU ``probe`` is not charged to the pacer: it may be far larger than the pacer's burst, and
        the gap it would open behind it would drain the bottleneck queue and fool delay-based
        congestion control (HyStart++) into seeing the RTT fall. Its bytes count everywhere else.
        """
        in_flight = False
        if not probe and len(datagram) > self._base_datagram_size:
            # Watch large datagrams: if they alone keep getting lost, the path shrank (black hole).
            builder.sent_packets()[-1].handlers.append(path.pmtud.on_large_datagram)
        eliciting = False
        if path is self._paths.current:
            path.ecn.on_datagram_sent(builder.sent_packets(), self._ecn_marking)  # RFC 9000 §13.4.2
        for sent in builder.sent_packets():
            in_flight = in_flight or sent.in_flight
            eliciting = eliciting or sent.ack_eliciting
            self._recovery.on_packet_sent(sent)
        self._liveness.on_datagram_sent(now, ack_eliciting=eliciting)
        self._qlog.packets_sent(builder, now)
        self._account_datagram(datagram, path, now, in_flight=in_flight and not probe)

    def _ack_only_needs_ping(self, builder: DatagramBuilder, answering: int) -> bool:
        """RFC 9000 §13.2.4: an endpoint that only acknowledges a flow of data makes an ACK-only packet
        ack-eliciting whenever none of its packets is in flight (about once per round trip).

        The PTO then stays armed, so a receiver whose NAT rebound, and whose first datagrams from the
        new address were lost, probes from there instead of waiting in silence (the peer can no longer
        reach it). Only an ACK that answers a flow (``answering`` at least two ack-eliciting packets)
        gets the PING: a single PING is answered by a plain ACK, so two endpoints never ping-pong.
        """
        return (
            answering >= ACK_ELICITING_THRESHOLD
            and builder.remaining >= 1
            and not builder.sent_is_ack_eliciting()
            and self._recovery.ack_eliciting_in_flight(PacketSpace.APPLICATION) == 0
        )

    def _account_datagram(self, datagram: bytes, path: Path, now: float, *, in_flight: bool) -> None:
        """What every datagram costs, whatever it carries: the pacer's tokens, the path's
        anti-amplification budget (RFC 9000 §8.1) and the statistics."""
        if in_flight:
            self._pacer.on_sent(len(datagram), now)
        path.on_datagram_sent(len(datagram))
        self._traffic.on_sent(len(datagram))

    def _may_send_new(self, size: int, now: float) -> bool:
        """True if the congestion window and the pacer (RFC 9002 §7.7) allow new data now."""
        if not self._recovery.can_send(size):
            return False
        if self._pacer.allows(now, size, self._congestion, self._rtt):
            return True
        # Arm Timer.PACING (only called when something is waiting, so an idle connection sleeps).
        self._pacing_blocked = True
        return False

    def _has_paced_data(self) -> bool:
        return bool(
            self._streams.has_data_to_send()
            or self._datagram_queue.has_data()
            or self._application_control_pending()
            or any(state.crypto_send.has_data_to_send() for state in self._spaces.values())
        )

    def _any_ack_needed(self, now: float) -> bool:
        return any(state.ack.ack_needed(now) for state in self._spaces.values())

    def _has_one_rtt_keys(self) -> bool:
        return EncryptionLevel.APPLICATION in self._keys.write

    def _level_has_data(self, level: EncryptionLevel, space: PacketSpace, now: float, blocked: bool) -> bool:
        state = self._spaces[space]
        if level != EncryptionLevel.EARLY_DATA and state.ack.ack_needed(now):
            return True
        if state.probes:
            return level != EncryptionLevel.EARLY_DATA or not self._has_one_rtt_keys()
        if level != EncryptionLevel.EARLY_DATA and state.crypto_send.has_data_to_send() and not blocked:
            return True
        if blocked or level not in (EncryptionLevel.APPLICATION, EncryptionLevel.EARLY_DATA):
            return False
        return bool(
            self._streams.has_data_to_send()
            or self._datagram_queue.has_data()
            or (level == EncryptionLevel.APPLICATION and self._application_control_pending())
        )

    def _application_control_pending(self) -> bool:
        return bool(
            self._control.has_data()
            or self._local_cids.has_data_to_send()
            or self._peer_cids.has_data_to_send()
        )

    def _advance_packet_number(self, space: PacketSpace) -> None:
        """Move past the packet number just used (the space skips one now and then, RFC 9000 §21.4)."""
        self._spaces[space].advance()

    def _start_packet(
        self,
        builder: DatagramBuilder,
        level: EncryptionLevel,
        space: PacketSpace,
        protection: PacketProtection,
        *,
        dcid: bytes | None = None,
    ) -> bool:
        """Open a packet of ``level`` in ``builder`` with the next packet number of ``space`` (a 1-RTT
        packet to ``dcid`` when given: a probed path's own CID, RFC 9000 §9.5)."""
        return builder.start_packet(
            space=space,
            protection=protection,
            first_byte=self._first_byte(level),
            prefix=self._header_prefix(level) if dcid is None else dcid,
            is_long=level != EncryptionLevel.APPLICATION,
            packet_number=self._spaces[space].next_pn,
            largest_acked=self._recovery.largest_acked(space),
        )

    def _first_byte(self, level: EncryptionLevel) -> int:
        if level == EncryptionLevel.APPLICATION:
            return FIXED_BIT | (KEY_PHASE_BIT if self._keys.key_phase else 0)
        return HEADER_FORM_LONG | FIXED_BIT | (long_type_bits(TYPE_OF_LEVEL[level], self.version) << 4)

    def _header_prefix(self, level: EncryptionLevel) -> bytes:
        dcid = self._peer_cids.current.cid
        if level == EncryptionLevel.APPLICATION:
            return dcid
        scid = self._local_cids.active[0].cid if 0 in self._local_cids.active else b""
        prefix = self.version.to_bytes(4, "big") + bytes((len(dcid),)) + dcid + bytes((len(scid),)) + scid
        if level == EncryptionLevel.INITIAL:
            token = self._token if self.is_client else b""
            prefix += encode_varint(len(token)) + token
        return prefix

    def _write_level(
        self, builder: DatagramBuilder, level: EncryptionLevel, space: PacketSpace, now: float, blocked: bool
    ) -> bool:
        """Write a packet's frames; True if it carries path frames (the datagram is then padded)."""
        state = self._spaces[space]
        tracker = state.ack
        if level != EncryptionLevel.EARLY_DATA and tracker.ack_pending:
            ack = tracker.build_ack(now, self._config.ack_delay_exponent)
            if ack is not None:
                builder.push_frame(ack)
                tracker.on_ack_sent(now)
        path_frames = False
        if level == EncryptionLevel.APPLICATION:
            # RFC 9000 §8.2.2, §9.4: path validation is not held back by the congestion window (the
            # old path's packets in flight must not starve the new path's validation).
            path_frames = self._paths.current.write_frames(builder, now, self._randbytes)
        probe = state.probes
        if level != EncryptionLevel.EARLY_DATA and (not blocked or probe):
            state.crypto_send.write_frames(builder)
        if level in (EncryptionLevel.APPLICATION, EncryptionLevel.EARLY_DATA) and (not blocked or probe):
            if level == EncryptionLevel.APPLICATION:
                # The frame sources of a 1-RTT packet, in priority order (each checks its own data).
                self._control.write_frames(builder)
                self._local_cids.write_frames(builder)
                self._peer_cids.write_frames(builder)
            self._streams.write_frames(builder, now, self._rtt.smoothed_rtt)
            self._datagram_queue.write_frames(builder)
        if state.take_probe() and builder.remaining >= 1 and not builder.sent_is_ack_eliciting():
            builder.push_frame(Ping())
        return path_frames

    # -- closing ----------------------------------------------------------------------------------

    def _close_datagrams(self, now: float) -> list[tuple[bytes, Address]]:
        frame = self._closing.take_frame()
        if frame is None:
            return []
        builder = self._qlog.builder(self._max_datagram_size, now)
        pad = False
        for level in (EncryptionLevel.INITIAL, EncryptionLevel.HANDSHAKE, EncryptionLevel.APPLICATION):
            protection = self._keys.write.get(level)
            if protection is None:
                continue
            # RFC 9000 §10.2.3: before confirmation the peer may lack some keys, so the close goes in
            # every level we can still write (Initial, Handshake and 1-RTT).
            to_send = frame
            if frame.application and level != EncryptionLevel.APPLICATION:
                # RFC 9000 §10.2.3: an application close before 1-RTT is sent as APPLICATION_ERROR.
                to_send = ConnectionClose(TransportErrorCode.APPLICATION_ERROR, b"", 0, False)
            space = SPACE_OF_LEVEL[level]
            if not self._start_packet(builder, level, space, protection):
                break
            builder.push_frame(to_send)
            builder.end_packet()
            self._advance_packet_number(space)
            pad = pad or (level == EncryptionLevel.INITIAL and self.is_client)
        datagram = builder.finish(MIN_INITIAL_DATAGRAM_SIZE if pad else 0)
        allowance = self._amplification_allowance()
        if not datagram or (allowance is not None and len(datagram) > allowance):
            return []
        self._qlog.packets_sent(builder, now)
        path = self._paths.current
        self._account_datagram(datagram, path, now, in_flight=True)
        return [(datagram, path.address)]
