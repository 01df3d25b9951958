"""Interop in-process with aioquic's HTTP/3 (used only as a test peer): aioquic's H3 client against
rudp.h3's ASGI server, and rudp.h3's client against aioquic's H3 server; GET and POST of
multi-megabyte bodies, compared by SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aioquic.asyncio import connect as aioquic_connect
from aioquic.asyncio import serve as aioquic_serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN
from aioquic.h3.connection import H3Connection as AioquicH3
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated, QuicEvent

import rudp
import rudp.h3
from rudp.testing.certs import TestPki

from .conftest import TestApp, pattern

SIZE = 3_000_000


class AioquicClient(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http = AioquicH3(self._quic)
        self.pending: dict[int, tuple[asyncio.Future[None], list[tuple[bytes, bytes]], bytearray]] = {}

    async def request(
        self, method: bytes, path: bytes, body: bytes = b""
    ) -> tuple[dict[bytes, bytes], bytes]:
        sid = self._quic.get_next_available_stream_id()
        headers = [
            (b":method", method),
            (b":scheme", b"https"),
            (b":authority", b"localhost"),
            (b":path", path),
        ]
        self.http.send_headers(sid, headers, end_stream=not body)
        if body:
            self.http.send_data(sid, body, end_stream=True)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending[sid] = (done, [], bytearray())
        self.transmit()
        await done
        _, fields, data = self.pending.pop(sid)
        return dict(fields), bytes(data)

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self.http.handle_event(event):
            if isinstance(h3_event, HeadersReceived | DataReceived) and h3_event.stream_id in self.pending:
                done, fields, data = self.pending[h3_event.stream_id]
                if isinstance(h3_event, HeadersReceived):
                    fields.extend(h3_event.headers)
                else:
                    data += h3_event.data
                if h3_event.stream_ended and not done.done():
                    done.set_result(None)


class AioquicServer(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http: AioquicH3 | None = None
        self.requests: dict[int, tuple[dict[bytes, bytes], bytearray]] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            self.http = AioquicH3(self._quic)
        if self.http is None:
            return
        for h3_event in self.http.handle_event(event):
            if isinstance(h3_event, HeadersReceived) and h3_event.stream_id not in self.requests:
                self.requests[h3_event.stream_id] = (dict(h3_event.headers), bytearray())
            elif isinstance(h3_event, DataReceived):
                self.requests[h3_event.stream_id][1].extend(h3_event.data)
            else:
                continue
            if h3_event.stream_ended:
                self._respond(h3_event.stream_id)

    def _respond(self, sid: int) -> None:
        headers, body = self.requests.pop(sid)
        path = headers[b":path"].decode()
        if path.startswith("/bytes/"):
            answer = pattern(int(path.rsplit("/", 1)[1]))
        else:
            answer = hashlib.sha256(body).hexdigest().encode()
        assert self.http is not None
        self.http.send_headers(sid, [(b":status", b"200"), (b"content-length", str(len(answer)).encode())])
        self.http.send_data(sid, answer, end_stream=True)
        self.transmit()


async def test_aioquic_client_against_rudp_server(pki: TestPki, server_config: rudp.Config) -> None:
    server = await rudp.h3.serve_asgi(TestApp(), "127.0.0.1", 0, config=server_config)
    try:
        configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
        configuration.load_verify_locations(str(pki.ca_file))
        async with aioquic_connect(
            "127.0.0.1", server.port, configuration=configuration, create_protocol=AioquicClient
        ) as client:
            assert isinstance(client, AioquicClient)
            headers, body = await client.request(b"GET", f"/bytes/{SIZE}".encode())
            assert headers[b":status"] == b"200"
            assert hashlib.sha256(body).digest() == hashlib.sha256(pattern(SIZE)).digest()
            upload = pattern(SIZE, seed=3)
            headers, body = await client.request(b"POST", b"/sha256", upload)
            assert headers[b":status"] == b"200" and body == hashlib.sha256(upload).hexdigest().encode()
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def aioquic_server(pki: TestPki) -> AsyncIterator[int]:
    configuration = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    configuration.load_cert_chain(str(pki.cert_file), str(pki.key_file))
    server = await aioquic_serve("127.0.0.1", 0, configuration=configuration, create_protocol=AioquicServer)
    try:
        yield server._transport.get_extra_info("sockname")[1]
    finally:
        server.close()


async def test_rudp_client_against_aioquic_server(aioquic_server: int, client_config: rudp.Config) -> None:
    async with rudp.h3.connect("127.0.0.1", aioquic_server, config=client_config) as client:
        response = await client.get(f"/bytes/{SIZE}")
        assert response.status == 200 and response.headers["content-length"] == str(SIZE)
        body = await response.read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(pattern(SIZE)).digest()
        upload = pattern(SIZE, seed=5)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, SIZE, 256_000):
                yield upload[start : start + 256_000]

        posted = await client.request("POST", "/sha256", body=chunks())
        assert await posted.read() == hashlib.sha256(upload).hexdigest().encode()
        small = await client.post("/sha256", b"abc")
        assert await small.read() == hashlib.sha256(b"abc").hexdigest().encode()
