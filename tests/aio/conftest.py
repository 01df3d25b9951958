"""Fixtures for the asyncio-layer tests: a test PKI, configs, and a server factory on real sockets.

Every test here uses real sockets on loopback (127.0.0.1 and ::1). ``transport`` parametrises a test
over QUIC and the TCP baseline, which share the Connection/Stream API.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import rudp
from rudp.aio.server import Handler
from rudp.testing.certs import TestPki, make_test_pki

TRANSPORTS = ["quic", "tcp"]


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


_NO_IPV6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
HOSTS = ["127.0.0.1", pytest.param("::1", marks=_NO_IPV6)]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("aio-pki"))


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def server_config(pki: TestPki) -> Callable[..., rudp.Config]:
    def make(**overrides: Any) -> rudp.Config:
        return rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file, **overrides)

    return make


@pytest.fixture
def client_config(pki: TestPki) -> Callable[..., rudp.Config]:
    def make(**overrides: Any) -> rudp.Config:
        overrides.setdefault("handshake_timeout", 5.0)
        return rudp.Config(cafile=pki.ca_file, **overrides)

    return make


@pytest.fixture
def running_server(
    server_config: Callable[..., rudp.Config],
) -> Callable[..., Any]:
    """``async with running_server(handler, transport=..., host=...) as server:`` (closed on exit)."""

    @asynccontextmanager
    async def run(
        handler: Handler, *, transport: str = "quic", host: str = "127.0.0.1", **config: Any
    ) -> AsyncIterator[rudp.Server]:
        config_ = server_config(**config)
        server = await rudp.serve(host, 0, handler, config=config_, transport=transport)  # type: ignore[arg-type]
        try:
            yield server
        finally:
            server.close()
            await server.wait_closed()

    return run


def pki_paths(pki: TestPki) -> dict[str, Path]:
    return {"ca": pki.ca_file, "cert": pki.cert_file, "key": pki.key_file}
