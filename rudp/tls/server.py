"""The sans-IO TLS 1.3 server handshake for QUIC (RFC 8446 §4, RFC 9001 §4 and §8).

Owns the server state machine: ClientHello validation and negotiation (suite, group, ALPN, signature
scheme), HelloRetryRequest with a cookie when the client's key share does not fit, resumption from
sealed stateless tickets (binder check, lifetime, SNI), the 0-RTT accept/reject decision (freshness,
single use per ticket through the replay cache, ALPN and suite equality, and QUIC's own check of the
remembered transport parameters), the server flight, the client Finished, and NewSessionTicket issue.

Policies: the server prefers its own order for suites, groups and ALPN, but prefers a group the
client already sent a key share for over a HelloRetryRequest; a ticket that cannot be used (unknown
key, expired, other SNI or hash) falls back to a full handshake, never to an error; a bad binder on
the selected ticket is decrypt_error. Client certificates are requested only when
``config.client_auth`` asks for them (and never on resumption: the ticket already authenticates).
"""

from __future__ import annotations

import hmac
import os
from datetime import UTC, datetime
from enum import IntEnum, auto
from typing import Any, ClassVar, Final, Protocol

from rudp.crypto.suites import SUITE_HASH, CipherSuite
from rudp.errors import ConfigError, TransportError, TransportErrorCode
from rudp.tls import keylog as kl
from rudp.tls.alerts import AlertDescription, alert
from rudp.tls.certs import (
    certificate_verify_content,
    parse_certificates,
    verify_signature,
)
from rudp.tls.config import TlsConfig
from rudp.tls.engine import Direction, EncryptionLevel, Expected, RandBytes, TlsEngine
from rudp.tls.extensions import TLS13, PskKeyExchangeMode
from rudp.tls.framing import HandshakeType, RawMessage
from rudp.tls.key_exchange import SUPPORTED_GROUPS, KeyShare
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
    HRR_RANDOM,
    CertificateMessage,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    Finished,
    NewSessionTicket,
    ServerHello,
)
from rudp.tls.tickets import QUIC_MAX_EARLY_DATA, TicketState
from rudp.tls.verification import verify_client_chain

_I = EncryptionLevel.INITIAL
_H = EncryptionLevel.HANDSHAKE
_A = EncryptionLevel.APPLICATION

class QuicHooks(Protocol):
    """QUIC's say in a server handshake, asked by :class:`TlsServer` (one object for the three: a
    connection passes a weak proxy of itself, no reference cycle and nothing built per hook)."""

    def respond_parameters(self, client: bytes) -> bytes:
        """The client's quic_transport_parameters are in, before the server flight is written: return
        the server's (QUIC's compatible version negotiation chooses the version there, RFC 9368 §2.3)."""

    def accept_ticket(self, remembered: bytes | None) -> bool:
        """False to refuse resuming with a ticket whose remembered server transport parameters are
        ``remembered`` (a ticket of another QUIC version, RFC 9369 §5)."""

    def accept_early_data(self, remembered: bytes | None) -> bool:
        """QUIC's veto on 0-RTT: False when the current configuration is not compatible with the
        transport parameters remembered in the ticket (RFC 9001 §4.6.3, RFC 9000 §7.4.1)."""

_MAX_PSK_IDENTITIES = 4
_SUITES: Final = {int(suite): suite for suite in CipherSuite}
"""Each suite by its code point: ``CipherSuite(value)`` for a known one, without the enum's Python call."""

_last_certificate_message: tuple[tuple[bytes, ...], bytes] | None = None
"""The last chain's Certificate message: (the configuration's DER tuple, the message)."""


def _certificate_message(chain_der: tuple[bytes, ...]) -> bytes:
    """The Certificate message (RFC 8446 §4.4.2) of ``chain_der``: the same bytes for every
    connection of a configuration, encoded once per chain (the configuration keeps its DER tuple while
    the chain is unchanged; the entry holds the tuple, so its identity stays its own)."""
    global _last_certificate_message
    last = _last_certificate_message  # (read once: another thread may replace it)
    if last is not None and last[0] is chain_der:
        return last[1]
    message = CertificateMessage(b"", list(chain_der)).encode()
    _last_certificate_message = (chain_der, message)
    return message


class ServerState(IntEnum):
    """Server states of RFC 8446 Appendix A.2 (no WAIT_EOED in QUIC); int members, hashed in C as
    :attr:`TlsServer._EXPECTED` keys."""

    WAIT_CH = auto()
    WAIT_CH2 = auto()
    WAIT_CERT = auto()
    WAIT_CV = auto()
    WAIT_FINISHED = auto()
    CONNECTED = auto()


class _Psk:
    """The ticket the server selected: its index in the offer, identity and sealed state."""

    __slots__ = ("identity", "index", "reported_age_ms", "state")

    def __init__(self, index: int, identity: bytes, reported_age_ms: int, state: TicketState) -> None:
        self.index = index
        self.identity = identity
        self.reported_age_ms = reported_age_ms
        self.state = state


class TlsServer(TlsEngine):
    """TLS 1.3 server engine. See :class:`~rudp.tls.engine.TlsEngine` for the calling convention.

    ``quic``, if given, is asked for the server's transport parameters, whether a ticket may resume
    and whether 0-RTT is acceptable (:class:`QuicHooks`); without it the transport parameters given
    here are sent and every ticket and 0-RTT that TLS accepts is accepted.
    """

    def __init__(
        self,
        config: TlsConfig,
        transport_parameters: bytes,
        *,
        randbytes: RandBytes = os.urandom,
        quic: QuicHooks | None = None,
    ) -> None:
        if config.is_client or config.private_key is None or config.ticket_key is None:
            raise ConfigError("TlsServer needs a server configuration with a certificate and key")
        super().__init__(config, transport_parameters, randbytes=randbytes)
        if config.client_auth != "none" and config.verify_peer:
            config.trust_store()  # load the CAs now: a missing bundle is a ConfigError, not an alert
        self._state = ServerState.WAIT_CH
        self._quic = quic
        self._sealer = config.ticket_sealer()
        self._cookie: bytes | None = None
        self._hrr_group: int | None = None
        self._client_hs_secret = b""
        self._client_app_secret = b""
        self._resumption_secret = b""
        self._tickets_sent = 0

    # -- ClientHello (RFC 8446 §4.1.2) -------------------------------------------------------------------

    def _on_client_hello(self, message: RawMessage, now: float) -> None:
        hello = ClientHello.decode(message.body)
        retried = self._state is ServerState.WAIT_CH2
        if hello.supported_versions is None or TLS13 not in hello.supported_versions:
            raise alert(AlertDescription.protocol_version, "client does not offer TLS 1.3")
        if hello.legacy_session_id:
            # RFC 9001 §8.4: no middlebox compatibility mode in QUIC
            raise TransportError(TransportErrorCode.PROTOCOL_VIOLATION, "non-empty legacy_session_id")
        if hello.compression_methods != b"\x00":
            raise alert(AlertDescription.illegal_parameter, "compression methods other than null")
        if hello.transport_parameters is None:
            raise alert(AlertDescription.missing_extension, "no quic_transport_parameters")  # RFC 9001 §8.2
        if hello.supported_groups is None or hello.key_shares is None:
            raise alert(AlertDescription.missing_extension, "no supported_groups or key_share")
        supported_groups = hello.supported_groups
        for share_group, _ in hello.key_shares:
            if share_group not in supported_groups:
                raise alert(
                    AlertDescription.illegal_parameter, "key share for a group not in supported_groups"
                )
        if hello.pre_shared_key is not None and hello.psk_modes is None:
            raise alert(AlertDescription.missing_extension, "pre_shared_key without psk_key_exchange_modes")
        self.client_random = hello.random
        self.server_name = hello.server_name
        self.peer_transport_parameters = hello.transport_parameters
        if self._quic is not None:
            self.transport_parameters = self._quic.respond_parameters(hello.transport_parameters)
        offered_alpn = hello.alpn_protocols or ()  # (our first protocol the client offers)
        for protocol in self.config.alpn_protocols:
            if protocol.encode() in offered_alpn:
                self.alpn_protocol = protocol
                break
        else:
            raise alert(AlertDescription.no_application_protocol, "no common ALPN protocol")  # RFC 9001 §8.1
        if retried:
            self._check_second_hello(hello)
        psk = None if hello.pre_shared_key is None else self._choose_psk(hello)  # (no call: a full handshake)
        # the cipher suite: the HelloRetryRequest's, else the ticket's, else our first the client offers
        if retried and self.cipher_suite is not None:
            suite = self.cipher_suite
        elif psk is not None and psk.state.cipher_suite in hello.cipher_suites:
            suite = _SUITES[psk.state.cipher_suite]
        else:
            for suite in self.config.cipher_suites:
                if suite in hello.cipher_suites:
                    break
            else:
                raise alert(AlertDescription.handshake_failure, "no common cipher suite")
        group = self._choose_group(hello)
        client_public = None
        for share_group, key in hello.key_shares:
            if share_group == group:
                client_public = key
                break
        else:
            self._send_hello_retry_request(hello, message.raw, suite, group)
            return
        self.cipher_suite = suite
        hash_name = SUITE_HASH[suite]
        self._transcript.set_hash(hash_name)
        schedule: KeySchedule | None = None
        if psk is not None and SUITE_HASH[_SUITES[psk.state.cipher_suite]] == hash_name:
            schedule = self._verify_binder(hello, psk, message.raw, hash_name)
            self.session_resumed = True
        else:
            psk = None
        if not self.session_resumed and hello.signature_algorithms is None:
            raise alert(AlertDescription.missing_extension, "no signature_algorithms")
        self._transcript.add(message.raw)
        schedule = self._schedule = schedule or KeySchedule(hash_name)  # the binder's Early Secret, if any
        if psk is not None and hello.early_data:
            self._decide_early_data(hello, psk, retried)
        share = KeyShare(group, self._randbytes)
        shared_secret = share.exchange(client_public)
        server_hello = ServerHello(
            random=self._randbytes(32),
            cipher_suite=suite,
            legacy_session_id_echo=hello.legacy_session_id,
            key_share=(group, share.public),
            selected_identity=psk.index if psk is not None else None,
        )
        self._send(_I, server_hello.encode())
        self._send_server_flight(hello, schedule, shared_secret)

    def _check_second_hello(self, hello: ClientHello) -> None:
        # RFC 8446 §4.1.2: ClientHello2 answers the HelloRetryRequest and nothing else may change
        if hello.cookie != self._cookie:
            raise alert(AlertDescription.illegal_parameter, "cookie not echoed")
        shares = hello.key_shares or []
        if len(shares) != 1 or shares[0][0] != self._hrr_group:
            raise alert(AlertDescription.illegal_parameter, "key share does not answer the HelloRetryRequest")
        if hello.early_data:
            raise alert(AlertDescription.illegal_parameter, "early_data after a HelloRetryRequest")
        if self.cipher_suite not in hello.cipher_suites:
            raise alert(AlertDescription.illegal_parameter, "cipher suite of the HelloRetryRequest dropped")

    def _choose_group(self, hello: ClientHello) -> int:
        if self._hrr_group is not None:
            return self._hrr_group
        # our first group the client sent a key share for, else our first group it supports (a
        # HelloRetryRequest asks for that one's share)
        shares = hello.key_shares or ()
        offered = hello.supported_groups or ()
        supported: int | None = None
        for group in self.config.groups:
            if group in SUPPORTED_GROUPS:
                for share_group, _ in shares:
                    if share_group == group:
                        return group
                if supported is None and group in offered:
                    supported = group
        if supported is None:
            raise alert(AlertDescription.handshake_failure, "no common key exchange group")
        return supported

    def _send_hello_retry_request(
        self, hello: ClientHello, raw: bytes, suite: CipherSuite, group: int
    ) -> None:
        if self._state is ServerState.WAIT_CH2:
            raise alert(AlertDescription.illegal_parameter, "ClientHello2 still needs a retry")
        self.cipher_suite = suite
        self._hrr_group = group
        self._cookie = self._randbytes(16)
        hash_name = SUITE_HASH[suite]
        self._transcript.add(raw)
        self._transcript.restart_after_retry(hash_name)
        retry = ServerHello(
            random=HRR_RANDOM,
            cipher_suite=suite,
            legacy_session_id_echo=hello.legacy_session_id,
            selected_group=group,
            cookie=self._cookie,
        )
        self._send(_I, retry.encode())
        self._state = ServerState.WAIT_CH2

    # -- PSK and 0-RTT (RFC 8446 §4.2.10, §4.2.11, §8) --------------------------------------------------

    def _choose_psk(self, hello: ClientHello) -> _Psk | None:
        offer = hello.pre_shared_key
        if offer is None or PskKeyExchangeMode.psk_dhe_ke not in (hello.psk_modes or []):
            return None
        wall = self.config.wall_clock()
        # only the first few identities are tried: each costs an AEAD open (RFC 8446 §4.2.11 lets the
        # server pick any, and clients offer one or two)
        for index, (identity, obfuscated_age) in enumerate(offer.identities[:_MAX_PSK_IDENTITIES]):
            state = self._sealer.unseal(identity)
            if state is None or state.server_name != hello.server_name:
                continue
            if (
                state.cipher_suite not in self.config.cipher_suites
                or state.cipher_suite not in hello.cipher_suites
            ):
                continue
            if (
                self.cipher_suite is not None
                and SUITE_HASH[self.cipher_suite] != SUITE_HASH[_SUITES[state.cipher_suite]]
            ):
                continue  # after a HelloRetryRequest the hash is fixed
            if not 0 <= state.age_ms(wall) <= state.lifetime * 1000:
                continue  # expired: full handshake (RFC 8446 §4.6.1)
            if self._quic is not None and not self._quic.accept_ticket(state.transport_parameters):
                continue
            reported_age = (obfuscated_age - state.age_add) & 0xFFFFFFFF
            return _Psk(index, identity, reported_age, state)
        return None

    def _verify_binder(self, hello: ClientHello, psk: _Psk, raw: bytes, hash_name: str) -> KeySchedule:
        """Check the PSK binder (RFC 8446 §4.2.11.2); return the key schedule at the PSK's Early Secret."""
        offer = hello.pre_shared_key
        if offer is None:
            raise alert(AlertDescription.internal_error, "no PSK offer")
        truncated = raw[: len(raw) - offer.binders_size()]
        schedule = KeySchedule(hash_name, psk.state.psk)
        expected = hmac_verify_data(hash_name, schedule.binder_key(), self._transcript.digest(truncated))
        if not hmac.compare_digest(expected, offer.binders[psk.index]):
            raise alert(AlertDescription.decrypt_error, "bad PSK binder")
        return schedule

    def _decide_early_data(self, hello: ClientHello, psk: _Psk, retried: bool) -> None:
        if not hello.early_data or retried or psk.index != 0 or not self.config.early_data:
            return
        state = psk.state
        if state.max_early_data != QUIC_MAX_EARLY_DATA or state.cipher_suite != self.cipher_suite:
            return
        if state.alpn_protocol != self.alpn_protocol:
            return
        cache = self.config.replay_cache
        if not cache.is_fresh(psk.reported_age_ms, state.age_ms(self.config.wall_clock())):
            return
        if self._quic is not None and not self._quic.accept_early_data(state.transport_parameters):
            return
        if not cache.accept(psk.identity, self.config.wall_clock()):
            return  # replayed (or cache full): reject 0-RTT, keep the handshake
        self.early_data_accepted = True
        secret = self._key_schedule().derive(LABEL_CLIENT_EARLY, self._transcript.digest())
        self._keylog(kl.CLIENT_EARLY_TRAFFIC_SECRET, secret)
        self._install(EncryptionLevel.EARLY_DATA, Direction.READ, secret)

    # -- server flight (RFC 8446 §4.3, §4.4) ---------------------------------------------------------------

    def _send_server_flight(self, hello: ClientHello, schedule: KeySchedule, shared_secret: bytes) -> None:
        hash_name = schedule.hash_name
        schedule.enter_handshake(shared_secret)
        transcript_hash = self._transcript.digest()
        self._client_hs_secret = schedule.derive(LABEL_CLIENT_HANDSHAKE, transcript_hash)
        server_hs_secret = schedule.derive(LABEL_SERVER_HANDSHAKE, transcript_hash)
        if self.config.keylog is not None:
            self._keylog(kl.CLIENT_HANDSHAKE_TRAFFIC_SECRET, self._client_hs_secret)
            self._keylog(kl.SERVER_HANDSHAKE_TRAFFIC_SECRET, server_hs_secret)
        self._install(_H, Direction.WRITE, server_hs_secret)
        self._install(_H, Direction.READ, self._client_hs_secret)
        extensions = EncryptedExtensions(
            alpn_protocol=(self.alpn_protocol or "").encode(),
            transport_parameters=self.transport_parameters,
            early_data=self.early_data_accepted,
        )
        self._send(_H, extensions.encode())
        request_certificate = self.config.client_auth != "none" and not self.session_resumed
        if request_certificate:
            schemes = [int(s) for s in self.config.signature_algorithms]
            self._send(_H, CertificateRequest(b"", schemes).encode())
        if not self.session_resumed:  # Certificate and CertificateVerify (RFC 8446 §4.4.2, §4.4.3)
            config = self.config
            if config.private_key is None:
                raise alert(AlertDescription.internal_error, "no private key")
            signer = config.signer()  # (the key's schemes and signature algorithms, made once per key)
            scheme = signer.choose(hello.signature_algorithms or (), config.signature_algorithms)
            if scheme is None:
                raise alert(AlertDescription.handshake_failure, "no common signature algorithm")
            self._send(_H, _certificate_message(config.certificate_chain_der()))
            content = certificate_verify_content(self._transcript.digest(), server=True)
            self._send(_H, CertificateVerify(scheme, signer.sign(scheme, content)).encode())
        verify_data = hmac_verify_data(hash_name, server_hs_secret, self._transcript.digest())
        self._send(_H, Finished(verify_data).encode())
        schedule.enter_main()
        transcript_hash = self._transcript.digest()
        self._client_app_secret = schedule.derive(LABEL_CLIENT_APP, transcript_hash)
        server_app_secret = schedule.derive(LABEL_SERVER_APP, transcript_hash)
        if self.config.keylog is not None:
            self._keylog(kl.CLIENT_TRAFFIC_SECRET_0, self._client_app_secret)
            self._keylog(kl.SERVER_TRAFFIC_SECRET_0, server_app_secret)
        self._install(_A, Direction.WRITE, server_app_secret)
        self._state = ServerState.WAIT_CERT if request_certificate else ServerState.WAIT_FINISHED

    # -- client authentication (RFC 8446 §4.4.2, §4.4.3) ----------------------------------------------

    def _on_certificate(self, message: RawMessage, now: float) -> None:
        msg = CertificateMessage.decode(message.body)
        if msg.context:
            raise alert(AlertDescription.illegal_parameter, "unexpected certificate_request_context")
        self._transcript.add(message.raw)
        if not msg.certificates:
            if self.config.client_auth == "required":
                raise alert(AlertDescription.certificate_required, "the client sent no certificate")
            self._state = ServerState.WAIT_FINISHED
            return
        chain = parse_certificates(msg.certificates)
        if self.config.verify_peer:
            at = datetime.fromtimestamp(self.config.wall_clock(), UTC)
            verify_client_chain(chain, self.config.trust_store(), at)
        self.peer_certificate_chain = chain
        self.peer_certificate = chain[0]
        self._state = ServerState.WAIT_CV

    def _on_certificate_verify(self, message: RawMessage, now: float) -> None:
        verify = CertificateVerify.decode(message.body)
        if self.peer_certificate is None:
            raise alert(AlertDescription.internal_error, "no peer certificate")
        content = certificate_verify_content(self._transcript.digest(), server=False)
        allowed = [int(s) for s in self.config.signature_algorithms]
        public_key = self.peer_certificate.public_key()
        verify_signature(public_key, verify.algorithm, verify.signature, content, allowed)
        self._transcript.add(message.raw)
        self._state = ServerState.WAIT_FINISHED

    # -- client Finished and tickets (RFC 8446 §4.4.4, §4.6.1) --------------------------

    def _on_finished(self, message: RawMessage, now: float) -> None:
        schedule = self._schedule  # (set with the server flight, before this state)
        if schedule is None:
            raise alert(AlertDescription.internal_error, "no key schedule yet")
        finished = Finished.decode(message.body, schedule.hash_length)
        expected = hmac_verify_data(schedule.hash_name, self._client_hs_secret, self._transcript.digest())
        if not hmac.compare_digest(expected, finished.verify_data):
            raise alert(AlertDescription.decrypt_error, "bad client Finished")
        self._transcript.add(message.raw)
        self._resumption_secret = schedule.derive(LABEL_RESUMPTION, self._transcript.digest())
        self._install(_A, Direction.READ, self._client_app_secret)
        self.handshake_complete = True
        self._state = ServerState.CONNECTED
        for _ in range(self.config.session_tickets):
            self.send_session_ticket(now)

    def send_session_ticket(self, now: float) -> None:
        """Queue a NewSessionTicket at the Application level (only after the handshake completed)."""
        if self._state is not ServerState.CONNECTED or self.cipher_suite is None:
            raise alert(
                AlertDescription.internal_error, "send_session_ticket() before the handshake completed"
            )
        hash_name = SUITE_HASH[self.cipher_suite]
        nonce = self._tickets_sent.to_bytes(8, "big")
        self._tickets_sent += 1
        max_early_data = QUIC_MAX_EARLY_DATA if self.config.early_data else 0
        state = TicketState(
            psk=resumption_psk(hash_name, self._resumption_secret, nonce),
            cipher_suite=int(self.cipher_suite),
            alpn_protocol=self.alpn_protocol,
            server_name=self.server_name,
            issued_at=self.config.wall_clock(),
            lifetime=self.config.ticket_lifetime,
            age_add=int.from_bytes(self._randbytes(4), "big"),
            max_early_data=max_early_data,
            transport_parameters=self.transport_parameters,
        )
        ticket = NewSessionTicket(
            lifetime=state.lifetime,
            age_add=state.age_add,
            nonce=nonce,
            ticket=self._sealer.seal(state, self._randbytes(12)),
            max_early_data=max_early_data or None,
        )
        self._send(_A, ticket.encode(), transcript=False)

    _EXPECTED: ClassVar[dict[Any, Expected]] = {
        ServerState.WAIT_CH: {HandshakeType.client_hello: (_I, _on_client_hello)},
        ServerState.WAIT_CH2: {HandshakeType.client_hello: (_I, _on_client_hello)},
        ServerState.WAIT_CERT: {HandshakeType.certificate: (_H, _on_certificate)},
        ServerState.WAIT_CV: {HandshakeType.certificate_verify: (_H, _on_certificate_verify)},
        ServerState.WAIT_FINISHED: {HandshakeType.finished: (_H, _on_finished)},
    }
