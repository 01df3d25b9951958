"""The asyncio-shaped surface on both transports: Stream's StreamReader/StreamWriter methods (readline,
close, is_closing, wait_closed, get_extra_info), chunk iteration, and rudp.open_connection() /
rudp.start_server() running an echo service written as for asyncio.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

import pytest

import rudp
from rudp.aio.server import HANDLER_ERROR_CODE
from rudp.crypto.suites import CipherSuite
from rudp.testing.certs import TestPki

WAIT = 10.0


async def _line_echo(reader: rudp.Stream, writer: rudp.Stream) -> None:
    """An asyncio-style handler: echo each line in upper case until the client finishes."""
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_open_connection_and_start_server_echo(transport: str, pki: TestPki) -> None:
    server_config = rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file)
    server = await rudp.start_server(_line_echo, "127.0.0.1", 0, config=server_config, transport=transport)  # type: ignore[arg-type]
    async with server:
        config = rudp.Config(cafile=pki.ca_file, server_name="localhost")
        reader, writer = await rudp.open_connection(
            "127.0.0.1", server.port, config=config, transport=transport
        )  # type: ignore[arg-type]
        assert reader is writer
        writer.write(b"hello\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), WAIT) == b"HELLO\n"
        writer.writelines([b"two ", b"words\n", b"last line without newline"])
        writer.write_eof()
        assert await asyncio.wait_for(reader.readline(), WAIT) == b"TWO WORDS\n"
        assert await asyncio.wait_for(reader.readline(), WAIT) == b"LAST LINE WITHOUT NEWLINE"
        assert await reader.readline() == b""
        assert reader.at_eof()
        conn = writer.get_extra_info("connection")
        assert isinstance(conn, rudp.Connection) and not conn.is_closed
        assert not writer.is_closing()
        writer.close()
        assert writer.is_closing()
        await asyncio.wait_for(writer.wait_closed(), WAIT)
        # The stream was the connection's only one: closing the writer closed the connection, cleanly.
        assert conn.is_closed
        assert conn.close_error is not None and not conn.close_error.by_peer and conn.close_error.code == 0


async def test_writer_close_keeps_a_connection_with_other_streams_open(
    transport: str, pki: TestPki, running_server: Any
) -> None:
    async def echo(conn: rudp.Connection) -> None:
        async with asyncio.TaskGroup() as group:
            async for stream in conn:
                group.create_task(_line_echo(stream, stream))

    async with running_server(echo, transport=transport) as server:
        config = rudp.Config(cafile=pki.ca_file, server_name="localhost")
        _, writer = await rudp.open_connection("127.0.0.1", server.port, config=config, transport=transport)  # type: ignore[arg-type]
        conn: rudp.Connection = writer.get_extra_info("connection")
        other = await conn.open_stream()
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), WAIT)
        assert not conn.is_closed  # `other` is still in use
        other.write(b"still here\n")
        other.write_eof()
        assert await asyncio.wait_for(other.read(), WAIT) == b"STILL HERE\n"
        conn.close()
        await conn.wait_closed()


async def test_plain_function_callback_and_callback_errors(
    transport: str, pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    def plain(reader: rudp.Stream, writer: rudp.Stream) -> None:  # asyncio accepts plain callables too
        seen.append(writer.get_extra_info("stream_id"))

    async def failing(reader: rudp.Stream, writer: rudp.Stream) -> None:
        await reader.readline()
        raise RuntimeError("callback bug")

    server_config = rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file)
    config = rudp.Config(cafile=pki.ca_file, server_name="localhost")
    async with await rudp.start_server(
        plain, "127.0.0.1", 0, config=server_config, transport=transport
    ) as server:  # type: ignore[arg-type]
        reader, writer = await rudp.open_connection(
            "127.0.0.1", server.port, config=config, transport=transport
        )  # type: ignore[arg-type]
        writer.write(b"x")
        # The callback returned without closing: the stream is closed for it (FIN, so EOF here).
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()
        await writer.wait_closed()
    assert seen == [0]
    with caplog.at_level(logging.ERROR, logger="rudp.server"):
        async with await rudp.start_server(
            failing, "127.0.0.1", 0, config=server_config, transport=transport
        ) as server:  # type: ignore[arg-type]
            reader, writer = await rudp.open_connection(
                "127.0.0.1", server.port, config=config, transport=transport
            )  # type: ignore[arg-type]
            writer.write(b"boom\n")
            with pytest.raises(rudp.StreamReset) as info:
                await asyncio.wait_for(reader.read(), WAIT)
            assert info.value.code == HANDLER_ERROR_CODE
            writer.close()
            await writer.wait_closed()
    assert any("RuntimeError" in record.getMessage() and record.exc_info for record in caplog.records)


async def test_readline_limit_and_chunk_iteration(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    release = asyncio.Event()

    async def handler(conn: rudp.Connection) -> None:
        stream = await conn.accept_stream()
        stream.write(b"x" * 100 + b"\nok\n")
        await stream.drain()
        await release.wait()
        stream.write(b"tail")
        stream.write_eof()
        await stream.drain()
        await conn.wait_closed()

    async with (
        running_server(handler, transport=transport) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport) as conn,
    ):
        stream = await conn.open_stream()
        stream.write(b"go")
        await stream.drain()
        # As asyncio: a line longer than the limit raises ValueError and is dropped up to its newline
        # (the 104 bytes travel in one frame, so they are all buffered together).
        with pytest.raises(ValueError, match="limit"):
            await asyncio.wait_for(stream.readline(limit=10), WAIT)
        assert await asyncio.wait_for(stream.readline(), WAIT) == b"ok\n"
        release.set()
        # `async for` yields chunks as they arrive (not lines): here the last chunk has no newline.
        chunks = [chunk async for chunk in stream]
        assert b"".join(chunks) == b"tail"


async def test_get_extra_info_is_the_same_on_both_transports(
    running_server: Any, client_config: Callable[..., rudp.Config], pki: TestPki
) -> None:
    server_streams: dict[str, rudp.Stream] = {}

    async def handler(conn: rudp.Connection) -> None:
        stream = await conn.accept_stream()
        await stream.readexactly(len(b"which"))
        server_streams["current"] = stream
        stream.write(b"ok")
        stream.write_eof()
        await stream.drain()
        await conn.wait_closed()

    infos: dict[str, dict[str, Any]] = {}
    async with running_server(handler, transport="both") as server:
        for transport in ("quic", "tcp"):
            config = client_config(cipher_suites=[CipherSuite.AES_256_GCM_SHA384])
            async with rudp.connect("127.0.0.1", server.port, config=config, transport=transport) as conn:  # type: ignore[arg-type]
                stream = await conn.open_stream()
                stream.write(b"which")
                assert await asyncio.wait_for(stream.read(), WAIT) == b"ok"
                peer = server_streams.pop("current")
                info = {name: stream.get_extra_info(name) for name in ("peername", "cipher", "peercert")}
                info["server sees"] = peer.get_extra_info("peercert")
                infos[transport] = info
                assert stream.get_extra_info("peername") == ("127.0.0.1", server.port)
                sockname = stream.get_extra_info("sockname")
                assert sockname[0] == "127.0.0.1" and sockname[1] != server.port
                assert stream.get_extra_info("stream_id") == stream.stream_id == 0
                assert stream.get_extra_info("connection") is conn
                assert stream.get_extra_info("no such name", "fallback") == "fallback"
    assert infos["quic"] == infos["tcp"]
    quic = infos["quic"]
    assert quic["cipher"] == ("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256)
    # The dictionaries are those of the ssl module's own decoding of the same certificates.
    assert quic["peercert"] == ssl._ssl._test_decode_cert(str(pki.cert_file))  # type: ignore[attr-defined]
    assert quic["server sees"] is None  # no client certificate was asked for
    assert ("DNS", "localhost") in quic["peercert"]["subjectAltName"]


async def test_stream_close_ends_sending_and_reading(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    outcome: asyncio.Future[tuple[bytes, BaseException | None]] = asyncio.get_running_loop().create_future()

    async def handler(conn: rudp.Connection) -> None:
        stream = await conn.accept_stream()
        received = await stream.read()  # ends with the client's FIN
        failure: BaseException | None = None
        try:
            for _ in range(1000):
                stream.write(bytes(1024))
                await stream.drain()
        except rudp.StreamStopped as exc:  # the client stopped reading (STOP_SENDING)
            failure = exc
        outcome.set_result((received, failure))
        await conn.wait_closed()

    async with (
        running_server(handler, transport=transport) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport) as conn,
    ):
        stream = await conn.open_stream()
        stream.write(b"request")
        stream.close()
        await asyncio.wait_for(stream.wait_closed(), WAIT)
        stream.close()  # idempotent
        received, failure = await asyncio.wait_for(outcome, WAIT)
        assert received == b"request"
        assert isinstance(failure, rudp.StreamStopped) and failure.code == 0
        assert not conn.is_closed  # only the stream was closed


async def test_start_server_refuses_one_way_streams_quietly(
    transport: str, pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    server_config = rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file)
    server = await rudp.start_server(_line_echo, "127.0.0.1", 0, config=server_config, transport=transport)  # type: ignore[arg-type]
    async with server:
        config = rudp.Config(cafile=pki.ca_file, server_name="localhost")
        async with rudp.connect("127.0.0.1", server.port, config=config, transport=transport) as conn:  # type: ignore[arg-type]
            one_way = await conn.open_uni_stream()
            with caplog.at_level(logging.ERROR, logger="rudp"):
                with pytest.raises(rudp.StreamError) as stopped:
                    for _ in range(200):  # until the peer's STOP_SENDING arrives
                        one_way.write(b"x" * 1000)
                        await asyncio.wait_for(one_way.drain(), WAIT)
                assert getattr(stopped.value, "code", None) == HANDLER_ERROR_CODE
                # The connection still serves a two-way stream.
                stream = await conn.open_stream()
                stream.write(b"still here\n")
                stream.write_eof()
                assert await asyncio.wait_for(stream.readline(), WAIT) == b"STILL HERE\n"
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
