"""Sending: the packetizer of a connection (RFC 9000 §12.2, §13, §14; RFC 9002 §6.2.4, §7).

Owns :class:`Sender`: which levels get a packet, the one loop that asks the frame sources of a packet
(:class:`~rudp.quic.delivery.FrameSource`: ACKs, path frames, CRYPTO, control frames, connection IDs,
streams, datagrams) in priority order, the probes owed after a PTO, padding, the congestion window,
the pacer and the anti-amplification limit, and the one after-send hook (:meth:`Sender.after_datagram`)
that records every datagram the same way: data, path-only, PMTU probe and CONNECTION_CLOSE alike (a
packet train, built by the :class:`~rudp.quic.trains.TrainSender` the sender owns, does per packet
what decides the next one and the rest once per train; CONNECTION_CLOSE, PMTU-probe and other-path
datagrams, by its :class:`~rudp.quic.special_datagrams.SpecialDatagrams`). It remembers only whether
the pacer held data back (its :meth:`next_deadline`) and whether the current batch is ECN-marked. What
each source holds is the source's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rudp.codec.frames import Ping
from rudp.codec.packet import FIXED_BIT, KEY_PHASE_BIT, MIN_INITIAL_DATAGRAM_SIZE
from rudp.crypto.protection import PacketProtection
from rudp.errors import TransportError
from rudp.quic.ack_only import AckOnlyDatagrams
from rudp.quic.cids import LocalConnectionIds, PeerConnectionIds
from rudp.quic.control import ControlFrames, DatagramQueue, StreamFrames
from rudp.quic.delivery import FrameSource
from rudp.quic.handshake import Handshake
from rudp.quic.handshake_probes import owe_coalesced_probes
from rudp.quic.liveness import Liveness
from rudp.quic.packetizer import DatagramBuilder, long_first_byte, long_header_prefix
from rudp.quic.paths import Address, Path, Paths
from rudp.quic.qlog import NullQlog
from rudp.quic.recovery import LossRecovery, ProbeRequest
from rudp.quic.sent import PacketSpace
from rudp.quic.spaces import (
    CRYPTO_LEVEL_OF_SPACE,
    SEND_ORDER,
    SPACE_OF_LEVEL,
    TYPE_OF_LEVEL,
    PacketNumberSpace,
    PacketSpaces,
)
from rudp.quic.special_datagrams import MIN_PATH_DATAGRAM, Sent, SpecialDatagrams
from rudp.quic.state import MIN_SENDABLE_BYTES, Lifecycle, State
from rudp.quic.stats import TrafficCounters
from rudp.quic.streams.manager import StreamManager
from rudp.quic.trains import MAX_DATAGRAMS_PER_CALL, TrainSender
from rudp.tls.engine import EncryptionLevel

MAX_PATH_DATAGRAMS = 4
"""Datagrams of path frames per other path and call (responses owed, then the first challenges)."""
PROBE_DATA_BYTES = 1000
"""Stream bytes a PTO probe re-sends when there is no new data (fits any probe packet)."""
BLACK_HOLE_PTO_COUNT = 2
"""Consecutive PTOs after which large datagrams are suspected of vanishing (PMTU black hole)."""
_APP, _EARLY = EncryptionLevel.APPLICATION, EncryptionLevel.EARLY_DATA
_CLOSED, _CLOSING, _DRAINING = State.CLOSED, State.CLOSING, State.DRAINING  # (enum lookups are slow)
_INITIAL, _HANDSHAKE = EncryptionLevel.INITIAL, EncryptionLevel.HANDSHAKE
_APPLICATION_SPACE = PacketSpace.APPLICATION
_HANDSHAKE_LEVELS = (_INITIAL, _HANDSHAKE)


_DATA, _PMTU_PROBE = Sent.DATA, Sent.PMTU_PROBE  # (hot paths: module constants, not enum lookups)


class Sender:
    """Builds the datagrams of one connection from its frame sources (see the module docstring)."""

    def __init__(
        self,
        *,
        is_client: bool,
        spaces: PacketSpaces,
        paths: Paths,
        recovery: LossRecovery,
        handshake: Handshake,
        lifecycle: Lifecycle,
        streams: StreamManager,
        sources: tuple[ControlFrames, LocalConnectionIds, PeerConnectionIds, DatagramQueue | None],
        liveness: Liveness,
        traffic: TrafficCounters,
        qlog: NullQlog,
    ) -> None:
        self._is_client = is_client
        self._spaces = spaces
        self._paths = paths
        self._recovery = recovery
        self._handshake = handshake
        self._lifecycle = lifecycle
        self._streams = streams
        self._liveness = liveness
        self._traffic = traffic
        self._qlog = qlog
        control, local_cids, peer_cids, datagrams = sources
        self._local_cids = local_cids
        self._peer_cids = peer_cids
        stream_frames = StreamFrames(streams, paths)
        # RFC 9221 §5: queued datagrams go before stream data, within their share of the bytes sent
        # (``datagrams.ahead()``), then fill the room stream data leaves (the queue itself). Without
        # datagrams enabled (None: send_datagram refuses, the queue stays empty) it is never asked.
        queue: tuple[FrameSource, ...] = () if datagrams is None else (datagrams,)
        ahead: tuple[FrameSource, ...] = () if datagrams is None else (datagrams.ahead(),)
        self._app_sources: tuple[FrameSource, ...] = (
            control,
            local_cids,
            peer_cids,
            *ahead,
            stream_frames,
            *queue,
        )
        """The frame sources of 1-RTT packets after ACK, path frames and CRYPTO, in priority order."""
        self._other_app_sources: tuple[FrameSource, ...] = (control, local_cids, peer_cids, *queue)
        """The same but the streams, asked alone: whether any has data (``datagrams.ahead()`` has data
        exactly when ``datagrams`` has)."""
        self._trains = TrainSender(
            spaces=spaces,
            paths=paths,
            recovery=recovery,
            lifecycle=lifecycle,
            streams=streams,
            peer_cids=peer_cids,
            other_app_sources=self._other_app_sources,
            liveness=liveness,
            traffic=traffic,
            qlog=qlog,
        )
        self._early_sources: tuple[FrameSource, ...] = (*ahead, stream_frames, *queue)
        """What a 0-RTT packet may carry (RFC 9001 §4.6.1: no ACK, no CRYPTO)."""
        self._ack_only = AckOnlyDatagrams(spaces, recovery, peer_cids, liveness, traffic, qlog)
        self._special_datagrams: SpecialDatagrams | None = None  # (made when first needed: _special)
        self.pacing_blocked = False
        """The last batch had data the pacer held back (its deadline is then armed; read by the
        connection's deadlines, written only here)."""
        self._nothing_paced = False
        """The current batch's last datagram attempt found no paced data waiting (so the batch's
        application-limited check need not ask every source again)."""
        self.ecn_marking = False
        """Whether the datagrams of the current batch leave marked ECT(0) (RFC 9000 §13.4.2)."""
        self.sources: list[Address | None] | None = None
        """The local address each datagram of the current batch leaves from (its path's, RFC 9000 §9),
        or None when all leave from the endpoint's main address."""

    @property
    def _special(self) -> SpecialDatagrams:
        """The builder of CONNECTION_CLOSE, PMTU-probe and other-path datagrams, made the first time one
        is due (most connections never need one: the peer closes, the search never starts)."""
        special = self._special_datagrams
        if special is None:
            special = self._special_datagrams = SpecialDatagrams(
                self._spaces, self._paths, self._recovery, self._lifecycle, self._qlog
            )
        return special

    # -- the batch ---------------------------------------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """The datagrams to send now, each with its destination (and in :attr:`sources` the local
        address it leaves from)."""
        batch = self._datagrams(now)
        self.sources = None
        if not batch:
            return []
        for _, path in batch:
            if path.local is not None:
                # A path is a pair of addresses: each datagram leaves from its path's local one (RFC
                # 9000 §9; §9.6.2: a server sends from its preferred address once the client moved).
                self.sources = [path.local for _, path in batch]
                break
        out = []
        for datagram, path in batch:  # a plain loop: no comprehension frame per batch
            out.append((datagram, path.address))
        return out

    def _datagrams(self, now: float) -> list[tuple[bytes, Path]]:
        state = self._lifecycle.state
        current = self._paths.current
        self.ecn_marking = current.ecn.marking
        if state is _CLOSED or state is _DRAINING:
            return []
        if state is _CLOSING:
            return self._special.close(now, self)
        out: list[tuple[bytes, Path]] = []
        self.pacing_blocked = False
        self._nothing_paced = False
        pmtud = current.pmtud
        if current.congestion.pacer.max_datagram_size != pmtud.current:  # (set on change)
            current.congestion.pacer.use_datagram_size(pmtud.current)  # the PMTU search moved
        for path in self._paths.others_with_frames():
            # RFC 9000 §8.2.2: a PATH_RESPONSE goes on the path its challenge came on, at once (and
            # the PATH_CHALLENGEs a validation starts with, one per datagram, §8.2.1).
            for _ in range(MAX_PATH_DATAGRAMS):
                datagram = self._special.path_datagram(path, now, self)
                if not datagram:
                    break
                out.append((datagram, path))
                if not path.has_frames():
                    break
        if (
            now >= pmtud.next_probe_at  # (infinite once the search is over)
            # The cheap questions first (with PMTU discovery off or over, or before confirmation, the
            # rest is not asked); the handshake's confirmation is loss recovery's flag.
            and current.validated  # RFC 9000 §8.1: no probing (nor its bytes) before validation
            and pmtud.searching
            and self._lifecycle.established
            and self._recovery.handshake_confirmed
            and self._streams.has_data_to_send()  # probe while busy: larger packets help only then
        ):
            # The probe goes first, so a full congestion window cannot starve it.
            probe = self._special.pmtu_probe(current, now, self)
            if probe:
                out.append((probe, current))
        spaces = self._spaces
        # after_train: the batch ended with a train; the streams were then the only paced source with
        # data (TrainSender.ready) and a train changes no other source: only they are asked again.
        after_train = False
        while len(out) < MAX_DATAGRAMS_PER_CALL:
            # RFC 9001 §6, §6.6: update keys when due; close if the limit leaves no way out (asked
            # only when the usage says something may be due: one call per datagram, not two).
            if not spaces.usage.packets_before_due(spaces.phase):
                try:
                    spaces.usage.maintain(
                        spaces.phase, now, confirmed=self._recovery.handshake_confirmed, qlog=self._qlog
                    )
                except TransportError as exc:
                    self._lifecycle.on_local_error(exc, now)
                    return out + self._special.close(now, self)
            if self._streams.queued and self._trains.ready(now):
                before = len(out)
                if not self._trains.build(now, current, out, self.ecn_marking, self):
                    return out + self._special.close(now, self)
                if len(out) > before or not self._spaces.application.ack.has_data():
                    after_train = True
                    break
                # Nothing left in the train (window or pacer) and an ACK waits: it is not paced
                # (RFC 9002 §7): the general path sends it alone if it is due.
            datagram = self._build_datagram(now)
            if not datagram:
                break
            out.append((datagram, current))
            if self._nothing_paced:
                break  # an ACK alone (AckOnlyDatagrams): nothing else waits
        # A pacer that held data back saw data waiting (it is asked only then): not application-limited.
        # (_nothing_paced: the last datagram attempt just found no paced data; nothing changed since.)
        if not self.pacing_blocked:
            if after_train:  # (a train that drained the streams just found nothing more)
                paced = not self._trains.drained and self._streams.has_data_to_send()
            else:
                paced = not self._nothing_paced and self._has_paced_data()
            if not paced:
                self._recovery.on_app_limited()  # delivery-rate samples: the application limits the rate
        return out

    def next_deadline(self) -> float | None:
        """RFC 9002 §7.7: when the pacer allows the next packet, if it held data back; else None."""
        if not self.pacing_blocked:
            return None
        current = self._paths.current
        return current.congestion.pacer.next_send_at(current.pmtud.current)

    def on_probe_timeout(self, request: ProbeRequest) -> None:
        """The PTO fired (RFC 9002 §6.2.4): owe ``request.count`` probes in its space, with data."""
        space = request.space
        level = None if space is PacketSpace.APPLICATION else CRYPTO_LEVEL_OF_SPACE[space]
        if level is not None and self._spaces.write_keys(level) is None:
            # The anti-deadlock probe may name a space whose keys are gone: use the next one.
            space, level = PacketSpace.HANDSHAKE, EncryptionLevel.HANDSHAKE
            if self._spaces.write_keys(level) is None:
                return
        pmtud = self._paths.current.pmtud
        if (
            space is PacketSpace.APPLICATION
            and self._recovery.pto_count >= BLACK_HOLE_PTO_COUNT
            and pmtud.current > pmtud.base
        ):
            # RFC 8899 §4.3: consecutive PTOs with large packets may mean the path no longer carries
            # them; probe (and continue) with base-size packets, and search again later.
            pmtud.on_black_hole()
        state = self._spaces.get(space)
        if state is None:
            return
        state.owe_probes(request.count)
        state.ack.on_probe()
        if space is PacketSpace.APPLICATION and not self._streams.has_data_to_send():
            # RFC 9002 §6.2.4: probes should carry the oldest unacknowledged data, not only a PING,
            # so a lost tail is repaired by the probe itself, one round trip sooner.
            self._streams.requeue_for_probe(PROBE_DATA_BYTES)
        if level is not None:  # RFC 9002 §6.2.4: with unacked CRYPTO data, both handshake spaces
            owe_coalesced_probes(self._spaces, self._recovery, state, request.count)

    # -- datagrams of one kind ------------------------------------------------------------------------

    # -- one datagram of data -----------------------------------------------------------------------

    def datagram_budget(self, path: Path) -> int:
        """Bytes the next datagram may have, or 0 when the anti-amplification limit forbids sending."""
        size = path.pmtud.current
        base = path.pmtud.base
        if size > base:
            # Large (probed) datagrams must not stall a small congestion window: shrink to what fits.
            room = path.congestion.controller.congestion_window - self._recovery.bytes_in_flight
            size = max(base, min(size, room))
        allowance = path.datagram_allowance()
        if allowance is None:
            return size
        # RFC 9000 §8.1: what the limit leaves. Initials still need 1200 bytes for their padding (a
        # client's first datagram always leaves 3600); other packets may be smaller.
        initial = self._spaces.write_keys(_INITIAL) is not None
        need = MIN_INITIAL_DATAGRAM_SIZE if initial else MIN_SENDABLE_BYTES
        if not initial and path is self._paths.current and (self._paths.has_data() or path.validating):
            need = MIN_PATH_DATAGRAM  # a challenge or response due: it fits where data would not
        return min(size, allowance) if allowance >= need else 0

    def _build_datagram(self, now: float) -> bytes:
        spaces = self._spaces
        one_rtt = spaces.one_rtt_only()
        # The spaces in use, listed once for the questions below (only the Application one with 1-RTT
        # alone, PacketSpaces.one_rtt_only).
        states: Sequence[PacketNumberSpace]
        if one_rtt:
            levels: tuple[EncryptionLevel, ...] = (_APP,)
            states = (spaces.application,)
            probing = spaces.application.probes > 0
        else:
            levels = SEND_ORDER
            states = spaces.values()
            probing = False
            for space in states:
                if space.probes:
                    probing = True
                    break
        # _has_paced_data(states), inline (asked for every datagram, and once more to find nothing).
        pending = self._streams.has_data_to_send()
        if not pending:
            for source in self._other_app_sources:
                if source.has_data():
                    pending = True
                    break
            else:
                for space in states:
                    if space.crypto_send.unsent:
                        pending = True
                        break
        # Nothing to send but perhaps an ACK: "nothing to do", the common answer, comes before the
        # budget is asked (and nothing is built).
        idle = not probing and not pending and not self._paths.has_data()
        if idle:
            for space in states:  # _ack_needed(now, states), inline
                if space.ack.ack_needed(now):
                    break
            else:
                self._nothing_paced = True  # the batch ends here: _datagrams need not ask again
                return b""
        path = self._paths.current
        size = self.datagram_budget(path)
        if not size:
            return b""
        blocked = not probing and (not pending or not self.may_send_new(path, size, now))
        if idle:
            if one_rtt:  # an ACK due, alone: what a receiver sends, built leaner
                datagram = self._ack_only.build(now, path, self.ecn_marking)
                if datagram:
                    self._nothing_paced = True
                    return datagram
        elif blocked and not self._paths.has_data() and not self._ack_needed(now, states):
            return b""  # the window or the pacer holds the data back, and no ACK is due
        builder = self._qlog.builder(size, now)
        wrote_handshake = False
        # With 1-RTT alone, ``pending`` already asked the level's paced sources (not again per level).
        paced = (not blocked and pending) if len(levels) == 1 else None
        for level in levels:
            # The level's space and write keys, read once per packet (RFC 9001 §4.6.1: 1-RTT keys
            # replace 0-RTT for sending).
            if level is _APP:
                state: PacketNumberSpace | None = spaces.application
                protection = spaces.phase.write
            elif level is _EARLY:
                state = spaces.application
                protection = None if spaces.phase.write is not None else state.keys.write
            else:
                state = spaces.get(SPACE_OF_LEVEL[level])
                protection = None if state is None else state.keys.write
            if (
                protection is None
                or state is None
                or not (paced or self._level_has_data(level, state, now, blocked, paced))
            ):
                continue
            if not self._open_packet(builder, level, state, protection, None):
                break
            self._write_packet(builder, level, state, blocked)
            if self.end_packet(builder, level, state):
                wrote_handshake = wrote_handshake or level is _HANDSHAKE
        datagram = builder.finish(MIN_INITIAL_DATAGRAM_SIZE if builder.padding_required else 0)
        if not datagram:
            return b""
        self.after_datagram(builder, datagram, path, now, _DATA)
        if wrote_handshake and self._is_client:
            # RFC 9001 §4.9.1: a client discards Initial keys when it first sends a Handshake packet.
            self._handshake.discard(EncryptionLevel.INITIAL)
        return datagram

    def _level_has_data(
        self,
        level: EncryptionLevel,
        state: PacketNumberSpace,
        now: float,
        blocked: bool,
        paced_known: bool | None = None,
    ) -> bool:
        if paced_known:
            return True
        if level != _EARLY and state.ack.ack_needed(now):
            return True
        if state.probes:
            return True
        if level == _APP and self._paths.has_data():
            return True
        if paced_known is not None or blocked:
            return False
        # The level's paced sources in priority order (as :meth:`_write_packet` asks them), plain
        # loops: no generator frame per packet.
        if level is _EARLY:
            sources = self._early_sources
        elif state.crypto_send.unsent:
            return True
        elif level is _APP:
            sources = self._app_sources
        else:
            return False
        for source in sources:  # noqa: SIM110
            if source.has_data():
                return True
        return False

    def _has_paced_data(self, states: Iterable[PacketNumberSpace] | None = None) -> bool:
        # Asked for every datagram: stream data (the usual answer while busy) first, plain loops.
        # ``states``: the spaces whose CRYPTO data to ask (all in use by default).
        if self._streams.has_data_to_send():
            return True
        for source in self._other_app_sources:  # the streams were asked just above
            if source.has_data():
                return True
        # Plain loops: no generator frame per datagram.
        for state in self._spaces if states is None else states:  # noqa: SIM110
            if state.crypto_send.unsent:
                return True
        return False

    def _ack_needed(self, now: float, states: Iterable[PacketNumberSpace]) -> bool:
        """True if one of ``states`` owes an ACK now."""
        for state in states:  # noqa: SIM110 (no generator frame per datagram)
            if state.ack.ack_needed(now):
                return True
        return False

    def _write_packet(
        self, builder: DatagramBuilder, level: EncryptionLevel, state: PacketNumberSpace, blocked: bool
    ) -> None:
        """The one loop over a packet's frame sources; then a PING if a probe is owed and nothing in
        the packet elicits an ACK (RFC 9002 §6.2.4), or if an ACK-only packet needs one (§13.2.4)."""
        answering = level is _APP and state.ack.answers_flow  # read before the ACK is written
        if state.probes and level in _HANDSHAKE_LEVELS:
            # RFC 9002 §6.2.4: a probe carries data, and each of the two may be the one that arrives:
            # every probe of a handshake space carries the unacknowledged CRYPTO data (a peer may
            # refuse a first Initial without the ClientHello, RFC 9000 §17.2.2).
            state.crypto_send.requeue_unacked()
        # The sources in priority order: ACK first, then (1-RTT) path frames, which the congestion
        # window does not hold back (RFC 9000 §8.2.2, §9.4); then the paced ones: CRYPTO, then the
        # level's others (RFC 9001 §4.6.1: a 0-RTT packet has no ACK and no CRYPTO).
        if level is not _EARLY:
            ack = state.ack
            if ack.has_data():
                ack.write_frames(builder)
            if level is _APP:
                paths = self._paths
                if paths.has_data() or paths.current.validation_deadline is not None:
                    paths.write_frames(builder)  # (a validation: a challenge in each datagram)
        if not blocked or state.probes:
            if level is _EARLY:
                sources = self._early_sources
            else:
                crypto = state.crypto_send
                if crypto.unsent:
                    crypto.write_frames(builder)
                sources = self._app_sources if level is _APP else ()
            for source in sources:
                if source.has_data():
                    source.write_frames(builder)
        if builder.remaining < 1 or builder.sent_is_ack_eliciting():
            state.take_probe()
            return
        if state.take_probe() or (level == _APP and self.ack_only_needs_ping(answering)):
            # A lost PING that kept our PTO armed is replaced (AckTracker.on_keepalive_delivery).
            builder.push_frame(Ping(), state.ack.on_keepalive_delivery if level == _APP else None)

    def ack_only_needs_ping(self, answering: bool) -> bool:
        """RFC 9000 §13.2.4: an endpoint that only acknowledges a flow of data makes an ACK-only packet
        ack-eliciting whenever none of its packets is in flight (about once per round trip).

        The PTO then stays armed, so a receiver whose NAT rebound, and whose first datagrams from the
        new address were lost, probes from there instead of waiting in silence (the peer can no longer
        reach it). Only an ACK that answers a flow (``answering``: two ack-eliciting packets, or one
        with data, :attr:`AckTracker.answers_flow`) gets the PING: a lone PING is answered by a plain
        ACK, so two endpoints never ping-pong. An ACK of a single data packet counts too: with fewer
        (the delayed ACK of the last packet of a burst), the one ACK from a new address was often
        the only packet the server could have learnt it from, and it was not ack-eliciting.
        """
        return answering and self._recovery.ack_eliciting_in_flight(_APPLICATION_SPACE) == 0

    def may_send_new(self, path: Path, size: int, now: float, in_train: bool = False) -> bool:
        """True if the congestion window and the pacer (RFC 9002 §7.7) allow new data now (``in_train``:
        for a packet after the first of a train, whose pacer answer :meth:`Pacer.allows_again` gives)."""
        if not self._recovery.can_send(size):
            return False
        congestion = path.congestion
        pacer = congestion.pacer
        ask = pacer.allows_again if in_train else pacer.allows
        if ask(now, size, congestion.controller, congestion.rtt):
            return True
        # Arm the pacing deadline (only asked when something is waiting, so an idle connection sleeps).
        self.pacing_blocked = True
        return False

    def note_pacing_blocked(self) -> None:
        """A train found data the pacer held back: arm the pacing deadline (:meth:`next_deadline`)."""
        self.pacing_blocked = True

    # -- packets --------------------------------------------------------------------------------------

    def start_packet(
        self, builder: DatagramBuilder, level: EncryptionLevel, *, dcid: bytes | None = None
    ) -> bool:
        """Open a packet of ``level`` in ``builder`` with the next packet number of its space (a 1-RTT
        packet to ``dcid`` when given: a probed path's own CID, RFC 9000 §9.5)."""
        protection: PacketProtection | None = self._spaces.write_keys(level)
        state = self._spaces.get(SPACE_OF_LEVEL[level])
        if protection is None or state is None:
            return False
        return self._open_packet(builder, level, state, protection, dcid)

    def _open_packet(
        self,
        builder: DatagramBuilder,
        level: EncryptionLevel,
        state: PacketNumberSpace,
        protection: PacketProtection,
        dcid: bytes | None,
    ) -> bool:
        """:meth:`start_packet` once the level's space and write keys are known."""
        if level is _APP:
            # RFC 9000 §17.3.1: a short header is the first byte (with the key phase, RFC 9001 §6)
            # and the DCID.
            first_byte = FIXED_BIT | (KEY_PHASE_BIT if self._spaces.phase.key_phase else 0)
            prefix = self._peer_cids.current.cid if dcid is None else dcid
        else:
            # RFC 9000 §17.2: a long header's first byte (its packet type) and what follows it up to
            # the Length field: version, DCID and SCID with their lengths, and an Initial's token.
            version = self._spaces.version
            first_byte = long_first_byte(TYPE_OF_LEVEL[level], version)
            if dcid is not None:
                prefix = dcid
            else:
                active = self._local_cids.active
                prefix = long_header_prefix(
                    version,
                    self._peer_cids.current.cid,
                    active[0].cid if 0 in active else b"",
                    self._handshake.initial_token if level is _INITIAL else None,
                )
        space = state.id
        return builder.start_packet(
            space=space,
            protection=protection,
            first_byte=first_byte,
            prefix=prefix,
            is_long=level is not _APP,
            packet_number=state.next_pn,
            largest_acked=self._recovery.largest_acked(space),
        )

    def end_packet(
        self, builder: DatagramBuilder, level: EncryptionLevel, state: PacketNumberSpace | None = None
    ) -> bool:
        """Close the open packet; False if it was empty (its packet number stays unused)."""
        sent = builder.end_packet()
        if sent is None:
            return False
        if level is _INITIAL and (self._is_client or sent.ack_eliciting):
            builder.padding_required = True  # RFC 9000 §14.1: Initial datagrams are full-size (inline)
        if state is None:
            self.advance(level, sent.packet_number)
            return True
        state.advance()  # (advance, inline: once per packet)
        if level is _APP:
            self._spaces.phase.on_packet_sent(sent.packet_number)
        return True

    def advance(
        self, level: EncryptionLevel, packet_number: int, state: PacketNumberSpace | None = None
    ) -> None:
        # The space moves past the number (skipping one now and then, RFC 9000 §21.4); the first 1-RTT
        # packet of a key phase is remembered (RFC 9001 §6.1).
        if state is None:
            state = self._spaces.get(SPACE_OF_LEVEL[level])
        if state is not None:
            state.advance()
        if level is _APP:
            self._spaces.phase.on_packet_sent(packet_number)

    # -- the one after-send hook ----------------------------------------------------------------------

    def after_datagram(
        self, builder: DatagramBuilder, datagram: bytes, path: Path, now: float, kind: Sent
    ) -> None:
        """Bookkeeping for every datagram about to leave, whatever it carries: recovery, idle timer,
        ECN, qlog, the pacer, the path's anti-amplification budget (RFC 9000 §8.1) and the statistics.

        A PMTU probe is not charged to the pacer: it may be far larger than the pacer's burst, and the
        gap it would open behind it would drain the bottleneck queue and fool delay-based congestion
        control (HyStart++) into seeing the RTT fall. Its bytes count everywhere else.
        """
        packets = builder.sent_packets()
        size = len(datagram)
        if kind is _DATA and size > path.pmtud.base:
            # Watch large datagrams: if they alone keep getting lost, the path shrank (black hole).
            packets[-1].handlers.append(path.pmtud.large_handler)
        if path is self._paths.current:
            path.ecn.on_datagram_sent(packets, self.ecn_marking)  # RFC 9000 §13.4.2
        in_flight = eliciting = False
        for sent in packets:
            in_flight = in_flight or sent.in_flight
            eliciting = eliciting or sent.ack_eliciting
            self._recovery.on_packet_sent(sent)
        self._liveness.on_datagram_sent(now, ack_eliciting=eliciting)
        qlog = self._qlog
        if qlog.records:  # only a recording log has anything to write (NullQlog's hook is a no-op)
            qlog.packets_sent(builder, now)
        if in_flight and kind is not _PMTU_PROBE:
            path.congestion.pacer.on_sent(size, now)
        path.on_datagram_sent(size)
        self._traffic.on_sent(size)


__all__ = ["MAX_DATAGRAMS_PER_CALL", "Sender"]

