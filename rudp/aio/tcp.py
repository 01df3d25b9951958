"""The TCP baseline's asyncio glue: TLS 1.3 over kernel TCP (the ``ssl`` module) around a TcpMux.

Owns :func:`tcp_connect` and :func:`tcp_listen` (what ``rudp.connect``/``rudp.serve`` call for
``transport="tcp"``), the ``ssl.SSLContext`` built from the same :class:`~rudp.config.Config` as QUIC
(certificate, key, CA file, verification, server name, ALPN, key log; TLS 1.3 minimum), the socket
options (TCP_NODELAY, optionally TCP_CONGESTION) and :class:`TcpLink`, the asyncio protocol that feeds
the mux and writes its output. It does not own the stream protocol (:mod:`rudp.tcp`) nor the public
Connection/Stream objects (:mod:`rudp.aio.connection`), which are the same as QUIC's.

The mux is created in ``connection_made``, i.e. once TLS completed; the connection is established then.
A TCP connection cannot survive an address change: a reset or EOF without CLOSE ends the connection
with code :data:`rudp.tcp.mux.LOST_CODE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import ssl
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Final

from rudp.aio.client import resolve_all
from rudp.aio.connection import Connection
from rudp.aio.driver import ConnectionDriver, SingleCoreLink
from rudp.aio.resolution import NameResolutionError
from rudp.config import Config
from rudp.errors import (
    ConfigError,
    ConnectionRefused,
    ConnectTimeout,
    HandshakeFailed,
    NetworkError,
    TransportErrorCode,
)
from rudp.tcp.mux import TcpMux
from rudp.tcp.state import KernelTcpInfo
from rudp.tls.alerts import AlertDescription
from rudp.tls.certs import load_credentials
from rudp.tls.keylog import keylog_config_error
from rudp.tls.verification import PeerChainSSLObject, ssl_verification_failure

WRITE_HIGH_WATER_BYTES: Final = 256 * 1024
"""Transport write-buffer size above which the link stops moving stream data out of the mux."""
CONTROL_FLOOD_BYTES: Final = WRITE_HIGH_WATER_BYTES + (1 << 20)
"""Write-buffer size at which the link stops reading: only a peer that sends requests (PING, STOP...)
without reading the answers gets there, since stream data is not moved while the buffer is full."""
WRITE_BATCH_BYTES: Final = 64 * 1024
"""Stream bytes taken from the mux per transport write."""
KERNEL_CONGESTION: Final = {"newreno": "reno", "reno": "reno", "cubic": "cubic", "bbr": "bbr"}
"""Kernel TCP_CONGESTION names for rudp congestion-controller names (``tcp_congestion="auto"``)."""

_ALERT_HANDSHAKE_FAILURE: Final = 40
_ALERT_NO_APPLICATION_PROTOCOL: Final = 120

_log = logging.getLogger("rudp.aio.tcp")


def _tls_failure(alert: int, reason: str) -> HandshakeFailed:
    return HandshakeFailed(TransportErrorCode.CRYPTO_ERROR + alert, reason, application=False)


def client_ssl_context(config: Config) -> ssl.SSLContext:
    """A TLS 1.3 client context: CA file (or system roots), verification, ALPN and key log from ``config``.

    Raises:
        ConfigError: unreadable CA file.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    if config.verify:
        try:
            if config.cafile is not None:
                context.load_verify_locations(cafile=str(config.cafile))
            else:
                context.load_default_certs()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load CA file {config.cafile}: {exc}") from exc
        # Same verdicts and words as QUIC (rudp.tls.verification): names only from subjectAltName,
        # and the peer's chain kept on a failure to name the certificate in the error.
        context.hostname_checks_common_name = False
        context.sslobject_class = PeerChainSSLObject
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.certfile is not None and config.keyfile is not None:
        # Mutual TLS: the certificate a client presents when the server asks (as over QUIC).
        load_credentials(config.certfile, config.keyfile)
        try:
            context.load_cert_chain(str(config.certfile), str(config.keyfile))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load {config.certfile} and {config.keyfile}: {exc}") from exc
    return _finish_context(context, config)


def server_ssl_context(config: Config) -> ssl.SSLContext:
    """A TLS 1.3 server context with the certificate chain and key, ALPN and key log from ``config``.

    The files are checked as the QUIC side checks them (readable, parsable, the key being the
    certificate's), so both transports refuse a bad pair with the same message.

    Raises:
        ConfigError: no certificate or key, they cannot be loaded, or they do not match.
    """
    if config.certfile is None or config.keyfile is None:
        raise ConfigError("a server needs Config.certfile and Config.keyfile")
    load_credentials(config.certfile, config.keyfile)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.load_cert_chain(str(config.certfile), str(config.keyfile))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load {config.certfile} and {config.keyfile}: {exc}") from exc
    if config.client_auth != "none":
        # Mutual TLS, as the QUIC server does it: ask every client for a certificate and verify it
        # against Config.cafile (or the system CAs); "required" refuses clients without one.
        required = config.client_auth == "required"
        context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
        try:
            if config.cafile is not None:
                context.load_verify_locations(cafile=str(config.cafile))
            else:
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load CA file {config.cafile}: {exc}") from exc
    return _finish_context(context, config)


def _finish_context(context: ssl.SSLContext, config: Config) -> ssl.SSLContext:
    context.set_alpn_protocols(list(config.alpn))
    if (secrets_log := config.secrets_log_path()) is not None:
        try:
            context.keylog_filename = secrets_log
        except OSError as exc:
            raise keylog_config_error(secrets_log, exc) from exc
    return context


_TCP_INFO = struct.Struct("=8x24I")  # Linux struct tcp_info up to tcpi_total_retrans


def read_tcp_info(sock: socket.socket) -> KernelTcpInfo | None:
    """The kernel's TCP_INFO figures for ``sock`` (Linux), or None where unavailable."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, option, _TCP_INFO.size)
    except OSError:
        return None
    if len(raw) < _TCP_INFO.size:
        return None
    fields = _TCP_INFO.unpack_from(raw)
    mss, unacked, rtt_us, cwnd, total_retrans = fields[2], fields[4], fields[15], fields[18], fields[23]
    return KernelTcpInfo(rtt_us / 1e6, cwnd * mss, unacked * mss, total_retrans, mss)


def _congestion_name(config: Config, tcp_congestion: str | None) -> str | None:
    if tcp_congestion != "auto":
        return tcp_congestion
    name = config.congestion
    return KERNEL_CONGESTION.get(name) if isinstance(name, str) else None


class TcpLink(SingleCoreLink, asyncio.Protocol):
    """One TLS-over-TCP connection: the asyncio protocol and the driver link around its :class:`TcpMux`.

    ``connection`` is set in ``connection_made`` (after the TLS handshake) unless ALPN failed, in
    which case the transport is aborted. ``on_connection`` (servers) is then called with it.
    """

    def __init__(
        self,
        config: Config,
        *,
        is_client: bool,
        on_connection: Callable[[TcpLink, Connection], None] | None = None,
        on_closed: Callable[[TcpLink], None] | None = None,
        tcp_congestion: str | None = None,
    ) -> None:
        SingleCoreLink.__init__(self)
        self.config = config
        self.is_client = is_client
        self.connection: Connection | None = None
        """The Connection, once TLS completed with an acceptable ALPN protocol."""
        self.mux: TcpMux | None = None
        self.tcp_congestion: str | None = None
        """The kernel congestion control in use on the socket (None if unknown)."""
        self._on_connection = on_connection
        self._on_closed = on_closed
        self._wanted_congestion = tcp_congestion
        self.sockname: tuple[str, int] | None = None
        """The local (host, port) of the socket, once connected."""
        self.tls_cipher: tuple[str, str, int] | None = None
        """``ssl.SSLSocket.cipher()`` of the TLS session, once it completed."""
        self.peer_certificate_der: bytes | None = None
        """The certificate the peer presented (DER), or None (a client without client auth)."""
        self._transport: asyncio.Transport | None = None
        self._paused = False
        self._reading_paused = False
        self._closed = asyncio.Event()

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """TLS completed: tune the socket, check ALPN, create the mux and the Connection."""
        if not isinstance(transport, asyncio.Transport):
            transport.close()
            return
        self._transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER_BYTES)
        sock = transport.get_extra_info("socket")
        self._tune_socket(sock)
        ssl_object = transport.get_extra_info("ssl_object")
        self._keep_details(transport, ssl_object)
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn is None or alpn not in self.config.alpn:
            _log.debug("closing TLS connection without a common ALPN protocol")
            transport.abort()
            return
        peer = transport.get_extra_info("peername")
        mux = TcpMux(
            self.config,
            is_client=self.is_client,
            now=self.loop.time(),
            alpn_protocol=alpn,
            peer_address=(str(peer[0]), int(peer[1])) if peer else ("", 0),
            session_resumed=bool(ssl_object.session_reused),
            kernel_info=None if sock is None else lambda: read_tcp_info(sock),
        )
        self.mux = mux
        driver = ConnectionDriver(mux, self)
        self.attach(driver)
        conn = Connection(driver, is_client=self.is_client)
        conn._add_closer(self.wait_closed)
        self.connection = conn
        if self._on_connection is not None:
            self._on_connection(self, conn)
        self.flush()

    def data_received(self, data: bytes) -> None:
        """Feed decrypted bytes to the mux, then transmit and dispatch."""
        if self.mux is None:
            return
        self.mux.receive_data(data, self.loop.time())
        self.flush()

    def eof_received(self) -> bool:
        """The peer closed its side: let the transport close (``connection_lost`` follows)."""
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is gone: end the mux (unless a CLOSE already did) and report it."""
        if self.mux is not None:
            if exc is not None:
                reason = f"the TCP connection failed ({exc})"
            else:
                reason = "the TCP connection ended without a CLOSE frame"
            self.mux.connection_lost(reason, self.loop.time())
        self.stop()
        self.flush()
        self._transport = None
        # The last events went out: let go of the Connection and its driver (both refer to this link,
        # so keeping them would make a reference cycle that only a garbage collection frees).
        self.connection = None
        self.detach()
        self._closed.set()
        if self._on_closed is not None:
            self._on_closed(self)

    def pause_writing(self) -> None:
        """The transport's buffer is full: keep stream data in the mux (bounded) for now."""
        self._paused = True

    def resume_writing(self) -> None:
        """The transport drained: move more stream data out."""
        self._paused = False
        transport = self._transport
        if self._reading_paused and transport is not None:
            self._reading_paused = False
            transport.resume_reading()
        self.request_flush()

    # -- SingleCoreLink -----------------------------------------------------------------------------

    def transmit(self) -> None:
        """Write the mux's output: control frames always, stream data while the transport has room."""
        mux, transport = self.mux, self._transport
        if mux is None or transport is None or transport.is_closing():
            return
        now = self.loop.time()
        while True:
            room = not self._paused and transport.get_write_buffer_size() < WRITE_HIGH_WATER_BYTES
            data = mux.data_to_send(now, max_bytes=WRITE_BATCH_BYTES if room else 0)
            if data:
                transport.write(data)
            if not data or not room:
                break
        if mux.is_closed:
            transport.close()  # flushes what was written, then connection_lost()
        elif transport.get_write_buffer_size() >= CONTROL_FLOOD_BYTES and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()

    # -- helpers ------------------------------------------------------------------------------------

    def abort(self) -> None:
        """Drop the TCP connection at once, without CLOSE (what an address change does to TCP)."""
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        """Close the connection (CLOSE frame, then the socket), or the bare transport if no mux."""
        if self.connection is not None:
            self.connection.close(0, "server closing")
        elif self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        """Wait until the socket is closed."""
        await self._closed.wait()

    def _keep_details(self, transport: asyncio.Transport, ssl_object: ssl.SSLObject | None) -> None:
        """Keep what ``Connection.get_extra_info()`` reports, readable after the socket is closed."""
        sockname = transport.get_extra_info("sockname")
        if sockname:
            self.sockname = (str(sockname[0]), int(sockname[1]))
        if ssl_object is not None:
            self.tls_cipher = ssl_object.cipher()
            self.peer_certificate_der = ssl_object.getpeercert(binary_form=True)

    def _tune_socket(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        option = getattr(socket, "TCP_CONGESTION", None)
        if option is None:
            return
        wanted = self._wanted_congestion
        if wanted is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, option, wanted.encode())
            except OSError as exc:  # not built into the kernel, or not allowed to unprivileged users
                _log.debug("TCP_CONGESTION %s refused: %s", wanted, exc)
        with contextlib.suppress(OSError):
            self.tcp_congestion = sock.getsockopt(socket.IPPROTO_TCP, option, 16).rstrip(b"\0").decode()


async def tcp_connect(
    host: str, port: int, config: Config, *, tcp_congestion: str | None = "auto"
) -> Connection:
    """Connect over TCP + TLS 1.3 and return the established connection.

    The TLS server name is ``config.server_name`` or ``host``. ``tcp_congestion`` names the kernel
    congestion control for the socket: "auto" maps ``config.congestion`` ("newreno" -> "reno",
    "cubic" -> "cubic"), None keeps the system default; a refused name is ignored.

    The errors are those of QUIC's ``connect`` for the same failures, with the same words.

    Raises:
        ConnectTimeout: TCP + TLS did not complete within ``config.handshake_timeout``.
        ConnectionRefused: nothing listens at any address of ``host`` (also a ConnectionRefusedError).
        HandshakeFailed: TLS failed (certificate, version, a TLS alert from the server) or no ALPN
            protocol in common; the code is CRYPTO_ERROR + the TLS alert.
        NameResolutionError: ``host`` does not resolve (also a ``socket.gaierror``).
        NetworkError: another socket error (no route...), with its errno.
        ConfigError: invalid TLS settings.
    """
    loop = asyncio.get_running_loop()
    context = client_ssl_context(config)
    congestion = _congestion_name(config, tcp_congestion)

    def factory() -> TcpLink:
        return TcpLink(config, is_client=True, tcp_congestion=congestion)

    async def handshake() -> TcpLink:
        sock = await _connected_socket(host, port)
        try:
            _, link = await loop.create_connection(
                factory, sock=sock, ssl=context, server_hostname=config.server_name or host
            )
        except ssl.SSLError:
            raise  # mapped below
        except OSError as exc:  # the peer dropped the TCP connection during the TLS handshake
            raise HandshakeFailed(
                TransportErrorCode.NO_ERROR,
                f"the TCP connection to {host} port {port} was lost during the TLS handshake ({exc})",
                application=False,
            ) from exc
        return link

    try:
        link = await asyncio.wait_for(handshake(), config.handshake_timeout)
    except TimeoutError:
        raise ConnectTimeout.after(host, port, config.handshake_timeout) from None
    except ssl.SSLCertVerificationError as exc:
        failure = ssl_verification_failure(exc, config.server_name or host, datetime.now(UTC))
        raise _tls_failure(failure.alert, failure.reason) from exc
    except ssl.SSLError as exc:
        peer_alert = _received_alert(exc)
        if peer_alert is not None:  # the server refused us with a TLS alert, as a QUIC server would
            raise HandshakeFailed(
                TransportErrorCode.CRYPTO_ERROR + peer_alert, "", by_peer=True, application=False
            ) from exc
        raise _tls_failure(_ALERT_HANDSHAKE_FAILURE, f"TLS handshake failed: {exc.reason or exc}") from exc
    if link.connection is None:
        # Python's ssl servers select no protocol rather than send the no_application_protocol alert;
        # report it as a QUIC client sees a rudp server's refusal, so both transports read the same.
        raise HandshakeFailed(
            TransportErrorCode.CRYPTO_ERROR + _ALERT_NO_APPLICATION_PROTOCOL,
            NO_COMMON_ALPN_REASON,
            by_peer=True,
            application=False,
        )
    return link.connection


NO_COMMON_ALPN_REASON: Final = "TLS alert no application protocol"
"""The reason phrase of the ALPN failure (the words rudp's QUIC server sends with its alert: a TLS
failure's reason on the wire is only the alert's name)."""

_RECEIVED_ALERT = (re.compile(r"_ALERT_([A-Z_]+)$"), re.compile(r"^TLSV1_([A-Z_]+)$"))


def _received_alert(exc: ssl.SSLError) -> int | None:
    """The TLS alert the peer sent, from OpenSSL's reason (``SSLV3_ALERT_BAD_CERTIFICATE`` -> 42,
    ``TLSV1_UNRECOGNIZED_NAME`` -> 112), or None when the failure was not a received alert."""
    reason = str(exc.reason or "")
    for pattern in _RECEIVED_ALERT:
        match = pattern.search(reason)
        if match is not None:
            try:
                return int(AlertDescription[match.group(1).lower()])
            except KeyError:
                continue
    return None


async def _connected_socket(host: str, port: int) -> socket.socket:
    """A TCP socket connected to the first address of ``host`` that accepts, tried in resolver order.

    Raises:
        NameResolutionError: ``host`` does not resolve.
        ConnectionRefused: every address refused (nothing listens), in QUIC's words.
        NetworkError: no address could be reached for another reason (the first such error).
    """
    loop = asyncio.get_running_loop()
    failures: list[OSError] = []
    for family, sockaddr in await resolve_all(host, port, kind=socket.SOCK_STREAM):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            failures.append(exc)
            continue
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, sockaddr)
        except OSError as exc:
            sock.close()
            failures.append(exc)
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    other = [failure for failure in failures if not isinstance(failure, ConnectionRefusedError)]
    if not other:
        raise ConnectionRefused.nobody_listening(host, port) from failures[0]
    raise NetworkError.wrap(f"cannot reach {host} port {port}", other[0]) from other[0]


class TcpListener:
    """Listening TCP sockets (one per local address) and the connections they accepted.

    Implements :class:`rudp.aio.driver.Listener`.
    """

    def __init__(self) -> None:
        self._servers: list[asyncio.Server] = []
        self._links: set[TcpLink] = set()
        self._port = 0

    @property
    def port(self) -> int:
        """The port listened on."""
        return self._port

    @property
    def links(self) -> list[TcpLink]:
        """The accepted connections still open (their links: socket, mux and Connection)."""
        return list(self._links)

    def close(self) -> None:
        """Stop listening and close every accepted connection (CLOSE frame, code 0)."""
        for server in self._servers:
            server.close()
        for link in list(self._links):
            link.close()

    async def wait_closed(self) -> None:
        """Wait until the listening sockets and every accepted connection are closed."""
        for server in self._servers:
            await server.wait_closed()
        for link in list(self._links):
            await link.wait_closed()

    def _link_factory(
        self, config: Config, on_connection: Callable[[Connection], None], congestion: str | None
    ) -> Callable[[], TcpLink]:
        def factory() -> TcpLink:
            # (the link is an argument of the callback, not captured by it: no reference cycle)
            return TcpLink(
                config,
                is_client=False,
                on_connection=partial(self._established, on_connection),
                on_closed=self._links.discard,
                tcp_congestion=congestion,
            )

        return factory

    def _established(
        self, on_connection: Callable[[Connection], None], link: TcpLink, conn: Connection
    ) -> None:
        # Tracked from TLS completion only: a failed handshake never reaches the link.
        self._links.add(link)
        on_connection(conn)


async def _bind_addresses(host: str | None, port: int) -> list[tuple[int, str]]:
    """(family, address) pairs to listen on: every interface (IPv6 dual-stack) for None or "".

    Raises:
        NameResolutionError: ``host`` does not resolve.
    """
    if not host:
        return [(socket.AF_INET6, "::")] if socket.has_ipv6 else [(socket.AF_INET, "0.0.0.0")]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:  # socket.gaierror; UnicodeError: not encodable (IDNA)
        raise NameResolutionError.for_host(host, exc) from exc
    pairs: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        pair = (int(family), str(sockaddr[0]))
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def _listening_socket(family: int, address: str, port: int) -> socket.socket:
    """A bound, non-blocking TCP socket.

    Raises:
        NetworkError: the address cannot be bound (``errno`` as the socket's, e.g. EADDRINUSE).
    """
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise NetworkError.wrap(f"cannot listen on {address} port {port} (TCP)", exc) from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # One socket for IPv4 and IPv6 on the wildcard address, as the QUIC endpoint does.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if address == "::" else 1)
        sock.bind((address, port))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise NetworkError.wrap(f"cannot listen on {address} port {port} (TCP)", exc) from exc
    except BaseException:
        sock.close()
        raise
    return sock


async def tcp_listen(
    host: str | None,
    port: int,
    config: Config,
    on_connection: Callable[[Connection], None],
    *,
    tcp_congestion: str | None = "auto",
) -> TcpListener:
    """Listen for TCP + TLS 1.3 connections; call ``on_connection`` with each one once TLS completed.

    ``host`` None (or "") listens on every interface (IPv6 dual-stack, IPv4 if IPv6 is unavailable); a
    name listens on every address it resolves to. ``port`` 0 picks a free port, the same for every
    address (see :attr:`TcpListener.port`). ``tcp_congestion`` is as in :func:`tcp_connect`.

    Raises:
        ConfigError: no certificate or key in ``config``, or they cannot be loaded.
        NameResolutionError: ``host`` does not resolve.
        NetworkError: an address cannot be bound.
    """
    loop = asyncio.get_running_loop()
    context = server_ssl_context(config)
    listener = TcpListener()
    factory = listener._link_factory(config, on_connection, _congestion_name(config, tcp_congestion))
    try:
        for family, address in await _bind_addresses(host, port):
            try:
                sock = _listening_socket(family, address, port)
            except OSError:
                if host or family != socket.AF_INET6:
                    raise
                sock = _listening_socket(socket.AF_INET, "0.0.0.0", port)
            port = sock.getsockname()[1]
            server = await loop.create_server(
                factory, sock=sock, ssl=context, ssl_handshake_timeout=config.handshake_timeout
            )
            listener._servers.append(server)
            listener._port = port
    except BaseException:
        listener.close()
        await listener.wait_closed()
        raise
    return listener


__all__ = [
    "KERNEL_CONGESTION",
    "TcpLink",
    "TcpListener",
    "client_ssl_context",
    "read_tcp_info",
    "server_ssl_context",
    "tcp_connect",
    "tcp_listen",
]
