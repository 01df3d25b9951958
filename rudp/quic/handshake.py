"""The TLS glue of a QUIC connection (RFC 9001 §4): CRYPTO bytes to and from the TLS engine, key
installation and discard, transport-parameter exchange and authentication (RFC 9000 §7.3, §7.4), and
the handshake completion and confirmation events.
"""

from __future__ import annotations

from dataclasses import replace

from rudp.codec.frames import Crypto
from rudp.codec.transport_params import (
    TransportParameters,
    decode_transport_parameters,
    encode_transport_parameters,
)
from rudp.errors import TransportError, TransportErrorCode
from rudp.quic.events import HandshakeCompleted
from rudp.quic.spaces import CRYPTO_LEVEL_OF_SPACE, SPACE_OF_LEVEL
from rudp.quic.state import ConnectionState
from rudp.tls.client import TlsClient
from rudp.tls.engine import Direction, EncryptionLevel
from rudp.tls.server import TlsServer

_TPE = TransportErrorCode.TRANSPORT_PARAMETER_ERROR


class HandshakeMixin(ConnectionState):
    """Drives the TLS engine for :class:`~rudp.quic.connection.QuicConnection`."""

    def _start_client(self, now: float) -> None:
        self.original_dcid = self._randbytes(8)  # RFC 9000 §7.2: at least 8 unpredictable bytes
        self._peer_cids.set_initial(self.original_dcid)
        self._keys.install_initial(self.original_dcid, is_client=True)
        params = self._own_parameters()
        self._qlog.start(self.original_dcid, params, self._max_datagram_size, now)
        tls = TlsClient(self._tls_config, encode_transport_parameters(params), randbytes=self._randbytes)
        self._tls = tls
        tls.start(now)
        ticket = tls.session_ticket
        if tls.early_data_offered and ticket is not None and ticket.transport_parameters:
            # RFC 9000 §7.4.1: 0-RTT obeys the limits the server gave on the original connection.
            remembered = decode_transport_parameters(ticket.transport_parameters, from_server=True)
            self._streams.apply_peer_parameters(remembered)
            self._early_data_offered = True
        self._drain_tls(now)

    def _start_server(
        self,
        original_dcid: bytes,
        client_scid: bytes,
        retry_source_cid: bytes | None,
        address_validated: bool,
        now: float,
    ) -> None:
        self.original_dcid = original_dcid
        self._retry_source_cid = retry_source_cid
        if address_validated:
            self._paths.current.mark_validated()
        self._peer_initial_scid = client_scid
        self._peer_cids.set_initial(client_scid)
        # Initial keys come from the DCID the client's Initial carries (RFC 9001 §5.2): after a Retry
        # that is the Retry's SCID, not the original DCID (which only goes in the transport parameters).
        self._keys.install_initial(retry_source_cid or original_dcid, is_client=False)
        params = self._own_parameters()
        self._qlog.start(self.original_dcid, params, self._max_datagram_size, now)
        self._tls = TlsServer(
            self._tls_config, encode_transport_parameters(params), randbytes=self._randbytes
        )
        self._tls.start(now)

    def _own_parameters(self) -> TransportParameters:
        local = self._local_params
        scid = self._local_cids.active[0].cid
        changes: dict[str, object] = {"initial_source_connection_id": scid}
        if not self.is_client:
            changes["original_destination_connection_id"] = self.original_dcid
            changes["stateless_reset_token"] = self._local_cids.active[0].reset_token
            changes["preferred_address"] = self._migration.advertise(self._local_cids)  # RFC 9000 §9.6
            if self._retry_source_cid is not None:
                changes["retry_source_connection_id"] = self._retry_source_cid
        self._local_params = replace(local, **changes)  # type: ignore[arg-type]
        return self._local_params

    def _on_crypto(self, level: EncryptionLevel, frame: Crypto, now: float) -> None:
        """A CRYPTO frame arrived at ``level``: feed in-order bytes to TLS."""
        space = self._spaces.get(SPACE_OF_LEVEL[level])
        if space is None:
            return
        data = space.crypto_recv.receive(frame)
        if data and self._tls is not None:
            self._tls.receive(CRYPTO_LEVEL_OF_SPACE[space.id], data, now)
            self._drain_tls(now)

    def _drain_tls(self, now: float) -> None:
        tls = self._tls
        if tls is None:
            return
        for event in tls.key_events():
            self._keys.install(
                event.level,
                read=event.direction is Direction.READ,
                suite=event.cipher_suite,
                secret=event.secret,
            )
        for level, data in tls.data_to_send():
            space = self._spaces.get(SPACE_OF_LEVEL[level])
            if space is not None:  # (never for a discarded level: TLS has moved past it)
                space.crypto_send.write(data)
        if self._peer_params is None and tls.peer_transport_parameters is not None:
            self._on_peer_parameters(tls.peer_transport_parameters, now)
        if tls.handshake_complete and not self._handshake_complete:
            self._on_handshake_complete(now)

    def _on_peer_parameters(self, data: bytes, now: float) -> None:
        params = decode_transport_parameters(data, from_server=self.is_client)
        self._authenticate_cids(params)
        self._peer_params = params
        self._qlog.parameters_set("remote", params, now)
        self._streams.apply_peer_parameters(params)
        self._recovery.set_max_ack_delay(params.max_ack_delay / 1000)
        self._peer_cids.set_reset_token(params.stateless_reset_token)
        self._migration.on_peer_parameters(params, self._peer_cids, self.peer_address)  # RFC 9000 §9.6
        self._paths.limit_datagram_size(params.max_udp_payload_size)

    def _authenticate_cids(self, params: TransportParameters) -> None:
        # RFC 9000 §7.3: both sides' CIDs used in the handshake must match the transport parameters.
        if params.initial_source_connection_id != self._peer_initial_scid:
            raise TransportError(_TPE, "initial_source_connection_id does not match")
        if self.is_client:
            if params.original_destination_connection_id != self.original_dcid:
                raise TransportError(_TPE, "original_destination_connection_id does not match")
            if params.retry_source_connection_id != self._retry_source_cid:
                raise TransportError(_TPE, "retry_source_connection_id does not match")

    def _on_handshake_complete(self, now: float) -> None:
        tls = self._tls
        if tls is None:
            return
        self._handshake_complete = True
        self._establish()
        self._events.append(
            HandshakeCompleted(tls.alpn_protocol, tls.session_resumed, tls.early_data_accepted)
        )
        if self.is_client and self._early_data_offered and not tls.early_data_accepted:
            # RFC 9001 §4.6.2: rejected 0-RTT data must be sent again in 1-RTT packets.
            self._recovery.requeue_application_packets()
        if not self.is_client:
            # RFC 9001 §4.1.2: the server's handshake is confirmed when it completes.
            self._control.send_handshake_done()
            self._confirm_handshake(now)

    def _confirm_handshake(self, now: float) -> None:
        if self._handshake_confirmed:
            return
        self._handshake_confirmed = True
        self._recovery.set_handshake_confirmed()
        self._discard_level(EncryptionLevel.HANDSHAKE)
        limit = min(self._peer_params.active_connection_id_limit if self._peer_params else 2, 8)
        self._local_cids.issue_up_to(limit)

    def _discard_level(self, level: EncryptionLevel) -> None:
        """Drop a level's keys and its recovery state (RFC 9001 §4.9, RFC 9002 §6.4)."""
        if level not in self._keys.read and level not in self._keys.write:
            return
        self._keys.discard(level)
        space = SPACE_OF_LEVEL[level]
        self._recovery.discard_space(space)
        self._spaces.pop(space, None)  # its ACK tracker, CRYPTO streams and probes go with the keys
