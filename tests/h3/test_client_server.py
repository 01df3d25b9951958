"""rudp.h3 client against rudp.h3's ASGI server: requests, streaming bodies, trailers, limits, GOAWAY."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import rudp
import rudp.h3
from rudp.h3 import H3Error, H3ErrorCode, H3Settings, HeadersTooLarge

from .conftest import TestApp, pattern


async def test_get_scope_headers_and_status(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    app = TestApp()
    async with (
        h3_server(app) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client,
    ):
        assert client.connection.alpn_protocol == "h3"
        response = await client.request("GET", "/scope?x=1&y=%20", headers={"X-Custom": "Value"})
        assert response.status == 200
        assert response.headers["content-type"] == "application/json"
        info = json.loads(await response.read())
        assert info["method"] == "GET" and info["path"] == "/scope" and info["query_string"] == "x=1&y=%20"
        assert info["http_version"] == "3" and info["scheme"] == "https"
        assert ["host", f"127.0.0.1:{server.port}"] in info["headers"]
        assert ["x-custom", "Value"] in info["headers"]
        missing = await client.get("/nothing-here")
        assert missing.status == 404 and await missing.read() == b"not found"


async def test_large_download_streams_in_chunks(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    size = 3_000_000
    async with (
        h3_server(TestApp()) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client,
    ):
        response = await client.get(f"/bytes/{size}")
        assert response.headers["content-length"] == str(size)
        digest, chunks, total = hashlib.sha256(), 0, 0
        async for chunk in response.aiter_bytes():
            digest.update(chunk)
            chunks += 1
            total += len(chunk)
        assert total == size and chunks > 1
        assert digest.hexdigest() == hashlib.sha256(pattern(size)).hexdigest()


async def test_streaming_upload_and_echo_with_trailers(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    data = pattern(2_500_000, seed=7)

    async def produce() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 50_000):
            yield data[start : start + 50_000]

    async with (
        h3_server(TestApp()) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client,
    ):
        response = await client.request("POST", "/echo", body=produce())
        assert response.status == 200
        echoed = await response.read()
        assert hashlib.sha256(echoed).hexdigest() == hashlib.sha256(data).hexdigest()
        assert response.trailers is not None
        assert response.trailers["x-sha256"] == hashlib.sha256(data).hexdigest()
        # bytes body: content-length is added, the app sees every byte
        posted = await client.post("/sha256", data)
        assert await posted.read() == hashlib.sha256(data).hexdigest().encode()


async def test_concurrent_requests_on_one_connection(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    async with (
        h3_server(TestApp()) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client,
    ):

        async def one(n: int) -> bytes:
            response = await client.get(f"/bytes/{n}")
            return await response.read()

        sizes = [1, 1000, 100_000, 300_000, 0, 65_536]
        bodies = await asyncio.gather(*(one(n) for n in sizes))
        assert [hashlib.sha256(b).digest() for b in bodies] == [
            hashlib.sha256(pattern(n)).digest() for n in sizes
        ]


async def test_application_error_gives_500(h3_server: Callable[..., Any], client_config: rudp.Config) -> None:
    async with (
        h3_server(TestApp()) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client,
    ):
        response = await client.get("/raise")
        assert response.status == 500 and await response.read() == b"Internal Server Error"
        assert (await client.get("/sha256")).status == 200  # the connection carries on


async def test_header_section_limit_both_ways(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    app = TestApp()
    async with h3_server(app, settings=H3Settings(max_field_section_size=2000)) as server:
        async with rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client:
            settings = await client.h3.wait_peer_settings()
            assert settings[0x06] == 2000  # SETTINGS_MAX_FIELD_SECTION_SIZE advertised (RFC 9114 §7.2.4.1)
            # Our client knows the server's limit: refused locally, nothing sent.
            with pytest.raises(HeadersTooLarge) as refused:
                await client.get("/scope", headers={"x-big": "v" * 3000})
            assert refused.value.code == H3ErrorCode.H3_EXCESSIVE_LOAD and not refused.value.by_peer
            assert refused.value.limit == 2000 and refused.value.size > 3000
            assert (await client.get("/sha256")).status == 200
            # Before the server's SETTINGS are known, a large section waits for them (then is refused).
            known = client.h3.peer_settings
            client.h3.peer_settings = None
            client.h3.peer_settings_received.clear()
            waiting = asyncio.create_task(client.get("/scope", headers={"x-big": "v" * 20_000}))
            await client.connection.ping()
            assert not waiting.done()
            client.h3.peer_settings = known
            client.h3.peer_settings_received.set()
            with pytest.raises(HeadersTooLarge):
                await waiting
        # A client that ignores the limit gets 431 (RFC 9114 §4.2.2) while a concurrent request on
        # the same connection completes.
        settings = H3Settings(max_field_section_size=1 << 20)
        async with rudp.h3.connect(
            "127.0.0.1", server.port, config=client_config, settings=settings
        ) as client:
            await client.h3.wait_peer_settings()
            slow = asyncio.create_task(client.get("/slow"))
            await app.slow_started.wait()
            client.h3.peer_settings = {}  # forget the server's limit
            # One field too large even compressed (refused unread), then 40 copies of one field that
            # QPACK's dynamic table makes small on the wire but too large once decoded.
            for headers in ([("x-big", "v" * 3000)], [("x-same", "w" * 60)] * 40):
                oversized = await client.request("POST", "/sha256", headers=headers, body=pattern(200_000))
                assert oversized.status == 431
                assert await oversized.read() == b"Request Header Fields Too Large"
            app.release.set()
            response = await slow
            assert response.status == 200 and await response.read() == b"slow done"
            posted = await client.post("/sha256", b"after")
            assert await posted.read() == hashlib.sha256(b"after").hexdigest().encode()
    assert [scope["path"] for scope in app.scopes].count("/sha256") == 2  # the 431s never reached it


async def test_goaway_lets_requests_in_progress_finish(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    app = TestApp()
    async with (
        h3_server(app) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client,
    ):
        slow = asyncio.create_task(client.get("/slow"))
        await app.slow_started.wait()
        shutdown = asyncio.create_task(server.shutdown(timeout=20))
        await client.h3.goaway_event.wait()
        assert client.h3.goaway_received == 4  # the slow request was stream 0: it is processed
        with pytest.raises(H3Error) as rejected:
            await client.get("/sha256")
        assert rejected.value.code == H3ErrorCode.H3_REQUEST_REJECTED
        app.release.set()
        response = await slow
        assert response.status == 200 and await response.read() == b"slow done"
        await shutdown
        await client.connection.wait_closed()
        # The server ended the connection with HTTP/3's "no error" (RFC 9114 §8.1), not a bare 0.
        closed = client.connection.close_error
        assert closed is not None and closed.by_peer and closed.code == H3ErrorCode.H3_NO_ERROR


async def test_response_aborted_by_server_reset_is_reported(
    server_config: rudp.Config, client_config: rudp.Config
) -> None:
    """Trailers in the request direction and a stream reset, at the H3Connection level."""
    from rudp.h3.connection import H3Connection
    from rudp.h3.exchange import MessageReader, MessageWriter

    seen: dict[str, Any] = {}

    async def handler(conn: rudp.Connection) -> None:
        h3: H3Connection

        async def on_request(stream: rudp.Stream) -> None:
            reader = MessageReader(h3, stream, "request")
            await reader.read_headers()
            body = bytearray()
            while chunk := await reader.read_data():
                body += chunk
            seen["body"] = bytes(body)
            seen["trailers"] = reader.trailers
            writer = MessageWriter(h3, stream)
            await writer.send_headers([(b":status", b"200")])
            await writer.send_data(b"partial")
            writer.abort(H3ErrorCode.H3_INTERNAL_ERROR)

        h3 = H3Connection(conn, request_handler=on_request)
        await h3.start()
        await h3.wait_closed()

    server = await rudp.serve("127.0.0.1", 0, handler, config=rudp.h3.client.h3_config(server_config))
    try:
        async with rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client:
            with pytest.raises(H3Error) as aborted:  # at the headers or in the body: the reset races them
                response = await client.request("PUT", "/x", body=b"payload", trailers={"x-check": "42"})
                await response.read()
            assert aborted.value.code == H3ErrorCode.H3_INTERNAL_ERROR and aborted.value.by_peer
            assert seen["body"] == b"payload" and seen["trailers"] == [(b"x-check", b"42")]
    finally:
        server.close()
        await server.wait_closed()


async def test_an_internal_failure_reading_a_request_resets_its_stream(
    h3_server: Callable[..., Any], client_config: rudp.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rudp.h3.server as server_module

    class Broken(server_module.MessageReader):
        async def read_headers(self) -> Any:
            raise RuntimeError("a bug of ours")

    monkeypatch.setattr(server_module, "MessageReader", Broken)
    async with (
        h3_server(TestApp()) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client,
    ):
        with pytest.raises(H3Error) as failed:
            await asyncio.wait_for(client.get("/scope"), 10)
        assert failed.value.code == H3ErrorCode.H3_INTERNAL_ERROR and failed.value.by_peer
