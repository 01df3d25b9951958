"""QUIC-only features on real sockets: migration to a new UDP port mid-transfer (the download completes
intact), the negotiated version and cipher suite, and key updates; the TCP baseline refuses them."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import rudp

PAYLOAD = os.urandom(3_000_000)


def _payload_server(
    seen: list[tuple[str, int]], done: asyncio.Event
) -> Callable[[rudp.Connection], Awaitable[None]]:
    async def handler(conn: rudp.Connection) -> None:
        async for stream in conn:
            await stream.read()
            stream.write(PAYLOAD)
            stream.write_eof()
            await stream.drain()
            seen.append(conn.peer_address)
            done.set()

    return handler


async def test_quic_client_migrates_mid_download(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    seen: list[tuple[str, int]] = []
    done = asyncio.Event()
    async with (
        running_server(_payload_server(seen, done)) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config()) as conn,
    ):
        await conn.ping()  # the handshake is confirmed once this round trip is done
        stream = await conn.open_stream()
        stream.write(b"GET /big\r\n")
        stream.write_eof()
        first = await stream.readexactly(200_000)
        changes_before = conn.stats.path_changes
        new_address = await conn.migrate()
        # The receive window (256 KB) holds the server back: most of the body crosses the new path.
        rest = await asyncio.wait_for(stream.read(), timeout=30)
        assert hashlib.sha256(first + rest).digest() == hashlib.sha256(PAYLOAD).digest()
        assert conn.stats.path_changes == changes_before + 1
        await asyncio.wait_for(done.wait(), timeout=5)
        assert seen[-1][1] == new_address[1]  # the server now talks to the new port


async def test_tcp_cannot_migrate(running_server: Any, client_config: Callable[..., rudp.Config]) -> None:
    seen: list[tuple[str, int]] = []
    async with (
        running_server(_payload_server(seen, asyncio.Event()), transport="tcp") as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport="tcp") as conn,
    ):
        with pytest.raises(rudp.RudpError):
            await conn.migrate()


async def test_cipher_suite_version_and_key_update(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    seen: list[tuple[str, int]] = []
    done = asyncio.Event()
    async with (
        running_server(_payload_server(seen, done)) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(version=0x6B3343CF)) as conn,
    ):
        assert conn.cipher_suite == "TLS_AES_128_GCM_SHA256" and conn.version == 0x6B3343CF
        await conn.ping()
        assert conn.request_key_update()
        stream = await conn.open_stream()
        stream.write(b"GET /big\r\n")
        stream.write_eof()
        body = await asyncio.wait_for(stream.read(), timeout=30)
        assert hashlib.sha256(body).digest() == hashlib.sha256(PAYLOAD).digest()
        assert conn.stats.key_updates == 1


async def test_tcp_reports_no_quic_details(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with (
        running_server(_payload_server([], asyncio.Event()), transport="tcp") as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport="tcp") as conn,
    ):
        assert conn.version is None and conn.cipher_suite is None
        with pytest.raises(rudp.RudpError):
            conn.request_key_update()


async def test_mutual_tls_client_certificate_reaches_the_handler(
    running_server: Any, client_config: Callable[..., rudp.Config], pki: Any
) -> None:
    subjects: list[str] = []
    done = asyncio.Event()

    async def handler(conn: rudp.Connection) -> None:
        certificate = conn.peer_certificate
        subjects.append("" if certificate is None else certificate.subject.rfc4514_string())
        done.set()

    async with running_server(handler, client_auth="required", cafile=pki.ca_file) as server:
        config = client_config(certfile=pki.client_cert_file, keyfile=pki.client_key_file)
        async with rudp.connect("127.0.0.1", server.port, config=config) as conn:
            await asyncio.wait_for(done.wait(), timeout=5)
            assert conn.peer_certificate is not None  # the server's
    assert subjects and "rudp test client" in subjects[0]
