"""The same failure raises the same rudp error class, with the same words, over QUIC and over TCP.

Each test provokes one failure on real loopback sockets with both transports and compares what the
application gets: the class (a :class:`rudp.RudpError`, and the builtin class code written for asyncio
catches), ``str()`` and the attributes, and the original exception kept as ``__cause__`` when rudp wraps
one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import rudp
from tests.aio.test_streams import echo_handler

WAIT = 10.0
TRANSPORTS = ("quic", "tcp")
UNRESOLVABLE = "x" * 64 + ".test"
"""A name no resolver can look up (a label longer than 63 bytes): fails at once, offline."""


def _free_port_on_both() -> int:
    """A port number that is free for UDP and TCP on 127.0.0.1 (nothing listens on either)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no port free for both UDP and TCP")


@contextlib.contextmanager
def _silent_peer() -> Iterator[int]:
    """A port where a UDP socket never answers and a TCP listener never accepts (so no TLS).

    The UDP socket picks a free port; the TCP side of that number may be taken (another test's TCP
    connection can hold it as its local port), so another UDP port is tried then."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        udp.bind(("127.0.0.1", 0))
        port: int = udp.getsockname()[1]
        try:
            tcp.bind(("127.0.0.1", port))
        except OSError:
            udp.close()
            tcp.close()
            continue
        break
    else:
        raise RuntimeError("no port free for both UDP and TCP")
    try:
        tcp.listen(8)
        yield port
    finally:
        udp.close()
        tcp.close()


async def _failure(call: Callable[[str], Any]) -> dict[str, BaseException]:
    """The exception ``await call(transport)`` raises, per transport."""
    errors: dict[str, BaseException] = {}
    for transport in TRANSPORTS:
        with pytest.raises(rudp.RudpError) as info:
            await asyncio.wait_for(call(transport), WAIT)
        errors[transport] = info.value
    return errors


def _same(errors: dict[str, BaseException]) -> BaseException:
    quic, tcp = errors["quic"], errors["tcp"]
    assert type(quic) is type(tcp)
    assert str(quic) == str(tcp)
    return quic


async def test_connection_refused(client_config: Callable[..., rudp.Config]) -> None:
    port = _free_port_on_both()
    errors = await _failure(lambda t: rudp.connect("127.0.0.1", port, config=client_config(), transport=t))
    error = _same(errors)
    assert isinstance(error, rudp.ConnectionRefused)
    assert isinstance(error, rudp.HandshakeFailed) and isinstance(error, ConnectionRefusedError)
    assert str(error) == f"connection refused: no server is listening at 127.0.0.1 port {port}"
    assert error.code == rudp.TransportErrorCode.CONNECTION_REFUSED and not error.by_peer
    # TCP keeps the socket's own error as the cause (QUIC learns it from an ICMP message).
    assert isinstance(errors["tcp"].__cause__, ConnectionRefusedError)


async def test_name_resolution_failure(client_config: Callable[..., rudp.Config]) -> None:
    errors = await _failure(lambda t: rudp.connect(UNRESOLVABLE, 443, config=client_config(), transport=t))
    error = _same(errors)
    assert isinstance(error, rudp.NameResolutionError)
    assert isinstance(error, OSError) and isinstance(error, socket.gaierror)
    assert str(error).startswith(f"cannot resolve {UNRESOLVABLE!r}: ")
    assert errors["tcp"].__cause__ is not None and errors["quic"].__cause__ is not None


async def test_name_resolution_failure_of_a_server(server_config: Callable[..., rudp.Config]) -> None:
    for transport in TRANSPORTS:
        with pytest.raises(rudp.NameResolutionError):
            await rudp.serve(UNRESOLVABLE, 0, echo_handler, config=server_config(), transport=transport)  # type: ignore[arg-type]


async def test_connect_timeout(client_config: Callable[..., rudp.Config]) -> None:
    with _silent_peer() as port:
        config = client_config(handshake_timeout=0.5)
        errors = await _failure(lambda t: rudp.connect("127.0.0.1", port, config=config, transport=t))
    error = _same(errors)
    assert isinstance(error, rudp.ConnectTimeout) and isinstance(error, TimeoutError)
    assert str(error) == (
        f"connecting to 127.0.0.1 port {port} timed out: the handshake did not complete within 0.5 s"
    )


async def test_no_common_alpn(running_server: Any, client_config: Callable[..., rudp.Config]) -> None:
    async with running_server(echo_handler, transport="both") as server:
        config = client_config(alpn=["h3"])
        errors = await _failure(lambda t: rudp.connect("127.0.0.1", server.port, config=config, transport=t))
    error = _same(errors)
    assert isinstance(error, rudp.HandshakeFailed) and not isinstance(error, rudp.ConnectionRefused)
    assert error.code == rudp.TransportErrorCode.CRYPTO_ERROR + 120 and error.by_peer
    assert str(error).startswith(
        "the peer supports none of our ALPN protocols (TLS alert no application protocol)"
    )


async def test_peer_close_with_code(running_server: Any, client_config: Callable[..., rudp.Config]) -> None:
    async def handler(conn: rudp.Connection) -> None:
        stream = await conn.accept_stream()
        await stream.readexactly(2)
        conn.close(0x5, "bye")
        await conn.wait_closed()

    errors: dict[str, BaseException] = {}
    async with running_server(handler, transport="both") as server:
        for transport in TRANSPORTS:
            conn = await rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport)
            async with conn:
                stream = await conn.open_stream()
                stream.write(b"hi")
                with pytest.raises(rudp.ConnectionClosed) as info:
                    await asyncio.wait_for(stream.read(), WAIT)
                errors[transport] = info.value
    error = _same(errors)
    assert str(error) == "the peer closed the connection with error code 0x5: bye"
    assert isinstance(error, rudp.ConnectionClosed)
    assert (error.code, error.reason, error.by_peer, error.application) == (0x5, "bye", True, True)


async def test_idle_timeout(running_server: Any, client_config: Callable[..., rudp.Config]) -> None:
    errors: dict[str, BaseException] = {}
    async with running_server(echo_handler, transport="both") as server:
        for transport in TRANSPORTS:
            config = client_config(idle_timeout=0.5)
            conn = await rudp.connect("127.0.0.1", server.port, config=config, transport=transport)
            await asyncio.wait_for(conn.wait_closed(), WAIT)  # nothing is sent: the idle timer ends it
            with pytest.raises(rudp.ConnectionClosed) as info:
                await conn.open_stream()
            errors[transport] = info.value
    error = _same(errors)
    assert str(error) == "the connection closed: nothing was received within the idle timeout"
    assert not error.by_peer and not error.application  # type: ignore[attr-defined]


async def test_use_after_local_close_reads_as_a_sentence(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with running_server(echo_handler, transport=transport) as server:
        conn = await rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport)
        conn.close()
        await conn.wait_closed()
        with pytest.raises(rudp.ConnectionClosed) as info:
            await conn.open_stream()
        assert str(info.value) == "the connection was closed by this side"
        conn2 = await rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport)
        conn2.close(0x2A, "done here")
        await conn2.wait_closed()
        with pytest.raises(rudp.ConnectionClosed) as info:
            conn2.send_datagram(b"x")
        assert str(info.value) == "the connection was closed by this side with error code 0x2a: done here"


async def test_datagram_misuse(running_server: Any, client_config: Callable[..., rudp.Config]) -> None:
    not_enabled: dict[str, BaseException] = {}
    async with running_server(echo_handler, transport="both") as server:
        for transport in TRANSPORTS:
            async with rudp.connect(
                "127.0.0.1", server.port, config=client_config(datagrams=True), transport=transport
            ) as conn:
                await conn.ping()  # the peer's settings (TCP: its HELLO) have arrived
                with pytest.raises(rudp.DatagramError) as info:
                    conn.send_datagram(b"the server did not enable datagrams")
                not_enabled[transport] = info.value
    assert str(_same(not_enabled)) == (
        "datagrams are not enabled on this connection: set Config(datagrams=True) on both endpoints"
    )
    async with running_server(echo_handler, transport="both", datagrams=True) as server:
        for transport in TRANSPORTS:
            async with rudp.connect(
                "127.0.0.1", server.port, config=client_config(datagrams=True), transport=transport
            ) as conn:
                await conn.ping()
                with pytest.raises(rudp.DatagramError, match=r"a datagram of 70000 bytes is larger than"):
                    conn.send_datagram(bytes(70000))
                conn.send_datagram(b"small is fine")


async def test_address_in_use(server_config: Callable[..., rudp.Config]) -> None:
    with _silent_peer() as port:  # holds the UDP port and listens on the TCP one
        for transport, proto in (("quic", "UDP"), ("tcp", "TCP")):
            with pytest.raises(rudp.NetworkError) as info:
                await rudp.serve("127.0.0.1", port, echo_handler, config=server_config(), transport=transport)  # type: ignore[arg-type]
            error = info.value
            assert isinstance(error, OSError) and error.errno == errno.EADDRINUSE
            assert str(error).startswith(f"cannot listen on 127.0.0.1 port {port} ({proto}): ")
            assert isinstance(error.__cause__, OSError)
