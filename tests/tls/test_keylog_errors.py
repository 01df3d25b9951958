"""A key log file that cannot be written: refused up front with ConfigError (as the TCP baseline's
``ssl`` context does), never a failed handshake whose CONNECTION_CLOSE reason carries our file path."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import rudp
from rudp.testing.certs import TestPki, make_test_pki
from rudp.tls.keylog import keylog_file

SAFETY = 10.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("keylog-errors-pki"))


async def _handler(conn: rudp.Connection) -> None:
    await conn.wait_closed()


@pytest.mark.parametrize("transport", ["quic", "tcp"])
async def test_server_with_an_unwritable_key_log_is_refused_at_serve(
    pki: TestPki, tmp_path: Path, transport: str
) -> None:
    bad = tmp_path / "missing-dir" / "keys.log"
    config = rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file, secrets_log=str(bad))
    with pytest.raises(rudp.ConfigError, match="cannot open the TLS key log file") as info:
        await rudp.serve("127.0.0.1", 0, _handler, config=config, transport=transport)  # type: ignore[arg-type]
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("transport", ["quic", "tcp"])
async def test_client_with_an_unwritable_key_log_is_refused_before_connecting(
    pki: TestPki, tmp_path: Path, transport: str
) -> None:
    server = await rudp.serve(
        "127.0.0.1",
        0,
        _handler,
        config=rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file),
        transport=transport,  # type: ignore[arg-type]
    )
    try:
        bad = tmp_path / "missing-dir" / "keys.log"
        config = rudp.Config(cafile=pki.ca_file, handshake_timeout=5.0, secrets_log=str(bad))
        with pytest.raises(rudp.ConfigError, match="cannot open the TLS key log file"):
            await asyncio.wait_for(
                rudp.connect("127.0.0.1", server.port, config=config, transport=transport),  # type: ignore[arg-type]
                SAFETY,
            )
    finally:
        server.close()
        await server.wait_closed()


def test_a_key_log_that_becomes_unwritable_does_not_fail_the_handshake(tmp_path: Path) -> None:
    directory = tmp_path / "gone"
    directory.mkdir()
    write = keylog_file(directory / "keys.log")
    write("CLIENT_RANDOM 00 11")
    os.remove(directory / "keys.log")
    directory.rmdir()
    write("CLIENT_RANDOM 22 33")  # as ssl's keylog_filename: a failed write is not the handshake's
