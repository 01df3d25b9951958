"""A conformance suite for the stream contract: named checks any rudp-style Stream must pass.

Owns the *contract* of :class:`rudp.Stream` as executable checks (in the spirit of trio's stream
conformance tests): each check gets a fresh pair of connected stream ends and states in its docstring
what it guarantees. The same checks run over QUIC and over the TCP baseline, and can run over any other
implementation whose objects have the :class:`SuiteStream` methods.

It owns :class:`StreamPair` (two ends plus the few connection hooks some checks need), the registry
:data:`CHECKS`, :func:`check_stream_pair` / :func:`run_check` to run them, and
:func:`connected_stream_pair` to build pairs from ``rudp.serve()`` and ``rudp.connect()`` on real
sockets. It does not use pytest: a failed check raises :class:`ConformanceError`.

Checks never sleep to wait for something: they await the operations themselves, and where a check must
know that the other side has seen something it awaits :attr:`StreamPair.round_trip` (a PING and its
acknowledgement for rudp). Every check runs under a deadline (``timeout``).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal, Protocol, TypeAlias, TypeVar

from rudp._api import Transport, connect, serve
from rudp.aio.connection import Connection
from rudp.config import Config
from rudp.errors import ConfigError, RudpError
from rudp.testing.certs import make_test_pki

E = TypeVar("E", bound=BaseException)
T = TypeVar("T")


class ConformanceError(RudpError, AssertionError):
    """A stream implementation broke the contract a check states; the message says how."""


class SuiteStream(Protocol):
    """The stream methods the suite exercises (``rudp.Stream`` has them all)."""

    @property
    def stream_id(self) -> int: ...
    @property
    def buffered_bytes(self) -> int: ...
    def at_eof(self) -> bool: ...
    async def read(self, n: int = -1) -> bytes: ...
    async def readexactly(self, n: int) -> bytes: ...
    async def readuntil(self, separator: bytes = b"\n", *, limit: int = ...) -> bytes: ...
    def __aiter__(self) -> AsyncIterator[bytes]: ...
    def write(self, data: bytes | bytearray | memoryview) -> None: ...
    def write_eof(self) -> None: ...
    async def drain(self) -> None: ...
    def reset(self, code: int = 0) -> None: ...
    def stop_sending(self, code: int = 0) -> None: ...


@dataclass
class StreamPair:
    """Two connected ends of one bidirectional stream, and hooks on the connection carrying it.

    ``client`` is the end on the connecting side and ``server`` the end on the accepting side (either
    may have opened the stream); both start empty: nothing to read, nothing written. Only the checks of
    connection-level behaviour use the hooks.
    """

    client: SuiteStream
    """The end on the side that connected."""
    server: SuiteStream
    """The end on the side that accepted the connection."""
    round_trip: Callable[[], Awaitable[object]]
    """Complete one round trip on the connection (anything the peer sent before is then delivered)."""
    close_client: Callable[[int, str], None]
    """Close the connection from the client side with an application code and reason."""
    close_server: Callable[[int, str], None]
    """Close the connection from the server side with an application code and reason."""
    max_unconsumed_bytes: int
    """Most bytes a writer may have had accepted (``drain()`` returned) beyond what its peer read."""


PairFactory: TypeAlias = Callable[[], AbstractAsyncContextManager[StreamPair]]
Check: TypeAlias = Callable[[StreamPair], Awaitable[None]]

CHECKS: dict[str, Check] = {}
"""Every check of the suite by name, in the order they run."""

DEFAULT_TIMEOUT: Final = 20.0
"""Seconds one check may take (pair setup and teardown included) before it fails."""

ROUND_TRIP_SIZES: Final = (1, 2, 100, 1199, 1200, 1201, 16383, 16384, 65535, 65536, 65537, 1 << 20)
"""Payload sizes of the round-trip check: around packet, TLS record and window boundaries."""


def _check(func: Check) -> Check:
    CHECKS[func.__name__.removeprefix("check_")] = func
    return func


async def run_check(name: str, make_pair: PairFactory, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Run the check ``name`` on a fresh pair from ``make_pair``, within ``timeout`` seconds.

    Raises:
        ConformanceError: the check failed or timed out.
        ConfigError: no check has that name.
    """
    check = CHECKS.get(name)
    if check is None:
        raise ConfigError(f"unknown stream check {name!r} (known: {', '.join(CHECKS)})")
    try:
        try:
            async with asyncio.timeout(timeout), make_pair() as pair:
                await check(pair)
        except BaseExceptionGroup as group:  # from a check's TaskGroup: report its first error
            raise _first_error(group) from group
    except TimeoutError as exc:
        raise ConformanceError(f"{name}: did not finish within {timeout} s") from exc
    except ConformanceError as exc:
        raise ConformanceError(f"{name}: {exc}") from exc
    except Exception as exc:
        raise ConformanceError(f"{name}: unexpected {exc!r}") from exc


def _first_error(error: BaseException) -> BaseException:
    """The first ConformanceError inside a (nested) exception group, else its first exception."""
    while isinstance(error, BaseExceptionGroup):
        error = (error.subgroup(ConformanceError) or error).exceptions[0]
    return error


async def check_stream_pair(
    make_pair: PairFactory, *, checks: Iterable[str] | None = None, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Run ``checks`` (default: every check in :data:`CHECKS`), each on a fresh pair; report all failures.

    Raises:
        ConformanceError: one or more checks failed (the message lists them; the first is the cause).
        ConfigError: an unknown check name.
    """
    names = list(CHECKS if checks is None else checks)
    if unknown := [name for name in names if name not in CHECKS]:
        raise ConfigError(f"unknown stream checks: {', '.join(unknown)}")
    failures: list[ConformanceError] = []
    for name in names:
        try:
            await run_check(name, make_pair, timeout=timeout)
        except ConformanceError as exc:
            failures.append(exc)
    if failures:
        summary = "; ".join(str(failure) for failure in failures)
        raise ConformanceError(f"{len(failures)} of {len(names)} checks failed: {summary}") from failures[0]


# ---------------------------------------------------------------------- pairs over rudp


OPEN_MARKER: Final = b"\x00"
"""The byte :func:`connected_stream_pair` sends (and the server end reads) so the peer learns of the
stream: a QUIC stream exists for the peer only once a frame of it arrives."""


def suite_configs(ca_file: str | Path, cert_file: str | Path, key_file: str | Path) -> tuple[Config, Config]:
    """(client, server) configs with small windows and send buffers, so flow-control checks stay quick."""
    base = Config(
        initial_max_data=512 * 1024,
        max_connection_window=1024 * 1024,
        initial_max_stream_data=128 * 1024,
        max_stream_window=256 * 1024,
        send_buffer_bytes=128 * 1024,
    )
    client = replace(base, cafile=ca_file, handshake_timeout=5.0)
    server = replace(base, certfile=cert_file, keyfile=key_file)
    return client, server


def unconsumed_bound(writer: Config, reader: Config) -> int:
    """Most bytes a writer with ``writer`` config can get ahead of a reader with ``reader`` config:
    its send buffer plus the reader's largest flow-control window."""
    window = min(reader.max_stream_window, reader.max_connection_window)
    return writer.send_buffer_bytes + window


@asynccontextmanager
async def connected_stream_pair(
    transport: Transport = "quic",
    host: str = "127.0.0.1",
    client_config: Config | None = None,
    server_config: Config | None = None,
    *,
    opened_by: Literal["client", "server"] = "client",
) -> AsyncIterator[StreamPair]:
    """Serve on ``host`` (a free port), connect over ``transport`` and yield a fresh :class:`StreamPair`.

    The side named by ``opened_by`` opens the stream (QUIC numbers client- and server-initiated streams
    differently, so both are worth checking).

    Without configs, a throwaway PKI and :func:`suite_configs` are used. On exit both connections and
    the server are closed (whatever state the check left them in).

    Raises:
        ConnectTimeout, HandshakeFailed, OSError: the connection could not be set up.
    """
    async with AsyncExitStack() as stack:  # unwinds in reverse: peer, client, server, PEM files
        if client_config is None or server_config is None:
            # The PEM files must outlive the handshakes: Config loads them when a connection starts.
            pki = make_test_pki(stack.enter_context(tempfile.TemporaryDirectory(prefix="rudp-suite-")))
            client_config, server_config = suite_configs(pki.ca_file, pki.cert_file, pki.key_file)
        accepted: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()

        async def handler(conn: Connection) -> None:
            if not accepted.done():
                accepted.set_result(conn)
            await conn.wait_closed()

        server = await stack.enter_async_context(
            await serve(host, 0, handler, config=server_config, transport=transport)
        )
        conn = await stack.enter_async_context(
            connect(host, server.port, config=client_config, transport=transport)
        )
        peer = await asyncio.wait_for(accepted, client_config.handshake_timeout)
        stack.callback(peer.close)
        opener, acceptor = (conn, peer) if opened_by == "client" else (peer, conn)
        opened = await opener.open_stream()
        opened.write(OPEN_MARKER)
        await opened.drain()
        accepted_end = await acceptor.accept_stream()
        if await accepted_end.readexactly(len(OPEN_MARKER)) != OPEN_MARKER:
            raise ConformanceError("the accepted end did not start with the opening marker")
        client, server_end = (opened, accepted_end) if opened_by == "client" else (accepted_end, opened)
        bound = max(
            unconsumed_bound(client_config, server_config), unconsumed_bound(server_config, client_config)
        )
        yield StreamPair(client, server_end, conn.ping, conn.close, peer.close, bound)


__all__ = [
    "CHECKS",
    "DEFAULT_TIMEOUT",
    "OPEN_MARKER",
    "ROUND_TRIP_SIZES",
    "Check",
    "ConformanceError",
    "PairFactory",
    "StreamPair",
    "SuiteStream",
    "check_stream_pair",
    "connected_stream_pair",
    "run_check",
    "suite_configs",
    "unconsumed_bound",
]


# Importing the checks registers them in CHECKS (kept in their own module to keep both files focused).
from rudp.testing import stream_checks  # noqa: E402, F401
