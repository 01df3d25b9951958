"""The simulator drives a real QUIC stack: aioquic client <-> aioquic server through rudp.testing.Pair.

aioquic's sans-IO ``QuicConnection`` is wrapped in a small adapter that satisfies ``SimEndpoint``; the
same adapter lets later tests put rudp's own connection on either side.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import ssl
from pathlib import Path

import pytest
from aioquic.quic.configuration import QuicConfiguration
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rudp.testing import DropCause, LinkConfig, Pair, SimEndpoint, VirtualClock
from tests.support.peers import AioquicEndpoint

Addr = tuple[str, int]
ALPN = ["rudp-test"]
START = 1000.0


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("certs")
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return certfile, keyfile


def make_pair(
    cert_files: tuple[Path, Path], link: LinkConfig
) -> tuple[Pair, AioquicEndpoint, AioquicEndpoint]:
    client_cfg = QuicConfiguration(is_client=True, alpn_protocols=ALPN, server_name="localhost")
    client_cfg.verify_mode = ssl.CERT_NONE
    server_cfg = QuicConfiguration(is_client=False, alpn_protocols=ALPN)
    server_cfg.load_cert_chain(*cert_files)
    client, server = AioquicEndpoint(client_cfg), AioquicEndpoint(server_cfg)
    pair = Pair(
        client,
        server,
        c2s=link,
        s2c=dataclasses.replace(link, seed=link.seed + 1),
        clock=VirtualClock(START),
    )
    client.connect(pair.server_addr, pair.now)
    return pair, client, server


def test_adapter_satisfies_protocol(cert_files: tuple[Path, Path]) -> None:
    _, client, server = make_pair(cert_files, LinkConfig())
    assert isinstance(client, SimEndpoint) and isinstance(server, SimEndpoint)


def test_handshake_takes_one_round_trip(cert_files: tuple[Path, Path]) -> None:
    pair, client, server = make_pair(cert_files, LinkConfig(delay=0.02))
    assert pair.drive(lambda: client.handshake_done_at is not None and server.handshake_done_at is not None)
    assert client.handshake_done_at == pytest.approx(START + 0.04)
    assert server.handshake_done_at == pytest.approx(START + 0.06)


LINKS = {
    "clean": LinkConfig(delay=0.02),
    "loss5": LinkConfig(delay=0.02, loss=0.05, seed=1234),
    "rough": LinkConfig(
        delay=0.02, jitter=0.005, loss=0.02, reorder=0.05, duplicate=0.02, bandwidth=20e6, queue_bytes=64_000
    ),
}


@pytest.mark.parametrize("name", list(LINKS))
def test_one_megabyte_transfer(cert_files: tuple[Path, Path], name: str) -> None:
    link = LINKS[name]
    pair, client, server = make_pair(cert_files, link)
    assert pair.drive(lambda: client.handshake_done_at is not None, max_time=10.0)
    payload = hashlib.shake_256(b"rudp netsim").digest(1_000_000)
    conn = client.conn
    assert conn is not None
    stream_id = conn.get_next_available_stream_id()
    conn.send_stream_data(stream_id, payload, end_stream=True)
    assert pair.drive(lambda: stream_id in server.finished, max_time=30.0)
    assert hashlib.sha256(server.streams[stream_id]).digest() == hashlib.sha256(payload).digest()
    assert client.terminated is None and server.terminated is None
    print(f"{name}: {pair.now - START:.3f} s virtual, {pair.steps} steps, c2s {stats_line(pair)}")
    stats = pair.c2s.stats
    assert stats.bytes_delivered > 1_000_000
    if link.loss:
        assert stats.dropped[DropCause.LOSS] > 0 and pair.s2c.stats.dropped_total > 0
    else:
        assert stats.dropped_total == 0
    if link.reorder:
        assert stats.reordered > 0 and stats.duplicated > 0 and stats.max_queue_bytes > 0


def stats_line(pair: Pair) -> str:
    c2s, s2c = pair.c2s.stats, pair.s2c.stats
    return f"sent={c2s.sent} dropped={c2s.dropped_total}; s2c sent={s2c.sent} dropped={s2c.dropped_total}"
