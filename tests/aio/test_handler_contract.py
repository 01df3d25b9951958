"""What a serve() handler's end does to its connection, over QUIC and the TCP baseline alike.

Returns: graceful close with code 0 once what it wrote was delivered. Raises (a StreamError, a
ConnectionClosed from elsewhere, anything): logged, close with HANDLER_ERROR_CODE and "handler raised
<Type>". Ends with its own connection's ConnectionClosed: nothing more. Cancelled: close with code 0.
The client must learn each at once: the idle timeout is set far beyond the waits here, so a connection
left open fails the test instead of idling out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable
from typing import Any

import pytest

import rudp
from rudp.aio.server import HANDLER_DONE_CODE, HANDLER_ERROR_CODE

PROMPT = 5.0
"""How soon the client must see the close (the idle timeout is 60 s)."""
IDLE = 60.0


async def _closed_by_server(conn: rudp.Connection) -> rudp.ConnectionClosed:
    await asyncio.wait_for(conn.wait_closed(), PROMPT)
    error = conn.close_error
    assert error is not None and error.by_peer and error.application, repr(error)
    return error


def _handler_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("rudp") and r.levelno >= logging.ERROR]


@pytest.fixture
def serve_and_connect(
    running_server: Any, client_config: Callable[..., rudp.Config], transport: str
) -> Callable[..., Any]:
    """``async with serve_and_connect(handler) as conn`` on a server and client with a long idle timeout."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run(handler: Any, **server_options: Any) -> Any:
        async with (
            running_server(handler, transport=transport, idle_timeout=IDLE, **server_options) as server,
            rudp.connect(
                "127.0.0.1", server.port, config=client_config(idle_timeout=IDLE), transport=transport
            ) as conn,
        ):
            yield conn

    return run


async def test_return_closes_gracefully_after_the_written_data_arrives(
    serve_and_connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rudp")
    reply = os.urandom(3 << 20)  # beyond the send buffer and the client's first windows

    async def handler(conn: rudp.Connection) -> None:
        stream = await conn.accept_stream()
        await stream.read()
        stream.write(reply)
        stream.write_eof()  # and return at once: no drain(), nothing awaited

    async with serve_and_connect(handler) as conn:
        stream = await conn.open_stream()
        stream.write(b"GET")
        stream.write_eof()
        received = await asyncio.wait_for(stream.read(), 30)
        assert hashlib.sha256(received).digest() == hashlib.sha256(reply).digest()
        error = await _closed_by_server(conn)
        assert error.code == HANDLER_DONE_CODE
    assert _handler_errors(caplog) == []


async def test_return_with_nothing_written_closes_at_once(serve_and_connect: Any) -> None:
    async def handler(conn: rudp.Connection) -> None:
        return

    async with serve_and_connect(handler) as conn:
        stream = await conn.open_stream()
        reader = asyncio.ensure_future(stream.read())
        error = await _closed_by_server(conn)
        assert error.code == HANDLER_DONE_CODE
        with pytest.raises(rudp.ConnectionClosed):
            await asyncio.wait_for(reader, PROMPT)


async def test_stream_error_in_handler_closes_with_the_handler_error_code(
    serve_and_connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rudp")

    async def handler(conn: rudp.Connection) -> None:
        stream = await conn.accept_stream()
        await stream.read()  # the client resets it: StreamReset escapes the handler

    async with serve_and_connect(handler) as conn:
        stream = await conn.open_stream()
        stream.write(b"partial request")
        await stream.drain()
        stream.reset(0x5)
        error = await _closed_by_server(conn)
        assert (error.code, error.reason) == (HANDLER_ERROR_CODE, "handler raised StreamReset")
    records = _handler_errors(caplog)
    assert len(records) == 1 and records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], rudp.StreamReset)


async def test_any_exception_closes_with_the_handler_error_code_and_no_detail_on_the_wire(
    serve_and_connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rudp")

    async def handler(conn: rudp.Connection) -> None:
        await conn.accept_stream()
        raise RuntimeError("secret detail")

    async with serve_and_connect(handler) as conn:
        stream = await conn.open_stream()
        stream.write(b"x")
        await stream.drain()
        error = await _closed_by_server(conn)
        assert (error.code, error.reason) == (HANDLER_ERROR_CODE, "handler raised RuntimeError")
    records = _handler_errors(caplog)
    assert len(records) == 1 and records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], RuntimeError)
    assert "secret detail" in caplog.text  # logged locally, with the traceback


async def test_connection_closed_from_another_connection_is_a_handler_error(
    serve_and_connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rudp")

    async def handler(conn: rudp.Connection) -> None:
        await conn.accept_stream()
        raise rudp.ConnectionClosed(0x3, "the backend went away", by_peer=True)  # not this connection

    async with serve_and_connect(handler) as conn:
        stream = await conn.open_stream()
        stream.write(b"x")
        await stream.drain()
        error = await _closed_by_server(conn)
        assert (error.code, error.reason) == (HANDLER_ERROR_CODE, "handler raised ConnectionClosed")
    assert len(_handler_errors(caplog)) == 1


async def test_own_connection_closed_ends_the_handler_quietly(
    running_server: Any,
    client_config: Callable[..., rudp.Config],
    transport: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="rudp")
    loop = asyncio.get_running_loop()
    reading: asyncio.Future[rudp.Connection] = loop.create_future()
    ended: asyncio.Future[BaseException | None] = loop.create_future()

    async def handler(conn: rudp.Connection) -> None:
        stream = await conn.accept_stream()
        reading.set_result(conn)
        try:
            await stream.read()
        except BaseException as exc:
            ended.set_result(exc)
            raise
        ended.set_result(None)

    async with running_server(handler, transport=transport, idle_timeout=IDLE) as server:
        config = client_config(idle_timeout=IDLE)
        async with rudp.connect("127.0.0.1", server.port, config=config, transport=transport) as conn:
            stream = await conn.open_stream()
            stream.write(b"x")
            await stream.drain()
            peer = await asyncio.wait_for(reading, PROMPT)
            conn.close(0x9, "client done")
            raised = await asyncio.wait_for(ended, PROMPT)
            assert isinstance(raised, rudp.ConnectionClosed) and raised.code == 0x9
            await asyncio.wait_for(peer.wait_closed(), PROMPT)
            assert peer.close_error is not None
            assert (peer.close_error.code, peer.close_error.by_peer) == (0x9, True)  # nothing sent over it
    assert _handler_errors(caplog) == []


async def test_cancelled_handler_closes_with_code_zero(
    running_server: Any, client_config: Callable[..., rudp.Config], transport: str
) -> None:
    loop = asyncio.get_running_loop()
    started: asyncio.Future[None] = loop.create_future()
    ended: asyncio.Future[BaseException] = loop.create_future()

    async def handler(conn: rudp.Connection) -> None:
        started.set_result(None)
        try:
            await asyncio.Event().wait()  # forever
        except BaseException as exc:
            ended.set_result(exc)
            raise

    async with running_server(handler, transport=transport, idle_timeout=IDLE) as server:
        config = client_config(idle_timeout=IDLE)
        async with rudp.connect("127.0.0.1", server.port, config=config, transport=transport) as conn:
            await asyncio.wait_for(started, PROMPT)
            server.close()
            assert isinstance(await asyncio.wait_for(ended, PROMPT), asyncio.CancelledError)
            error = await _closed_by_server(conn)
            assert error.code == 0
            await asyncio.wait_for(server.wait_closed(), PROMPT)


async def test_a_handler_cancelled_before_it_ran_does_not_hold_wait_closed() -> None:
    from rudp.aio.server import Server

    ran: list[object] = []

    async def handler(conn: Any) -> None:
        ran.append(conn)

    server = Server(handler)
    server.on_connection(object())  # type: ignore[arg-type]  # (the task has not started yet)
    assert len(server._tasks) == 1
    server.close()  # cancels the task before its first step: its coroutine never runs
    await asyncio.wait_for(server.wait_closed(), PROMPT)
    assert ran == [] and not server._tasks


async def test_handler_tasks_leave_as_their_handlers_end(
    running_server: Any, client_config: Callable[..., rudp.Config], transport: str
) -> None:
    ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handler(conn: rudp.Connection) -> None:
        async for _ in conn:  # until the client closes: the iteration ends without an error
            pass
        ended.set_result(None)

    async with running_server(handler, transport=transport, idle_timeout=IDLE) as server:
        config = client_config(idle_timeout=IDLE)
        async with rudp.connect("127.0.0.1", server.port, config=config, transport=transport) as conn:
            await conn.ping()
            assert len(server._tasks) == 1
        await asyncio.wait_for(ended, PROMPT)
        assert not server._tasks  # gone in the handler's own last step, no done callback a pass later
