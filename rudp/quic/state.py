"""The state every part of a QUIC connection shares, and its construction.

:class:`ConnectionState` declares and initialises the attributes that the receive, send and handshake
mixins and :class:`~rudp.quic.connection.QuicConnection` operate on, so each of those modules stays
focused on one job while mypy still checks every attribute.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from enum import Enum

from rudp.codec.frames import ConnectionClose
from rudp.codec.transport_params import TransportParameters
from rudp.config import Config
from rudp.errors import TLSAlert, TransportError, TransportErrorCode
from rudp.quic.cids import LocalConnectionIds, PeerConnectionIds
from rudp.quic.closing import Closing
from rudp.quic.congestion.registry import resolve_congestion_controller
from rudp.quic.control import ControlFrames, DatagramQueue
from rudp.quic.crypto_streams import CryptoReceiveBuffer
from rudp.quic.ecn import EcnFeedback
from rudp.quic.events import ConnectionTerminated, Event
from rudp.quic.key_limits import KeyUsage
from rudp.quic.keys import KeySet
from rudp.quic.liveness import Liveness
from rudp.quic.pacing import Pacer
from rudp.quic.paths import MAX_PATH_RESPONSES as MAX_PATH_RESPONSES
from rudp.quic.paths import Address as Address
from rudp.quic.paths import Paths
from rudp.quic.pmtud import PmtuDiscovery
from rudp.quic.preferred import Migration
from rudp.quic.qlog_trace import open_qlog
from rudp.quic.recovery import LossRecovery
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace
from rudp.quic.spaces import CRYPTO_LEVEL_OF_SPACE, AckTracker, PacketNumberSpace
from rudp.quic.stats import TrafficCounters
from rudp.quic.streams.manager import StreamManager
from rudp.tls.alerts import AlertDescription
from rudp.tls.config import TlsConfig
from rudp.tls.engine import EncryptionLevel, TlsEngine

MIN_SENDABLE_BYTES = 64
"""Below this anti-amplification allowance no useful packet fits (header, AEAD tag, a few frames)."""



class State(Enum):
    """Connection lifecycle (RFC 9000 §10)."""

    HANDSHAKE = "handshake"
    ESTABLISHED = "established"
    CLOSING = "closing"
    """We sent CONNECTION_CLOSE; answering late packets with it, rate-limited (§10.2.1)."""
    DRAINING = "draining"
    """The peer closed; we send nothing (§10.2.2)."""
    CLOSED = "closed"


class ConnectionState:
    """Attributes shared by the connection's parts (see the module docstring)."""

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
        self._tls_config = tls_config
        self.is_client = is_client
        self.version = version
        self._randbytes = config.randbytes
        self._state = State.HANDSHAKE
        self._last_input_at = now
        """The time of the latest input (only for :meth:`close` called without ``now`` and the qlog
        metrics of :meth:`next_timer`, which takes none); everything else gets ``now`` passed in."""
        self._created_at = now
        self._events: deque[Event] = deque()
        self._close_cause: ConnectionTerminated | None = None
        self._closing = Closing()

        cid = local_cid if local_cid is not None else self._randbytes(config.connection_id_length)
        self._local_cids = LocalConnectionIds(
            cid, reset_key or os.urandom(32), self._randbytes, config.connection_id_length
        )
        self._peer_cids = PeerConnectionIds(b"", config.active_connection_id_limit)
        self.original_dcid = b""
        self._retry_source_cid: bytes | None = None
        self._token = b""
        self._peer_initial_scid: bytes | None = None

        self._keys = KeySet(version, KeyUsage.from_config(config))
        self._tls: TlsEngine | None = None
        self._local_params = config.local_transport_parameters()
        self._peer_params: TransportParameters | None = None
        self._handshake_complete = False
        self._handshake_confirmed = False
        self._early_data_offered = False

        # A client's path to the server needs no validation (RFC 9000 §8.1 limits servers only).
        self._paths = Paths(
            peer_address,
            validated=is_client,
            base_size=config.max_datagram_size,
            max_size=config.max_pmtu,
            pmtu_discovery=config.pmtu_discovery,
            ecn=config.ecn,
        )
        self._migration = Migration(config, is_client=is_client)
        """Preferred address (RFC 9000 §9.6), disable_active_migration, path-change qlog."""
        self._ecn_feedback = EcnFeedback()
        """Marks received per space (our ACK_ECN counts) and the peer's last counts (RFC 9000 §13.4)."""
        self._ecn_marking = False
        """Whether the datagrams of the current ``datagrams_to_send`` batch leave marked ECT(0)."""
        self._persistent_congestion_seen = 0
        self._rtt = RttEstimator()
        self._qlog = open_qlog(config, is_client=is_client)
        self._congestion = resolve_congestion_controller(config.congestion)(config.max_datagram_size)
        self._recovery = LossRecovery(
            self._qlog.observe(self._congestion), self._rtt, max_ack_delay=0.025, is_client=is_client
        )
        self._pacer = Pacer(
            config.max_datagram_size, enabled=config.pacing, granularity=config.timer_granularity
        )
        self._pacing_blocked = False
        """The last datagrams_to_send() had data the pacer held back (Timer.PACING is armed)."""
        self._spaces: dict[PacketSpace, PacketNumberSpace] = {
            PacketSpace.INITIAL: PacketNumberSpace(PacketSpace.INITIAL, self._randbytes),
            PacketSpace.HANDSHAKE: PacketNumberSpace(PacketSpace.HANDSHAKE, self._randbytes),
            PacketSpace.APPLICATION: PacketNumberSpace(
                PacketSpace.APPLICATION,
                self._randbytes,
                max_ack_delay=config.max_ack_delay,
                skip_numbers=True,
            ),
        }
        """The packet number spaces whose keys are still in use (a discarded one is dropped)."""
        self._streams = StreamManager(
            is_client=is_client,
            local=self._local_params,
            max_stream_window=config.max_stream_window,
            max_connection_window=config.max_connection_window,
            send_buffer_bytes=config.send_buffer_bytes,
        )
        self._control = ControlFrames(self._events.append)
        self._datagram_queue = DatagramQueue()
        self._liveness = Liveness(now)
        self._pending_packets: list[tuple[bytes, Address, float, int]] = []
        """Packets waiting for their keys: (packet, address, time received, ECN codepoint)."""
        self._activity: Callable[[], None] | None = None
        self.new_token: bytes | None = None
        """(client) the last NEW_TOKEN from the server, for a future connection's Initial."""

        # statistics
        self._traffic = TrafficCounters()

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

    # Read-only views under the names of the former attributes, for tests that check their bounds.
    @property
    def _ack_trackers(self) -> dict[PacketSpace, AckTracker]:
        return {space: state.ack for space, state in self._spaces.items()}

    @property
    def _crypto_recv(self) -> dict[EncryptionLevel, CryptoReceiveBuffer]:
        return {CRYPTO_LEVEL_OF_SPACE[space]: state.crypto_recv for space, state in self._spaces.items()}

    @property
    def _skipped_packet_numbers(self) -> tuple[int, ...]:
        space = self._spaces.get(PacketSpace.APPLICATION)
        return () if space is None else tuple(space.skipped)

    @property
    def _path_responses(self) -> tuple[bytes, ...]:
        """PATH_RESPONSEs owed on the current path (read-only view for tests of the bounds)."""
        return tuple(self._paths.current.responses)

    @property
    def _pmtud(self) -> PmtuDiscovery:
        """The PMTU search of the current path."""
        return self._paths.current.pmtud

    @property
    def _max_datagram_size(self) -> int:
        """The size of the datagrams sent now: what the current path's PMTU search confirmed."""
        return self._paths.current.pmtud.current

    @property
    def _base_datagram_size(self) -> int:
        """The size every path carries (the fallback after a PMTU black hole)."""
        return self._paths.current.pmtud.base

    def _is_active(self) -> bool:
        """True while handshaking or established (not closing, draining or closed)."""
        return self._state in (State.HANDSHAKE, State.ESTABLISHED)

    # -- closing (RFC 9000 §10), shared by the receive path, timers and the API ----------------------

    def _on_local_error(self, exc: TransportError, now: float) -> None:
        """A protocol violation by the peer (or a TLS failure): close with its code (RFC 9000 §10.2).

        The application gets the full reason; the peer gets the code and, for a TLS failure, only the
        alert's name: our verdict on its certificate, our trust store and local details (file paths in
        an internal error) are none of an unauthenticated peer's business.
        """
        wire_reason = _alert_name(exc.code) if isinstance(exc, TLSAlert) else exc.reason
        frame = ConnectionClose(exc.code, wire_reason.encode()[:1000], exc.frame_type, False)
        self._terminate(
            ConnectionTerminated(exc.code, exc.reason, False, False, exc.frame_type),
            now,
            state=State.CLOSING,
            frame=frame,
        )

    def _enter_closing(self, frame: ConnectionClose, now: float) -> None:
        reason = frame.reason.decode("utf-8", "replace")
        self._terminate(
            ConnectionTerminated(frame.error_code, reason, False, frame.application, frame.frame_type),
            now,
            state=State.CLOSING,
            frame=frame,
        )

    def _enter_draining(self, frame: ConnectionClose, now: float) -> None:
        reason = frame.reason.decode("utf-8", "replace")
        self._terminate(
            ConnectionTerminated(frame.error_code, reason, True, frame.application, frame.frame_type),
            now,
            state=State.DRAINING,
        )

    def _terminate(
        self,
        event: ConnectionTerminated,
        now: float,
        *,
        state: State = State.CLOSED,
        silent: bool = False,
        frame: ConnectionClose | None = None,
    ) -> None:
        if self._close_cause is None:
            self._close_cause = event
            self._events.append(event)
        self._state = state
        # RFC 9000 §10.2: closing and draining last three times the current PTO.
        self._closing.start(frame, None if state is State.CLOSED else now + 3 * self._pto())

    def _establish(self) -> None:
        """The handshake completed (RFC 9000 §10: the connection is established)."""
        if self._state is State.HANDSHAKE:
            self._state = State.ESTABLISHED

    def _closed(self) -> None:
        """The closing or draining period is over (RFC 9000 §10.2): nothing more to do."""
        self._state = State.CLOSED

    def _pto(self) -> float:
        """The current PTO duration (RFC 9002 §6.2.1), without backoff."""
        max_ack_delay = self._peer_params.max_ack_delay / 1000 if self._peer_params else 0.025
        return self._rtt.pto_base() + (max_ack_delay if self._handshake_confirmed else 0.0)

    def _peer_max_datagram_frame_size(self) -> int | None:
        if not self._config.datagrams or self._peer_params is None:
            return None
        return self._peer_params.max_datagram_frame_size


def _alert_name(code: int) -> str:
    """ "TLS alert bad certificate" for CRYPTO_ERROR 0x12a (RFC 9001 §4.8); the number if unknown."""
    alert = code - TransportErrorCode.CRYPTO_ERROR
    try:
        name = AlertDescription(alert).name.replace("_", " ")
    except ValueError:
        name = str(alert)
    return f"TLS alert {name}"
