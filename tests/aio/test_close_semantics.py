"""After a close nothing waits, on real sockets over QUIC and the TCP baseline.

Every call pending when the peer closes, and every later one, fails at once with the close error
(code, reason, by_peer); bytes that had arrived before the close are still read first. Also: a stream
opened by the very packet (QUIC) or write (TCP) that closes the connection reaches the server handler
with its data, and its reader gets the close error instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import rudp
from rudp.aio.endpoint import UdpEndpoint
from rudp.aio.tcp import TcpLink
from rudp.codec.frames import ConnectionClose
from rudp.codec.frames import Stream as StreamFrame
from rudp.crypto.suites import CipherSuite
from rudp.quic.connection import QuicConnection
from rudp.tcp.framing import Close, Data, encode_frame
from tests.support.sim import Sniffer

SAFETY = 5.0
"""wait_for bound of what must happen at once; the idle timeout is far longer."""
IDLE = 60.0
CODE, REASON = 0x77, "going away"


async def _pending(call: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    task = asyncio.ensure_future(call)
    await asyncio.sleep(0)
    assert not task.done(), "the call did not wait"
    return task


def _is_close_error(error: BaseException | None) -> bool:
    if not isinstance(error, rudp.ConnectionClosed):
        return False
    return (error.code, error.reason, error.by_peer) == (CODE, REASON, True)


async def _fails_at_once(call: Awaitable[object]) -> None:
    with pytest.raises(rudp.ConnectionClosed) as info:
        await asyncio.wait_for(call, SAFETY)
    assert _is_close_error(info.value), repr(info.value)


async def test_peer_close_ends_every_pending_and_later_call(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    server_side: asyncio.Future[rudp.Connection] = asyncio.get_running_loop().create_future()

    async def handler(conn: rudp.Connection) -> None:
        server_side.set_result(conn)
        await conn.wait_closed()

    async with running_server(
        handler,
        transport=transport,
        datagrams=True,
        max_streams_bidi=4,
        initial_max_data=64 * 1024,
        max_connection_window=64 * 1024,
        initial_max_stream_data=64 * 1024,
        max_stream_window=64 * 1024,
        idle_timeout=IDLE,
    ) as server:
        config = client_config(datagrams=True, send_buffer_bytes=64 * 1024, idle_timeout=IDLE)
        async with rudp.connect("127.0.0.1", server.port, config=config, transport=transport) as conn:
            peer = await asyncio.wait_for(server_side, SAFETY)
            # A stream with bytes received and not yet read when the close comes.
            talk = await conn.open_stream()
            talk.write(b"hi")
            await talk.drain()
            answer = await asyncio.wait_for(peer.accept_stream(), SAFETY)
            answer.write(b"hello world")  # one frame: " world" is buffered once "hello" is read
            await answer.drain()
            assert await asyncio.wait_for(talk.readexactly(5), SAFETY) == b"hello"
            # A stream whose writer waits in drain(): the server never reads it.
            stalled = await conn.open_stream()
            stalled.write(bytes(1 << 20))
            pending_drain = await _pending(stalled.drain())
            quiet = await conn.open_stream()
            with pytest.raises(rudp.StreamLimitReached):
                for _ in range(100):  # QUIC grants 4 streams here, the TCP baseline at least 16
                    await conn.open_stream(wait=False)
            pending = [
                pending_drain,
                await _pending(quiet.read()),
                await _pending(quiet.readexactly(1)),
                await _pending(conn.accept_stream()),
                await _pending(conn.receive_datagram()),
                await _pending(conn.open_stream()),
            ]

            peer.close(CODE, REASON)

            for task in pending:
                await _fails_at_once(task)
            assert _is_close_error(conn.close_error)
            assert await talk.read(100) == b" world"  # arrived before the close: still readable
            await _fails_at_once(talk.read(100))
            for later in (
                talk.read(),
                talk.readuntil(b"\n"),
                stalled.drain(),
                talk.drain(),
                conn.accept_stream(),
                conn.receive_datagram(),
                conn.open_stream(),
                conn.ping(),
            ):
                await _fails_at_once(later)
            with pytest.raises(rudp.ConnectionClosed):
                talk.write(b"x")
            with pytest.raises(rudp.ConnectionClosed):
                conn.send_datagram(b"x")
            assert [stream async for stream in conn] == []


def _forge_quic_stream_and_close(conn: rudp.Connection, keylog: Path, suite: CipherSuite) -> None:
    """Send, from the client's own socket, one 1-RTT packet: STREAM opening stream 0, then
    CONNECTION_CLOSE (the server's core reports the close before the new stream)."""
    core, link = conn._driver.core, conn._driver.link
    assert isinstance(core, QuicConnection) and isinstance(link, UdpEndpoint)
    assert link.io is not None
    sniffer = Sniffer(keylog, "CLIENT_TRAFFIC_SECRET_0", suite)
    frames = [StreamFrame(0, 0, b"request"), ConnectionClose(CODE, REASON.encode(), 0, True)]
    link.io.send([(sniffer.forge(core.destination_cid, 1_000_000, frames), None)])  # type: ignore[arg-type]


def _write_tcp_stream_and_close(conn: rudp.Connection) -> None:
    """Write, in one TLS record, a DATA frame opening stream 0 and then a CLOSE frame."""
    link = conn._driver.link
    assert isinstance(link, TcpLink) and link._transport is not None
    link._transport.write(encode_frame(Data(0, b"request")) + encode_frame(Close(CODE, REASON)))


async def test_stream_opened_by_the_closing_packet_reaches_the_handler_and_never_hangs(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config], tmp_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    waiting: asyncio.Future[None] = loop.create_future()
    outcome: asyncio.Future[tuple[int, bytes, BaseException | None, bool]] = loop.create_future()

    async def handler(conn: rudp.Connection) -> None:
        waiting.set_result(None)
        stream = await conn.accept_stream()  # pending when the packet arrives
        data = await stream.read(100)
        error: BaseException | None = None
        try:
            await stream.read()
        except rudp.ConnectionClosed as exc:
            error = exc
        with contextlib.suppress(rudp.ConnectionClosed):
            await conn.accept_stream()
            return  # a second stream: wrong, and outcome stays unset
        outcome.set_result((stream.stream_id, data, error, conn.is_closed))

    suite = CipherSuite.AES_128_GCM_SHA256
    keylog = tmp_path / "keys.log"
    async with running_server(handler, transport=transport, idle_timeout=IDLE) as server:
        config = client_config(secrets_log=keylog, cipher_suites=[suite], idle_timeout=IDLE)
        async with rudp.connect("127.0.0.1", server.port, config=config, transport=transport) as conn:
            await asyncio.wait_for(waiting, SAFETY)
            if transport == "quic":
                _forge_quic_stream_and_close(conn, keylog, suite)
            else:
                _write_tcp_stream_and_close(conn)
            stream_id, data, error, closed = await asyncio.wait_for(outcome, SAFETY)
            conn.close()
    assert (stream_id, data, closed) == (0, b"request", True)
    assert _is_close_error(error), repr(error)
