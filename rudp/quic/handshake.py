"""The TLS glue of a QUIC connection (RFC 9001 §4): CRYPTO bytes to and from the TLS engine, key
installation and discard, transport-parameter exchange and authentication (RFC 9000 §7.3, §7.4), the
handshake completion and confirmation, and the client's Retry and Version Negotiation handling.

Owns :class:`Handshake`: the TLS engine, both sides' transport parameters, the connection IDs of the
handshake (original destination, Retry source, the peer's initial source), the address token a client
sends in its Initials and the last one the server gave it. Whether the handshake is confirmed is loss
recovery's (:attr:`~rudp.quic.recovery.LossRecovery.handshake_confirmed`, RFC 9002 §6.2.1 needs it
there), read here, never copied. The keys themselves live in their packet number spaces
(:class:`~rudp.quic.spaces.PacketSpaces`); this object decides when they come and go.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from rudp.codec.frames import Crypto, HandshakeDone, NewToken
from rudp.codec.packet import PacketHeader
from rudp.codec.peer_parameters import decode_transport_parameters_cached
from rudp.codec.transport_params import (
    TransportParameters,
    decode_transport_parameters,
    encode_with_changes,
    encode_with_source_cid,
    version_information_of,
    with_changes,
)
from rudp.crypto.protection import PacketProtection
from rudp.crypto.retry import verify_retry_integrity
from rudp.errors import DecodeError, TransportError, TransportErrorCode
from rudp.quic.cids import LocalConnectionIds, PeerConnectionIds
from rudp.quic.control import ControlFrames
from rudp.quic.events import ConnectionTerminated, Event, HandshakeCompleted
from rudp.quic.handshake_deadline import HandshakeDeadline
from rudp.quic.paths import Address, Paths
from rudp.quic.preferred import Migration
from rudp.quic.qlog import NullQlog
from rudp.quic.recovery import LossRecovery
from rudp.quic.sent import PacketSpace
from rudp.quic.spaces import CRYPTO_LEVEL_OF_SPACE, SPACE_OF_LEVEL, PacketSpaces
from rudp.quic.state import Lifecycle
from rudp.quic.streams.manager import StreamManager
from rudp.quic.versions import VersionNegotiation
from rudp.quic.weak_callbacks import weak_method
from rudp.tls.client import TlsClient
from rudp.tls.config import TlsConfig
from rudp.tls.engine import Direction, EncryptionLevel, TlsEngine
from rudp.tls.server import QuicHooks, TlsServer
from rudp.tls.tickets import SessionTicket

_TPE = TransportErrorCode.TRANSPORT_PARAMETER_ERROR
_PV = TransportErrorCode.PROTOCOL_VIOLATION
# Enum members bound once (read per packet and per TLS key): in Python 3.11 each ``X.Y`` costs an
# enum metaclass lookup.
_INITIAL_LEVEL, _HANDSHAKE_LEVEL, _READ = EncryptionLevel.INITIAL, EncryptionLevel.HANDSHAKE, Direction.READ


class Handshake:
    """Drives the TLS engine of one connection (see the module docstring)."""

    def __init__(
        self,
        *,
        is_client: bool,
        preferred_versions: tuple[int, ...] | None,
        tls_config: TlsConfig,
        local_params: TransportParameters,
        randbytes: Callable[[int], bytes],
        spaces: PacketSpaces,
        recovery: LossRecovery,
        paths: Paths,
        streams: StreamManager,
        local_cids: LocalConnectionIds,
        peer_cids: PeerConnectionIds,
        control: ControlFrames,
        migration: Migration,
        lifecycle: Lifecycle,
        qlog: NullQlog,
        emit: Callable[[Event], None],
    ) -> None:
        self.is_client = is_client
        self.versions = VersionNegotiation(spaces, is_client=is_client, preferred=preferred_versions)
        """Compatible version negotiation (RFC 9368): our offer or choice, the peer's, the switch."""
        self._tls_config = tls_config
        self._randbytes = randbytes
        self._spaces = spaces
        self._recovery = recovery
        self._paths = paths
        self._streams = streams
        self._local_cids = local_cids
        self._peer_cids = peer_cids
        self._control = control
        self._migration = migration
        self._lifecycle = lifecycle
        self._qlog = qlog
        self._emit = emit
        self.tls: TlsEngine | None = None
        self._local_params = local_params
        self._pending_params: dict[str, object] | None = None
        """What our encoded parameters carry beyond the configuration's (a client's SCID and
        version_information; a server's CIDs too), until :attr:`local_params` is first asked for."""
        self.peer_params: TransportParameters | None = None
        self.peer_idle_timeout = 0.0
        """The peer's max_idle_timeout in seconds (0: none, or not known yet; RFC 9000 §10.1), read
        after every flush by the connection's deadlines (:meth:`idle_timeout` inline)."""
        self._decoded_peer: tuple[bytes, TransportParameters] | None = None
        self.complete = False
        """True once the TLS handshake completed."""
        self.early_data_offered = False
        self.original_dcid = b""
        self.retry_source_cid: bytes | None = None
        self.peer_initial_scid: bytes | None = None
        self.initial_token = b""
        """(client) The address token our Initials carry (from NEW_TOKEN or a Retry, RFC 9000 §8.1)."""
        self.new_token: bytes | None = None
        """(client) The last NEW_TOKEN from the server, for a future connection's Initial."""
        self._deadline: HandshakeDeadline  # made when the handshake starts (start_client, start_server)

    @property
    def version(self) -> int:
        """The QUIC version of the packets now (the Negotiated Version once negotiation is over)."""
        return self._spaces.version

    @property
    def confirmed(self) -> bool:
        """True once the handshake is confirmed (RFC 9001 §4.1.2); loss recovery holds the flag."""
        return self._recovery.handshake_confirmed

    # -- start --------------------------------------------------------------------------------------

    def start_client(self, token: bytes, now: float) -> None:
        """Begin a client handshake: Initial keys from a random DCID, then the ClientHello."""
        self.initial_token = token
        self._deadline = HandshakeDeadline(now)
        self.original_dcid = self._randbytes(8)  # RFC 9000 §7.2: at least 8 unpredictable bytes
        self._peer_cids.set_initial(self.original_dcid)
        self._spaces.install_initial(self.original_dcid, is_client=True)
        scid, info = self._local_cids.active[0].cid, self.versions.local_information()
        self._pending_params = {"initial_source_connection_id": scid, "version_information": info}
        if self._qlog.records:  # (a NullQlog's start does nothing)
            self._qlog.start(self.original_dcid, self.local_params, self._paths.current.pmtud.current, now)
        spaces = self._spaces  # (the lambda below holds the spaces, not the handshake)
        tls = TlsClient(
            self._tls_config,
            encode_with_source_cid(self._local_params, scid, info),  # = encoding self.local_params
            randbytes=self._randbytes,
            accept_ticket=weak_method(self._client_ticket_of_this_version),  # (no reference cycle)
            ticket_version=lambda: spaces.version,  # RFC 9369 §5: the Negotiated Version, once there is one
        )
        self.tls = tls
        tls.start(now)
        ticket = tls.session_ticket
        if tls.early_data_offered and ticket is not None and ticket.transport_parameters:
            # RFC 9000 §7.4.1: 0-RTT obeys the limits the server gave on the original connection.
            remembered = decode_transport_parameters(ticket.transport_parameters, from_server=True)
            self._streams.apply_peer_parameters(remembered)
            self.early_data_offered = True
        self._drain_tls(now)

    def start_server(
        self,
        original_dcid: bytes,
        client_scid: bytes,
        retry_source_cid: bytes | None,
        address_validated: bool,
        now: float,
        initial_read: PacketProtection | None = None,
    ) -> None:
        """Begin a server handshake for the client whose first Initial carried ``original_dcid``
        (``initial_read``: the client's Initial keys the admission check built, if any)."""
        self._deadline = HandshakeDeadline(now)
        self.original_dcid = original_dcid
        self.retry_source_cid = retry_source_cid
        if address_validated:
            self._paths.current.mark_validated()
        self.peer_initial_scid = client_scid
        self._peer_cids.set_initial(client_scid)
        # Initial keys come from the DCID the client's Initial carries (RFC 9001 §5.2): after a Retry
        # that is the Retry's SCID, not the original DCID (which only goes in the transport parameters).
        self._spaces.install_initial(retry_source_cid or original_dcid, is_client=False, read=initial_read)
        if self._qlog.records:  # (a NullQlog's start does nothing: the parameters wait for the ClientHello)
            size = self._paths.current.pmtud.current
            self._qlog.start(self.original_dcid, self._own_parameters(), size, now)
        # (the TLS server asks this object through a weak proxy: no reference cycle; its start is a no-op)
        self.tls = TlsServer(
            self._tls_config,
            b"",  # encoded by respond_parameters, which TLS asks before its first flight (RFC 9368 §3)
            randbytes=self._randbytes,
            quic=weakref.proxy(self),
        )

    # -- the TLS server's questions (rudp.tls.server.QuicHooks) ------------------------------------------

    def respond_parameters(self, client: bytes) -> bytes:
        """(server) The client's transport parameters are in: choose the version (RFC 9368 §2.3) before
        any CRYPTO frame goes out, and answer with a version_information naming it (RFC 9368 §3)."""
        # (the bytes after the client's source CID are usually those of its previous connections)
        params = decode_transport_parameters_cached(client, from_server=False)
        self._decoded_peer = (client, params)  # the same bytes reach _on_peer_parameters: decoded once
        self.versions.choose(params, self.retry_source_cid or self.original_dcid)
        # (encoded without building the parameters object: local_params builds it if asked for)
        changes = self._pending_params = self._own_changes()
        return encode_with_changes(self._local_params, changes)

    def accept_early_data(self, _remembered: bytes | None) -> bool:
        """(server) 0-RTT only without a version switch (RFC 9368 §7.3 lets compatible version
        negotiation reject it; the ticket's version was checked by :meth:`accept_ticket`)."""
        return not self.versions.switched

    def accept_ticket(self, remembered: bytes | None) -> bool:
        """(server) RFC 9369 §5: a ticket resumes only a connection of the version it came from, our
        version now (chosen before the ticket is looked at), named by the version_information of our
        transport parameters sealed in it. A ticket without one cannot show its version: refused (a
        full handshake)."""
        info = None if remembered is None else version_information_of(remembered)
        return info is not None and info.chosen_version == self.version

    def _client_ticket_of_this_version(self, ticket: SessionTicket) -> bool:
        """(client) RFC 9369 §5: a ticket is used only to start a connection of the version it came
        from (stamped when it arrived: the Negotiated Version). Records saved before the stamp fall
        back to the server's version_information, then (a server without RFC 9368) to taking it."""
        wanted = self.versions.original
        if ticket.quic_version is not None:
            return ticket.quic_version == wanted
        remembered = ticket.transport_parameters
        try:
            info = None if remembered is None else version_information_of(remembered)
        except DecodeError:
            return False
        return info is None or info.chosen_version == wanted

    @property
    def local_params(self) -> TransportParameters:
        """Our transport parameters: the configuration's, with our CIDs and version_information once
        the handshake started (built when first asked for: the handshake encodes them without the
        object, :func:`encode_with_source_cid`, :func:`encode_with_changes`)."""
        pending = self._pending_params
        if pending is not None:
            self._pending_params = None
            self._local_params = with_changes(self._local_params, pending)
        return self._local_params

    def _own_parameters(self) -> TransportParameters:
        self._pending_params = self._own_changes()
        return self.local_params

    def _own_changes(self) -> dict[str, object]:
        """What our parameters carry beyond the configuration's: CIDs and version_information."""
        scid = self._local_cids.active[0].cid
        changes: dict[str, object] = {
            "initial_source_connection_id": scid,
            "version_information": self.versions.local_information(),  # RFC 9368 §3, RFC 9369 §4
        }
        if not self.is_client:
            changes["original_destination_connection_id"] = self.original_dcid
            changes["stateless_reset_token"] = self._local_cids.active[0].reset_token
            changes["preferred_address"] = self._migration.advertise(self._local_cids)  # RFC 9000 §9.6
            if self.retry_source_cid is not None:
                changes["retry_source_connection_id"] = self.retry_source_cid
        return changes

    # -- CRYPTO and TLS -----------------------------------------------------------------------------

    def on_crypto(self, level: EncryptionLevel, frame: Crypto, now: float) -> None:
        """A CRYPTO frame arrived at ``level``: feed in-order bytes to TLS."""
        space = self._spaces.get(SPACE_OF_LEVEL[level])
        if space is None:
            return
        data = space.crypto_recv.receive(frame)
        if data and self.tls is not None:
            self.tls.receive(CRYPTO_LEVEL_OF_SPACE[space.id], data, now)
            self._drain_tls(now)

    def _drain_tls(self, now: float) -> None:
        tls = self.tls
        if tls is None:
            return
        for event in tls.key_events():
            read = event.direction is _READ
            self._spaces.install(event.level, read=read, suite=event.cipher_suite, secret=event.secret)
            if event.level == _HANDSHAKE_LEVEL and not read:
                # RFC 9002 §6.2.2.1: a client with Handshake keys sends its anti-deadlock probe as a
                # Handshake packet (it validates our address at the server, which may then send
                # without the amplification limit), not as another padded Initial.
                self._recovery.set_handshake_keys_available()
        for level, data in tls.data_to_send():
            space = self._spaces.get(SPACE_OF_LEVEL[level])
            if space is not None:  # (never for a discarded level: TLS has moved past it)
                space.crypto_send.write(data)
        if self.peer_params is None and tls.peer_transport_parameters is not None:
            self._on_peer_parameters(tls.peer_transport_parameters, now)
        if tls.handshake_complete and not self.complete:
            self._on_complete(now)

    def _on_peer_parameters(self, data: bytes, now: float) -> None:
        decoded = self._decoded_peer
        self._decoded_peer = None
        if decoded is not None and decoded[0] == data:
            params = decoded[1]  # (server) decoded and validated by respond_parameters
        else:
            # (a client: the server's parameters but its CIDs are those of its previous answers)
            params = decode_transport_parameters_cached(data, from_server=self.is_client)
        # RFC 9000 §7.3: both sides' CIDs used in the handshake must match the transport parameters.
        if params.initial_source_connection_id != self.peer_initial_scid:
            raise TransportError(_TPE, "initial_source_connection_id does not match")
        if self.is_client:
            if params.original_destination_connection_id != self.original_dcid:
                raise TransportError(_TPE, "original_destination_connection_id does not match")
            if params.retry_source_connection_id != self.retry_source_cid:
                raise TransportError(_TPE, "retry_source_connection_id does not match")
            self.versions.validate_server(params)  # RFC 9368 §4 (the server checked ours in the hook)
        self.peer_params = params
        self.peer_idle_timeout = params.max_idle_timeout / 1000
        self._qlog.parameters_set("remote", params, now)
        self._streams.apply_peer_parameters(params)
        self._recovery.set_max_ack_delay(params.max_ack_delay / 1000)
        self._peer_cids.set_reset_token(params.stateless_reset_token)
        self._migration.on_peer_parameters(params, self._peer_cids, self._paths.current.address)  # §9.6
        self._paths.limit_datagram_size(params.max_udp_payload_size)

    def _on_complete(self, now: float) -> None:
        tls = self.tls
        if tls is None:
            return
        self.complete = True
        self._lifecycle.establish()
        self._emit(HandshakeCompleted(tls.alpn_protocol, tls.session_resumed, tls.early_data_accepted))
        if self.is_client and self.early_data_offered and not tls.early_data_accepted:
            # RFC 9001 §4.6.2: rejected 0-RTT data must be sent again in 1-RTT packets.
            self._recovery.requeue_application_packets()
        if not self.is_client:
            # RFC 9001 §4.1.2: the server's handshake is confirmed when it completes.
            self._control.send_handshake_done()
            self._confirm()

    def _confirm(self) -> None:
        if self._recovery.handshake_confirmed:  # (self.confirmed, inline)
            return
        self._recovery.set_handshake_confirmed()
        self.discard(_HANDSHAKE_LEVEL)
        limit = min(self.peer_params.active_connection_id_limit if self.peer_params else 2, 8)
        self._local_cids.issue_up_to(limit)

    def discard(self, level: EncryptionLevel) -> None:
        """Drop a level's space with its keys, and its recovery state (RFC 9001 §4.9, RFC 9002 §6.4)."""
        space = SPACE_OF_LEVEL[level]
        if self._spaces.discard(space):
            self._recovery.discard_space(space)

    # -- packets that concern the handshake ---------------------------------------------------------

    def on_packet_authenticated(self, header: PacketHeader, level: EncryptionLevel, now: float) -> None:
        """Every authenticated packet (arrived at ``now``) passes here before its frames are handled
        (a client's from a foreign CID or address were dropped unopened: :meth:`foreign_to_client`)."""
        if self.is_client and header.is_long and self.peer_initial_scid is None:
            # RFC 9000 §7.2: the client switches to the server's chosen CID.
            self.peer_initial_scid = header.scid
            self._peer_cids.set_initial(header.scid)
        if not self.complete and (not self.is_client or self._shows_progress(level)):
            self._deadline.on_progress(now)  # (a server's every packet shows progress)
        if level == _HANDSHAKE_LEVEL and not self.is_client:
            # RFC 9001 §4.9.1: a server discards Initial keys on its first Handshake packet, which also
            # validates the client's address (RFC 9000 §8.1).
            self._paths.current.mark_validated()
            self.discard(_INITIAL_LEVEL)
            self.versions.on_handshake_packet()  # RFC 9369 §4.1: original-version Initials may go

    def foreign_to_client(self, header: PacketHeader, addr: Address) -> bool:
        """(client) True for a packet to discard unopened: a long-header packet whose Source Connection
        ID is not the one the server's first authenticated packet chose (RFC 9000 §7.2), or a packet
        from an address that is none of our paths' (RFC 9000 §9: a client MUST discard packets from an
        unknown server address). Cheap tests first: asked of every packet the fast path did not take."""
        if not self.is_client:
            return False
        if header.is_long and self.peer_initial_scid is not None and header.scid != self.peer_initial_scid:
            return True
        return addr[:2] != self._paths.current.address[:2] and not self._paths.knows(addr)

    def _shows_progress(self, level: EncryptionLevel) -> bool:
        """Whether an authenticated packet of an incomplete handshake moves its deadline
        (:mod:`rudp.quic.handshake_deadline`)."""
        if not self.is_client:
            return True  # the client's probes are Initial packets until our ServerHello reaches it
        # (Only a client's packets ask: see on_packet_authenticated. A packet of another server CID
        # or address never gets here: foreign_to_client dropped it.)
        # Once a ServerHello gave us Handshake keys, only the holder of the handshake secret shows
        # progress: Initial packets can be forged by anyone who saw our first one (RFC 9001 §5.2).
        return level != _INITIAL_LEVEL or self._spaces.read_keys(_HANDSHAKE_LEVEL) is None

    def deadline(self, timeout: float) -> float | None:
        """When the handshake gives up with ``Config.handshake_timeout`` = ``timeout``; None once it
        completed."""
        if self.complete:
            return None
        # (client) A probe sent before the deadline is given the time its answer takes.
        probed_at = self._recovery.probed_at if self.is_client else None
        return self._deadline.at(timeout, probed_at, self._recovery.pto())

    def other_version_keys(self, header: PacketHeader) -> PacketProtection | None:
        """Keys for an Initial whose version is not the one in use (RFC 9369 §4.1), or None: drop it."""
        return self.versions.keys_for(header, self.retry_source_cid or self.original_dcid)

    def on_other_version_opened(self, header: PacketHeader) -> None:
        """Such an Initial opened: a client takes its version as the Negotiated Version."""
        self.versions.on_opened(header)

    def on_handshake_done(self, frame: HandshakeDone) -> None:
        """RFC 9001 §4.1.2: HANDSHAKE_DONE confirms the client's handshake."""
        if not self.is_client:
            raise TransportError(_PV, "HANDSHAKE_DONE sent by a client", 0x1E)  # RFC 9000 §19.20
        self._confirm()

    def on_new_token(self, frame: NewToken) -> None:
        """(client) Keep the server's address token for a later connection (RFC 9000 §8.1.3)."""
        if not self.is_client:
            raise TransportError(_PV, "NEW_TOKEN sent by a client", 0x07)  # RFC 9000 §19.7
        self.new_token = frame.token

    def on_retry(self, data: bytes, header: PacketHeader) -> None:
        """(client) RFC 9000 §17.2.5.2: one Retry at most, before any server Initial, with a valid tag."""
        if not self.is_client or self.retry_source_cid is not None or self.peer_initial_scid is not None:
            return
        if header.scid == self.original_dcid or not header.token:
            return
        # RFC 9369 §4.1: a Retry is in the original version (one in another version is ignored).
        original = self.versions.original
        if header.version != original or self.versions.switched:
            return
        if not verify_retry_integrity(data[header.start : header.end], self.original_dcid, original):
            return
        self.retry_source_cid = header.scid
        self.initial_token = header.token
        self._peer_cids.set_initial(header.scid)
        self._spaces.install_initial(header.scid, is_client=True)
        # RFC 9002 §6.3: a Retry resets loss recovery (recovery owns that); the ClientHello is sent
        # again (in a new packet, with the token) from the crypto stream, as is any 0-RTT data.
        self._recovery.on_retry_received()
        self._spaces[PacketSpace.INITIAL].crypto_send.requeue_unacked()

    def on_version_negotiation(self, header: PacketHeader, now: float) -> None:
        """(client) RFC 9000 §6.2: only before any other packet from the server (a Retry included), and
        ignored if it lists our version; otherwise the attempt ends.

        No new attempt in a version from the list: rudp speaks v1 and v2, which are compatible (RFC
        9369 §4), so a client that starts in v1 and offers v2 gets v2 from any server that prefers it
        without a Version Negotiation round trip (RFC 9368 §2.3). The list can only help a client
        configured to start in v2 that meets a v1-only server; the reason names the server's versions."""
        if (
            not self.is_client
            or self.peer_initial_scid is not None
            or self.retry_source_cid is not None
            or self.versions.original in header.supported_versions  # RFC 9368 §4: downgrade
        ):
            return
        # RFC 9000 §17.2.1: a server echoes both connection IDs of our Initial, some assurance that the
        # packet comes from someone who saw it (with a zero-length SCID of ours, the random DCID is all).
        if header.dcid != self._local_cids.active[0].cid or header.scid != self.original_dcid:
            return
        offered = ", ".join(f"{v:#x}" for v in header.supported_versions)
        event = ConnectionTerminated(0, f"version negotiation: server supports {offered}", True, False)
        self._lifecycle.terminate(event, now)

    # -- what the peer's transport parameters say ---------------------------------------------------

    def peer_ack_delay(self, encoded: int) -> float:
        """An ACK frame's ACK Delay field in seconds (RFC 9000 §19.3, with the peer's exponent)."""
        if self.peer_params is None:
            return 0.0
        return encoded * (1 << self.peer_params.ack_delay_exponent) / 1e6

    def idle_timeout(self, local: float, pto: float) -> float | None:
        """RFC 9000 §10.1: the smaller of the two non-zero values, and at least 3 PTOs (``pto``, the
        current :meth:`~rudp.quic.recovery.LossRecovery.pto`), or None."""
        params = self.peer_params
        if params is not None:
            peer = params.max_idle_timeout / 1000
            if local <= 0 or 0 < peer < local:
                local = peer
        if local <= 0:
            return None
        floor = 3 * pto  # (max() as a comparison: asked after every flush)
        return local if local > floor else floor


_ANSWERS_TLS: type[QuicHooks] = Handshake
"""(Checked by mypy: the handshake answers the TLS server's questions, asked through a weak proxy.)"""
