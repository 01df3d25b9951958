"""The public configuration object shared by QUIC connections, endpoints and the TCP baseline.

Owns :class:`Config` (every user-tunable knob, validated in ``__post_init__``) and its translation into
the TLS engine's configuration and into our transport parameters. It does not own runtime state.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from rudp.codec.codes import Version
from rudp.codec.transport_params import TransportParameters
from rudp.crypto.suites import AeadLimits, CipherSuite
from rudp.errors import ConfigError

if TYPE_CHECKING:
    from rudp.tls.config import TlsConfig
    from rudp.tls.tickets import TicketStore

CongestionSpec = str | type | Callable[..., Any]
"""A congestion controller by registered name, by class, or by factory taking max_datagram_size."""

DEFAULT_ALPN: Final = "rudp/1"
"""The ALPN protocol name of :attr:`Config.alpn` by default: rudp talking to rudp. Applications speaking
a protocol of their own should name it; ``rudp serve``/``rudp get`` use ``hq-interop``
(:data:`rudp.aio.hq.HQ_ALPN`), as the QUIC interop runner's peers expect."""

_VARINT_MAX: Final = (1 << 62) - 1
_MAX_STREAMS: Final = 1 << 60  # RFC 9000 §4.6: stream limits above 2**60 are invalid


def _show(bound: float) -> str:
    if bound == _VARINT_MAX:
        return "2**62 - 1"
    if bound == _MAX_STREAMS:
        return "2**60"
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


def _bad(field: str, value: object, wanted: str) -> ConfigError:
    return ConfigError(f"Config.{field} must be {wanted}, not {value!r}")


def _number(
    config: Config,
    field: str,
    *,
    minimum: float,
    maximum: float | None = None,
    exclusive: bool = False,
    exclusive_maximum: bool = False,
    integer: bool = False,
) -> None:
    """Raise a ConfigError unless ``config.<field>`` is a number (an int if ``integer``) in range."""
    value: Any = getattr(config, field)
    number = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not number or value != value:  # NaN != NaN
        raise _bad(field, value, "an integer" if integer else "a number")
    low = f"> {_show(minimum)}" if exclusive else f">= {_show(minimum)}"
    if value < minimum or (exclusive and value == minimum):
        wanted = low if maximum is None else f"{low} and <= {_show(maximum)}"
        raise _bad(field, value, wanted)
    if maximum is not None and (value > maximum or (exclusive_maximum and value == maximum)):
        high = f"< {_show(maximum)}" if exclusive_maximum else f"<= {_show(maximum)}"
        raise _bad(field, value, f"{low} and {high}")


_LOCAL_PARAMETERS: dict[tuple[object, ...], TransportParameters] = {}
"""Config.local_transport_parameters by the configuration values they are made of (a few configs per
process: bounded by _MAX_LOCAL_PARAMETERS, the oldest dropped first)."""
_MAX_LOCAL_PARAMETERS: Final = 16
_DERIVED_PARAMETERS: Final = "_derived_local_parameters"
"""The instance attribute (not a field) holding :meth:`Config.local_transport_parameters` until the
next field assignment."""
_CLIENT_TLS_CONFIGS: dict[tuple[object, ...], tuple[TicketStore | None, TlsConfig]] = {}
"""A client's TLS settings by every input of :meth:`Config.tls_config` (with the ticket store they
hold), shared by the connections of equal configurations: bounded, the oldest dropped first."""
_MAX_CLIENT_TLS_CONFIGS: Final = 16


@dataclass
class Config:
    """Settings of a rudp client or server; one Config may be shared by many connections.

    Every field is checked when the Config is built: the congestion name against the registry (register
    a custom controller before naming it), ``certfile`` and ``keyfile`` together, ``client_auth``,
    timeouts, limits and sizes. The files themselves are read when a server starts or a client connects.

    Raises:
        ConfigError: from ``__post_init__`` for an invalid value; the message names the field and the
            value.
    """

    alpn: list[str] = field(default_factory=lambda: [DEFAULT_ALPN])
    """ALPN protocols in preference order (QUIC requires ALPN; RFC 9001 §8.1). The default, "rudp/1"
    (:data:`DEFAULT_ALPN`), suits rudp applications talking to each other; name your protocol (or
    ``hq-interop``, ``h3``...) to talk to other implementations."""
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
    """Concurrent bidirectional streams the peer may open (0: none; the TCP baseline grants at least
    16)."""
    max_streams_uni: int = 100
    """Concurrent unidirectional streams the peer may open (0: none; the TCP baseline grants at least
    16)."""
    datagrams: bool = False
    """Enable unreliable datagrams (RFC 9221)."""
    max_datagram_frame_size: int = 65535
    """Largest DATAGRAM frame we accept when ``datagrams`` is on."""
    datagram_share: float = 0.5
    """Share of the bytes sent that queued datagrams may take ahead of stream data while both wait
    (RFC 9221 §5: the application ranks datagrams against streams). Datagrams go first in each packet
    within this share, then fill the room stream data leaves, so a flood of them still leaves streams
    ``1 - share`` of the link. 0: datagrams only get the room stream data leaves. Below 1."""
    datagram_max_age: float | None = 1.0
    """Seconds a queued datagram may wait for the congestion window before it is dropped unsent
    (RFC 9221 §5); None: no expiry (the queue still keeps only the newest 256)."""
    max_datagram_size: int = 1350
    """Largest UDP payload we send (never above the peer's max_udp_payload_size)."""
    pmtu_discovery: bool = True
    """Probe for larger datagrams once connected (DPLPMTUD, RFC 9000 §14.3): loopback and jumbo-frame
    paths then carry far fewer, larger packets. Sent with Don't Fragment set, so no IP fragmentation."""
    max_pmtu: int = 16384
    """The largest datagram PMTU discovery may try (also bounded by the peer's max_udp_payload_size)."""
    connection_id_length: int = 8
    """Length of the connection IDs we issue (0..20)."""
    ecn: bool = True
    """Use ECN (RFC 9000 §13.4, RFC 9002 §7.1): mark outgoing packets ECT(0) while the path is being
    tested or validated, and treat the peer's CE counts as congestion signals. On by default, as in the
    Linux, Apple and Chromium stacks: per-path validation (RFC 9000 §13.4.2) turns it off by itself on a
    path that bleaches or re-marks the codepoints, on a peer that does not report counts (aioquic), or
    when every marked testing packet is lost, so a broken path costs at most ten marked packets. Received
    marks are counted and reported in ACK_ECN frames whatever this flag says (RFC 9000 §13.4.1)."""
    pacing: bool = True
    """Spread packets over the round trip (RFC 9002 §7.7) instead of sending each window as a burst."""
    timer_granularity: float = 0.001
    """The shortest timer wait the driver honours (seconds): the pacer never asks for a wake-up closer
    than this and releases bursts of what its rate sends in two of them (at least 2 ms' worth). 1 ms
    fits epoll's and libuv's (uvloop's) millisecond timers; the asyncio layer raises it to the running
    loop's clock resolution when that is coarser. A simulated clock may set it lower for finer pacing."""
    max_ack_delay: float = 0.025
    """Our max_ack_delay transport parameter (seconds)."""
    ack_delay_exponent: int = 3
    """Our ack_delay_exponent transport parameter."""
    ack_frequency: bool = True
    """Negotiate the ACK frequency extension (draft-ietf-quic-ack-frequency): announce min_ack_delay
    (``timer_granularity``, at most ``max_ack_delay``), honour the peer's ACK_FREQUENCY and
    IMMEDIATE_ACK frames, and, when the peer announced it too, ask it for fewer ACKs as the congestion
    window grows (an ACK per up to :data:`~rudp.quic.ack_frequency.MAX_THRESHOLD` + 1 packets)."""
    active_connection_id_limit: int = 4
    """How many connection IDs of the peer we are willing to hold."""
    version: int = Version.V1
    """QUIC version a client starts with (V1 or V2): its Original Version (RFC 9368 §2)."""
    versions: tuple[int, ...] | None = None
    """QUIC versions in descending preference for compatible version negotiation (RFC 9368, RFC 9369
    §4), or None (the default): no preference. A client offers in its version_information the
    versions of this list its first flight (``version``) is compatible with (None: ``version`` first,
    then the other of V1/V2) and follows a server that switches to one of them. A server switches a
    connection to the first version of this list that the client offers (None: it keeps the client's
    version, as RFC 9368 allows); for example ``versions=(Version.V2, Version.V1)`` moves v1 clients
    that offer v2 to v2 without a round trip. Both sides always send and check version_information."""
    cipher_suites: list[CipherSuite] | None = None
    """TLS cipher suites in preference order; None for the default order."""
    key_update_interval: int | None = None
    """Packets protected with one 1-RTT key after which the connection starts a key update by itself
    (RFC 9001 §6), as soon as the previous update is acknowledged and three PTOs have passed (§6.5).
    None: only before the suite's confidentiality limit (RFC 9001 §6.6; for AES-GCM an update starts
    at 3/4 of its 2**23 packets). ``request_key_update()`` starts one at any time it is allowed."""
    aead_limits: AeadLimits | None = None
    """Lower AEAD usage limits than the negotiated suite's (RFC 9001 §6.6), in packets: the
    confidentiality limit per key and the integrity limit (packets that fail authentication) per
    connection; tests use it to reach the limits with a few packets. None: the suite's own."""
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
    """Seconds a handshake may go without progress: it ends when the peer sent no authenticated packet
    for this long, and in any case three times this after it started, still talking or not
    (``rudp.quic.handshake_deadline.HANDSHAKE_LIFETIME``: Initial packets can be forged). (client)
    ``connect()`` raises ConnectTimeout then; only packets from the server's address and connection ID
    count, and Initial packets only until its ServerHello arrived; a probe it sent just before is
    given one PTO to be answered. (server) the connection is dropped silently, freeing its
    ``max_handshakes`` slot: a client that sent one valid Initial (or came back after a Retry) and went
    silent holds the slot this long, not the idle timeout; one whose probes still arrive keeps it (RFC
    9002 §6.2.2.1). Until the handshake is confirmed both ends probe at least every fifth of this
    (``rudp.quic.handshake_deadline.HANDSHAKE_PROBES``), so a live peer is heard within it."""
    stateless_reset_key: bytes | None = None
    """(server) static key the stateless reset tokens derive from; share it between restarts (or
    between servers behind one address) so a peer of a lost connection learns it is gone. None: derived
    from the server's private key (so a server restarted with the same key resets its old peers'
    connections at once, RFC 9000 §10.3); a random key for endpoints without one."""
    address_tokens: dict[str, bytes] = field(default_factory=dict)
    """(client) the latest NEW_TOKEN token of each server and QUIC version, keyed "host port version"
    (the version in hex, e.g. ``"192.0.2.1 4433 0x1"``), presented on the next connection made with
    this Config that starts in that version, so a server under load need not send a Retry (RFC 9000
    §8.1.3). A token comes from a connection's Negotiated Version and is for that version only (RFC 9369
    §5): a token from a v1 connection is not presented on a v2 one, nor the reverse."""
    randbytes: Callable[[int], bytes] = os.urandom
    """Randomness source for CIDs, tokens and keys (inject a seeded one for deterministic tests)."""
    # -- migration (RFC 9000 §9) -- fields of rudp.quic.preferred; kept together
    preferred_address: list[str] | None = None
    """(server) addresses clients should move to after the handshake (RFC 9000 §9.6): at most one
    IPv4 ``"host:port"`` and one IPv6 ``"[host]:port"``, each a literal with a non-zero port. Every
    connection advertises them in its transport parameters with a connection ID of its own (sequence
    number 1, RFC 9000 §5.1.1); ``rudp.serve()`` listens on them too."""
    serve_preferred_address: bool = True
    """(server) ``rudp.serve()`` listens on ``preferred_address`` too. False when something else
    delivers what clients send there to the server's own address (a NAT or load balancer that maps the
    preferred address to this server): it is then only advertised."""
    use_preferred_address: bool = True
    """(client) move to the server's preferred address of our address family once the handshake is
    confirmed (after validating it, RFC 9000 §9.6.1); False keeps the original address."""
    disable_active_migration: bool = False
    """Tell the peer not to migrate to a new local address (RFC 9000 §18.2). A server that sets it
    still follows a client whose address changes (NAT rebinding cannot be told apart from migration;
    RFC 9000 §9 lets it validate the new path instead of dropping its packets)."""

    def __post_init__(self) -> None:
        """Check every field, so a bad value fails here and not at the first connection.

        Raises:
            ConfigError: naming the field, the value and what it must be.
        """
        self._check_protocols()
        self._check_credentials()
        self._check_numbers()
        self._check_server_limits()
        from rudp.quic.preferred import check_migration_config

        check_migration_config(self)

    def _check_protocols(self) -> None:
        alpn: object = self.alpn
        if isinstance(alpn, str | bytes) or not isinstance(alpn, list | tuple):
            raise _bad("alpn", alpn, 'a list of protocol names such as ["rudp/1"]')
        if not alpn:
            raise _bad("alpn", alpn, "a list naming at least one protocol")
        for name in alpn:
            if not isinstance(name, str) or not 1 <= len(name.encode()) <= 255:
                raise _bad("alpn", alpn, "a list of protocol names of 1 to 255 bytes")
        if self.version not in (Version.V1, Version.V2):
            raise _bad("version", self.version, "QUIC v1 (0x1) or v2 (0x6b3343cf)")
        versions = self.versions
        if versions is not None and (
            not isinstance(versions, tuple)
            or not versions
            or any(v not in (Version.V1, Version.V2) for v in versions)
            or len(set(versions)) != len(versions)
        ):
            raise _bad("versions", versions, "None or a tuple of distinct versions among V1 and V2")
        if self.cipher_suites is not None:
            suites = self.cipher_suites
            if not suites or not all(isinstance(s, CipherSuite) for s in suites):
                raise _bad("cipher_suites", suites, "None or a non-empty list of rudp CipherSuite values")
        congestion = self.congestion
        if isinstance(congestion, str):
            from rudp.quic.congestion import resolve_congestion_controller

            try:
                resolve_congestion_controller(congestion)
            except ConfigError as exc:
                raise ConfigError(f"Config.congestion: {exc}") from None
        elif not callable(congestion):
            raise _bad("congestion", congestion, "a registered name, a controller class or a factory")

    def _check_credentials(self) -> None:
        if self.client_auth not in ("none", "optional", "required"):
            raise _bad("client_auth", self.client_auth, '"none", "optional" or "required"')
        if (self.certfile is None) != (self.keyfile is None):
            given, missing = ("certfile", "keyfile") if self.keyfile is None else ("keyfile", "certfile")
            raise ConfigError(
                f"Config.{given} is set ({getattr(self, given)!s}) but Config.{missing} is not: "
                "give both the certificate and its private key"
            )
        if self.server_name is not None and (not isinstance(self.server_name, str) or not self.server_name):
            raise _bad("server_name", self.server_name, "None or a non-empty host name")
        key = self.stateless_reset_key
        if key is not None and (not isinstance(key, bytes) or len(key) < 16):
            raise _bad("stateless_reset_key", key, "None or at least 16 bytes")
        if not callable(self.randbytes):
            raise _bad("randbytes", self.randbytes, "a function returning n random bytes")

    def _check_numbers(self) -> None:
        _number(self, "handshake_timeout", minimum=0.0, exclusive=True)
        _number(self, "idle_timeout", minimum=0.0)
        if self.keepalive_interval is not None:
            _number(self, "keepalive_interval", minimum=0.0, exclusive=True)
        _number(self, "connection_id_length", minimum=0, maximum=20, integer=True)
        _number(self, "max_datagram_size", minimum=1200, maximum=65527, integer=True)
        _number(self, "max_pmtu", minimum=self.max_datagram_size, maximum=65527, integer=True)
        _number(self, "max_ack_delay", minimum=0.0, maximum=2**14 / 1000, exclusive_maximum=True)
        _number(self, "timer_granularity", minimum=0.0, maximum=1.0)
        _number(self, "ack_delay_exponent", minimum=0, maximum=20, integer=True)
        _number(self, "active_connection_id_limit", minimum=2, integer=True)
        for name in ("initial_max_data", "initial_max_stream_data", "send_buffer_bytes"):
            _number(self, name, minimum=1, maximum=_VARINT_MAX, integer=True)
        windows = (
            ("max_connection_window", self.initial_max_data),
            ("max_stream_window", self.initial_max_stream_data),
        )
        for name, initial in windows:
            _number(self, name, minimum=initial, maximum=_VARINT_MAX, integer=True)
        # 0 is a valid stream limit (RFC 9000 §4.6): the peer may open none of that kind.
        _number(self, "max_streams_bidi", minimum=0, maximum=_MAX_STREAMS, integer=True)
        _number(self, "max_streams_uni", minimum=0, maximum=_MAX_STREAMS, integer=True)
        _number(self, "max_datagram_frame_size", minimum=1, maximum=_VARINT_MAX, integer=True)
        _number(self, "datagram_share", minimum=0.0, maximum=1.0, exclusive_maximum=True)
        if self.datagram_max_age is not None:
            _number(self, "datagram_max_age", minimum=0.0, exclusive=True)
        self._check_key_limits()

    def _check_key_limits(self) -> None:
        if self.key_update_interval is not None:
            _number(self, "key_update_interval", minimum=1, maximum=_VARINT_MAX, integer=True)
        limits = self.aead_limits
        if limits is not None and not (
            isinstance(limits, AeadLimits)
            and all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1
                for n in (limits.confidentiality, limits.integrity)
            )
        ):
            raise _bad("aead_limits", limits, "None or an AeadLimits of two integers >= 1")

    def _check_server_limits(self) -> None:
        if self.retry_threshold is not None:
            _number(self, "retry_threshold", minimum=0, integer=True)
        _number(self, "max_handshakes", minimum=1, integer=True)
        _number(self, "max_connections", minimum=1, integer=True)
        _number(self, "address_token_lifetime", minimum=0.0, exclusive=True)

    def __setattr__(self, name: str, value: Any) -> None:
        # Every assignment forgets what was derived from the fields (a configuration changed in place
        # gives new transport parameters): see :meth:`local_transport_parameters`.
        object.__setattr__(self, name, value)
        self.__dict__.pop(_DERIVED_PARAMETERS, None)

    def local_transport_parameters(self) -> TransportParameters:
        """Our transport parameters (CID fields are filled in by the connection).

        Every connection asks once; the (immutable) result is shared by every call with the same
        inputs, so a server does not build a 22-field object per accepted connection. A configuration
        changed in place gives new parameters: the result is kept on the instance until its next
        field assignment (:meth:`__setattr__`), and shared between instances of equal inputs."""
        kept = self.__dict__.get(_DERIVED_PARAMETERS)
        if kept is not None:
            return kept  # type: ignore[no-any-return]
        params = self._local_transport_parameters()
        object.__setattr__(self, _DERIVED_PARAMETERS, params)
        return params

    def _local_transport_parameters(self) -> TransportParameters:
        values = {
            "max_idle_timeout": int(self.idle_timeout * 1000),
            "max_udp_payload_size": 65527,
            "initial_max_data": self.initial_max_data,
            "initial_max_stream_data_bidi_local": self.initial_max_stream_data,
            "initial_max_stream_data_bidi_remote": self.initial_max_stream_data,
            "initial_max_stream_data_uni": self.initial_max_stream_data,
            "initial_max_streams_bidi": self.max_streams_bidi,
            "initial_max_streams_uni": self.max_streams_uni,
            "ack_delay_exponent": self.ack_delay_exponent,
            "max_ack_delay": round(self.max_ack_delay * 1000),
            "active_connection_id_limit": self.active_connection_id_limit,
            "max_datagram_frame_size": self.max_datagram_frame_size if self.datagrams else None,
            "disable_active_migration": self.disable_active_migration,
            "min_ack_delay": self._min_ack_delay_us() if self.ack_frequency else None,
        }
        key = tuple(values.values())  # every input is in the key: no field can be forgotten
        params = _LOCAL_PARAMETERS.get(key)
        if params is None:
            params = TransportParameters(**values)  # type: ignore[arg-type]
            if len(_LOCAL_PARAMETERS) >= _MAX_LOCAL_PARAMETERS:
                del _LOCAL_PARAMETERS[next(iter(_LOCAL_PARAMETERS))]  # the oldest
            _LOCAL_PARAMETERS[key] = params
        return params

    def _min_ack_delay_us(self) -> int:
        # draft-ietf-quic-ack-frequency §3: the shortest delay we can honour, never above max_ack_delay.
        return min(round(self.timer_granularity * 1_000_000), round(self.max_ack_delay * 1000) * 1000)

    def secrets_log_path(self) -> str | None:
        """The key log file both transports use: ``secrets_log``, else ``$SSLKEYLOGFILE``, else None."""
        from rudp.tls.keylog import keylog_path

        return keylog_path(self.secrets_log)

    def tls_config(self, *, is_client: bool, server_name: str | None = None) -> TlsConfig:
        """Build the TLS engine configuration (loads certificate files once); a client's, without a
        client certificate, is shared with earlier calls of equal inputs while its CA file is unchanged.

        Raises:
            ConfigError: for unreadable or inconsistent credentials, or a key log file that cannot be
                opened.
        """
        from rudp.tls.config import TlsConfig
        from rudp.tls.keylog import opened_keylog_file

        secrets_log = self.secrets_log_path()
        store = self.session_ticket_store
        key: tuple[object, ...] | None = None
        if is_client and self.certfile is None and self.keyfile is None:
            # A client's settings are the same for every connection of one configuration: shared
            # (every input in the key; the entry holds the ticket store, so its id stays its own),
            # built again when one changes or its CA file was rewritten (trust_store_is_current).
            suites = None if self.cipher_suites is None else tuple(self.cipher_suites)
            name = server_name or self.server_name
            key = (tuple(self.alpn), name, self.verify, self.cafile, id(store), self.enable_0rtt)
            key += (secrets_log, suites)
            cached = _CLIENT_TLS_CONFIGS.get(key)
            if cached is not None and cached[1].trust_store_is_current():
                return cached[1]
        kwargs: dict[str, Any] = {}
        if self.cipher_suites is not None:
            kwargs["cipher_suites"] = list(self.cipher_suites)
        tls = TlsConfig(
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
            keylog=None if secrets_log is None else opened_keylog_file(secrets_log),
            **kwargs,
        )
        if key is not None:
            if len(_CLIENT_TLS_CONFIGS) >= _MAX_CLIENT_TLS_CONFIGS and key not in _CLIENT_TLS_CONFIGS:
                del _CLIENT_TLS_CONFIGS[next(iter(_CLIENT_TLS_CONFIGS))]  # the oldest
            _CLIENT_TLS_CONFIGS[key] = (store, tls)
        return tls
