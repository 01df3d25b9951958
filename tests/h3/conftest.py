"""Fixtures for the HTTP/3 tests: a test PKI, an ASGI test application and rudp.h3 server/client."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import rudp
import rudp.h3
from rudp.testing.certs import TestPki, make_test_pki


def pattern(n: int, seed: int = 1) -> bytes:
    """``n`` deterministic pseudo-random bytes."""
    block = hashlib.sha256(seed.to_bytes(4, "big")).digest() * 2048  # 64 KiB
    return (block * (n // len(block) + 1))[:n]


class TestApp:
    """A minimal ASGI application, written here, with the routes the tests need."""

    __test__ = False

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.slow_started = asyncio.Event()
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.scopes.append(scope)
        path = scope["path"]
        if path == "/echo":  # streams the request body back as it arrives; its SHA-256 in trailers
            await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
            digest = hashlib.sha256()
            while True:
                message = await receive()
                chunk = message.get("body", b"")
                digest.update(chunk)
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if not message.get("more_body"):
                    break
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            await send(
                {"type": "http.response.trailers", "headers": [(b"x-sha256", digest.hexdigest().encode())]}
            )
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if path == "/scope":
            info = {
                "method": scope["method"],
                "path": scope["path"],
                "query_string": scope["query_string"].decode(),
                "http_version": scope["http_version"],
                "scheme": scope["scheme"],
                "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
                "body_sha256": hashlib.sha256(body).hexdigest(),
            }
            await self._reply(send, 200, json.dumps(info).encode(), [(b"content-type", b"application/json")])
        elif path.startswith("/bytes/"):
            n = int(path.rsplit("/", 1)[1])
            data = pattern(n)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(n).encode())],
                }
            )
            for start in range(0, n, 100_000):
                await send(
                    {"type": "http.response.body", "body": data[start : start + 100_000], "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})
        elif path == "/slow":
            self.slow_started.set()
            await self.release.wait()
            await self._reply(send, 200, b"slow done")
        elif path == "/raise":
            raise RuntimeError("the application failed")
        elif path == "/sha256":
            await self._reply(send, 200, hashlib.sha256(body).hexdigest().encode())
        else:
            await self._reply(send, 404, b"not found")

    @staticmethod
    async def _reply(
        send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers or []})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("h3-pki"))


@pytest.fixture
def client_config(pki: TestPki) -> rudp.Config:
    return rudp.Config(cafile=pki.ca_file, server_name="localhost", handshake_timeout=5.0)


@pytest.fixture
def server_config(pki: TestPki) -> rudp.Config:
    return rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file)


@pytest.fixture
def h3_server(server_config: rudp.Config) -> Callable[..., Any]:
    """``async with h3_server(app, settings=...) as server:`` runs ``app`` with rudp.h3.serve_asgi."""

    @asynccontextmanager
    async def run(app: Any, **kwargs: Any) -> AsyncIterator[rudp.h3.H3Server]:
        server = await rudp.h3.serve_asgi(app, "127.0.0.1", 0, config=server_config, **kwargs)
        try:
            yield server
        finally:
            server.close()
            await server.wait_closed()

    return run
