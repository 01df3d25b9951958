"""QuicConnection: the sans-IO QUIC connection (RFC 9000, 9001, 9002) — public API and orchestration.

Inputs: :meth:`receive_datagram` and :meth:`handle_timer`. Commands: :meth:`open_stream`,
:meth:`send_stream`, :meth:`read_stream`, :meth:`reset_stream`, :meth:`stop_sending`,
:meth:`send_datagram`, :meth:`ping`, :meth:`close`. Outputs, after every input or command, in this
order: :meth:`datagrams_to_send`, :meth:`next_timer`, :meth:`next_event`.

Nothing here does I/O or reads a clock: ``now`` (seconds, the caller's monotonic clock) is passed in and
never stored. The connection holds objects, each owning its state, and passes each its collaborators:
the :class:`~rudp.quic.state.Lifecycle`, the :class:`~rudp.quic.spaces.PacketSpaces` (with their keys),
the :class:`~rudp.quic.paths.Paths` (with their congestion controllers, RTT estimators and pacers), loss
recovery, the :class:`~rudp.quic.handshake.Handshake`, the :class:`~rudp.quic.receiving.Receiver`, the
:class:`~rudp.quic.sending.Sender` and the frame sources. Its timer is the minimum of their deadlines.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from functools import partial

from cryptography import x509

from rudp.codec.frames import ConnectionClose
from rudp.codec.packet import PacketHeader
from rudp.config import Config
from rudp.crypto.protection import PacketProtection
from rudp.crypto.suites import CipherSuite
from rudp.errors import DatagramError, RudpError, TransportError
from rudp.quic.ack_frequency import AckFrequency
from rudp.quic.cids import LocalConnectionIds, PeerConnectionIds
from rudp.quic.congestion.registry import resolve_congestion_controller
from rudp.quic.control import ControlFrames, DatagramQueue
from rudp.quic.deadlines import ConnectionDeadlines
from rudp.quic.ecn import ECT_0, NOT_ECT, EcnState
from rudp.quic.events import ConnectionTerminated, Event
from rudp.quic.handshake import Handshake
from rudp.quic.key_limits import KeyUsage
from rudp.quic.liveness import Liveness
from rudp.quic.pacing import Pacer
from rudp.quic.paths import Address, PathCongestion, Paths
from rudp.quic.preferred import Migration
from rudp.quic.qlog import NullQlog
from rudp.quic.qlog_trace import open_qlog
from rudp.quic.receiving import Receiver
from rudp.quic.recovery import LossRecovery
from rudp.quic.rtt import RttEstimator
from rudp.quic.sending import Sender
from rudp.quic.spaces import PacketSpaces
from rudp.quic.state import Lifecycle, State
from rudp.quic.stats import ConnectionStats, TrafficCounters
from rudp.quic.streams.manager import StreamManager
from rudp.quic.timers import Timer, TimerTable
from rudp.tls.config import TlsConfig

# Bound once (read on every flush): in Python 3.11 the enum metaclass's __getattr__ makes each
# ``State.X`` lookup cost about four global loads.
_CLOSED = State.CLOSED


def _new_path_congestion(config: Config, qlog: NullQlog) -> PathCongestion:
    """A fresh congestion controller, RTT estimator and pacer for a new network path (RFC 9000 §9.4)."""
    size = config.max_datagram_size
    controller = resolve_congestion_controller(config.congestion)(size)
    if type(qlog) is not NullQlog:  # (NullQlog.observe returns the controller itself: no call)
        controller = qlog.observe(controller)
    pacer = Pacer(size, enabled=config.pacing, granularity=config.timer_granularity)
    return PathCongestion(controller, RttEstimator(), pacer)


def _no_activity(_conn: QuicConnection) -> None:
    """What a command calls when no activity callback is set (a connection used on its own)."""


class QuicConnection:
    """One QUIC connection, client or server, as a pure state machine.

    Create clients with :meth:`client`; servers are created by :class:`~rudp.quic.endpoint.QuicEndpoint`
    (or :meth:`server`) from the client's first Initial packet."""

    def __init__(
        self,
        config: Config,
        tls_config: TlsConfig,
        *,
        is_client: bool,
        peer_address: Address,
        now: float,
        version: int,
        local_cid: bytes | None = None,
        reset_key: bytes | None = None,
    ) -> None:
        self._config = config
        self.is_client = is_client
        self._events: deque[Event] = deque()
        emit = self._events.append  # (one bound method for every subsystem that emits events)
        self._activity: Callable[[QuicConnection], None] = _no_activity  # called with this connection
        self._qlog = open_qlog(config, is_client=is_client)
        self._qlog_null = type(self._qlog) is NullQlog
        self._peer_cids = PeerConnectionIds(b"", config.active_connection_id_limit)
        # A client's path to the server needs no validation (RFC 9000 §8.1 limits servers only).
        self._paths = Paths(
            peer_address,
            validated=is_client,
            base_size=config.max_datagram_size,
            max_size=config.max_pmtu,
            pmtu_discovery=config.pmtu_discovery,
            new_congestion=partial(_new_path_congestion, config, self._qlog),  # (holds no connection)
            randbytes=config.randbytes,
            peer_cids=self._peer_cids,
            ecn=config.ecn,
        )
        cc, timeout = self._paths.current.congestion, config.handshake_timeout
        self._recovery = LossRecovery(cc.controller, cc.rtt, is_client=is_client, handshake_timeout=timeout)
        self._lifecycle = Lifecycle(emit, self._recovery.pto)
        self._spaces = PacketSpaces(
            version,
            config.randbytes,
            max_ack_delay=config.max_ack_delay,
            ack_delay_exponent=config.ack_delay_exponent,
            usage=KeyUsage(interval=config.key_update_interval, limits=config.aead_limits),
        )
        cid = local_cid if local_cid is not None else config.randbytes(config.connection_id_length)
        # (no reset_key: a client's, whose tokens are random, RFC 9000 §10.3)
        self._local_cids = LocalConnectionIds(cid, reset_key, config.randbytes, config.connection_id_length)
        local_params = config.local_transport_parameters()
        self._streams = StreamManager(
            is_client=is_client,
            local=local_params,
            max_stream_window=config.max_stream_window,
            max_connection_window=config.max_connection_window,
            send_buffer_bytes=config.send_buffer_bytes,
        )
        self._control = ControlFrames(emit)
        self._migration = Migration(config, is_client=is_client)
        """Preferred address (RFC 9000 §9.6), disable_active_migration, path-change qlog."""
        # RFC 9221 datagrams' queue, only when enabled (None: send_datagram refuses, nothing to send).
        self._datagram_queue = (
            DatagramQueue(max_age=config.datagram_max_age, share=config.datagram_share)
            if config.datagrams
            else None
        )
        self._liveness = Liveness(now)
        self._traffic = TrafficCounters()
        self._handshake = Handshake(
            is_client=is_client,
            preferred_versions=config.versions,
            tls_config=tls_config,
            local_params=local_params,
            randbytes=config.randbytes,
            spaces=self._spaces,
            recovery=self._recovery,
            paths=self._paths,
            streams=self._streams,
            local_cids=self._local_cids,
            peer_cids=self._peer_cids,
            control=self._control,
            migration=self._migration,
            lifecycle=self._lifecycle,
            qlog=self._qlog,
            emit=emit,
        )
        self._receiver = Receiver(
            is_client=is_client,
            short_dcid_length=config.connection_id_length,
            max_datagram_frame_size=local_params.max_datagram_frame_size,
            spaces=self._spaces,
            paths=self._paths,
            recovery=self._recovery,
            handshake=self._handshake,
            lifecycle=self._lifecycle,
            streams=self._streams,
            local_cids=self._local_cids,
            peer_cids=self._peer_cids,
            liveness=self._liveness,
            traffic=self._traffic,
            qlog=self._qlog,
            emit=emit,
            ack_frequency=AckFrequency(local_params.min_ack_delay, self._control.send_ack_frequency),
        )
        self._sender = Sender(
            is_client=is_client,
            spaces=self._spaces,
            paths=self._paths,
            recovery=self._recovery,
            handshake=self._handshake,
            lifecycle=self._lifecycle,
            streams=self._streams,
            sources=(self._control, self._local_cids, self._peer_cids, self._datagram_queue),
            liveness=self._liveness,
            traffic=self._traffic,
            qlog=self._qlog,
        )
        self._deadlines = ConnectionDeadlines(
            config,
            lifecycle=self._lifecycle,
            recovery=self._recovery,
            spaces=self._spaces,
            handshake=self._handshake,
            liveness=self._liveness,
            paths=self._paths,
            sender=self._sender,
        )
        """Every timer's deadline as its owner reports it now (computed on each call, never stored)."""

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
        conn._handshake.start_client(token, now)
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
        initial_read: PacketProtection | None = None,
    ) -> QuicConnection:
        """Create a server connection for a client whose first Initial carried ``original_dcid``.

        ``retry_source_cid`` is set when the client came back after our Retry (then the address is
        validated and the transport parameters must say so, RFC 9000 §7.3). ``initial_read``: the
        client's Initial keys the endpoint's admission check already built and opened the first
        Initial with (used only if they are the keys of this connection's Initial DCID and version).
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
        conn._handshake.start_server(
            original_dcid, client_scid, retry_source_cid, address_validated, now, initial_read
        )
        return conn

    # -- commands ------------------------------------------------------------------------------------

    def set_activity_callback(self, callback: Callable[[QuicConnection], None] | None) -> None:
        """Have ``callback(connection)`` called after every command (an endpoint uses it to flush only
        the connections that changed). The connection is an argument, not bound into the callback, so
        the two make no reference cycle (a connection then goes with its last reference, not at the
        next garbage collection)."""
        self._activity = callback if callback is not None else _no_activity

    def _touched(self) -> None:
        self._activity(self)

    def open_stream(self, *, bidirectional: bool = True) -> int:
        """Open a new stream and return its ID.

        Raises:
            StreamLimitReached: the peer's MAX_STREAMS limit is reached (wait for StreamsAvailable).
            ConnectionClosed: the connection is closing or closed.
        """
        self._lifecycle.check_open()
        self._activity(self)
        return self._streams.open_stream(bidirectional)

    def send_stream(self, stream_id: int, data: bytes | memoryview, *, fin: bool = False) -> int:
        """Queue ``data`` on a stream; return how many bytes were accepted (bounded send buffer).

        Raises:
            StreamStateError: unknown or receive-only stream, or writing after FIN or reset.
            ConnectionClosed: the connection is closing or closed.
        """
        self._lifecycle.check_open()
        self._activity(self)
        return self._streams.send(stream_id, data, fin)

    def read_stream(self, stream_id: int, max_bytes: int = -1) -> bytes:
        """Read in-order data from a stream (consuming it returns flow-control credit to the peer: the
        connection counts as touched only when a credit frame became due).

        Raises:
            StreamStateError: unknown or send-only stream.
        """
        return self._streams.read(stream_id, max_bytes, self._touched)

    def stream_at_eof(self, stream_id: int) -> bool:
        """True when all of a stream's data and its FIN have been read."""
        return self._streams.at_eof(stream_id)

    def stream_send_budget(self, stream_id: int) -> int:
        """Free send-buffer bytes of a stream (0 means ``send_stream`` would accept nothing now)."""
        return self._streams.send_budget(stream_id)

    def reset_stream(self, stream_id: int, code: int) -> None:
        """Abandon sending on a stream with RESET_STREAM carrying application error ``code``."""
        self._lifecycle.check_open()
        self._activity(self)
        self._streams.reset(stream_id, code)

    def stop_sending(self, stream_id: int, code: int) -> None:
        """Ask the peer to stop sending on a stream (STOP_SENDING with ``code``)."""
        self._lifecycle.check_open()
        self._activity(self)
        self._streams.stop_sending(stream_id, code)

    def send_datagram(self, data: bytes) -> None:
        """Queue an unreliable datagram (RFC 9221).

        Raises:
            DatagramError: datagrams are not enabled on both sides, or ``data`` is too large.
            ConnectionClosed: the connection is closing or closed.
        """
        self._lifecycle.check_open()
        queue = self._datagram_queue
        limit = self.peer_max_datagram_frame_size if queue is not None else None
        if queue is None or limit is None:
            raise DatagramError.not_enabled()
        room = min(limit, self._paths.current.pmtud.current - 64)
        if len(data) + 4 > room:
            raise DatagramError.too_large(len(data), room - 4)
        queue.append(bytes(data))
        self._activity(self)

    def send_new_token(self, token: bytes) -> None:
        """(server) Give the client an address token for its future connections (NEW_TOKEN, RFC 9000
        §8.1.3); sent in 1-RTT once the handshake is complete, again if lost.

        Raises:
            RudpError: called on a client, or with an empty token (§19.7).
        """
        if self.is_client or not token:
            raise RudpError("only a server sends NEW_TOKEN, and the token must not be empty")
        if self._lifecycle.is_active:
            self._control.send_new_token(token)
            self._activity(self)

    def ping(self) -> int:
        """Send a PING; the returned id comes back in a :class:`~rudp.quic.events.PingAcknowledged`."""
        self._lifecycle.check_open()
        uid = self._control.ping()
        self._activity(self)
        return uid

    @property
    def version(self) -> int:
        """The QUIC version in use (it may change once, by compatible version negotiation, RFC 9368)."""
        return self._spaces.version

    @property
    def can_migrate(self) -> bool:
        """True when :meth:`migrate` may be called: an established client with a confirmed handshake."""
        return self.is_client and self._handshake.confirmed and self._lifecycle.established

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
        self._tick(now)
        self._peer_cids.rotate()
        # RFC 9000 §9.4: a new local address is a new network path: fresh congestion control and RTT.
        self._paths.revalidate(now, self._recovery.pto())
        current = self._paths.current.congestion
        self._recovery.switch_path(current.controller, current.rtt)
        self._activity(self)

    def request_key_update(self) -> bool:
        """Start a 1-RTT key update (RFC 9001 §6); False if one cannot start yet."""
        phase = self._spaces.phase
        if not self._lifecycle.established or not self._handshake.confirmed or not phase.can_update():
            return False
        phase.update()
        self._activity(self)
        return True

    def close(
        self, code: int = 0, reason: str = "", *, application: bool = True, now: float | None = None
    ) -> None:
        """Close the connection with CONNECTION_CLOSE; idempotent.

        The connection enters the closing state (RFC 9000 §10.2.1) for three PTOs and then reports
        :class:`~rudp.quic.events.ConnectionTerminated`-ended ``is_closed``. Without ``now`` the closing
        period starts at the next call that carries the time (normally :meth:`datagrams_to_send`, which
        sends the CONNECTION_CLOSE): the connection keeps no clock of its own.
        """
        if not self._lifecycle.is_active:
            return
        frame = ConnectionClose(code, reason.encode("utf-8", "replace")[:1000], 0, application)
        self._lifecycle.close(frame, now)
        self._activity(self)

    # -- inputs and outputs ---------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        """Every call that carries the time starts with this (a pending closing period begins)."""
        self._lifecycle.tick(now)
        queue = self._datagram_queue
        if queue is not None:  # (None without datagrams: send_datagram refuses)
            queue.tick(now)  # RFC 9221 §5: stamp new datagrams, drop expired ones

    def _sync_qlog(self, now: float) -> None:
        """Log the lifecycle and recovery metrics that changed, at the time of the call that changed
        them (only calls that carry the time log)."""
        if self._qlog_null:
            return  # nothing to log (the hooks of NullQlog do nothing)
        current = self._paths.current.congestion
        state = self._lifecycle.state.value
        self._qlog.sync(now, state, self._handshake.confirmed, self._recovery, current.pacer)

    def receive_datagram(
        self, data: bytes, addr: Address, now: float, ecn: int = 0, *, local: Address | None = None,
        header: PacketHeader | None = None,
    ) -> None:
        """Process one UDP datagram received from ``addr`` at ``now``.

        ``ecn`` is the ECN codepoint of its IP header (0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE): each QUIC
        packet of the datagram counts once in its space's ACK_ECN counts (RFC 9000 §13.4.1).
        ``local`` is the local address it arrived at, for an endpoint listening on several (a server's
        preferred address, RFC 9000 §9.6); None: the main one. Each (peer, local) pair is a path of
        its own (§9), with its own peer connection ID (§9.5); :attr:`datagram_sources` says where
        each datagram must leave from. ``header``: the first packet's long header, if the endpoint
        parsed it from ``data`` already. Never raises for bad input: undecryptable packets are dropped
        (RFC 9001 §5.5), protocol violations close the connection with the matching error code.
        """
        self._tick(now)
        self._receiver.receive_datagram(data, addr, now, ecn, local, header)
        self._sync_qlog(now)

    def receive_datagrams(
        self,
        datagrams: Sequence[tuple[bytes | memoryview, Address, int]],
        now: float,
        local: Address | None = None,
    ) -> None:
        """Process several datagrams that arrived together (one socket wake-up, at ``now``), each as
        ``(data, peer address, ECN codepoint)``: exactly as :meth:`receive_datagram` on each in turn
        (the same checks, in the same order), with the per-call work (the clock tick, the qlog sync)
        done once for the batch. ``data`` may be a view into a larger receive buffer: it is read during
        the call only (what must outlive it is copied)."""
        self._tick(now)
        self._receiver.receive_datagrams(datagrams, now, local)
        self._sync_qlog(now)

    @property
    def datagram_sources(self) -> list[Address | None] | None:
        """For the datagrams the last :meth:`datagrams_to_send` returned, the local address each leaves
        from (the ``local`` its path's packets arrive at; None: the main address), or None when all
        leave from the main address."""
        return self._sender.sources

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Return the datagrams to send now, each with its destination address.

        Send them with the ECN codepoint :attr:`ecn_codepoint` reports right after this call.
        """
        self._tick(now)
        if self._migration.active:
            self._follow_preferred_address(now)
        if self._qlog_null:  # nothing to log (asked per flush): the qlog hooks are not called
            return self._sender.datagrams_to_send(now)
        self._migration.log_path_changes(self._paths, self._qlog, now)
        datagrams = self._sender.datagrams_to_send(now)
        self._sync_qlog(now)
        return datagrams

    def _follow_preferred_address(self, now: float) -> None:
        """RFC 9000 §9.6.1: probe the server's preferred address once the handshake is confirmed, and
        move there when it validates (a new network path: its own congestion state, §9.4)."""
        confirmed = self._handshake.confirmed and self._lifecycle.established
        pto = self._recovery.pto()
        moved = self._migration.poll(now, self._paths, self._peer_cids, confirmed=confirmed, pto=pto)
        if moved is not None:
            self._paths.on_peer_moved(moved, now, pto)
            current = self._paths.current.congestion
            self._recovery.switch_path(current.controller, current.rtt)

    @property
    def migration(self) -> Migration:
        """The server's preferred address and this connection's move to it (RFC 9000 §9.6)."""
        return self._migration

    @property
    def ecn_codepoint(self) -> int:
        """The ECN codepoint for the datagrams the last :meth:`datagrams_to_send` returned: ECT(0) (2)
        while the path's ECN is being tested or was validated (RFC 9000 §13.4.2), else Not-ECT (0)."""
        return ECT_0 if self._sender.ecn_marking else NOT_ECT

    @property
    def ecn_state(self) -> EcnState:
        """The current path's ECN validation state (RFC 9000 Appendix A.4)."""
        return self._paths.current.ecn.state

    def next_timer(self) -> float | None:
        """The earliest deadline at which :meth:`handle_timer` must be called, or None."""
        return self._deadlines.earliest()

    def next_event(self) -> Event | None:
        """Pop the next application event, or None."""
        streams = self._streams.events
        while streams:
            self._events.append(streams.popleft())
        return self._events.popleft() if self._events else None

    def handle_timer(self, now: float) -> None:
        """Process every timer due at ``now``."""
        self._tick(now)
        for timer in TimerTable(self._deadlines.collect()).expired(now):
            try:
                self._on_timer(timer, now)
            except TransportError as exc:
                self._lifecycle.on_local_error(exc, now)
            if self.is_closed:
                break
        self._sync_qlog(now)

    def local_cids(self) -> list[bytes]:
        """The connection IDs the peer may address us with (for an endpoint's routing table)."""
        cids = []
        for entry in self._local_cids.active.values():  # (a plain loop: no comprehension frame)
            cids.append(entry.cid)
        return cids

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
        if not self.is_closed:
            self._lifecycle.terminate(ConnectionTerminated(0, reason, False, False), now)
            self._sync_qlog(now)  # the final state, which closes the qlog file
            self._activity(self)

    def drain_cid_changes(self) -> list[tuple[bool, bytes]]:
        """CIDs issued (True) or retired (False) since the last call, for the endpoint's routing."""
        return self._local_cids.take_changes()

    def routing_key(self) -> tuple[int, int, bytes | None]:
        """Changes whenever :meth:`drain_cid_changes`, :meth:`peer_reset_tokens` or :attr:`new_token`
        have news for an endpoint's routing (asked per flush: one call, and those only then)."""
        generation = self._peer_cids.reset_token_generation
        return len(self._local_cids.changes), generation, self._handshake.new_token

    # -- read-only views ------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The lifecycle state (handshake, established, closing, draining, closed)."""
        return self._lifecycle.state

    @property
    def peer_address(self) -> Address:
        """The peer's address our packets go to (the current path's; changes when the peer moves)."""
        return self._paths.current.address

    @property
    def path_validation_failures(self) -> int:
        """Path validations that timed out (the peer's new address never answered)."""
        return self._paths.validation_failures

    @property
    def path_changes(self) -> int:
        """How many times the peer's address changed (migration or NAT rebinding)."""
        return self._paths.changes

    @property
    def original_dcid(self) -> bytes:
        """The Destination CID of the client's first Initial (RFC 9000 §7.3)."""
        return self._handshake.original_dcid

    @property
    def new_token(self) -> bytes | None:
        """(client) The last NEW_TOKEN from the server, for a future connection's Initial."""
        return self._handshake.new_token

    @property
    def handshake_complete(self) -> bool:
        """True once the TLS handshake completed."""
        return self._handshake.complete

    @property
    def handshake_deadline(self) -> float | None:
        """When the handshake gives up (:mod:`~rudp.quic.handshake_deadline`); None once complete."""
        return self._handshake.deadline(self._config.handshake_timeout)

    @property
    def handshake_confirmed(self) -> bool:
        """True once the handshake is confirmed (RFC 9001 §4.1.2)."""
        return self._handshake.confirmed

    @property
    def alpn_protocol(self) -> str | None:
        """The negotiated ALPN protocol (None before the handshake)."""
        tls = self._handshake.tls
        return None if tls is None else tls.alpn_protocol

    @property
    def cipher_suite(self) -> CipherSuite | None:
        """The negotiated TLS cipher suite."""
        tls = self._handshake.tls
        return None if tls is None else tls.cipher_suite

    @property
    def session_resumed(self) -> bool:
        """True when the handshake resumed a session from a ticket."""
        tls = self._handshake.tls
        return tls is not None and tls.session_resumed

    @property
    def early_data_attempted(self) -> bool:
        """(client) True when a ticket allowed 0-RTT and early data keys were installed."""
        return self._handshake.early_data_offered

    @property
    def early_data_accepted(self) -> bool:
        """True when 0-RTT data was accepted by the server."""
        tls = self._handshake.tls
        return tls is not None and tls.early_data_accepted

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The certificate the peer presented (the server's; a client's only with mutual TLS)."""
        tls = self._handshake.tls
        return None if tls is None else tls.peer_certificate

    @property
    def peer_max_datagram_frame_size(self) -> int | None:
        """The peer's max_datagram_frame_size transport parameter (RFC 9221 §3): None when it accepts
        no datagrams or its parameters are not known yet."""
        peer = self._handshake.peer_params
        return None if peer is None else peer.max_datagram_frame_size

    @property
    def queued_datagrams(self) -> int:
        """Datagrams queued by :meth:`send_datagram` and not sent (nor dropped) yet."""
        queue = self._datagram_queue
        return 0 if queue is None else len(queue)

    @property
    def datagrams_enabled(self) -> bool:
        """True when both sides enabled datagrams (``Config.datagrams`` and the peer's parameter)."""
        return self._config.datagrams and self.peer_max_datagram_frame_size is not None

    @property
    def destination_cid(self) -> bytes:
        """The peer's connection ID our packets carry now (changes on migration, RFC 9000 §9.5)."""
        return self._peer_cids.current.cid

    @property
    def close_cause(self) -> ConnectionTerminated | None:
        """Why the connection ended (None while it is alive)."""
        return self._lifecycle.cause

    @property
    def is_closed(self) -> bool:
        """True once the connection is fully closed (no more timers, no more datagrams)."""
        return self._lifecycle.state is _CLOSED

    @property
    def stats(self) -> ConnectionStats:
        """A snapshot of the connection's statistics."""
        return self._stats_snapshot()

    # -- timers ---------------------------------------------------------------------------------------

    def _on_timer(self, timer: Timer, now: float) -> None:
        if timer is Timer.IDLE:
            self._lifecycle.terminate(ConnectionTerminated(0, "idle timeout", False, False), now)
        elif timer is Timer.CLOSE:
            self._lifecycle.closed()
        elif timer is Timer.LOSS_DETECTION:
            request = self._recovery.on_loss_detection_timeout(now)
            if request is not None:
                self._sender.on_probe_timeout(request)
        elif timer is Timer.KEEPALIVE:
            if self._lifecycle.established:
                self._control.keepalive()
        elif timer is Timer.KEY_DISCARD:
            self._spaces.phase.discard_previous()
        elif timer is Timer.PATH_VALIDATION:
            self._on_path_timer(now)
        # ACK_DELAY and PACING only make datagrams_to_send() produce something.

    def _on_path_timer(self, now: float) -> None:
        # RFC 9000 §9.3.2: a failed validation may fall back to the last validated path, and with it
        # to that path's congestion controller and RTT estimator (§9.4).
        if self._paths.on_timer(now):
            current = self._paths.current.congestion
            self._recovery.switch_path(current.controller, current.rtt)

    def _stats_snapshot(self) -> ConnectionStats:
        recovery = self._recovery.stats()
        traffic = self._traffic
        path = self._paths.current
        rtt = path.congestion.rtt
        ecn = path.ecn
        feedback = self._receiver.ecn
        return ConnectionStats(
            smoothed_rtt=rtt.smoothed_rtt,
            min_rtt=rtt.min_rtt,
            latest_rtt=rtt.latest_rtt,
            congestion_window=path.congestion.controller.congestion_window,
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
            key_updates=self._spaces.phase.key_updates,
            key_phase_packets=self._spaces.usage.key_phase_packets(self._spaces.phase),
            forged_packets=self._spaces.usage.forged,
            path_changes=self.path_changes,
            send_buffered_bytes=self._streams.send_buffered_bytes,
            recv_buffered_bytes=self._streams.recv_buffered_bytes,
            persistent_congestion_count=recovery.persistent_congestion_count,
            max_datagram_size=path.pmtud.current,
            ecn_state=str(ecn.state),
            ecn_marked_sent=ecn.sent,
            ecn_received=feedback.totals(),
            ecn_peer_counts=tuple(sum(c[i] for c in feedback.peer.values()) for i in range(3)),
            ce_count=self._recovery.ce_count,
            datagrams_expired=0 if self._datagram_queue is None else self._datagram_queue.dropped,
        )


__all__ = ["Address", "ConnectionStats", "QuicConnection", "State"]
