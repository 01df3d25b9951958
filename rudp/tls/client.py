"""The sans-IO TLS 1.3 client handshake for QUIC (RFC 8446 §4, RFC 9001 §4 and §8).

Owns the client state machine: ClientHello (with a resumption PSK and its binder, and 0-RTT when
the ticket allows), HelloRetryRequest handling, ServerHello key agreement, EncryptedExtensions (ALPN,
transport parameters, 0-RTT acceptance), server authentication (chain + CertificateVerify, or the
PSK), Finished in both directions, optional client certificate, and NewSessionTicket storage.

QUIC specifics: legacy_session_id is empty (no middlebox compatibility mode, RFC 9001 §8.4), no
EndOfEarlyData is sent (RFC 9001 §8.3), ALPN is mandatory (§8.1) and the quic_transport_parameters
extension must be present (§8.2).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import os
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum, auto
from typing import Any, ClassVar

from cryptography.hazmat.primitives.serialization import Encoding

from rudp.crypto.suites import SUITE_HASH, CipherSuite
from rudp.errors import ConfigError, TransportError, TransportErrorCode
from rudp.tls import keylog as kl
from rudp.tls.alerts import AlertDescription, alert
from rudp.tls.certs import (
    CERTIFICATE_ONLY_SCHEMES,
    certificate_verify_content,
    choose_scheme,
    parse_certificates,
    sign,
    verify_signature,
)
from rudp.tls.client_hello import encode_client_hello
from rudp.tls.config import TlsConfig
from rudp.tls.engine import Direction, EncryptionLevel, Expected, RandBytes, TlsEngine
from rudp.tls.extensions import LEGACY_VERSION, TLS13, OfferedPsks, encode_binders
from rudp.tls.framing import HandshakeType, RawMessage
from rudp.tls.key_exchange import KeyShare
from rudp.tls.key_schedule import (
    LABEL_CLIENT_APP,
    LABEL_CLIENT_EARLY,
    LABEL_CLIENT_HANDSHAKE,
    LABEL_RESUMPTION,
    LABEL_SERVER_APP,
    LABEL_SERVER_HANDSHAKE,
    KeySchedule,
    hmac_verify_data,
    resumption_psk,
)
from rudp.tls.messages import (
    CertificateMessage,
    CertificateRequest,
    CertificateVerify,
    EncryptedExtensions,
    Finished,
    NewSessionTicket,
    ServerHello,
)
from rudp.tls.tickets import MAX_TICKET_LIFETIME, QUIC_MAX_EARLY_DATA, SessionTicket
from rudp.tls.verification import verify_chain

_I = EncryptionLevel.INITIAL
_H = EncryptionLevel.HANDSHAKE
_A = EncryptionLevel.APPLICATION


class ClientState(IntEnum):
    """Client states of RFC 8446 Appendix A.1 (without WAIT_EOED/CCS: QUIC has neither)."""

    START = auto()
    WAIT_SH = auto()
    WAIT_EE = auto()
    WAIT_CERT_CR = auto()
    WAIT_CERT = auto()
    WAIT_CV = auto()
    WAIT_FINISHED = auto()
    CONNECTED = auto()


class TlsClient(TlsEngine):
    """TLS 1.3 client engine. See :class:`~rudp.tls.engine.TlsEngine` for the calling convention.

    After :meth:`start`, :attr:`session_ticket` is the ticket offered (if any) and
    :attr:`early_data_offered` says whether 0-RTT keys were emitted; QUIC then uses the ticket's
    remembered ``transport_parameters`` for its 0-RTT limits. ``accept_ticket``, if given, sees each
    candidate ticket and returns False to leave it unused (RFC 9369 §5: a ticket of another QUIC
    version; refused tickets stay in ``config.ticket_store``). ``ticket_version``, if given, gives the
    QUIC version stamped on each ticket received (:attr:`SessionTicket.quic_version`).
    """

    is_client = True

    def __init__(
        self,
        config: TlsConfig,
        transport_parameters: bytes,
        *,
        randbytes: RandBytes = os.urandom,
        accept_ticket: Callable[[SessionTicket], bool] | None = None,
        ticket_version: Callable[[], int] | None = None,
    ) -> None:
        if not config.is_client:
            raise ConfigError("TlsClient needs a client configuration")
        if config.verify_peer and not config.server_name:
            raise ConfigError("server_name is required to verify the server certificate")
        super().__init__(config, transport_parameters, randbytes=randbytes)
        if config.verify_peer:
            config.trust_store()  # load the CAs now: a missing bundle is a ConfigError, not an alert
        self._state = ClientState.START
        self._accept_ticket = accept_ticket
        self._ticket_version = ticket_version
        self.server_name = config.server_name
        #: the ticket offered in the ClientHello (None for a full handshake)
        self.session_ticket: SessionTicket | None = None
        #: True when the ClientHello carried early_data (0-RTT write keys were emitted)
        self.early_data_offered = False
        #: tickets received in NewSessionTicket messages (also added to ``config.ticket_store``)
        self.new_session_tickets: list[SessionTicket] = []
        self._key_shares: dict[int, KeyShare] = {}
        self._cookie: bytes | None = None
        self._retried = False
        self._offered_suites = list(dict.fromkeys(config.cipher_suites))
        self._psk_schedule: KeySchedule | None = None
        self._certificate_request: CertificateRequest | None = None
        self._client_hs_secret = b""
        self._server_hs_secret = b""
        self._resumption_secret = b""

    # -- ClientHello ---------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Send the ClientHello at the Initial level (and emit the 0-RTT write key if offered)."""
        if self._state is not ClientState.START:
            raise alert(AlertDescription.internal_error, "start() called twice")
        wall = self.config.wall_clock()
        self.client_random = self._randbytes(32)
        self.session_ticket = self._pick_ticket(wall)
        ticket = self.session_ticket
        self.early_data_offered = bool(
            ticket is not None
            and self.config.early_data
            and ticket.max_early_data == QUIC_MAX_EARLY_DATA
            and ticket.alpn_protocol in self.config.alpn_protocols
        )
        group = self.config.groups[0]
        self._key_shares = {group: KeyShare(group, self._randbytes)}
        self._send_client_hello(wall)
        if self.early_data_offered and ticket is not None and self._psk_schedule is not None:
            # RFC 8446 §7.1: client_early_traffic_secret = Derive-Secret(Early Secret, "c e traffic", CH)
            secret = self._psk_schedule.derive(
                LABEL_CLIENT_EARLY, self._transcript.digest(name=_hash_of(ticket))
            )
            self._keylog(kl.CLIENT_EARLY_TRAFFIC_SECRET, secret)
            self._install_with(
                EncryptionLevel.EARLY_DATA, Direction.WRITE, CipherSuite(ticket.cipher_suite), secret
            )
        self._state = ClientState.WAIT_SH

    def _pick_ticket(self, wall: float) -> SessionTicket | None:
        ticket = self.config.session_ticket
        if ticket is None and self.config.ticket_store is not None:
            ticket = self.config.ticket_store.get(self.server_name, wall, self._accept_ticket)
        if ticket is None or not ticket.is_valid(wall) or ticket.cipher_suite not in self._offered_suites:
            return None
        if self._accept_ticket is not None and not self._accept_ticket(ticket):
            return None  # QUIC refuses it (a ticket of another QUIC version, RFC 9369 §5)
        if ticket.server_name != self.server_name:
            return None
        if ticket.cipher_suite != self._offered_suites[0]:
            # offer the ticket's suite first so the server can resume (and accept 0-RTT) with it
            self._offered_suites.remove(CipherSuite(ticket.cipher_suite))
            self._offered_suites.insert(0, CipherSuite(ticket.cipher_suite))
        return ticket

    def _send_client_hello(self, wall: float) -> None:
        config = self.config
        sni = config.server_name if config.server_name and not _is_ip(config.server_name) else None
        signature_algorithms = tuple(config.signature_algorithms)
        psks = None
        ticket = self.session_ticket
        if ticket is not None:
            hash_name = _hash_of(ticket)
            self._psk_schedule = KeySchedule(hash_name, ticket.psk)
            placeholder = bytes(self._psk_schedule.hash_length)  # the binder, computed below
            psks = OfferedPsks([(ticket.ticket, ticket.obfuscated_age(wall))], [placeholder])
        raw = encode_client_hello(
            random=self.client_random,
            cipher_suites=self._offered_suites,  # (IntEnum members: encoded as their values)
            server_name=sni,
            supported_groups=tuple(config.groups),
            signature_algorithms=signature_algorithms
            + tuple(s for s in CERTIFICATE_ONLY_SCHEMES if s not in signature_algorithms),
            alpn_protocols=tuple(p.encode() for p in config.alpn_protocols),
            key_shares=[(group, share.public) for group, share in self._key_shares.items()],
            transport_parameters=self.transport_parameters,
            cookie=self._cookie,
            early_data=self.early_data_offered and not self._retried,
            pre_shared_key=psks,
        )
        if psks is not None and self._psk_schedule is not None:
            # RFC 8446 §4.2.11.2: the binder is an HMAC over the transcript up to the truncated ClientHello
            hash_name = self._psk_schedule.hash_name
            truncated = raw[: len(raw) - psks.binders_size()]
            binder_hash = self._transcript.digest(truncated, name=hash_name)
            psks.binders = [hmac_verify_data(hash_name, self._psk_schedule.binder_key(), binder_hash)]
            # The binders end the message and keep their length: only they change (not encoded again).
            raw = truncated + encode_binders(psks.binders)
        self._send(_I, raw)

    # -- dispatch table --------------------------------------------------------------------------------

    # -- ServerHello / HelloRetryRequest (RFC 8446 §4.1.3, §4.1.4) --------------------------------------

    def _check_server_hello(self, hello: ServerHello) -> CipherSuite:
        if hello.selected_version != TLS13:
            raise alert(AlertDescription.protocol_version, "server did not select TLS 1.3")
        if hello.legacy_version != LEGACY_VERSION:
            raise alert(AlertDescription.illegal_parameter, "bad legacy_version")
        if hello.legacy_session_id_echo != b"" or hello.compression_method != 0:
            raise alert(AlertDescription.illegal_parameter, "bad legacy_session_id_echo or compression")
        if hello.cipher_suite not in self._offered_suites:
            raise alert(AlertDescription.illegal_parameter, "server selected a suite not offered")
        suite = CipherSuite(hello.cipher_suite)
        if self._retried and suite != self.cipher_suite:
            raise alert(AlertDescription.illegal_parameter, "suite differs from the HelloRetryRequest")
        return suite

    def _on_server_hello(self, message: RawMessage, now: float) -> None:
        hello = ServerHello.decode(message.body)
        suite = self._check_server_hello(hello)
        if hello.is_retry_request:
            self._on_hello_retry_request(hello, suite, message.raw)
            return
        self.cipher_suite = suite
        hash_name = SUITE_HASH[suite]
        if hello.key_share is None:
            raise alert(AlertDescription.missing_extension, "ServerHello without key_share")
        group, server_public = hello.key_share
        share = self._key_shares.get(group)
        if share is None:
            raise alert(AlertDescription.illegal_parameter, "server key share for a group not offered")
        if hello.selected_identity is not None:
            ticket = self.session_ticket
            if ticket is None or hello.selected_identity != 0 or self._psk_schedule is None:
                raise alert(AlertDescription.illegal_parameter, "server selected a PSK not offered")
            if _hash_of(ticket) != hash_name:
                raise alert(AlertDescription.illegal_parameter, "suite hash does not match the PSK")
            self.session_resumed = True
            self._schedule = self._psk_schedule
        else:
            self._schedule = KeySchedule(hash_name)
        self._transcript.set_hash(hash_name)
        self._transcript.add(message.raw)
        schedule = self._schedule
        schedule.enter_handshake(share.exchange(server_public))
        transcript_hash = self._transcript.digest()
        self._client_hs_secret = schedule.derive(LABEL_CLIENT_HANDSHAKE, transcript_hash)
        self._server_hs_secret = schedule.derive(LABEL_SERVER_HANDSHAKE, transcript_hash)
        self._keylog(kl.CLIENT_HANDSHAKE_TRAFFIC_SECRET, self._client_hs_secret)
        self._keylog(kl.SERVER_HANDSHAKE_TRAFFIC_SECRET, self._server_hs_secret)
        self._install(_H, Direction.READ, self._server_hs_secret)
        self._install(_H, Direction.WRITE, self._client_hs_secret)
        self._state = ClientState.WAIT_EE

    def _on_hello_retry_request(self, hello: ServerHello, suite: CipherSuite, raw: bytes) -> None:
        if self._retried:
            raise alert(AlertDescription.unexpected_message, "second HelloRetryRequest")
        group = hello.selected_group
        if group is None and hello.cookie is None:
            raise alert(AlertDescription.illegal_parameter, "HelloRetryRequest would change nothing")
        if group is not None and (group not in self.config.groups or group in self._key_shares):
            raise alert(AlertDescription.illegal_parameter, "HelloRetryRequest asks for a bad group")
        self._retried = True
        self.cipher_suite = suite
        hash_name = SUITE_HASH[suite]
        self._transcript.restart_after_retry(hash_name)
        self._transcript.add(raw)
        if group is not None:
            self._key_shares = {group: KeyShare(group, self._randbytes)}
        self._cookie = hello.cookie
        if self.session_ticket is not None and _hash_of(self.session_ticket) != hash_name:
            self.session_ticket = None  # its binder could not be computed with this hash
            self._psk_schedule = None
        self._send_client_hello(self.config.wall_clock())

    # -- EncryptedExtensions and authentication (RFC 8446 §4.3.1, §4.4) --------------------------------------

    def _on_encrypted_extensions(self, message: RawMessage, now: float) -> None:
        ee = EncryptedExtensions.decode(message.body)
        offered = [p.encode() for p in self.config.alpn_protocols]
        if ee.alpn_protocol is None or ee.alpn_protocol not in offered:
            raise alert(AlertDescription.no_application_protocol, "no ALPN protocol negotiated")
        if ee.transport_parameters is None:
            raise alert(AlertDescription.missing_extension, "no quic_transport_parameters")
        if ee.other_extensions:
            raise alert(
                AlertDescription.unsupported_extension, "unsolicited extension in EncryptedExtensions"
            )
        ticket = self.session_ticket
        if ee.early_data:
            if not (self.early_data_offered and self.session_resumed and not self._retried) or ticket is None:
                raise alert(AlertDescription.unsupported_extension, "early_data accepted but not offered")
            # RFC 8446 §4.2.10: 0-RTT is only valid with the ticket's suite and ALPN
            alpn = self._decode_alpn(ee.alpn_protocol)
            if ticket.cipher_suite != self.cipher_suite or ticket.alpn_protocol != alpn:
                raise alert(AlertDescription.illegal_parameter, "0-RTT accepted with another suite or ALPN")
        self.alpn_protocol = self._decode_alpn(ee.alpn_protocol)
        self.peer_transport_parameters = ee.transport_parameters
        self.early_data_accepted = ee.early_data
        self._transcript.add(message.raw)
        self._state = ClientState.WAIT_FINISHED if self.session_resumed else ClientState.WAIT_CERT_CR

    def _on_certificate_request(self, message: RawMessage, now: float) -> None:
        self._certificate_request = CertificateRequest.decode(message.body)
        self._transcript.add(message.raw)
        self._state = ClientState.WAIT_CERT

    def _on_certificate(self, message: RawMessage, now: float) -> None:
        msg = CertificateMessage.decode(message.body)
        if msg.context:
            raise alert(AlertDescription.illegal_parameter, "server Certificate with a request context")
        if not msg.certificates:
            raise alert(AlertDescription.decode_error, "empty server Certificate")  # RFC 8446 §4.4.2.4
        chain = parse_certificates(msg.certificates)
        if self.config.verify_peer and self.server_name is not None:
            at = datetime.fromtimestamp(self.config.wall_clock(), UTC)
            verify_chain(chain, self.server_name, self.config.trust_store(), at)
        self.peer_certificate_chain = chain
        self.peer_certificate = chain[0]
        self._transcript.add(message.raw)
        self._state = ClientState.WAIT_CV

    def _on_certificate_verify(self, message: RawMessage, now: float) -> None:
        verify = CertificateVerify.decode(message.body)
        if self.peer_certificate is None:
            raise alert(AlertDescription.internal_error, "no peer certificate")
        content = certificate_verify_content(self._transcript.digest(), server=True)
        allowed = [int(s) for s in self.config.signature_algorithms]
        verify_signature(
            self.peer_certificate.public_key(), verify.algorithm, verify.signature, content, allowed
        )
        self._transcript.add(message.raw)
        self._state = ClientState.WAIT_FINISHED

    def _on_finished(self, message: RawMessage, now: float) -> None:
        hash_name = self._hash_name()
        schedule = self._key_schedule()
        finished = Finished.decode(message.body, schedule.hash_length)
        expected = hmac_verify_data(hash_name, self._server_hs_secret, self._transcript.digest())
        if not hmac.compare_digest(expected, finished.verify_data):
            raise alert(AlertDescription.decrypt_error, "bad server Finished")
        self._transcript.add(message.raw)
        # RFC 8446 §7.1: application secrets use the transcript up to the server Finished
        schedule.enter_main()
        transcript_hash = self._transcript.digest()
        client_app = schedule.derive(LABEL_CLIENT_APP, transcript_hash)
        server_app = schedule.derive(LABEL_SERVER_APP, transcript_hash)
        self._keylog(kl.CLIENT_TRAFFIC_SECRET_0, client_app)
        self._keylog(kl.SERVER_TRAFFIC_SECRET_0, server_app)
        if self._certificate_request is not None:
            self._send_client_certificate(self._certificate_request)
            transcript_hash = self._transcript.digest()  # (now with our Certificate, CertificateVerify)
        # RFC 8446 §4.4.4: our Finished covers the transcript up to the last message before it
        verify_data = hmac_verify_data(hash_name, self._client_hs_secret, transcript_hash)
        self._send(_H, Finished(verify_data).encode())
        self._resumption_secret = schedule.derive(LABEL_RESUMPTION, self._transcript.digest())
        self._install(_A, Direction.READ, server_app)
        self._install(_A, Direction.WRITE, client_app)
        self.handshake_complete = True
        self._state = ClientState.CONNECTED

    def _send_client_certificate(self, request: CertificateRequest) -> None:
        # RFC 8446 §4.4.2: an empty Certificate when we have no suitable certificate
        key = self.config.private_key
        chain = self.config.certificate_chain
        scheme = None
        if key is not None and chain:
            scheme = choose_scheme(key, request.signature_algorithms, list(self.config.signature_algorithms))
        if key is None or scheme is None:
            self._send(_H, CertificateMessage(request.context, []).encode())
            return
        ders = [c.public_bytes(Encoding.DER) for c in chain]
        self._send(_H, CertificateMessage(request.context, ders).encode())
        content = certificate_verify_content(self._transcript.digest(), server=False)
        self._send(_H, CertificateVerify(scheme, sign(key, scheme, content)).encode())

    # -- NewSessionTicket (RFC 8446 §4.6.1, RFC 9001 §4.6.1) ------------------------------------------------

    def _on_new_session_ticket(self, message: RawMessage, now: float) -> None:
        nst = NewSessionTicket.decode(message.body)
        if nst.lifetime > MAX_TICKET_LIFETIME:
            raise alert(AlertDescription.illegal_parameter, "ticket lifetime above 7 days")
        if nst.max_early_data is not None and nst.max_early_data != QUIC_MAX_EARLY_DATA:
            raise TransportError(
                TransportErrorCode.PROTOCOL_VIOLATION, "max_early_data_size other than 0xffffffff"
            )
        if nst.lifetime == 0 or self.cipher_suite is None:
            return
        ticket = SessionTicket(
            ticket=nst.ticket,
            psk=resumption_psk(self._hash_name(), self._resumption_secret, nst.nonce),
            cipher_suite=int(self.cipher_suite),
            server_name=self.server_name,
            alpn_protocol=self.alpn_protocol,
            received_at=self.config.wall_clock(),
            lifetime=nst.lifetime,
            age_add=nst.age_add,
            max_early_data=nst.max_early_data or 0,
            transport_parameters=self.peer_transport_parameters,
            quic_version=None if self._ticket_version is None else self._ticket_version(),
        )
        self.new_session_tickets.append(ticket)
        if self.config.ticket_store is not None:
            self.config.ticket_store.add(ticket)

    _EXPECTED: ClassVar[dict[Any, Expected]] = {
        ClientState.WAIT_SH: {HandshakeType.server_hello: (_I, _on_server_hello)},
        ClientState.WAIT_EE: {HandshakeType.encrypted_extensions: (_H, _on_encrypted_extensions)},
        ClientState.WAIT_CERT_CR: {
            HandshakeType.certificate: (_H, _on_certificate),
            HandshakeType.certificate_request: (_H, _on_certificate_request),
        },
        ClientState.WAIT_CERT: {HandshakeType.certificate: (_H, _on_certificate)},
        ClientState.WAIT_CV: {HandshakeType.certificate_verify: (_H, _on_certificate_verify)},
        ClientState.WAIT_FINISHED: {HandshakeType.finished: (_H, _on_finished)},
        ClientState.CONNECTED: {HandshakeType.new_session_ticket: (_A, _on_new_session_ticket)},
    }


def _hash_of(ticket: SessionTicket) -> str:
    return SUITE_HASH[CipherSuite(ticket.cipher_suite)]


@functools.lru_cache(maxsize=256)
def _is_ip(name: str) -> bool:
    """True for an IP address literal (RFC 6066 §3: no SNI for those); the answer for a name never
    changes, so it is remembered for the few names a client uses."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
