"""Receiving: datagram → packets → unprotect → dedup → frame routing (RFC 9000 §12, §13; RFC 9001 §5).

Owns :class:`Receiver`, the inbound router of a connection: coalesced packets, the keys each packet
needs (found in its packet number space), packets waiting for keys not yet installed, the ECN marks
counted per space (RFC 9000 §13.4.1), address changes (RFC 9000 §9.3), and (in
:mod:`rudp.quic.frame_routes`) :data:`ROUTES`, the one table from frame type to the subsystem that
handles it. Protocol violations raise
:class:`~rudp.errors.TransportError`, turned into a CONNECTION_CLOSE at :meth:`Receiver.receive_datagram`,
the single place that converts them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from rudp.codec import frames as f
from rudp.codec.codes import PacketType
from rudp.codec.frame_codec import parse_frames, pull_filling_stream, pull_one_rtt_frame, pull_stream_fields
from rudp.codec.packet import MIN_INITIAL_DATAGRAM_SIZE, PacketHeader, iter_packets
from rudp.crypto.protection import (
    AUTHENTICATION_FAILED,
    SAMPLE_LENGTH,
    SAMPLE_OFFSET,
    DecryptFailed,
    PacketProtection,
    UnprotectedPacket,
)
from rudp.errors import DecodeError, TransportError, TransportErrorCode
from rudp.quic.ack_frequency import AckFrequency
from rudp.quic.ack_receiving import AckReceiving
from rudp.quic.cids import LocalConnectionIds, PeerConnectionIds
from rudp.quic.ecn import CE, ECT_0, ECT_1, EcnFeedback
from rudp.quic.events import ConnectionTerminated, DatagramReceived, Event
from rudp.quic.frame_routes import ROUTES
from rudp.quic.handshake import Handshake
from rudp.quic.inbound import (
    NOT_ACK_ELICITING,
    PROBING_FRAMES,
    Inbound,
    PendingPacket,
    drop_frame,
)
from rudp.quic.liveness import Liveness
from rudp.quic.paths import Address, Path, Paths
from rudp.quic.qlog import NullQlog
from rudp.quic.receive_run import DataRun
from rudp.quic.recovery import LossRecovery
from rudp.quic.sent import PacketSpace
from rudp.quic.spaces import LEVEL_OF_TYPE, SPACE_OF_LEVEL, TYPE_OF_LEVEL, PacketNumberSpace, PacketSpaces
from rudp.quic.state import CLOSING_PTOS, Lifecycle, State
from rudp.quic.stats import TrafficCounters
from rudp.quic.streams.manager import StreamManager
from rudp.tls.engine import EncryptionLevel

_PV = TransportErrorCode.PROTOCOL_VIOLATION
# Enum members bound once: in Python 3.11 the enum metaclass's __getattr__ makes each ``State.X``
# lookup cost about four global loads, and these are read for every datagram.
_ESTABLISHED, _CLOSING, _DRAINING, _CLOSED = State.ESTABLISHED, State.CLOSING, State.DRAINING, State.CLOSED
_APPLICATION = PacketSpace.APPLICATION
_APPLICATION_LEVEL, _ONE_RTT = EncryptionLevel.APPLICATION, PacketType.ONE_RTT
_INITIAL_LEVEL, _INITIAL_TYPE = EncryptionLevel.INITIAL, PacketType.INITIAL
_RETRY, _VN, _ZERO_RTT = PacketType.RETRY, PacketType.VERSION_NEGOTIATION, PacketType.ZERO_RTT
MAX_PENDING_PACKETS = 16
_NOT_TAKEN, _DUPLICATE, _PROCESSED = 0, 1, 2
"""What :meth:`Receiver._receive_short` did with a packet."""

class Receiver:
    """The receive side of one connection (see the module docstring)."""

    def __init__(
        self,
        *,
        is_client: bool,
        short_dcid_length: int,
        max_datagram_frame_size: int | None,
        spaces: PacketSpaces,
        paths: Paths,
        recovery: LossRecovery,
        handshake: Handshake,
        lifecycle: Lifecycle,
        streams: StreamManager,
        local_cids: LocalConnectionIds,
        peer_cids: PeerConnectionIds,
        liveness: Liveness,
        traffic: TrafficCounters,
        qlog: NullQlog,
        emit: Callable[[Event], None],
        ack_frequency: AckFrequency | None = None,
    ) -> None:
        self._is_client = is_client
        self._short_dcid_length = short_dcid_length
        self._max_datagram_frame_size = max_datagram_frame_size
        self._spaces = spaces
        self._paths: Paths = paths
        self._recovery = recovery
        self._handshake: Handshake = handshake
        self._lifecycle = lifecycle
        self._streams: StreamManager = streams
        self._local_cids: LocalConnectionIds = local_cids
        self._peer_cids = peer_cids
        self._liveness = liveness
        self._traffic = traffic
        self._qlog = qlog
        self._emit = emit
        self._ack_frequency = ack_frequency if ack_frequency is not None else AckFrequency(None, drop_frame)
        self._application = spaces.application  # never discarded (RFC 9001 §4.9 drops the others)
        self._log_packets = type(qlog) is not NullQlog
        self.ecn = EcnFeedback()
        """Marks received per space (our ACK_ECN counts) and the peer's last counts (RFC 9000 §13.4)."""
        self._pending: list[PendingPacket] = []
        self._acks: AckReceiving = AckReceiving(
            spaces=spaces,
            paths=paths,
            recovery=recovery,
            handshake=handshake,
            qlog=qlog,
            ack_frequency=self._ack_frequency,
            feedback=self.ecn,
        )
        self._run = DataRun()
        self._runs = True
        self._masks_keys: PacketProtection | None = None
        self._parsed: tuple[bytes | memoryview, PacketHeader] | None = None  # (see receive_datagram)

    @property
    def pending_packets(self) -> int:
        """Packets held until their keys arrive (at most :data:`MAX_PENDING_PACKETS`)."""
        return len(self._pending)

    # -- datagrams and packets ------------------------------------------------------------------------

    def receive_datagram(
        self, data: bytes | memoryview, addr: Address, now: float, ecn: int = 0, local: Address | None = None,
        header: PacketHeader | None = None,
    ) -> None:
        """Process one datagram; ``ecn`` is the ECN codepoint of its IP header, counted once for each
        QUIC packet it carries (RFC 9000 §13.4.1); ``local`` the local address it reached (None: the
        endpoint's main one). ``data`` may be a view into a larger receive buffer: the fast path reads
        it in place; the general path, which may keep packets (waiting for keys), takes a copy.
        ``header``: its first packet's long header, parsed from ``data`` already (not parsed again)."""
        self._parsed = (data, header) if header is not None and header.is_long else None  # (for `data` only)
        self.receive_datagrams(((data, addr, ecn),), now, local)
        self._parsed = None

    def receive_datagrams(
        self, datagrams: Iterable[tuple[bytes | memoryview, Address, int]], now: float, local: Address | None
    ) -> None:
        """:meth:`receive_datagram` for each ``(data, addr, ecn)`` in turn, all arrived at ``now`` at
        ``local`` (one socket wake-up): every datagram gets every check, in order."""
        lifecycle = self._lifecycle
        paths = self._paths
        established = _ESTABLISHED
        # What every datagram or fast-path packet of the batch records, summed and recorded once at
        # the end (nothing reads it while the batch is handled, and all share ``now``): the traffic
        # counters, the fast path's packets per ECN codepoint (RFC 9000 §13.4.1) and, if there was
        # one, the idle timer's restart (RFC 9000 §10.1).
        count = total = processed = 0
        marks = [0, 0, 0, 0]  # by codepoint: Not-ECT, ECT(1), ECT(0), CE
        # A run of datagrams from one address that the fast path takes: its path is looked up once and
        # its bytes are counted together (RFC 9000 §8.1), before the general path runs or at the end.
        run_addr: Address | None = None
        run_path: Path | None = None
        run_bytes = 0
        # Data packets wait in a run (rudp.quic.receive_run) only when others may follow in the batch.
        masks = None  # the batch's header-protection masks (one call for all: _batch_masks)
        if isinstance(datagrams, (list, tuple)):
            self._runs = len(datagrams) > 1
            masks = self._batch_masks(datagrams) if self._runs else None
        else:
            self._runs = True
        index = -SAMPLE_LENGTH  # where the datagram's mask starts in ``masks``
        try:
            for data, addr, ecn in datagrams:
                index += SAMPLE_LENGTH
                state = lifecycle.state
                if state is not established:  # (one test for the usual state)
                    if state is _CLOSED or state is _DRAINING:
                        return  # nothing leaves these states (RFC 9000 §10.2.2)
                    if state is _CLOSING:
                        # RFC 9000 §10.2.1: answer with CONNECTION_CLOSE, but rate-limited (backoff
                        # doubles).
                        count += 1
                        total += len(data)
                        lifecycle.closing.on_datagram_received()
                        continue
                    if not self._is_client:
                        paths.on_local_address(local)
                size = len(data)
                count += 1
                total += size
                if addr is run_addr or addr == run_addr:  # (one address object per GRO buffer)
                    path = run_path
                    run_bytes += size
                else:
                    if run_path is not None:
                        run_path.on_datagram_received(run_bytes)
                    path = run_path = paths.get(addr, local)
                    run_addr, run_bytes = (addr, size) if path is not None else (None, 0)
                try:
                    # A 1-RTT packet (short header, fixed bit set) on the current path once established:
                    # the fast path, which hands anything unusual back to the general one.
                    taken = (
                        self._receive_short(data, path, now, masks, index)
                        if state is established and path is paths.current and size and data[0] & 0xC0 == 0x40
                        else _NOT_TAKEN
                    )
                    if taken == _PROCESSED:
                        processed += 1
                        if 0 < ecn < 4:
                            marks[ecn] += 1
                    elif taken == _NOT_TAKEN:
                        if self._run.first >= 0:
                            self._flush_run(now)  # the general path sees the packets before this one
                        if run_path is not None:  # the run ends: the general path may add or move paths
                            run_path.on_datagram_received(run_bytes)
                            run_addr = run_path = None
                        data = data if type(data) is bytes else bytes(data)
                        self._receive_packets(data, addr, now, ecn, local)
                    if self._pending and lifecycle.is_active:
                        self._replay_pending(now)
                except TransportError as exc:
                    lifecycle.on_local_error(self._flush_before_error(now) or exc, now)
            if self._run.first >= 0:
                self._flush_run(now)
        except TransportError as exc:
            lifecycle.on_local_error(exc, now)
        finally:
            if self._run.first >= 0:
                self._run.take()  # (handed over already, unless the connection closed meanwhile)
            if run_path is not None:
                run_path.on_datagram_received(run_bytes)
            # What the batch's datagrams and fast-path packets left to record once (see above).
            if count:
                self._traffic.on_datagrams_received(count, total)
            if processed:
                tracker = self._application.ack
                for codepoint in (ECT_0, ECT_1, CE):
                    if marks[codepoint]:
                        # RFC 9000 §13.4.1: each processed (authenticated, non-duplicate) packet counts.
                        counts = self.ecn.on_packets_received(_APPLICATION, codepoint, marks[codepoint])
                        tracker.report_ecn_counts(counts)
                self._liveness.on_packet_received(now)

    def _batch_masks(self, datagrams: Sequence[tuple[bytes | memoryview, Address, int]]) -> bytes | None:
        """The masks (RFC 9001 §5.4.1) of a batch's datagrams as 1-RTT packets, the ``i``-th at ``16 *
        i``, from one call, not one per packet; None before the connection is established. Only packets
        opened with the keys they were computed with (:attr:`_masks_keys`) use them."""
        phase = self._spaces.phase
        self._masks_keys = phase.read
        if self._lifecycle.state is not _ESTABLISHED:
            return None
        return phase.batch_masks([item[0] for item in datagrams], 1 + self._short_dcid_length + SAMPLE_OFFSET)

    def _flush_before_error(self, now: float) -> TransportError | None:
        """Hand over the run of the packets before the one that failed (they came first); the error
        that gives, if any: the first to report."""
        try:
            self._flush_run(now)
        except TransportError as exc:
            return exc
        return None

    def _receive_packets(
        self, data: bytes, addr: Address, now: float, ecn: int, local: Address | None
    ) -> None:
        parsed = self._parsed
        first = parsed[1] if parsed is not None and parsed[0] is data else None
        packets = iter_packets(data, short_dcid_length=self._short_dcid_length, first=first)
        while True:
            try:
                header = next(packets)
            except StopIteration:
                return
            except DecodeError:
                # An undecodable header (not yet authenticated): drop the rest of the datagram.
                self._traffic.on_dropped()
                return
            # Errors in an authenticated packet (malformed frames included) close the connection.
            self._receive_packet(data, header, addr, now, ecn, local)
            if not self._lifecycle.is_active:
                return

    def _receive_packet(
        self, data: bytes, header: PacketHeader, addr: Address, now: float, ecn: int, local: Address | None
    ) -> None:
        if self._is_client and self._handshake.foreign_to_client(header, addr):
            self._traffic.on_dropped()  # RFC 9000 §7.2, §9
            return
        other = header.is_long and header.version != self._spaces.version
        if other and header.packet_type is _INITIAL_TYPE:
            # RFC 9369 §4.1: an Initial of the other compatible version (the client learning the
            # Negotiated Version, or the server still reading the Original Version's Initials).
            level = _INITIAL_LEVEL
            protection = self._handshake.other_version_keys(header)
            if protection is None:
                self._traffic.on_dropped()
                return
        else:
            found = self._level_of(data, header, now)
            if found is None:
                return
            level = found
            protection = self._spaces.read_keys(level)
        space = self._spaces.get(SPACE_OF_LEVEL[level])
        packet = memoryview(data)[header.start : header.end]
        if protection is None or space is None:
            if len(self._pending) < MAX_PENDING_PACKETS and level != _INITIAL_LEVEL:
                self._pending.append(PendingPacket(bytes(packet), addr, now, ecn, local))
            return
        largest = space.ack.largest_received
        expected = 0 if largest is None else largest + 1
        pn_offset = header.pn_offset - header.start
        if level == _APPLICATION_LEVEL:
            # RFC 9001 §6.3: the 1-RTT key phase decides which generation opens the packet.
            keep_until = now + CLOSING_PTOS * self._recovery.pto()
            result = self._spaces.phase.unprotect(packet, pn_offset, expected, keep_until)
        else:
            result = protection.unprotect(packet, pn_offset, expected)
        if isinstance(result, DecryptFailed):
            if not header.is_long and self._peer_cids.is_stateless_reset(data):
                event = ConnectionTerminated(0, "stateless reset", True, False)
                self._lifecycle.terminate(event, now, state=State.DRAINING)
                return
            self._traffic.on_dropped()
            if result is AUTHENTICATION_FAILED:
                self._spaces.usage.on_forged(level)  # RFC 9001 §6.6: may close (AEAD_LIMIT_REACHED)
            return
        # RFC 9000 §17.2, §17.3.1: reserved bits must be zero once header protection is removed.
        if result.first_byte & (0x0C if header.is_long else 0x18):
            raise TransportError(_PV, "reserved header bits are not zero")
        if space.ack.is_duplicate(result.packet_number):
            return
        if other:
            self._handshake.on_other_version_opened(header)  # (a client follows the server's switch)
        if self._log_packets:
            size = header.end - header.start
            self._qlog.packet_received(header.packet_type, result.packet_number, result.payload, size, now)
        self._handshake.on_packet_authenticated(header, level, now)
        self._on_packet(header, level, space, result, (addr, local), len(data), now, ecn)

    def _receive_short(
        self, data: bytes | memoryview, path: Path, now: float, masks: bytes | None = None, index: int = 0
    ) -> int:
        """The fast path of a 1-RTT packet on the current path: open it with the current keys, hand its
        STREAM, ACK, PING and PADDING frames over without frame objects, record it in its ACK tracker.
        Returns :data:`_PROCESSED` (the caller then counts its ECN mark and restarts the idle timer,
        once per batch), :data:`_DUPLICATE`, or :data:`_NOT_TAKEN`, having changed nothing, when the
        general path must take the packet (other key phase, failed authentication, too short): that
        path then counts failures and tries the other keys."""
        phase = self._spaces.phase
        keys = phase.read
        if keys is None:
            return _NOT_TAKEN
        space = self._application
        run = self._run
        pending = run.first >= 0
        largest = run.last if pending else space.ack.largest_received
        pn_offset = 1 + self._short_dcid_length
        if keys is not self._masks_keys:
            masks = None  # (new keys since the batch began: the packet computes its own mask)
        opened = keys.open_short(data, pn_offset, 0 if largest is None else largest + 1, masks, index)
        if opened is None:
            return _NOT_TAKEN
        first, packet_number, payload = opened
        if first & 0x1C != phase.key_phase << 2:  # the key phase bit and the two reserved bits at once
            if (first >> 2) & 1 != phase.key_phase:
                return _NOT_TAKEN  # RFC 9001 §6: the general path decides (KEY_UPDATE_ERROR)
            # RFC 9000 §17.3.1: reserved bits must be zero once header protection is removed.
            raise TransportError(_PV, "reserved header bits are not zero")
        tracker = space.ack
        if largest is not None and packet_number <= largest:
            if pending:
                self._flush_run(now)
                pending = False
            if tracker.is_duplicate(packet_number):
                return _DUPLICATE
        if self._log_packets:
            self._qlog.packet_received(_ONE_RTT, packet_number, payload, len(data), now)
        # The common packet of a transfer: one STREAM frame filling the payload (RFC 9000 §19.8).
        # Without FIN, with the next packet number and the next data of the batch's run of such
        # packets, it joins that run (rudp.quic.receive_run), which records it in its ACK tracker.
        # (First as the run expects it, in one unpack; then any layout, decoded in full.)
        joined = pending and run.extend_packet(packet_number, payload)
        fields = None if joined else pull_filling_stream(payload)
        if joined or (pending and fields is not None and run.extend_filling(packet_number, fields, payload)):
            if not self._is_client:  # RFC 9000 §9.5 (see below); the usual DCID compared in place
                seen = path.seen_dcid
                if seen is None or not (
                    data.startswith(seen, 1) if type(data) is bytes else data[1:pn_offset] == seen
                ):
                    self._paths.on_peer_cid(path, bytes(data[1:pn_offset]))
            return _PROCESSED
        single = deferred = False
        if fields is not None:
            stream_id, offset, start, kind = fields
            piece = payload[start:]  # (a copy costs less than a view: one object, not two)
            single = True
            deferred = not kind & 0x01 and self._runs
            if pending:
                self._flush_run(now)
            # A run starts above the largest packet number recorded (its own then decide what the
            # next packet's number decodes against, and what is a duplicate).
            largest = tracker.largest_received
            if deferred and (largest is None or packet_number > largest):
                run.start(packet_number, stream_id, offset, piece, kind)
            else:
                deferred = False
                self._streams.on_stream_data(stream_id, offset, piece, kind)
        if not single:
            if run.first >= 0:
                self._flush_run(now)
            eliciting, ping, padded = self._short_frames(data, payload, space, path, now)
        if not self._is_client and data[1:pn_offset] != path.seen_dcid:
            self._paths.on_peer_cid(path, bytes(data[1:pn_offset]))  # RFC 9000 §9.5 (see _on_packet)
        if deferred:
            return _PROCESSED  # recorded in its ACK tracker with its run
        if single:
            # Data: part of the flow. RFC 9000 §4.6: while our opener waits for stream credit, the peer
            # needs our ACKs to close its streams and grant more; a delayed ACK would stall every
            # waiting request.
            tracker.on_data_packets(packet_number, packet_number, now, self._streams.opener_blocked)
        else:
            tracker.on_packet_received(
                packet_number,
                ack_eliciting=eliciting,
                now=now,
                immediate=ping or self._streams.opener_blocked,  # RFC 9000 §4.6 (see above)
                # As on the general path: a PING padded to a full datagram is a PMTU probe, part of the
                # flow.
                flow=not ping or (padded and len(data) >= MIN_INITIAL_DATAGRAM_SIZE),
            )
        return _PROCESSED

    def _flush_run(self, now: float) -> None:
        """Hand the run over (:mod:`rudp.quic.receive_run`): its data to its stream, then its packets
        to the ACK tracker, as the packets one by one would have (same checks, errors and events)."""
        taken = self._run.take()
        if taken is not None:
            first, last, stream_id, offset, end, pieces, kind = taken
            self._streams.on_stream_pieces(stream_id, offset, end, pieces, kind)
            # RFC 9000 §4.6: as for each packet (see _receive_short).
            self._application.ack.on_data_packets(first, last, now, self._streams.opener_blocked)

    def _short_frames(
        self, data: bytes | memoryview, payload: bytes, space: PacketNumberSpace, path: Path, now: float
    ) -> tuple[bool, bool, bool]:
        """Hand out the frames of an authenticated 1-RTT packet (RFC 9000 §12.4); return (ack-eliciting,
        carried a PING or IMMEDIATE_ACK, carried PADDING). STREAM, PADDING and PING are decoded here;
        ACK by its codec, then straight to :class:`~rudp.quic.ack_receiving.AckReceiving` (the route
        :data:`ROUTES` gives it); any other frame goes through :data:`ROUTES` like on the general path."""
        size = len(payload)
        if not size:
            raise TransportError(_PV, "packet without frames")  # RFC 9000 §12.4
        view = memoryview(payload)
        streams = self._streams
        eliciting = ping = padded = False
        inbound: Inbound | None = None
        position = 0
        while position < size:
            kind = payload[position]
            if 0x08 <= kind <= 0x0F:  # STREAM (RFC 9000 §19.8)
                stream_id, offset, start, end = pull_stream_fields(payload, position, kind)
                streams.on_stream_data(stream_id, offset, view[start:end], kind)
                eliciting = True
                position = end
                continue
            if kind == 0x00:  # PADDING runs (RFC 9000 §19.1)
                position = size - len(payload[position:].lstrip(b"\x00"))
                padded = True
                continue
            if kind == 0x01:  # PING (RFC 9000 §19.2)
                eliciting = ping = True
                position += 1
                continue
            frame, position = pull_one_rtt_frame(payload, position)  # (ACK's usual form without a Reader)
            if type(frame) is f.Ack:  # RFC 9000 §19.3: not ack-eliciting, never closes: no routing
                self._acks.on_ack(frame, _APPLICATION, now)
                continue
            if type(frame) is f.NewConnectionId:  # its route, direct (ack-eliciting; never closes the packet)
                self._on_new_connection_id(frame, None)
                eliciting = True
                continue
            if type(frame) is f.ConnectionClose:  # its route, direct: the usual end of a connection
                self._lifecycle.on_peer_close(frame, now)
                return False, False, False  # (as a closed Inbound: nothing after it is handled)
            if inbound is None:
                pn_offset = 1 + self._short_dcid_length
                dcid, stop = bytes(data[1:pn_offset]), len(data)
                header = PacketHeader(data[0], False, None, _ONE_RTT, dcid, pn_offset=pn_offset, end=stop)
                inbound = Inbound(header, _APPLICATION_LEVEL, _APPLICATION, path, now)
            self._route(frame, inbound)
            if inbound.closed:
                return False, False, False
        if inbound is not None:
            return eliciting or inbound.ack_eliciting, ping or inbound.ping, padded or inbound.padded
        return eliciting, ping, padded

    def _level_of(self, data: bytes, header: PacketHeader, now: float) -> EncryptionLevel | None:
        """The level of a packet that carries frames, or None (Version Negotiation, Retry, a version we
        do not speak, a 0-RTT packet sent to a client)."""
        handshake = self._handshake
        kind = header.packet_type
        if header.is_long and header.version != handshake.version:
            if kind is _VN:
                handshake.on_version_negotiation(header, now)
            return None
        if kind is _RETRY:
            handshake.on_retry(data, header)
            return None
        if kind is None or kind is _VN:
            return None
        if kind is _ZERO_RTT and self._is_client:
            # RFC 9000 §17.2.3: 0-RTT carries early data from client to server. A client has no 0-RTT
            # read keys and must not hold such packets waiting for some.
            self._traffic.on_dropped()
            return None
        return LEVEL_OF_TYPE[kind]

    def _on_packet(
        self,
        header: PacketHeader,
        level: EncryptionLevel,
        space: PacketNumberSpace,
        packet: UnprotectedPacket,
        addresses: tuple[Address, Address | None],
        datagram_size: int,
        now: float,
        ecn: int,
    ) -> None:
        """An authenticated, new packet: route its frames, then record it (ACK, ECN, liveness, path).
        ``addresses``: the peer's address and our local one (None: the endpoint's main address)."""
        paths = self._paths
        path = paths.current
        established = self._lifecycle.established
        addr, local = addresses
        if (addr != path.address or local != path.local) and established:
            if self._is_client and not paths.knows(addr):
                # RFC 9000 §9.6: a server never migrates on its own; a client SHOULD discard packets
                # from a server address it did not initiate a migration to (nor first connect to).
                self._traffic.on_dropped()
                return
            path = paths.on_authenticated(addr, datagram_size, local)
        tracker = space.ack
        largest_before = tracker.largest_received
        inbound = self._route_frames(header, level, packet, path, now)
        if established and not self._is_client and not header.is_long:
            # RFC 9000 §9.5: the CID we answer with on this path (after the frames: a NEW_CONNECTION_ID
            # in the packet may bring the fresh one a new path needs).
            paths.on_peer_cid(path, header.dcid)
        tracker.on_packet_received(
            packet.packet_number,
            ack_eliciting=inbound.ack_eliciting,
            now=now,
            immediate=inbound.ping or self._streams.opener_blocked,  # RFC 9000 §4.6 (see above)
            # A PING padded to a full datagram is a PMTU probe, part of the peer's flow (a keep-alive
            # PING is padded only to the few bytes header protection samples).
            flow=not inbound.ping or (inbound.padded and datagram_size >= MIN_INITIAL_DATAGRAM_SIZE),
        )
        if ecn:
            # RFC 9000 §13.4.1: count each processed (authenticated, non-duplicate) packet in its space.
            counts = self.ecn.on_packet_received(space.id, ecn)
            if counts is not None:
                tracker.report_ecn_counts(counts)
        self._liveness.on_packet_received(now)
        if (
            path is not paths.current
            and not inbound.probing
            and (largest_before is None or packet.packet_number > largest_before)
            and established
            and not self._is_client
            and not path.no_cid  # RFC 9000 §9.5: with no CID for it, we cannot follow the peer there
        ):
            # RFC 9000 §9.3: only the highest-numbered non-probing packet moves us to the peer's new
            # address (a reordered older packet, or a peer's probe, does not).
            self._on_peer_moved(path, now)

    def _route_frames(
        self, header: PacketHeader, level: EncryptionLevel, packet: UnprotectedPacket, path: Path, now: float
    ) -> Inbound:
        """Hand every frame of a packet to its owner through :data:`ROUTES` (RFC 9000 §12.4)."""
        # RFC 9000 §12.4, §12.5: the frames allowed depend on the packet type, which is the level's.
        # (PacketType.INITIAL is IntEnum 0: never test a packet type or a level for truth.)
        inbound = Inbound(header, level, SPACE_OF_LEVEL[level], path, now)
        for _, frame in packet.frames or parse_frames(packet.payload, TYPE_OF_LEVEL[level]):
            # The frames of every Initial and Handshake packet handled as their ROUTES would, directly
            # (PADDING: probing; ACK: not ack-eliciting; neither ACK nor CRYPTO closes the packet).
            if type(frame) is f.Padding:
                inbound.padded = True
            elif type(frame) is f.Ack:
                inbound.probing = False
                self._acks.on_ack(frame, inbound.space, now)
            elif type(frame) is f.Crypto:
                inbound.probing = False
                inbound.ack_eliciting = True
                self._handshake.on_crypto(level, frame, now)
            else:
                self._route(frame, inbound)
                if inbound.closed:
                    break
        return inbound

    def _route(self, frame: f.Frame, inbound: Inbound) -> None:
        """Hand one frame to its owner (:data:`ROUTES`) and note what it asks of the packet."""
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

    def _on_peer_moved(self, path: Path, now: float) -> None:
        # RFC 9000 §9.3: the peer moved (migration or NAT rebinding): send to the new address, validate
        # it, and until validated respect the anti-amplification limit on it (the Path counts). RFC 9000
        # §9.4: a new IP address is a new network path with its own congestion controller and RTT
        # estimator; packets sent on the old path no longer count in either.
        self._paths.on_peer_moved(path, now, self._recovery.pto())
        current = self._paths.current.congestion
        self._recovery.switch_path(current.controller, current.rtt)

    def _replay_pending(self, now: float) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        for item in pending:
            for header in iter_packets(item.packet, short_dcid_length=self._short_dcid_length):
                level = LEVEL_OF_TYPE.get(header.packet_type) if header.packet_type is not None else None
                if level is not None and self._spaces.read_keys(level) is not None:
                    self._receive_packet(
                        item.packet, header, item.address, max(now, item.received_at), item.ecn, item.local
                    )
                elif len(self._pending) < MAX_PENDING_PACKETS:
                    self._pending.append(item)

    # -- the frames the receiver itself answers for ---------------------------------------------------

    def _on_connection_close(self, frame: f.ConnectionClose, inbound: Inbound) -> None:
        self._lifecycle.on_peer_close(frame, inbound.now)
        inbound.closed = True

    def _on_new_connection_id(self, frame: f.NewConnectionId, inbound: Inbound | None) -> None:
        if not self._peer_cids.current.cid:
            raise TransportError(_PV, "NEW_CONNECTION_ID with a zero-length CID in use", 0x18)
        self._peer_cids.on_new_connection_id(frame)

    def _on_datagram_frame(self, frame: f.Datagram, inbound: Inbound) -> None:
        local_max = self._max_datagram_frame_size
        if local_max is None or len(frame.data) + 3 > local_max:
            raise TransportError(_PV, "unexpected or oversized DATAGRAM frame", 0x30)  # RFC 9221 §3
        self._emit(DatagramReceived(frame.data))

