"""Stream and connection behaviour through the public API, over QUIC and the TCP baseline.

Each test runs a real server and client on loopback and is parametrised over ``transport``; the
handshake and bulk tests also run on IPv6.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
from collections.abc import Callable
from typing import Any

import pytest

import rudp
from rudp.aio.stream import NOBODY_WAITS
from tests.aio.conftest import HOSTS

WAIT = 10.0


async def echo_handler(conn: rudp.Connection) -> None:
    """Echo every stream back (then FIN), each in its own task."""
    tasks = set()

    async def echo(stream: rudp.Stream) -> None:
        async for chunk in stream:
            stream.write(chunk)
            await stream.drain()
        stream.write_eof()
        await stream.drain()

    async for stream in conn:
        task = asyncio.create_task(echo(stream))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def digest_handler(conn: rudp.Connection) -> None:
    """Reply to each stream with sha256 + length of what it received."""

    async def digest(stream: rudp.Stream) -> None:
        hasher, total = hashlib.sha256(), 0
        async for chunk in stream:
            hasher.update(chunk)
            total += len(chunk)
        stream.write(hasher.digest() + total.to_bytes(8, "big"))
        stream.write_eof()
        await stream.drain()

    async with asyncio.TaskGroup() as group:
        async for stream in conn:
            group.create_task(digest(stream))


@pytest.mark.parametrize("host", HOSTS)
async def test_handshake_and_echo(
    transport: str, host: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with (
        running_server(echo_handler, transport=transport, host=host) as server,
        rudp.connect(host, server.port, config=client_config(), transport=transport) as conn,
    ):
        assert conn.is_established and conn.is_client
        assert conn.alpn_protocol == "rudp/1"  # the default ALPN
        assert conn.peer_address == (host, server.port)
        stream = await conn.open_stream()
        stream.write(b"hello")
        stream.write_eof()
        await stream.drain()
        assert await asyncio.wait_for(stream.read(), WAIT) == b"hello"
        assert stream.at_eof()
        assert conn.stats.bytes_sent > 0


@pytest.mark.parametrize("host", HOSTS)
async def test_bulk_transfer_sha256(
    transport: str, host: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    data = os.urandom(5_000_000)
    async with (
        running_server(digest_handler, transport=transport, host=host) as server,
        rudp.connect(host, server.port, config=client_config(), transport=transport) as conn,
    ):
        stream = await conn.open_stream()
        view = memoryview(data)
        for offset in range(0, len(data), 65536):
            stream.write(view[offset : offset + 65536])
            await stream.drain()
        stream.write_eof()
        reply = await asyncio.wait_for(stream.read(), 60)
        assert reply == hashlib.sha256(data).digest() + len(data).to_bytes(8, "big")


async def test_hundred_concurrent_streams(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async def one(conn: rudp.Connection, index: int) -> None:
        payload = os.urandom(1000 + index * 97)
        stream = await conn.open_stream()
        stream.write(payload)
        stream.write_eof()
        await stream.drain()
        assert await stream.read() == payload

    async with (
        running_server(echo_handler, transport=transport) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport) as conn,
    ):
        await asyncio.wait_for(asyncio.gather(*(one(conn, i) for i in range(100))), 30)


async def test_readexactly_readuntil_and_iteration(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with (
        running_server(echo_handler, transport=transport) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport) as conn,
    ):
        stream = await conn.open_stream()
        stream.write(b"line one\nline two\nabcdefgh")
        stream.write_eof()
        await stream.drain()
        assert await stream.readuntil(b"\n") == b"line one\n"
        assert await stream.readuntil(b"two\n") == b"line two\n"
        assert await stream.readexactly(3) == b"abc"
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await stream.readexactly(10)
        assert info.value.partial == b"defgh"
        assert await stream.read() == b""
        assert stream.at_eof()


async def test_open_stream_waits_for_stream_credit(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with (
        running_server(echo_handler, transport=transport, max_streams_bidi=2) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport) as conn,
    ):
        opened = []
        with pytest.raises(rudp.StreamLimitReached):
            for _ in range(100):  # the TCP baseline grants at least 16 streams, QUIC 2 here
                opened.append(await conn.open_stream(wait=False))
        assert 2 <= len(opened) < 100
        waiting = asyncio.create_task(conn.open_stream())
        for stream in opened:
            stream.write(b"x")
            stream.write_eof()
            await stream.drain()
            assert await asyncio.wait_for(stream.read(), WAIT) == b"x"
        stream = await asyncio.wait_for(waiting, WAIT)
        stream.write(b"last")
        stream.write_eof()
        assert await asyncio.wait_for(stream.read(), WAIT) == b"last"


async def test_peer_reset_and_stop_sending(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async def handler(conn: rudp.Connection) -> None:
        stream = await conn.accept_stream()
        await stream.readexactly(4)
        stream.reset(7)  # our sending side
        stream.stop_sending(9)  # and their sending side
        await conn.wait_closed()

    async with (
        running_server(handler, transport=transport) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport) as conn,
    ):
        stream = await conn.open_stream()
        stream.write(b"ping")
        await stream.drain()
        with pytest.raises(rudp.StreamReset) as reset:
            await asyncio.wait_for(stream.read(), WAIT)
        assert reset.value.code == 7
        with pytest.raises(rudp.StreamStopped) as stopped:
            for _ in range(1000):  # until the STOP_SENDING arrives
                stream.write(b"more")
                await asyncio.wait_for(stream.drain(), WAIT)
                await conn.ping()
        assert stopped.value.code == 9
        # The connection is still fine.
        other = await conn.open_stream()
        other.write_eof()
        assert await conn.ping() >= 0


@pytest.mark.parametrize("by", ["client", "server"])
async def test_close_seen_by_peer_with_code(
    transport: str, by: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    server_side: asyncio.Future[rudp.Connection] = asyncio.get_running_loop().create_future()

    async def handler(conn: rudp.Connection) -> None:
        server_side.set_result(conn)
        await conn.wait_closed()

    async with running_server(handler, transport=transport) as server:
        conn = await rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport)
        peer = await asyncio.wait_for(server_side, WAIT)
        closer, observer = (conn, peer) if by == "client" else (peer, conn)
        stream = await observer.open_stream()
        reader = asyncio.create_task(stream.read())
        closer.close(42, "bye now")
        await asyncio.wait_for(observer.wait_closed(), WAIT)
        error = observer.close_error
        assert error is not None and error.code == 42 and error.by_peer and error.reason == "bye now"
        with pytest.raises(rudp.ConnectionClosed) as info:
            await asyncio.wait_for(reader, WAIT)
        assert info.value.code == 42
        with pytest.raises(rudp.ConnectionClosed):
            await observer.open_stream()
        conn.close()
        await conn.wait_closed()


async def test_abrupt_close_when_server_goes_away(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with running_server(echo_handler, transport=transport) as server:
        conn = await rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport)
        stream = await conn.open_stream()
        reader = asyncio.create_task(stream.read())
        server.close()
        with pytest.raises(rudp.ConnectionClosed) as info:
            await asyncio.wait_for(reader, WAIT)
        assert info.value.by_peer
        conn.close()
        await conn.wait_closed()


async def test_back_pressure_bounds_memory(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    accepted: asyncio.Future[rudp.Stream] = asyncio.get_running_loop().create_future()

    async def handler(conn: rudp.Connection) -> None:
        accepted.set_result(await conn.accept_stream())  # and do not read: a stalled reader
        await conn.wait_closed()

    chunk, total = 64 * 1024, 10 * 1024 * 1024
    send_buffer = 256 * 1024
    written = 0
    async with (
        running_server(handler, transport=transport, initial_max_data=512 * 1024) as server,
        rudp.connect(
            "127.0.0.1",
            server.port,
            config=client_config(send_buffer_bytes=send_buffer),
            transport=transport,
        ) as conn,
    ):
        stream = await conn.open_stream()
        payload = os.urandom(chunk)

        async def writer() -> None:
            nonlocal written
            while written < total:
                stream.write(payload)
                await stream.drain()
                written += chunk
                assert stream.buffered_bytes == 0
            stream.write_eof()

        task = asyncio.create_task(writer())
        done, _ = await asyncio.wait({task}, timeout=1.5)
        assert not done, "the writer should be blocked by the stalled reader"
        # Flow-control windows + our send budget + one write: far below the 10 MiB written in total.
        assert written < 4 * 1024 * 1024
        peer_stream = await asyncio.wait_for(accepted, WAIT)
        received = 0
        async for data in peer_stream:
            received += len(data)
        await asyncio.wait_for(task, WAIT)
        assert received == total


async def test_cancelled_read_and_drain_leave_connection_usable(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with (
        running_server(echo_handler, transport=transport) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport) as conn,
    ):
        stream = await conn.open_stream()
        reader = asyncio.create_task(stream.read(10))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), 0.2)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        accept = asyncio.create_task(conn.accept_stream())
        await conn.ping()  # a round trip: the accept task is now blocked
        accept.cancel()
        stream.write(b"after cancel")
        stream.write_eof()
        await stream.drain()
        assert await asyncio.wait_for(stream.readexactly(12), WAIT) == b"after cancel"
        # A big write whose drain is cancelled: the data still goes out in full.
        other = await conn.open_stream()
        big = os.urandom(3_000_000)
        other.write(big)
        assert other.buffered_bytes > 0  # more than the send buffer takes at once
        drain = asyncio.create_task(other.drain())
        await conn.ping()  # the drain task is now blocked
        drain.cancel()
        other.write_eof()
        echoed = await asyncio.wait_for(other.read(), 30)
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(big).digest()
        assert await conn.ping() >= 0


async def test_connection_forgets_dropped_streams_and_still_wakes_kept_ones(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with (
        running_server(echo_handler, transport=transport) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport) as conn,
    ):
        kept = await conn.open_stream()
        for index in range(50):
            stream = await conn.open_stream()
            stream.write(b"%d" % index)
            stream.write_eof()
            assert await asyncio.wait_for(stream.read(), WAIT) == b"%d" % index
        del stream
        gc.collect()
        # The table of streams by ID holds weak references, each removed as its stream goes.
        assert list(conn._streams) == [kept.stream_id]
        kept.write(b"still here")
        kept.write_eof()
        assert await asyncio.wait_for(kept.read(), WAIT) == b"still here"
        assert not NOBODY_WAITS


async def test_wait_closed_waits_for_close_while_drain_is_woken(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with (
        running_server(digest_handler, transport=transport) as server,
        rudp.connect(
            "127.0.0.1", server.port, config=client_config(send_buffer_bytes=64 * 1024), transport=transport
        ) as conn,
    ):
        stream = await conn.open_stream()
        closed = asyncio.create_task(stream.wait_closed())
        payload = os.urandom(512 * 1024)  # 8x the send budget: drain() is woken again and again
        stream.write(payload)
        assert stream.buffered_bytes > 0
        await asyncio.wait_for(stream.drain(), WAIT)
        await asyncio.sleep(0)  # (the wake-ups, if any, reached the waiting task)
        assert not closed.done()
        stream.close()
        await asyncio.wait_for(closed, WAIT)
        assert not NOBODY_WAITS  # the shared "not waited on yet" Wakeup: every wait made its own


async def test_dropped_streams_do_not_leak_flow_control_credit(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    reply = os.urandom(100_000)

    async def handler(conn: rudp.Connection) -> None:
        async def answer(stream: rudp.Stream) -> None:
            await stream.read()
            with contextlib.suppress(rudp.StreamStopped):  # the client dropped the stream
                stream.write(reply)
                stream.write_eof()
                await stream.drain()

        async with asyncio.TaskGroup() as group:
            async for stream in conn:
                group.create_task(answer(stream))

    async with (
        running_server(handler, transport=transport, initial_max_data=256 * 1024) as server,
        rudp.connect(
            "127.0.0.1",
            server.port,
            config=client_config(initial_max_data=256 * 1024, max_connection_window=256 * 1024),
            transport=transport,
        ) as conn,
    ):
        for _ in range(30):  # 3 MB of replies nobody reads, through a 256 KiB connection window
            stream = await conn.open_stream()
            stream.write(b"request")
            stream.write_eof()
            del stream
            gc.collect()
            await conn.ping()
        last = await conn.open_stream()
        last.write_eof()
        assert await asyncio.wait_for(last.read(), WAIT) == reply
