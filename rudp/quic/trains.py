"""Packet trains, the sender's fast path for bulk stream data (issue 13).

:class:`TrainSender` decides whether the next datagrams may be a train and builds it, for the
connection's :class:`~rudp.quic.sending.Sender`, which owns it and asks it first in each batch. It owns
no connection state: it reads the packet spaces, paths, streams and recovery it is given, and what it
needs of the sender (the datagram budget, the window and pacer check of a packet, whether an ACK-only
packet needs a PING, that the pacer held data back) it asks the sender, passed to each :meth:`build` as
a :class:`TrainGate` (held for the call only: the sender owns the train sender, so a kept reference
back would make a reference cycle). A train is a
run of 1-RTT datagrams of one short-header packet each, of the streams' frames (the ACK leading the
first), built by one :class:`~rudp.quic.train.TrainBuilder`: per packet only what decides the next one
(keys, budget, packet number), the congestion window and the pacer once per train when their answers
cannot move while it is sent (RFC 9002 §7, §7.7), loss recovery's record, ECN, idle timer and
statistics once per train (:meth:`TrainSender._after_train`).
"""

from __future__ import annotations

from typing import Protocol

from rudp.codec.frames import Ping
from rudp.codec.packet import FIXED_BIT, KEY_PHASE_BIT
from rudp.errors import TransportError
from rudp.quic.cids import PeerConnectionIds
from rudp.quic.delivery import DeliveryHandler, FrameSource
from rudp.quic.keys import KeyPhase
from rudp.quic.liveness import Liveness
from rudp.quic.paths import Path, Paths
from rudp.quic.qlog import NullQlog
from rudp.quic.recovery import LossRecovery
from rudp.quic.sent import SentPacket
from rudp.quic.spaces import PacketNumberSpace, PacketSpaces
from rudp.quic.state import Lifecycle
from rudp.quic.stats import TrafficCounters
from rudp.quic.streams.manager import StreamManager
from rudp.quic.train import TrainBuilder

MAX_DATAGRAMS_PER_CALL = 64
"""Datagrams one ``datagrams_to_send`` call builds at most (trains included)."""


class TrainGate(Protocol):
    """What a train asks its sender (:class:`~rudp.quic.sending.Sender`) per packet."""

    def datagram_budget(self, path: Path) -> int: ...

    def may_send_new(self, path: Path, size: int, now: float, in_train: bool = False) -> bool: ...

    def ack_only_needs_ping(self, answering: bool) -> bool: ...

    def note_pacing_blocked(self) -> None: ...


class TrainSender:
    """Builds a connection's packet trains (see the module docstring)."""

    __slots__ = (
        "_lifecycle",
        "_liveness",
        "_other_app_sources",
        "_paths",
        "_peer_cids",
        "_qlog",
        "_recovery",
        "_spaces",
        "_streams",
        "_traffic",
        "drained",
    )

    def __init__(
        self,
        *,
        spaces: PacketSpaces,
        paths: Paths,
        recovery: LossRecovery,
        lifecycle: Lifecycle,
        streams: StreamManager,
        peer_cids: PeerConnectionIds,
        other_app_sources: tuple[FrameSource, ...],
        liveness: Liveness,
        traffic: TrafficCounters,
        qlog: NullQlog,
    ) -> None:
        self._spaces = spaces
        self._paths = paths
        self._recovery = recovery
        self._lifecycle = lifecycle
        self._streams = streams
        self._peer_cids = peer_cids
        self._other_app_sources = other_app_sources
        """The 1-RTT frame sources but the streams (a train carries none of their frames)."""
        self._liveness = liveness
        self._traffic = traffic
        self._qlog = qlog
        self.drained = False
        """The last :meth:`build` stopped because the streams had nothing more to send (so nothing
        paced waits: :meth:`ready` found no other source with data, and a train fills none)."""

    def ready(self, now: float) -> bool:
        """True when the next datagrams may be a packet train: 1-RTT keys alone, no probe owed, and no
        frame source but the streams (and the ACK, which leads the first packet, as it would on the
        general path) with anything to send (no path, CRYPTO, control, connection-ID or datagram
        frames). Then every datagram is one short-header packet of
        the streams' frames, exactly what :meth:`_build_datagram` would build, without asking the other
        sources again per datagram. Nothing that could change those answers (a datagram arriving, a
        timer firing, the application writing) happens until the train ends."""
        spaces = self._spaces
        state = spaces.application
        ack = state.ack
        if not spaces.one_rtt_only() or self._qlog.records:
            return False
        if state.probes or self._paths.has_data() or state.crypto_send.has_data():
            return False
        if not ack.has_data() and ack.ack_needed(now):
            return False  # (an ACK due is also one worth piggybacking: not seen on the general path)
        if not self._streams.has_data_to_send():
            return False
        for source in self._other_app_sources:  # noqa: SIM110 (no generator frame per call)
            if source.has_data():
                return False
        return True

    def build(
        self, now: float, path: Path, out: list[tuple[bytes, Path]], ecn_marking: bool, gate: TrainGate
    ) -> bool:
        """Append a train of 1-RTT datagrams of stream frames to ``out`` while the congestion window,
        the pacer (RFC 9002 §7.7) and the streams allow, up to :data:`MAX_DATAGRAMS_PER_CALL` in all.

        Each packet goes through the steps that decide the next one: key maintenance (a key update
        may start mid-train, RFC 9001 §6), the datagram budget and the next packet number. The window
        and the pacer answer once for as many bytes as they allow (``LossRecovery.train_window``,
        ``Pacer.train_room``), counted down per packet, when no anti-amplification limit counts the
        datagrams and no PRR period or send hook can move the window (the datagrams are of the path's
        size, a size above the base shrunk to the window's rest for the last one, as the budget
        does); loss recovery then records the train
        and the pacer is charged once, and a packet the window refused is reported to recovery after
        that (the same answers and state as asking per packet). Otherwise (the anti-amplification
        limit, PRR, BBR) each packet asks :meth:`TrainGate.may_send_new` and is
        recorded and charged before the next. What no later packet of the train reads (ECN, idle
        timer, the statistics, a validated path's byte count) is done once for the train
        (:meth:`_after_train`), as is header protection (:class:`TrainBuilder`). After a packet whose
        last frame was cut, the whole packets of one stream's data that nothing can stop before them
        (the window's and the pacer's answers, quiet keys, one packet number length) are taken at once
        (:meth:`_stream_run`).
        False if the AEAD limit closed the connection mid-train (the packets built so far still go)."""
        streams = self._streams
        self.drained = False
        spaces = self._spaces
        phase = spaces.phase
        state = spaces.application
        recovery = self._recovery
        congestion = path.congestion
        pacer, controller, rtt = congestion.pacer, congestion.controller, congestion.rtt
        pmtud = path.pmtud
        base, current = pmtud.base, pmtud.current
        # RFC 9002 §7, §7.7: with a steady window (and no anti-amplification limit counting each
        # datagram, RFC 9000 §8.1), the window and the pacer are asked once per train (and again
        # when what they allowed is used up); else per packet, as TrainGate.may_send_new.
        unlimited = path.datagram_allowance() is None
        window = recovery.train_window() if unlimited else None
        # The budget of every datagram is then the path's size (nothing the train does moves the PMTU
        # search: probes go apart and only their acknowledgement or loss, or a black hole, changes
        # the size, RFC 9000 §14.3, RFC 8899 §4.3), except that a size found by the search (above the
        # base) shrinks to what the window leaves for the last packet, as TrainGate.datagram_budget does.
        # Without a steady window such sizes ask TrainGate.datagram_budget per packet.
        fixed = current if unlimited and (current <= base or window is not None) else 0
        # The header template of the train: what no packet of it can change (the peer's CID, the
        # largest acknowledged number: only received frames move them). The keys and the key phase
        # bit are read per packet, since a key update may start mid-train (RFC 9001 §6).
        builder = TrainBuilder(now, self._peer_cids.current.cid, recovery.largest_acked(state.id))
        smoothed_rtt = path.congestion.rtt.smoothed_rtt
        usage, qlog = spaces.usage, self._qlog
        ack = state.ack
        ack_first = ack.has_data()
        packets: list[SentPacket] = []
        total = 0
        eliciting = refused = False
        alive = True
        room = MAX_DATAGRAMS_PER_CALL - len(out)
        paced, spent = 0.0, 0
        # Key maintenance ran before the first packet; it has nothing to do before this many
        # packets are protected (only this train protects packets with the write key meanwhile).
        quiet = usage.packets_before_due(phase)
        # Whether the streams have data: write_frames says so when a packet's last frame was cut to fit
        # (its stream has more); else has_data_to_send() is asked.
        more = False
        count = 0  # len(packets)
        runs = True  # whether _stream_run may take the next packets (until it finds it may not)
        while count < room:
            if count >= quiet and count:
                try:  # RFC 9001 §6, §6.6: update keys when due (as before every datagram); close if stuck
                    # (Handshake.confirmed is recovery's flag; only a received datagram moves it)
                    usage.maintain(phase, now, confirmed=recovery.handshake_confirmed, qlog=qlog)
                except TransportError as exc:
                    self._lifecycle.on_local_error(exc, now)
                    alive = False
                    break
                quiet = count + usage.packets_before_due(phase)
            if more and runs and window is not None and fixed:
                # Whole packets of one stream's data, as many as nothing in this loop could stop.
                most = room - count
                if quiet - count < most:
                    most = quiet - count
                if window // fixed < most:
                    most = window // fixed
                if paced // fixed < most:
                    most = int(paced // fixed)
                if most > 0:
                    large = pmtud.large_handler if fixed > base else None
                    run = self._stream_run(builder, phase, state, fixed, most, large)
                    if run:
                        packets += run
                        run_bytes = len(run) * fixed
                        count += len(run)
                        total += run_bytes
                        window -= run_bytes
                        paced -= run_bytes
                        spent += run_bytes
                        eliciting = True
                        continue
                    runs = False
            # The same order as _build_datagram: data first, so an empty queue never arms the pacer
            # (ready() just found data for the first packet; after one, the streams are asked again
            # unless its last frame was cut to fit: that stream has more).
            if count and not (more or streams.has_data_to_send()):
                self.drained = True
                break
            size = fixed or gate.datagram_budget(path)
            if not size:
                break
            if window is None:
                if not gate.may_send_new(path, size, now, bool(packets)):
                    break
            else:
                if size > window:
                    if size > base and window >= base:
                        size = window  # a large datagram shrinks to what fits (as the datagram budget)
                    else:
                        refused = True  # can_send hears of it once the train is recorded
                        break
                if size > paced:
                    if spent:
                        pacer.on_sent(spent, now)  # what the last answer let out, charged
                        spent = 0
                    paced = pacer.train_room(now, size, controller, rtt, again=bool(packets))
                    if not paced:
                        gate.note_pacing_blocked()  # the sender arms the pacing deadline: data waits
                        break
            protection = phase.write
            if protection is None or not builder.start_packet(
                size,
                protection,
                FIXED_BIT | (KEY_PHASE_BIT if phase.key_phase else 0),  # RFC 9000 §17.3.1
                state.next_pn,
            ):
                break
            if ack_first:
                # RFC 9000 §13.2: the ACK leads the train's first packet, as in _write_packet.
                ack_first = False
                answering = ack.answers_flow
                taken = ack.take_encoded_ack(now)  # the bytes of ack.write_frames, without a frame
                if taken is not None:
                    builder.push_ack(*taken)
                more = streams.write_frames(builder, now, smoothed_rtt)
                if (
                    builder.remaining >= 1
                    and not builder.sent_is_ack_eliciting()
                    and gate.ack_only_needs_ping(answering)
                ):
                    builder.push_frame(Ping(), ack.on_keepalive_delivery)  # as _write_packet
            elif more:  # the last packet ended with a frame cut to fit: only STREAM frames can wait
                more = streams.write_more_frames(builder)
            else:
                more = streams.write_frames(builder, now, smoothed_rtt)
            sent = builder.end_packet()
            if sent is None:
                break
            state.advance()  # as _advance: the next number, and the key phase's first packet
            if phase.first_pn_in_phase is None:
                phase.on_packet_sent(sent.packet_number)
            size = sent.size_bytes
            if size > base:
                # As _after_datagram: watch large datagrams (a PMTU black hole).
                sent.handlers.append(pmtud.large_handler)
            if window is None:
                recovery.on_packet_sent(sent)
                if sent.in_flight:
                    pacer.on_sent(size, now)
            elif sent.in_flight:
                window -= size
                paced -= size
                spent += size
            if not fixed:
                path.on_datagram_sent(size)  # RFC 9000 §8.1: the next budget counts this one
            packets.append(sent)
            count += 1
            total += size
            eliciting = eliciting or sent.ack_eliciting
        if window is not None:
            recovery.on_packets_sent(packets)  # then the rest of what each packet tells recovery
            if spent:
                pacer.on_sent(spent, now)
            if refused:
                recovery.can_send(size)  # the window's refusal (RFC 9002 §7.8: the window limited us)
        if packets:
            self._after_train(path, packets, total, eliciting, now, ecn_marking, counted=not fixed)
            for datagram in builder.finish():  # (a plain loop: no comprehension frame per train)
                out.append((datagram, path))
        return alive

    def _stream_run(
        self,
        builder: TrainBuilder,
        phase: KeyPhase,
        state: PacketNumberSpace,
        size: int,
        most: int,
        large: DeliveryHandler | None,
    ) -> list[SentPacket]:
        """Up to ``most`` packets of the train at once, each one STREAM frame cut to fill a ``size``-byte
        datagram, when the streams' usual bulk case holds (``StreamOutput.take_run``): the packets the
        loop would build one by one with the same window, pacer and keys (the caller bounds ``most``
        by what they allow, none of which these packets move but by their bytes), numbered as
        ``state.advance`` would number them. Empty (nothing taken) otherwise."""
        protection = phase.write
        if protection is None or phase.first_pn_in_phase is None:
            return []
        room, steady = builder.run_room(size, state.next_pn)
        if steady < most:
            most = steady
        stream_id, offset, length, frames = self._streams.take_run(room, most)
        if not frames:
            return []
        return builder.stream_run(
            protection,
            FIXED_BIT | (KEY_PHASE_BIT if phase.key_phase else 0),  # RFC 9000 §17.3.1
            state.take_numbers(len(frames)),
            stream_id,
            offset,
            length,
            frames,
            large,
        )

    def _after_train(
        self,
        path: Path,
        packets: list[SentPacket],
        total: int,
        eliciting: bool,
        now: float,
        ecn_marking: bool,
        *,
        counted: bool,
    ) -> None:
        """:meth:`_after_datagram` for the rest of a train, once: ECN (RFC 9000 §13.4.2), the idle
        timer, the path's byte count (unless ``counted`` per datagram) and the statistics. The qlog
        hook is not called: a connection that logs sends no trains (:meth:`ready`)."""
        if path is self._paths.current:
            path.ecn.on_datagram_sent(packets, ecn_marking)
        self._liveness.on_datagram_sent(now, ack_eliciting=eliciting)
        if not counted:
            path.on_datagram_sent(total)
        self._traffic.on_datagrams_sent(len(packets), total)


__all__ = ["MAX_DATAGRAMS_PER_CALL", "TrainSender"]
