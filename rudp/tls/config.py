"""TLS configuration shared by every handshake of an endpoint (client or server side).

Owns :class:`TlsConfig`: protocol preferences (suites, groups, signature schemes, ALPN), credentials
(certificate chain and key from PEM files or objects), peer verification (CA file/data/directory or
the system bundle), session resumption (client ticket store, server ticket key and replay cache),
0-RTT, the key log and the wall clock. Loading files happens here, once, not per handshake.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from rudp.crypto.suites import CipherSuite
from rudp.errors import ConfigError
from rudp.tls.cert_cache import cached_trust_store
from rudp.tls.certs import (
    HANDSHAKE_SIGNATURE_SCHEMES,
    PemSource,
    PrivateKey,
    SignatureScheme,
    Signer,
    TrustStore,
    check_key_matches_certificate,
    describe_source,
    load_certificate_chain,
    load_private_key,
    schemes_for_key,
)
from rudp.tls.extensions import NamedGroup
from rudp.tls.keylog import KeyLog
from rudp.tls.tickets import MAX_TICKET_LIFETIME, ReplayCache, SessionTicket, TicketSealer, TicketStore


def system_wall_clock() -> float:
    """POSIX seconds: certificate validity and ticket ages need the calendar, not a monotonic clock."""
    return datetime.now(UTC).timestamp()


@dataclass
class TlsConfig:
    """Settings of a TLS 1.3 endpoint for QUIC. Fields marked (client)/(server) apply to one side."""

    is_client: bool = True
    alpn_protocols: list[str] = field(default_factory=list)
    """ALPN protocol names, in preference order; required in QUIC (RFC 9001 §8.1)"""
    server_name: str | None = None
    """(client) SNI and the name the certificate must match (a DNS name or an IP address)"""

    certfile: PemSource | None = None
    """PEM certificate chain, leaf first (path or PEM bytes); loaded into ``certificate_chain``"""
    keyfile: PemSource | None = None
    """PEM private key (path or PEM bytes); loaded into ``private_key``"""
    password: bytes | None = None
    certificate_chain: list[x509.Certificate] = field(default_factory=list)
    private_key: PrivateKey | None = None

    verify_peer: bool = True
    """verify the peer's chain (and, on a client, the server name); switch off only in tests"""
    client_auth: Literal["none", "optional", "required"] = "none"
    """(server) request a client certificate; "required" refuses clients without one"""
    cafile: PemSource | None = None
    cadata: bytes | None = None
    capath: str | None = None

    cipher_suites: list[CipherSuite] = field(
        default_factory=lambda: [
            CipherSuite.AES_128_GCM_SHA256,
            CipherSuite.AES_256_GCM_SHA384,
            CipherSuite.CHACHA20_POLY1305_SHA256,
        ]
    )
    groups: list[NamedGroup] = field(
        default_factory=lambda: [NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1]
    )
    """key exchange groups in preference order; a client sends a key share for the first one only"""
    signature_algorithms: list[SignatureScheme] = field(
        default_factory=lambda: list(HANDSHAKE_SIGNATURE_SCHEMES)
    )

    session_ticket: SessionTicket | None = None
    """(client) the ticket to offer; if None, one is taken from ``ticket_store`` for server_name"""
    ticket_store: TicketStore | None = None
    """(client) where received tickets are stored (and taken from)"""
    ticket_key: bytes | None = None
    """(server) AES-GCM key sealing the tickets; a random one is made if None"""
    ticket_lifetime: int = 24 * 3600
    session_tickets: int = 1
    """(server) NewSessionTickets sent when the handshake completes (0: no resumption)"""
    early_data: bool = False
    """0-RTT: (client) offer it when the ticket allows; (server) allow it in tickets and accept it"""
    replay_cache: ReplayCache = field(default_factory=ReplayCache)
    """(server) anti-replay record of 0-RTT tickets, shared by the engines using this config"""

    keylog: KeyLog | None = None
    """called with one SSLKEYLOGFILE line per secret (see :func:`rudp.tls.keylog.keylog_file`)"""
    wall_clock: Callable[[], float] = system_wall_clock
    """POSIX time source for certificate validity and ticket ages"""

    _store: TrustStore | None = field(default=None, init=False, repr=False)
    _chain_der: tuple[tuple[x509.Certificate, ...], tuple[bytes, ...]] | None = field(
        default=None, init=False, repr=False
    )
    _sealer: tuple[bytes, TicketSealer] | None = field(default=None, init=False, repr=False)
    _signer: Signer | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.certfile is not None:
            self.certificate_chain = load_certificate_chain(self.certfile)
        if self.keyfile is not None:
            self.private_key = load_private_key(self.keyfile, self.password)
        if self.private_key is not None and self.certificate_chain:
            check_key_matches_certificate(
                self.private_key,
                self.certificate_chain[0],
                key_name="the configured key" if self.keyfile is None else describe_source(self.keyfile),
                certificate_name=(
                    "the configured certificate" if self.certfile is None else describe_source(self.certfile)
                ),
            )
        if not self.alpn_protocols:
            raise ConfigError("QUIC requires at least one ALPN protocol (RFC 9001 §8.1)")
        if not self.cipher_suites or not self.groups or not self.signature_algorithms:
            raise ConfigError("cipher_suites, groups and signature_algorithms must not be empty")
        if not 0 < self.ticket_lifetime <= MAX_TICKET_LIFETIME:
            raise ConfigError("ticket_lifetime must be between 1 second and 7 days")
        if not self.is_client:
            if self.private_key is None or not self.certificate_chain:
                raise ConfigError("a TLS server needs a certificate chain and a private key")
            if not set(schemes_for_key(self.private_key)) & set(self.signature_algorithms):
                raise ConfigError("no configured signature algorithm fits the private key")
            if self.ticket_key is None:
                self.ticket_key = os.urandom(32)

    def certificate_chain_der(self) -> tuple[bytes, ...]:
        """The DER encoding of :attr:`certificate_chain` (RFC 8446 §4.4.2 sends it as is), encoded once
        for the chain's current certificates: replacing the chain or any certificate in it encodes
        the new one (certificates are immutable objects, so the same objects give the same bytes)."""
        chain = tuple(self.certificate_chain)
        cached = self._chain_der
        # identity, not equality: the same certificate objects (never a lookalike) reuse the bytes
        if cached is None or len(cached[0]) != len(chain) or not all(map(operator.is_, cached[0], chain)):
            cached = self._chain_der = (chain, tuple(cert.public_bytes(Encoding.DER) for cert in chain))
        return cached[1]

    def trust_store_is_current(self) -> bool:
        """True unless the trust store this configuration loaded is no longer what its CA sources
        give (a CA file rewritten since it was loaded: :func:`cached_trust_store` loads it again)."""
        return self._store is None or cached_trust_store(self.cafile, self.cadata, self.capath) is self._store

    def ticket_sealer(self) -> TicketSealer:
        """(server) The AEAD that seals and opens this server's tickets under :attr:`ticket_key`, made
        once per key and shared by every connection of the configuration (a new key: a new sealer).

        Raises:
            ConfigError: no ticket key, or not 16, 24 or 32 bytes.
        """
        key = self.ticket_key
        if key is None:
            raise ConfigError("no ticket_key: only a server configuration seals tickets")
        cached = self._sealer
        if cached is None or cached[0] != key:
            cached = self._sealer = (key, TicketSealer(key))
        return cached[1]

    def signer(self) -> Signer:
        """The :attr:`private_key` prepared for CertificateVerify (its schemes and signature
        algorithms worked out once), made again when the key is replaced.

        Raises:
            ConfigError: no private key.
        """
        key = self.private_key
        if key is None:
            raise ConfigError("no private_key to sign with")
        cached = self._signer
        if cached is None or cached.key is not key:  # identity: another key object, another signer
            cached = self._signer = Signer(key)
        return cached

    def trust_store(self) -> TrustStore:
        """The trusted certificates for peer verification (loaded on first use, shared by the configs
        that name the same unchanged sources)."""
        if self._store is None:
            self._store = cached_trust_store(self.cafile, self.cadata, self.capath)
        return self._store
