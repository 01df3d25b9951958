"""Mutual TLS (``Config.client_auth``) means the same on both transports: the handler sees the client's
certificate, and a required certificate that is missing or untrusted refuses the client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import rudp
from rudp.testing.certs import TestPki, make_test_pki

WAIT = 10.0


async def test_the_client_certificate_reaches_the_handler(
    running_server: Any, client_config: Callable[..., rudp.Config], pki: TestPki, transport: str
) -> None:
    subjects: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler(conn: rudp.Connection) -> None:
        certificate = conn.peer_certificate
        subjects.set_result("" if certificate is None else certificate.subject.rfc4514_string())

    options = {"transport": transport, "client_auth": "required", "cafile": pki.ca_file}
    async with running_server(handler, **options) as server:
        config = client_config(certfile=pki.client_cert_file, keyfile=pki.client_key_file)
        async with rudp.connect("127.0.0.1", server.port, config=config, transport=transport) as conn:
            assert "rudp test client" in await asyncio.wait_for(subjects, WAIT)
            assert conn.peer_certificate is not None  # the server's


@pytest.mark.parametrize("certificate", ["none", "untrusted"])
async def test_a_required_certificate_missing_or_untrusted_refuses_the_client(
    running_server: Any,
    client_config: Callable[..., rudp.Config],
    pki: TestPki,
    transport: str,
    certificate: str,
    tmp_path: Path,
) -> None:
    handled = asyncio.Event()

    async def handler(conn: rudp.Connection) -> None:
        handled.set()

    extra: dict[str, object] = {}
    if certificate == "untrusted":
        other = make_test_pki(tmp_path / "other")
        extra = {"certfile": other.client_cert_file, "keyfile": other.client_key_file}
    options = {"transport": transport, "client_auth": "required", "cafile": pki.ca_file}
    async with running_server(handler, **options) as server:
        with pytest.raises(rudp.ConnectionClosed):
            conn = await rudp.connect(
                "127.0.0.1", server.port, config=client_config(**extra), transport=transport
            )
            # TLS 1.3 over TCP: the client may finish first and learn of the refusal on first use.
            stream = await conn.open_stream()
            stream.write(b"hello")
            stream.write_eof()
            await asyncio.wait_for(stream.read(), WAIT)
        assert not handled.is_set()


async def test_an_optional_certificate_may_be_absent(
    running_server: Any, client_config: Callable[..., rudp.Config], pki: TestPki, transport: str
) -> None:
    seen: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def handler(conn: rudp.Connection) -> None:
        seen.set_result(conn.peer_certificate)

    options = {"transport": transport, "client_auth": "optional", "cafile": pki.ca_file}
    async with (
        running_server(handler, **options) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport),
    ):
        assert await asyncio.wait_for(seen, WAIT) is None
