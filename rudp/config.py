"""The public configuration object shared by QUIC connections, endpoints and the TCP baseline.

Owns :class:`Config` (every user-tunable knob, validated in ``__post_init__``) and its translation into
the TLS engine's configuration and into our transport parameters. It does not own runtime state.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rudp.codec.codes import Version
from rudp.codec.transport_params import TransportParameters
from rudp.crypto.suites import CipherSuite
from rudp.errors import ConfigError

if TYPE_CHECKING:
    from rudp.tls.config import TlsConfig
    from rudp.tls.tickets import TicketStore

CongestionSpec = str | type | Callable[..., Any]
"""A congestion controller by registered name, by class, or by factory taking max_datagram_size."""


@dataclass
class Config:
    """Settings of a rudp client or server; one Config may be shared by many connections.

    Raises:
        ConfigError: from ``__post_init__`` for an invalid value.
    """

    alpn: list[str] = field(default_factory=lambda: ["hq-interop"])
    """ALPN protocols in preference order (QUIC requires ALPN; RFC 9001 §8.1)."""
    certfile: str | Path | None = None
    """PEM certificate chain, leaf first: the server's; for a client, the certificate it presents when
    the server asks for one (mutual TLS)."""
    keyfile: str | Path | None = None
    """PEM private key of ``certfile``."""
    cafile: str | Path | None = None
    """PEM CA bundle to verify the peer against: the server (client side; None uses the system
    bundle) or client certificates (server side, with ``client_auth``)."""
    client_auth: Literal["none", "optional", "required"] = "none"
    """(server) ask clients for a certificate; "required" refuses clients without a valid one."""
    verify: bool = True
    """(client) verify the server's certificate and name. Turn off only in tests."""
    server_name: str | None = None
    """(client) SNI and the name to verify; defaults to the host passed to ``connect()``."""
    congestion: CongestionSpec = "newreno"
    """Congestion controller: a registered name ("newreno"...), a class, or a factory."""
    idle_timeout: float = 30.0
    """Seconds of inactivity after which the connection closes silently (0 disables ours)."""
    keepalive_interval: float | None = None
    """If set, send a PING whenever nothing ack-eliciting was sent for this many seconds."""
    initial_max_data: int = 1 << 20
    """Connection-level receive window we start with (bytes)."""
    max_connection_window: int = 16 << 20
    """Ceiling for connection window auto-tuning (bytes)."""
    initial_max_stream_data: int = 256 << 10
    """Per-stream receive window we start with (bytes)."""
    max_stream_window: int = 4 << 20
    """Ceiling for per-stream window auto-tuning (bytes)."""
    send_buffer_bytes: int = 1 << 20
    """Per-stream send buffer budget: ``write()`` beyond it waits in ``drain()`` (bytes)."""
    max_streams_bidi: int = 100
    """Concurrent bidirectional streams the peer may open."""
    max_streams_uni: int = 100
    """Concurrent unidirectional streams the peer may open."""
    datagrams: bool = False
    """Enable unreliable datagrams (RFC 9221)."""
    max_datagram_frame_size: int = 65535
    """Largest DATAGRAM frame we accept when ``datagrams`` is on."""
    max_datagram_size: int = 1350
    """Largest UDP payload we send (never above the peer's max_udp_payload_size)."""
    pmtu_discovery: bool = True
    """Probe for larger datagrams once connected (DPLPMTUD, RFC 9000 §14.3): loopback and jumbo-frame
    paths then carry far fewer, larger packets. Sent with Don't Fragment set, so no IP fragmentation."""
    max_pmtu: int = 16384
    """The largest datagram PMTU discovery may try (also bounded by the peer's max_udp_payload_size)."""
    connection_id_length: int = 8
    """Length of the connection IDs we issue (0..20)."""
    pacing: bool = True
    """Spread packets over the round trip (RFC 9002 §7.7) instead of sending each window as a burst."""
    max_ack_delay: float = 0.025
    """Our max_ack_delay transport parameter (seconds)."""
    ack_delay_exponent: int = 3
    """Our ack_delay_exponent transport parameter."""
    active_connection_id_limit: int = 4
    """How many connection IDs of the peer we are willing to hold."""
    version: int = Version.V1
    """QUIC version a client starts with (V1 or V2)."""
    cipher_suites: list[CipherSuite] | None = None
    """TLS cipher suites in preference order; None for the default order."""
    qlog_dir: str | Path | None = None
    """Directory where one qlog file per connection is written; None disables qlog."""
    secrets_log: str | Path | None = None
    """SSLKEYLOGFILE-format file the TLS secrets are appended to (for Wireshark). None: the file the
    ``SSLKEYLOGFILE`` environment variable names, if set (as ``ssl.create_default_context()`` does),
    read when a connection or listener is set up; see :meth:`secrets_log_path`."""
    session_ticket_store: TicketStore | None = None
    """(client) where session tickets are stored and taken from, for resumption."""
    enable_0rtt: bool = False
    """(client) send early data when a ticket allows it; (server) accept 0-RTT."""
    retry: bool = False
    """(server) validate client addresses with a Retry before creating connection state."""
    retry_threshold: int | None = 64
    """(server) handshakes in progress from which clients without a valid address token must first
    answer a stateless Retry (RFC 9000 §8.1.2), as SYN cookies kick in for TCP: a flood from spoofed
    addresses then creates no state. None: only ``retry`` decides."""
    max_handshakes: int = 512
    """(server) cap on handshakes in progress per endpoint; new clients beyond it are refused with
    CONNECTION_REFUSED (RFC 9000 §5.2.2). Bounds the memory a handshake flood can take."""
    max_connections: int = 10_000
    """(server) cap on connections (handshaking or established) per endpoint; beyond it new clients
    are refused with CONNECTION_REFUSED."""
    address_token_lifetime: float = 24 * 3600.0
    """(server) seconds a NEW_TOKEN address token stays valid (RFC 9000 §8.1.3); a returning client
    that presents one skips the Retry round trip."""
    handshake_timeout: float = 10.0
    """Seconds ``connect()`` waits for the handshake before raising ConnectTimeout."""
    stateless_reset_key: bytes | None = None
    """(server) static key the stateless reset tokens derive from; share it between restarts (or
    between servers behind one address) so a peer of a lost connection learns it is gone. None: derived
    from the server's private key (so a server restarted with the same key resets its old peers'
    connections at once, RFC 9000 §10.3); a random key for endpoints without one."""
    address_tokens: dict[str, bytes] = field(default_factory=dict)
    """(client) the latest NEW_TOKEN token of each server ("host port"), presented on the next
    connection made with this Config so a server under load need not send a Retry (RFC 9000 §8.1.3)."""
    randbytes: Callable[[int], bytes] = os.urandom
    """Randomness source for CIDs, tokens and keys (inject a seeded one for deterministic tests)."""

    def __post_init__(self) -> None:
        if not self.alpn:
            raise ConfigError("alpn must name at least one protocol")
        if not 0 <= self.connection_id_length <= 20:
            raise ConfigError("connection_id_length must be 0..20")
        if not 1200 <= self.max_datagram_size <= 65527:
            raise ConfigError("max_datagram_size must be 1200..65527")
        if not self.max_datagram_size <= self.max_pmtu <= 65527:
            raise ConfigError("max_pmtu must be between max_datagram_size and 65527")
        if self.idle_timeout < 0:
            raise ConfigError("idle_timeout must be >= 0")
        if self.keepalive_interval is not None and self.keepalive_interval <= 0:
            raise ConfigError("keepalive_interval must be > 0")
        if not 0 <= self.max_ack_delay < 2**14 / 1000:
            raise ConfigError("max_ack_delay must be below 16.384 s")
        if not 0 <= self.ack_delay_exponent <= 20:
            raise ConfigError("ack_delay_exponent must be 0..20")
        if self.active_connection_id_limit < 2:
            raise ConfigError("active_connection_id_limit must be >= 2")
        for name in ("initial_max_data", "initial_max_stream_data", "send_buffer_bytes"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.max_connection_window < self.initial_max_data:
            raise ConfigError("max_connection_window must be >= initial_max_data")
        if self.max_stream_window < self.initial_max_stream_data:
            raise ConfigError("max_stream_window must be >= initial_max_stream_data")
        if self.retry_threshold is not None and self.retry_threshold < 0:
            raise ConfigError("retry_threshold must be >= 0 (or None)")
        if self.max_handshakes < 1 or self.max_connections < 1:
            raise ConfigError("max_handshakes and max_connections must be >= 1")
        if self.address_token_lifetime <= 0:
            raise ConfigError("address_token_lifetime must be > 0")
        if self.version not in (Version.V1, Version.V2):
            raise ConfigError("version must be QUIC v1 or v2")

    def local_transport_parameters(self) -> TransportParameters:
        """Our transport parameters (CID fields are filled in by the connection)."""
        return TransportParameters(
            max_idle_timeout=int(self.idle_timeout * 1000),
            max_udp_payload_size=65527,
            initial_max_data=self.initial_max_data,
            initial_max_stream_data_bidi_local=self.initial_max_stream_data,
            initial_max_stream_data_bidi_remote=self.initial_max_stream_data,
            initial_max_stream_data_uni=self.initial_max_stream_data,
            initial_max_streams_bidi=self.max_streams_bidi,
            initial_max_streams_uni=self.max_streams_uni,
            ack_delay_exponent=self.ack_delay_exponent,
            max_ack_delay=round(self.max_ack_delay * 1000),
            active_connection_id_limit=self.active_connection_id_limit,
            max_datagram_frame_size=self.max_datagram_frame_size if self.datagrams else None,
        )

    def secrets_log_path(self) -> str | None:
        """The key log file both transports use: ``secrets_log``, else ``$SSLKEYLOGFILE``, else None."""
        from rudp.tls.keylog import keylog_path

        return keylog_path(self.secrets_log)

    def tls_config(self, *, is_client: bool, server_name: str | None = None) -> TlsConfig:
        """Build the TLS engine configuration (loads certificate files once).

        Raises:
            ConfigError: for unreadable or inconsistent credentials.
        """
        from rudp.tls.config import TlsConfig
        from rudp.tls.keylog import keylog_file

        secrets_log = self.secrets_log_path()
        kwargs: dict[str, Any] = {}
        if self.cipher_suites is not None:
            kwargs["cipher_suites"] = list(self.cipher_suites)
        return TlsConfig(
            is_client=is_client,
            alpn_protocols=list(self.alpn),
            server_name=server_name or self.server_name,
            certfile=None if self.certfile is None else str(self.certfile),
            keyfile=None if self.keyfile is None else str(self.keyfile),
            client_auth="none" if is_client else self.client_auth,
            verify_peer=self.verify,
            cafile=None if self.cafile is None else str(self.cafile),
            ticket_store=self.session_ticket_store,
            early_data=self.enable_0rtt,
            keylog=None if secrets_log is None else keylog_file(secrets_log),
            **kwargs,
        )
