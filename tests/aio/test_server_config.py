"""``rudp.serve()`` refuses a bad certificate/key pair at once, the same way on both transports.

A QUIC server used to start with a key that is not its certificate's and fail every handshake later;
now QUIC, the TCP baseline and "both" raise ConfigError naming the files, before binding anything.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

import rudp
from rudp.aio.server import Handler
from rudp.testing.certs import TestPki

SERVE_TRANSPORTS = ["quic", "tcp", "both"]


async def _echo(conn: rudp.Connection) -> None:
    async for stream in conn:
        stream.write(await stream.read())
        stream.write_eof()
        await stream.drain()


async def _serve(config: rudp.Config, transport: str, handler: Handler = _echo) -> rudp.Server:
    return await rudp.serve("127.0.0.1", 0, handler, config=config, transport=transport)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", SERVE_TRANSPORTS)
async def test_key_of_another_certificate_is_refused_at_serve(pki: TestPki, transport: str) -> None:
    config = rudp.Config(certfile=pki.cert_file, keyfile=pki.client_key_file)  # the client's key
    expected = f"the private key in {pki.client_key_file} does not match the certificate in {pki.cert_file}"
    with pytest.raises(rudp.ConfigError, match=re.escape(expected)):
        await _serve(config, transport)


@pytest.mark.parametrize("transport", SERVE_TRANSPORTS)
async def test_missing_files_are_named(pki: TestPki, transport: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "key.pem"
    with pytest.raises(rudp.ConfigError, match=re.escape(f"cannot read {missing}")):
        await _serve(rudp.Config(certfile=pki.cert_file, keyfile=missing), transport)
    with pytest.raises(rudp.ConfigError, match=re.escape(f"cannot read {missing}")):
        await _serve(rudp.Config(certfile=missing, keyfile=pki.key_file), transport)


@pytest.mark.parametrize("transport", SERVE_TRANSPORTS)
async def test_unparsable_files_are_named(pki: TestPki, transport: str, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not PEM\n")
    with pytest.raises(rudp.ConfigError, match=re.escape(f"cannot load a private key from {garbage}")):
        await _serve(rudp.Config(certfile=pki.cert_file, keyfile=garbage), transport)
    with pytest.raises(rudp.ConfigError, match=re.escape(f"no PEM certificate found in {garbage}")):
        await _serve(rudp.Config(certfile=garbage, keyfile=pki.key_file), transport)


@pytest.mark.parametrize("transport", SERVE_TRANSPORTS)
async def test_matching_pair_still_serves(pki: TestPki, transport: str) -> None:
    server = await _serve(rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file), transport)
    async with server:
        for client_transport in ("quic", "tcp") if transport == "both" else (transport,):
            config = rudp.Config(cafile=pki.ca_file, handshake_timeout=5.0)
            async with rudp.connect(
                "127.0.0.1",
                server.port,
                config=config,
                transport=client_transport,  # type: ignore[arg-type]
            ) as conn:
                stream = await conn.open_stream()
                stream.write(b"ok")
                stream.write_eof()
                assert await asyncio.wait_for(stream.read(), 5.0) == b"ok"


async def test_quic_client_refuses_a_mismatched_client_certificate(pki: TestPki) -> None:
    config = rudp.Config(cafile=pki.ca_file, certfile=pki.client_cert_file, keyfile=pki.key_file)
    expected = f"the private key in {pki.key_file} does not match the certificate in {pki.client_cert_file}"
    with pytest.raises(rudp.ConfigError, match=re.escape(expected)):
        await rudp.connect("127.0.0.1", 9, config=config)
