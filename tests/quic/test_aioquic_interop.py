"""rudp speaks real QUIC: aioquic's sans-IO connection and rudp's, in process, through the simulator.

Both roles (rudp client -> aioquic server, aioquic client -> rudp server), every cipher suite, and a
multi-stream transfer echoed back byte for byte, on a clean link and under 5% loss.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.tls import CipherSuite as AqSuite

from rudp.config import Config
from rudp.crypto.suites import CipherSuite
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.testing import LinkConfig, Pair, SimEndpoint, VirtualClock
from rudp.testing.certs import TestPki, make_test_pki
from tests.support.peers import AioquicPeer, RudpPeer

ALPN = ["hq-interop"]
START = 1000.0
SUITES = [
    CipherSuite.AES_128_GCM_SHA256,
    CipherSuite.AES_256_GCM_SHA384,
    CipherSuite.CHACHA20_POLY1305_SHA256,
]
STREAMS = 4
STREAM_BYTES = 150_000


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def _links(loss: float) -> tuple[LinkConfig, LinkConfig]:
    link = LinkConfig(delay=0.015, loss=loss, seed=7)
    return link, dataclasses.replace(link, seed=8)


def _pair(
    client: SimEndpoint, server: SimEndpoint, c2s: LinkConfig, s2c: LinkConfig, clock: VirtualClock
) -> Pair:
    return Pair(
        client,
        server,
        client_addr=("10.0.0.1", 5000),
        server_addr=("10.0.0.2", 4433),
        c2s=c2s,
        s2c=s2c,
        clock=clock,
    )


def _payloads() -> dict[int, bytes]:
    return {4 * i: os.urandom(STREAM_BYTES) for i in range(STREAMS)}


def _check_echo(payloads: dict[int, bytes], streams: dict[int, bytearray], finished: set[int]) -> None:
    for stream_id, data in payloads.items():
        assert stream_id in finished
        assert hashlib.sha256(streams[stream_id]).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("loss", [0.0, 0.05])
@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_rudp_client_aioquic_server(pki: TestPki, suite: CipherSuite, loss: float) -> None:
    server_cfg = QuicConfiguration(is_client=False, alpn_protocols=ALPN)
    server_cfg.load_cert_chain(str(pki.cert_file), str(pki.key_file))
    server = AioquicPeer(server_cfg, echo=True)
    clock = VirtualClock(START)
    config = Config(alpn=ALPN, cafile=pki.ca_file, server_name="localhost", cipher_suites=[suite])
    conn = QuicConnection.client(config, server_address=("10.0.0.2", 4433), now=clock.now)
    client = RudpPeer(conn)
    c2s, s2c = _links(loss)
    pair = _pair(client, server, c2s, s2c, clock)
    assert pair.drive(until=lambda: client.handshake is not None, max_time=10)
    assert client.handshake is not None and client.handshake.alpn_protocol == "hq-interop"
    assert conn.cipher_suite == suite
    payloads = _payloads()
    for stream_id, data in payloads.items():
        assert conn.open_stream() == stream_id
        client.send(stream_id, data)
    assert pair.drive(until=lambda: set(payloads) <= client.finished, max_time=120)
    _check_echo(payloads, client.streams, client.finished)
    _check_echo(payloads, server.streams, server.finished)
    assert client.terminated is None and server.terminated is None


@pytest.mark.parametrize("loss", [0.0, 0.05])
@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_aioquic_client_rudp_server(pki: TestPki, suite: CipherSuite, loss: float) -> None:
    config = Config(alpn=ALPN, certfile=pki.cert_file, keyfile=pki.key_file)
    endpoint = QuicEndpoint(config, tls_config=config.tls_config(is_client=False))
    server = RudpPeer(endpoint, echo=True)
    client_cfg = QuicConfiguration(
        is_client=True, alpn_protocols=ALPN, server_name="localhost", cipher_suites=[AqSuite(int(suite))]
    )
    client_cfg.load_verify_locations(str(pki.ca_file))
    client = AioquicPeer(client_cfg)
    c2s, s2c = _links(loss)
    clock = VirtualClock(START)
    pair = _pair(client, server, c2s, s2c, clock)
    client.connect(pair.server_addr, pair.now)
    assert pair.drive(
        until=lambda: client.handshake_done_at is not None and server.handshake is not None, max_time=10
    )
    assert server.handshake is not None and server.handshake.alpn_protocol == "hq-interop"
    assert server.conn.cipher_suite == suite
    payloads = _payloads()
    for stream_id, data in payloads.items():
        client.send(stream_id, data)
    assert pair.drive(until=lambda: set(payloads) <= client.finished, max_time=120)
    _check_echo(payloads, client.streams, client.finished)
    _check_echo(payloads, server.streams, server.finished)
    assert client.terminated is None and server.terminated is None


@pytest.mark.parametrize("rudp_is_client", [True, False], ids=["rudp-client", "rudp-server"])
def test_quic_v2_with_aioquic(pki: TestPki, rudp_is_client: bool) -> None:
    from rudp.codec.codes import Version

    clock = VirtualClock(START)
    c2s, s2c = _links(0.0)
    if rudp_is_client:
        server_cfg = QuicConfiguration(
            is_client=False, alpn_protocols=ALPN, supported_versions=[Version.V2, Version.V1]
        )
        server_cfg.load_cert_chain(str(pki.cert_file), str(pki.key_file))
        server: AioquicPeer | RudpPeer = AioquicPeer(server_cfg, echo=True)
        config = Config(alpn=ALPN, cafile=pki.ca_file, server_name="localhost", version=Version.V2)
        client: AioquicPeer | RudpPeer = RudpPeer(
            QuicConnection.client(config, server_address=("10.0.0.2", 4433), now=clock.now)
        )
    else:
        config = Config(alpn=ALPN, certfile=pki.cert_file, keyfile=pki.key_file)
        server = RudpPeer(QuicEndpoint(config, tls_config=config.tls_config(is_client=False)), echo=True)
        client_cfg = QuicConfiguration(
            is_client=True,
            alpn_protocols=ALPN,
            server_name="localhost",
            original_version=Version.V2,
            supported_versions=[Version.V2, Version.V1],
        )
        client_cfg.load_verify_locations(str(pki.ca_file))
        client = AioquicPeer(client_cfg)
    pair = _pair(client, server, c2s, s2c, clock)
    if isinstance(client, AioquicPeer):
        client.connect(pair.server_addr, pair.now)
    assert pair.drive(until=lambda: client.handshake_done_at is not None, max_time=10)
    payload = os.urandom(100_000)
    stream_id = client.conn.open_stream() if isinstance(client, RudpPeer) else 0
    client.send(stream_id, payload)
    assert pair.drive(until=lambda: stream_id in client.finished, max_time=30)
    assert bytes(client.streams[stream_id]) == payload
    rudp_conn = client.conn if isinstance(client, RudpPeer) else server.conn  # type: ignore[union-attr]
    assert rudp_conn.version == Version.V2


@pytest.mark.parametrize("rudp_is_client", [True, False], ids=["rudp-client", "rudp-server"])
def test_compatible_version_negotiation_with_aioquic(pki: TestPki, rudp_is_client: bool) -> None:
    """RFC 9368 / RFC 9369 §4: the client starts in v1 offering v2, the server switches, both end in v2
    (aioquic implements compatible version negotiation on both sides)."""
    from rudp.codec.codes import Version

    clock = VirtualClock(START)
    c2s, s2c = _links(0.0)
    prefer_v2 = (Version.V2, Version.V1)
    if rudp_is_client:
        server_cfg = QuicConfiguration(
            is_client=False, alpn_protocols=ALPN, supported_versions=list(prefer_v2)
        )
        server_cfg.load_cert_chain(str(pki.cert_file), str(pki.key_file))
        server: AioquicPeer | RudpPeer = AioquicPeer(server_cfg, echo=True)
        # aioquic's server takes the first version of the client's list: the client must prefer v2.
        config = Config(alpn=ALPN, cafile=pki.ca_file, server_name="localhost", versions=prefer_v2)
        client: AioquicPeer | RudpPeer = RudpPeer(
            QuicConnection.client(config, server_address=("10.0.0.2", 4433), now=clock.now)
        )
    else:
        config = Config(alpn=ALPN, certfile=pki.cert_file, keyfile=pki.key_file, versions=prefer_v2)
        server = RudpPeer(QuicEndpoint(config, tls_config=config.tls_config(is_client=False)), echo=True)
        client_cfg = QuicConfiguration(
            is_client=True,
            alpn_protocols=ALPN,
            server_name="localhost",
            original_version=Version.V1,
            supported_versions=list(prefer_v2),
        )
        client_cfg.load_verify_locations(str(pki.ca_file))
        client = AioquicPeer(client_cfg)
    first_c2s: list[int] = []

    def record(data: bytes, _index: int) -> bool:
        if data[0] & 0x80:  # long header: its Version field
            first_c2s.append(int.from_bytes(data[1:5]))
        return False  # keep every datagram

    c2s = dataclasses.replace(c2s, drop_filter=record)
    pair = _pair(client, server, c2s, s2c, clock)
    if isinstance(client, AioquicPeer):
        client.connect(pair.server_addr, pair.now)
    assert pair.drive(until=lambda: client.handshake_done_at is not None, max_time=10)
    payload = os.urandom(100_000)
    stream_id = client.conn.open_stream() if isinstance(client, RudpPeer) else 0
    client.send(stream_id, payload)
    assert pair.drive(until=lambda: stream_id in client.finished, max_time=30)
    assert bytes(client.streams[stream_id]) == payload
    assert first_c2s[0] == Version.V1  # the client's first flight is v1
    rudp_conn = client.conn if isinstance(client, RudpPeer) else server.conn  # type: ignore[union-attr]
    assert rudp_conn.version == Version.V2
    aioquic_conn = server.conn if isinstance(server, AioquicPeer) else client.conn  # type: ignore[union-attr]
    assert aioquic_conn._version == Version.V2
