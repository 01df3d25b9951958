"""SSLKEYLOGFILE is honoured by the library itself, for QUIC and the TCP baseline, as ``ssl`` does.

With ``Config.secrets_log`` None and the variable set, every handshake (client and server side)
appends its secrets to the named file; a configured ``secrets_log`` wins over the variable.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections import defaultdict
from pathlib import Path

import pytest

import rudp
from rudp.codec.frames import Stream as StreamFrame
from rudp.crypto.suites import CipherSuite
from rudp.testing.certs import TestPki, make_test_pki
from rudp.tls.keylog import keylog_path
from tests.support.sim import CLIENT_ADDR, Sniffer, make_sim

TLS13_LABELS = (
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
)
SAFETY = 10.0  # seconds; a bound on waits that end by events, never a sleep


@pytest.fixture(scope="module")
def rudp_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("keylog-pki"))


def secrets_by_label(path: Path) -> dict[str, list[tuple[str, str]]]:
    """``label -> [(client_random, secret), ...]`` in file order (NSS key log lines; OpenSSL adds a
    ``#`` comment line first)."""
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for line in path.read_text(encoding="ascii").splitlines():
        if line.startswith("#"):
            continue
        label, client_random, secret = line.split(" ")
        out[label].append((client_random, secret))
    return out


def assert_both_sides_logged(path: Path) -> None:
    """Each TLS 1.3 traffic secret was logged by the client and by the server, identically."""
    secrets = secrets_by_label(path)
    for label in TLS13_LABELS:
        assert len(secrets[label]) == 2, label
        client_side, server_side = secrets[label]
        assert client_side == server_side
        assert len(bytes.fromhex(client_side[0])) == 32 and len(bytes.fromhex(client_side[1])) in (32, 48)
    randoms = {entry[0] for label in TLS13_LABELS for entry in secrets[label]}
    assert len(randoms) == 1  # one handshake


def test_keylog_path_prefers_the_configuration_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured, from_env = tmp_path / "configured.log", tmp_path / "env.log"
    assert keylog_path(configured, {"SSLKEYLOGFILE": str(from_env)}) == str(configured)
    assert keylog_path(None, {"SSLKEYLOGFILE": str(from_env)}) == str(from_env)
    assert keylog_path(None, {"SSLKEYLOGFILE": ""}) is None
    assert keylog_path(None, {}) is None
    monkeypatch.setenv("SSLKEYLOGFILE", str(from_env))
    assert rudp.Config().secrets_log_path() == str(from_env)
    assert rudp.Config(secrets_log=configured).secrets_log_path() == str(configured)
    # python -E: the environment is ignored, as ssl.create_default_context() ignores it.
    monkeypatch.setattr(sys, "flags", types.SimpleNamespace(ignore_environment=1))
    assert keylog_path(None) is None
    assert keylog_path(configured) == str(configured)


def test_quic_handshake_appends_to_sslkeylogfile(
    rudp_pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keylog = tmp_path / "env-keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    suite = CipherSuite.AES_128_GCM_SHA256
    sim = make_sim(rudp_pki, client={"cipher_suites": [suite]})  # neither Config names a secrets_log
    sim.handshake()
    assert_both_sides_logged(keylog)

    # The logged secrets are this connection's: a packet sealed with the logged client key is
    # accepted by the server (as Wireshark would open it).
    sniffer = Sniffer(keylog, "CLIENT_TRAFFIC_SECRET_0", suite)
    frame = StreamFrame(0, 0, b"sealed with the logged key", fin=True)
    packet = sniffer.forge(sim.server.conn.local_cids()[0], 1_000_000, [frame])
    sim.server.receive_datagram(packet, CLIENT_ADDR, sim.clock.now)
    assert bytes(sim.server.streams[0]) == b"sealed with the logged key"


def test_configured_secrets_log_wins_over_the_environment(
    rudp_pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env, configured = tmp_path / "env.log", tmp_path / "configured.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(from_env))
    sim = make_sim(rudp_pki, client={"secrets_log": configured}, server={"secrets_log": configured})
    sim.handshake()
    assert_both_sides_logged(configured)
    assert not from_env.exists()


@pytest.mark.parametrize("transport", ["quic", "tcp"])
async def test_connect_and_serve_honour_sslkeylogfile(
    rudp_pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """Real sockets on 127.0.0.1: rudp.serve and rudp.connect, no secrets_log, the variable set."""
    keylog = tmp_path / "env-keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    served = asyncio.Event()

    async def handler(conn: rudp.Connection) -> None:
        served.set()

    server_config = rudp.Config(certfile=rudp_pki.cert_file, keyfile=rudp_pki.key_file)
    server = await rudp.serve("127.0.0.1", 0, handler, config=server_config, transport=transport)  # type: ignore[arg-type]
    try:
        client_config = rudp.Config(
            cafile=rudp_pki.ca_file, server_name="localhost", handshake_timeout=SAFETY
        )
        async with rudp.connect("127.0.0.1", server.port, config=client_config, transport=transport):  # type: ignore[arg-type]
            await asyncio.wait_for(served.wait(), SAFETY)  # the server side completed its handshake too
    finally:
        server.close()
        await server.wait_closed()
    assert_both_sides_logged(keylog)
