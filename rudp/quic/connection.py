"""QuicConnection: the sans-IO QUIC connection (RFC 9000, 9001, 9002) — public API and orchestration.

Inputs: :meth:`receive_datagram` and :meth:`handle_timer`. Commands: :meth:`open_stream`,
:meth:`send_stream`, :meth:`read_stream`, :meth:`reset_stream`, :meth:`stop_sending`,
:meth:`send_datagram`, :meth:`ping`, :meth:`close`. Outputs, after every input or command, in this
order: :meth:`datagrams_to_send`, :meth:`next_timer`, :meth:`next_event`.

Nothing here does I/O or reads a clock: ``now`` (seconds, the caller's monotonic clock) is passed in.
Receiving lives in :mod:`rudp.quic.receiving`, packet assembly in :mod:`rudp.quic.sending`, the TLS
glue in :mod:`rudp.quic.handshake`; this module holds state, the API and the close/idle logic.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography import x509

from rudp.codec.frames import ConnectionClose
from rudp.config import Config
from rudp.crypto.suites import CipherSuite
from rudp.errors import ConnectionClosed, DatagramError, RudpError, TransportError
from rudp.quic.ecn import ECT_0, NOT_ECT, EcnState
from rudp.quic.events import ConnectionTerminated, Event
from rudp.quic.preferred import Migration
from rudp.quic.receiving import ReceiveMixin
from rudp.quic.sending import SendMixin
from rudp.quic.sent import PacketSpace
from rudp.quic.spaces import CRYPTO_LEVEL_OF_SPACE
from rudp.quic.state import MIN_SENDABLE_BYTES, Address, State
from rudp.quic.stats import ConnectionStats
from rudp.quic.timers import Timer, TimerTable
from rudp.tls.config import TlsConfig
from rudp.tls.engine import EncryptionLevel

PROBE_DATA_BYTES = 1000
"""Stream bytes a PTO probe re-sends when there is no new data (fits any probe packet)."""
BLACK_HOLE_PTO_COUNT = 2
"""Consecutive PTOs after which large datagrams are suspected of vanishing (PMTU black hole)."""


class QuicConnection(ReceiveMixin, SendMixin):
    """One QUIC connection, client or server, as a pure state machine.

    Create clients with :meth:`client`; servers are created by :class:`~rudp.quic.endpoint.QuicEndpoint`
    (or :meth:`server`) from the client's first Initial packet.
    """

    @classmethod
    def client(
        cls,
        config: Config,
        *,
        server_address: Address,
        now: float,
        server_name: str | None = None,
        tls_config: TlsConfig | None = None,
        token: bytes = b"",
    ) -> QuicConnection:
        """Create a client connection and start its handshake (the first flight is ready to send).

        ``token`` is an address token from the server's NEW_TOKEN frame on an earlier connection: its
        Initial carries it, so a server under load need not ask for a Retry (RFC 9000 §8.1.3).

        Raises:
            ConfigError: for an invalid TLS configuration (e.g. verification on without a server name).
        """
        tls = tls_config or config.tls_config(is_client=True, server_name=server_name)
        conn = cls(config, tls, is_client=True, peer_address=server_address, now=now, version=config.version)
        conn._token = token
        conn._start_client(now)
        return conn

    @classmethod
    def server(
        cls,
        config: Config,
        tls_config: TlsConfig,
        *,
        client_address: Address,
        original_dcid: bytes,
        client_scid: bytes,
        version: int,
        now: float,
        local_cid: bytes | None = None,
        retry_source_cid: bytes | None = None,
        reset_key: bytes | None = None,
        address_validated: bool = False,
    ) -> QuicConnection:
        """Create a server connection for a client whose first Initial carried ``original_dcid``.

        ``retry_source_cid`` is set when the client came back after our Retry (then the address is
        validated and the transport parameters must say so, RFC 9000 §7.3).
        """
        conn = cls(
            config,
            tls_config,
            is_client=False,
            peer_address=client_address,
            now=now,
            version=version,
            local_cid=local_cid,
            reset_key=reset_key,
        )
        conn._start_server(original_dcid, client_scid, retry_source_cid, address_validated, now)
        return conn

    # -- commands ------------------------------------------------------------------------------------

    def set_activity_callback(self, callback: Callable[[], None] | None) -> None:
        """Have ``callback`` called after every command (an endpoint uses it to flush only the
        connections that changed)."""
        self._activity = callback

    def _touched(self) -> None:
        if self._activity is not None:
            self._activity()

    def open_stream(self, *, bidirectional: bool = True) -> int:
        """Open a new stream and return its ID.

        Raises:
            StreamLimitReached: the peer's MAX_STREAMS limit is reached (wait for StreamsAvailable).
            ConnectionClosed: the connection is closing or closed.
        """
        self._check_open()
        self._touched()
        return self._streams.open_stream(bidirectional)

    def send_stream(self, stream_id: int, data: bytes | memoryview, *, fin: bool = False) -> int:
        """Queue ``data`` on a stream; return how many bytes were accepted (bounded send buffer).

        Raises:
            StreamStateError: unknown or receive-only stream, or writing after FIN or reset.
            ConnectionClosed: the connection is closing or closed.
        """
        self._check_open()
        self._touched()
        return self._streams.send(stream_id, data, fin)

    def read_stream(self, stream_id: int, max_bytes: int = -1) -> bytes:
        """Read in-order data from a stream (consuming it returns flow-control credit to the peer).

        Raises:
            StreamStateError: unknown or send-only stream.
        """
        self._touched()
        return self._streams.read(stream_id, max_bytes)

    def stream_at_eof(self, stream_id: int) -> bool:
        """True when all of a stream's data and its FIN have been read."""
        return self._streams.at_eof(stream_id)

    def stream_send_budget(self, stream_id: int) -> int:
        """Free send-buffer bytes of a stream (0 means ``send_stream`` would accept nothing now)."""
        return self._streams.send_budget(stream_id)

    def reset_stream(self, stream_id: int, code: int) -> None:
        """Abandon sending on a stream with RESET_STREAM carrying application error ``code``."""
        self._check_open()
        self._touched()
        self._streams.reset(stream_id, code)

    def stop_sending(self, stream_id: int, code: int) -> None:
        """Ask the peer to stop sending on a stream (STOP_SENDING with ``code``)."""
        self._check_open()
        self._touched()
        self._streams.stop_sending(stream_id, code)

    def send_datagram(self, data: bytes) -> None:
        """Queue an unreliable datagram (RFC 9221).

        Raises:
            DatagramError: datagrams are not enabled on both sides, or ``data`` is too large.
            ConnectionClosed: the connection is closing or closed.
        """
        self._check_open()
        limit = self._peer_max_datagram_frame_size()
        if limit is None:
            raise DatagramError.not_enabled()
        if len(data) + 4 > min(limit, self._max_datagram_size - 64):
            raise DatagramError.too_large(len(data), min(limit, self._max_datagram_size - 64) - 4)
        self._datagram_queue.append(bytes(data))
        self._touched()

    def send_new_token(self, token: bytes) -> None:
        """(server) Give the client an address token for its future connections (NEW_TOKEN, RFC 9000
        §8.1.3); sent in 1-RTT once the handshake is complete, again if lost.

        Raises:
            RudpError: called on a client, or with an empty token (§19.7).
        """
        if self.is_client or not token:
            raise RudpError("only a server sends NEW_TOKEN, and the token must not be empty")
        if self._is_active():
            self._control.send_new_token(token)
            self._touched()

    def ping(self) -> int:
        """Send a PING; the returned id comes back in a :class:`~rudp.quic.events.PingAcknowledged`."""
        self._check_open()
        uid = self._control.ping()
        self._touched()
        return uid

    @property
    def can_migrate(self) -> bool:
        """True when :meth:`migrate` may be called: an established client with a confirmed handshake."""
        return self.is_client and self._handshake_confirmed and self._state is State.ESTABLISHED

    def migrate(self, now: float) -> None:
        """The client moved to a new local address (its caller rebound the socket): switch paths.

        RFC 9000 §9: uses a fresh connection ID of the server when one is spare (§9.5, so the paths
        cannot be linked), validates the new path with PATH_CHALLENGE (§8.2) and restarts congestion
        control on it (§9.4). The server follows on its own when packets arrive from the new address.

        Raises:
            RudpError: called on a server, or before the handshake is confirmed (§9: no migration
                before that).
        """
        if not self.can_migrate:
            raise RudpError("migration needs an established client connection with a confirmed handshake")
        self._migration.check_migrate()  # RFC 9000 §9: disable_active_migration, preferred address
        self._last_input_at = max(self._last_input_at, now)
        self._peer_cids.rotate()
        self._paths.revalidate(now, self._pto())
        # RFC 9000 §9.4: a new local address is a new network path for congestion control.
        self._congestion.on_path_change(now)
        self._recovery.on_path_change()
        self._touched()

    def request_key_update(self) -> bool:
        """Start a 1-RTT key update (RFC 9001 §6); False if one cannot start yet."""
        if (
            self._state is not State.ESTABLISHED
            or not self._handshake_confirmed
            or not self._keys.can_update()
        ):
            return False
        self._keys.update()
        self._touched()
        return True

    def close(
        self, code: int = 0, reason: str = "", *, application: bool = True, now: float | None = None
    ) -> None:
        """Close the connection with CONNECTION_CLOSE; idempotent.

        The connection enters the closing state (RFC 9000 §10.2.1) for three PTOs and then reports
        :class:`~rudp.quic.events.ConnectionTerminated`-ended ``is_closed``.
        """
        if self._state in (State.CLOSING, State.DRAINING, State.CLOSED):
            return
        self._enter_closing(
            ConnectionClose(code, reason.encode("utf-8", "replace")[:1000], 0, application),
            self._last_input_at if now is None else now,
        )
        self._touched()

    # -- inputs and outputs ---------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float, ecn: int = 0) -> None:
        """Process one UDP datagram received from ``addr`` at ``now``.

        ``ecn`` is the ECN codepoint of its IP header (0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE): each QUIC
        packet of the datagram counts once in its space's ACK_ECN counts (RFC 9000 §13.4.1).

        Never raises for bad input: undecryptable packets are dropped (RFC 9001 §5.5), protocol
        violations close the connection with the matching error code.
        """
        self._last_input_at = max(self._last_input_at, now)
        self._receive_datagram(data, addr, now, ecn)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Return the datagrams to send now, each with its destination address.

        Send them with the ECN codepoint :attr:`ecn_codepoint` reports right after this call.
        """
        self._last_input_at = max(self._last_input_at, now)
        if self._migration.active:  # RFC 9000 §9.6.1: probe the preferred address, move when valid
            confirmed = self._handshake_confirmed and self._state is State.ESTABLISHED
            moved = self._migration.poll(
                now, self._paths, self._peer_cids, confirmed=confirmed, pto=self._pto()
            )
            if moved is not None:
                self._on_peer_moved(moved, now)
        self._migration.log_path_changes(self._paths, self._qlog, now)
        self._ecn_marking = self._paths.current.ecn.marking
        return self._datagrams_to_send(now)

    @property
    def migration(self) -> Migration:
        """The server's preferred address and this connection's move to it (RFC 9000 §9.6)."""
        return self._migration

    @property
    def ecn_codepoint(self) -> int:
        """The ECN codepoint for the datagrams the last :meth:`datagrams_to_send` returned: ECT(0) (2)
        while the path's ECN is being tested or was validated (RFC 9000 §13.4.2), else Not-ECT (0)."""
        return ECT_0 if self._ecn_marking else NOT_ECT

    @property
    def ecn_state(self) -> EcnState:
        """The current path's ECN validation state (RFC 9000 Appendix A.4)."""
        return self._paths.current.ecn.state

    def next_timer(self) -> float | None:
        """The earliest deadline at which :meth:`handle_timer` must be called, or None."""
        self._qlog.sync(
            self._last_input_at, self._state.value, self._handshake_confirmed, self._recovery, self._pacer
        )
        return self._deadlines().next_deadline()

    def next_event(self) -> Event | None:
        """Pop the next application event, or None."""
        self._collect_subsystem_events()
        return self._events.popleft() if self._events else None

    def handle_timer(self, now: float) -> None:
        """Process every timer due at ``now``."""
        self._last_input_at = max(self._last_input_at, now)
        for timer in self._deadlines().expired(now):
            try:
                self._on_timer(timer, now)
            except TransportError as exc:
                self._on_local_error(exc, now)
            if self.is_closed:
                return

    def local_cids(self) -> list[bytes]:
        """The connection IDs the peer may address us with (for an endpoint's routing table)."""
        return self._local_cids.all_cids()

    def peer_reset_tokens(self) -> tuple[bytes, ...]:
        """The peer's stateless reset tokens in force (for an endpoint that must recognise a reset in
        a datagram it cannot route, RFC 9000 §10.3.1)."""
        return self._peer_cids.reset_tokens()

    @property
    def peer_reset_tokens_generation(self) -> int:
        """Changes whenever :meth:`peer_reset_tokens` does: an endpoint re-reads them only then."""
        return self._peer_cids.reset_token_generation

    def abandon(self, reason: str, now: float) -> None:
        """End the connection at once and send nothing, as an idle timeout does (RFC 9000 §10.1): for
        an endpoint dropping a handshake that did not complete in time."""
        if self._state is not State.CLOSED:
            self._terminate(ConnectionTerminated(0, reason, False, False), now, silent=True)
            self._touched()

    def drain_cid_changes(self) -> list[tuple[bool, bytes]]:
        """CIDs issued (True) or retired (False) since the last call, for the endpoint's routing."""
        changes = list(self._local_cids.changes)
        self._local_cids.changes.clear()
        return changes

    @property
    def state(self) -> State:
        """The lifecycle state (handshake, established, closing, draining, closed)."""
        return self._state

    @property
    def handshake_complete(self) -> bool:
        """True once the TLS handshake completed."""
        return self._handshake_complete

    @property
    def handshake_confirmed(self) -> bool:
        """True once the handshake is confirmed (RFC 9001 §4.1.2)."""
        return self._handshake_confirmed

    @property
    def alpn_protocol(self) -> str | None:
        """The negotiated ALPN protocol (None before the handshake)."""
        return None if self._tls is None else self._tls.alpn_protocol

    @property
    def cipher_suite(self) -> CipherSuite | None:
        """The negotiated TLS cipher suite."""
        return None if self._tls is None else self._tls.cipher_suite

    @property
    def session_resumed(self) -> bool:
        """True when the handshake resumed a session from a ticket."""
        return self._tls is not None and self._tls.session_resumed

    @property
    def early_data_attempted(self) -> bool:
        """(client) True when a ticket allowed 0-RTT and early data keys were installed."""
        return self._early_data_offered

    @property
    def early_data_accepted(self) -> bool:
        """True when 0-RTT data was accepted by the server."""
        return self._tls is not None and self._tls.early_data_accepted

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The certificate the peer presented (the server's; a client's only with mutual TLS)."""
        return None if self._tls is None else self._tls.peer_certificate

    @property
    def destination_cid(self) -> bytes:
        """The peer's connection ID our packets carry now (changes on migration, RFC 9000 §9.5)."""
        return self._peer_cids.current.cid

    @property
    def close_cause(self) -> ConnectionTerminated | None:
        """Why the connection ended (None while it is alive)."""
        return self._close_cause

    @property
    def is_closed(self) -> bool:
        """True once the connection is fully closed (no more timers, no more datagrams)."""
        return self._state is State.CLOSED

    @property
    def stats(self) -> ConnectionStats:
        """A snapshot of the connection's statistics."""
        return self._stats_snapshot()

    # -- internals ----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state in (State.CLOSING, State.DRAINING, State.CLOSED):
            cause = self._close_cause
            if cause is not None:
                raise ConnectionClosed(
                    cause.code, cause.reason, by_peer=cause.by_peer, application=cause.application
                )
            raise ConnectionClosed(0, "connection closed")

    def _on_timer(self, timer: Timer, now: float) -> None:
        if timer is Timer.IDLE:
            self._terminate(ConnectionTerminated(0, "idle timeout", False, False), now, silent=True)
        elif timer is Timer.CLOSE:
            self._closed()
        elif timer is Timer.LOSS_DETECTION:
            self._on_loss_timer(now)
        elif timer is Timer.KEEPALIVE:
            if self._state is State.ESTABLISHED:
                self._control.keepalive()
        elif timer is Timer.KEY_DISCARD:
            self._keys.discard_previous()
        elif timer is Timer.PATH_VALIDATION:
            self._paths.on_timer(now)  # RFC 9000 §9.3.2: may fall back to the last validated path
        # ACK_DELAY and PACING only make datagrams_to_send() produce something.

    def _deadlines(self) -> TimerTable:
        """Every timer's deadline as its owner reports it now: computed on each call, never stored,
        so no code elsewhere arms or forgets a timer."""
        timers = TimerTable()
        if self._state is State.CLOSED:
            return timers
        timers.set(Timer.CLOSE, self._closing.until)
        if self._state in (State.CLOSING, State.DRAINING):
            return timers
        allowance = self._amplification_allowance()
        if allowance is not None and allowance < MIN_SENDABLE_BYTES:
            # RFC 9002 §6.2.2.1: a server blocked by the anti-amplification limit arms no PTO (nor an
            # ACK timer it could not act on); the peer's next datagram unblocks it.
            timers.stop(Timer.LOSS_DETECTION)
            timers.stop(Timer.ACK_DELAY)
        else:
            timers.set(Timer.LOSS_DETECTION, self._recovery.loss_detection_deadline())
            ack_deadlines = [
                d for d in (s.ack.ack_deadline() for s in self._spaces.values()) if d is not None
            ]
            timers.set(Timer.ACK_DELAY, min(ack_deadlines) if ack_deadlines else None)
        timeout = self._idle_timeout()
        timers.set(Timer.IDLE, self._liveness.idle_deadline(timeout))
        if self._state is State.ESTABLISHED:
            timers.set(Timer.KEEPALIVE, self._liveness.keepalive_deadline(self._config.keepalive_interval))
        timers.set(Timer.PACING, self._pacing_deadline())
        timers.set(Timer.PATH_VALIDATION, self._paths.next_deadline())
        timers.set(Timer.KEY_DISCARD, self._keys.previous_read_until)
        return timers

    def _idle_timeout(self) -> float | None:
        # RFC 9000 §10.1: the smaller of the two non-zero values, and at least 3 PTOs.
        local = self._config.idle_timeout
        peer = self._peer_params.max_idle_timeout / 1000 if self._peer_params is not None else 0.0
        values = [v for v in (local, peer) if v > 0]
        if not values:
            return None
        return max(min(values), 3 * self._pto())

    def _on_loss_timer(self, now: float) -> None:
        request = self._recovery.on_loss_detection_timeout(now)
        if request is None:
            return
        space = request.space
        level = None if space is PacketSpace.APPLICATION else CRYPTO_LEVEL_OF_SPACE[space]
        if level is not None and level not in self._keys.write:
            # The anti-deadlock probe may name a space whose keys are gone: use the next one.
            space, level = PacketSpace.HANDSHAKE, EncryptionLevel.HANDSHAKE
            if level not in self._keys.write:
                return
        if (
            space is PacketSpace.APPLICATION
            and self._recovery.pto_count >= BLACK_HOLE_PTO_COUNT
            and self._max_datagram_size > self._base_datagram_size
        ):
            # RFC 8899 §4.3: consecutive PTOs with large packets may mean the path no longer carries
            # them; probe (and continue) with base-size packets, and search again later.
            self._pmtud.on_black_hole()
        state = self._spaces.get(space)
        if state is None:
            return
        state.probes = request.count
        if space is PacketSpace.APPLICATION and not self._streams.has_data_to_send():
            # RFC 9002 §6.2.4: probes should carry the oldest unacknowledged data, not only a PING,
            # so a lost tail is repaired by the probe itself, one round trip sooner.
            self._streams.requeue_for_probe(PROBE_DATA_BYTES)
        if level is not None:
            # RFC 9002 §6.2.4: probes carry unacknowledged handshake data when there is some.
            state.crypto_send.requeue_unacked()

    def _pacing_deadline(self) -> float | None:
        # RFC 9002 §7.7: the pacer held data back; wake up when its bucket allows the next packet.
        if not self._pacing_blocked:
            return None
        return self._pacer.next_send_at(self._max_datagram_size)

    def _stats_snapshot(self) -> ConnectionStats:
        recovery = self._recovery.stats()
        traffic = self._traffic
        ecn = self._paths.current.ecn
        return ConnectionStats(
            smoothed_rtt=self._rtt.smoothed_rtt,
            min_rtt=self._rtt.min_rtt,
            latest_rtt=self._rtt.latest_rtt,
            congestion_window=self._congestion.congestion_window,
            bytes_in_flight=self._recovery.bytes_in_flight,
            packets_sent=recovery.packets_sent,
            packets_lost=recovery.packets_lost,
            bytes_lost=recovery.bytes_lost,
            pto_count=recovery.total_ptos,
            datagrams_sent=traffic.datagrams_sent,
            datagrams_received=traffic.datagrams_received,
            bytes_sent=traffic.bytes_sent,
            bytes_received=traffic.bytes_received,
            packets_dropped=traffic.packets_dropped,
            key_updates=self._keys.key_updates,
            key_phase_packets=self._keys.usage.key_phase_packets(self._keys),
            forged_packets=self._keys.usage.forged,
            path_changes=self.path_changes,
            send_buffered_bytes=self._streams.send_buffered_bytes,
            recv_buffered_bytes=self._streams.recv_buffered_bytes,
            persistent_congestion_count=recovery.persistent_congestion_count,
            max_datagram_size=self._max_datagram_size,
            ecn_state=str(ecn.state),
            ecn_marked_sent=ecn.sent,
            ecn_received=self._ecn_feedback.totals(),
            ecn_peer_counts=tuple(sum(c[i] for c in self._ecn_feedback.peer.values()) for i in range(3)),
            ce_count=self._recovery.ce_count,
        )

    def _collect_subsystem_events(self) -> None:
        streams = self._streams.events
        while streams:
            self._events.append(streams.popleft())


__all__ = ["Address", "ConnectionStats", "QuicConnection", "State"]
