"""httpx over rudp's HTTP/3: ``httpx.AsyncClient(transport=AsyncHTTP3Transport(config))``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import rudp
from rudp.h3.httpx_transport import AsyncHTTP3Transport
from tests.h3.conftest import TestApp, pattern


async def test_get_post_and_headers_through_httpx(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    app = TestApp()
    async with h3_server(app) as server:
        transport = AsyncHTTP3Transport(client_config)
        base = f"https://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(f"{base}/bytes/3000000")
            assert response.status_code == 200 and response.http_version == "HTTP/3"
            assert hashlib.sha256(response.content).digest() == hashlib.sha256(pattern(3_000_000)).digest()
            assert response.headers["content-length"] == "3000000"

            upload = pattern(2_500_000, seed=7)
            posted = await client.post(f"{base}/sha256", content=upload)
            assert posted.text == hashlib.sha256(upload).hexdigest()

            scope = (await client.get(f"{base}/scope?x=1", headers={"X-Test": "yes"})).json()
            assert scope["query_string"] == "x=1" and ["x-test", "yes"] in scope["headers"]
            # httpx's Host travels as :authority (the ASGI server shows it as one host header again);
            # connection-specific fields are not forwarded (RFC 9114 §4.2).
            names = [name for name, _ in scope["headers"]]
            assert names.count("host") == 1 and "connection" not in names

            assert (await client.get(f"{base}/nowhere")).status_code == 404
            assert transport.connections == 1  # every request above shared one QUIC connection
    assert transport.connections == 0


async def test_streamed_request_and_response_bodies(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    async def produce() -> Any:
        for i in range(50):
            yield pattern(20_000, seed=i)

    expected = b"".join(pattern(20_000, seed=i) for i in range(50))
    async with (
        h3_server(TestApp()) as server,
        httpx.AsyncClient(transport=AsyncHTTP3Transport(client_config)) as client,
        client.stream("POST", f"https://127.0.0.1:{server.port}/echo", content=produce()) as response,
    ):
        received = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert hashlib.sha256(received).digest() == hashlib.sha256(expected).digest()


async def test_errors_are_httpx_errors(client_config: rudp.Config, h3_server: Callable[..., Any]) -> None:
    transport = AsyncHTTP3Transport(client_config)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("http://127.0.0.1:1/")
        async with h3_server(TestApp()) as server:
            port = server.port
        with pytest.raises(httpx.ConnectError):  # nobody listens there any more
            await client.get(f"https://127.0.0.1:{port}/")
