"""Automatic key updates (RFC 9001 §6) against aioquic, in both roles, in the middle of a transfer:
rudp updates its keys every ``Config.key_update_interval`` packets, aioquic follows each update (its
qlog records them as remote updates), an update aioquic starts itself is followed by rudp, and every
byte is echoed back intact."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.logger import QuicLogger
from aioquic.tls import Epoch

from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.testing import LinkConfig, VirtualClock
from rudp.testing.certs import TestPki
from tests.quic.test_aioquic_interop import ALPN, START, _check_echo, _pair, _payloads
from tests.quic.test_qlog_qvis import read_records
from tests.support.peers import AioquicPeer, RudpPeer

INTERVAL = 100
LINK = LinkConfig(delay=0.01, seed=7, bandwidth=20e6, queue_bytes=150_000)


def _aioquic_updates(logger: QuicLogger) -> Counter[str]:
    """aioquic's 1-RTT key updates by trigger ("local_update", "remote_update")."""
    return Counter(
        event["data"]["trigger"]
        for trace in logger.to_dict()["traces"]
        for event in trace["events"]
        if event["name"] == "security:key_updated"
        and event["data"]["key_type"] == "client_1rtt_secret"
        and event["data"]["trigger"] != "tls"
    )


def _rudp_updates(qlog_dir: Path) -> Counter[str]:
    (path,) = qlog_dir.glob("*.sqlog")
    return Counter(
        event["data"]["trigger"]
        for event in read_records(path)[1:]
        if event["name"] == "security:key_updated" and event["data"]["key_type"] == "client_1rtt_secret"
    )


@pytest.mark.parametrize("rudp_is_client", [True, False], ids=["rudp-client", "rudp-server"])
def test_automatic_key_updates_with_aioquic(pki: TestPki, tmp_path: Path, rudp_is_client: bool) -> None:
    clock = VirtualClock(START)
    c2s, s2c = LINK, dataclasses.replace(LINK, seed=8)
    logger = QuicLogger()
    options = {"alpn": ALPN, "key_update_interval": INTERVAL, "qlog_dir": tmp_path}
    aioquic: AioquicPeer
    rudp: RudpPeer
    if rudp_is_client:
        server_cfg = QuicConfiguration(is_client=False, alpn_protocols=ALPN, quic_logger=logger)
        server_cfg.load_cert_chain(str(pki.cert_file), str(pki.key_file))
        aioquic = AioquicPeer(server_cfg, echo=True)
        config = Config(cafile=pki.ca_file, server_name="localhost", **options)  # type: ignore[arg-type]
        rudp = RudpPeer(QuicConnection.client(config, server_address=("10.0.0.2", 4433), now=clock.now))
        pair = _pair(rudp, aioquic, c2s, s2c, clock)
        assert pair.drive(until=lambda: rudp.handshake is not None, max_time=10)
        sender: AioquicPeer | RudpPeer = rudp
    else:
        config = Config(certfile=pki.cert_file, keyfile=pki.key_file, **options)  # type: ignore[arg-type]
        endpoint = QuicEndpoint(config, tls_config=config.tls_config(is_client=False))
        rudp = RudpPeer(endpoint, echo=True)
        client_cfg = QuicConfiguration(
            is_client=True, alpn_protocols=ALPN, server_name="localhost", quic_logger=logger
        )
        client_cfg.load_verify_locations(str(pki.ca_file))
        aioquic = AioquicPeer(client_cfg)
        pair = _pair(aioquic, rudp, c2s, s2c, clock)
        aioquic.connect(pair.server_addr, pair.now)
        assert pair.drive(
            until=lambda: aioquic.handshake_done_at is not None and rudp.handshake is not None, max_time=10
        )
        sender = aioquic
    payloads = {stream_id: data * 3 for stream_id, data in _payloads().items()}  # 4 x 450 kB each way
    for stream_id, data in payloads.items():
        if rudp_is_client:
            assert rudp.conn.open_stream() == stream_id
        sender.send(stream_id, data)
    # Mid-transfer, once aioquic followed rudp's first automatic update (and its ACK told rudp so),
    # aioquic starts an update of its own, which rudp follows.
    aq_conn = aioquic.conn
    assert aq_conn is not None
    assert pair.drive(until=lambda: aq_conn._cryptos[Epoch.ONE_RTT].recv.key_phase == 1, max_time=10)
    pair.run_for(2 * LINK.delay)
    assert rudp.conn.stats.key_updates == 1
    aq_conn.request_key_update()
    finished = sender.finished
    assert pair.drive(until=lambda: set(payloads) <= finished, max_time=120)
    pair.run_for(0.5)
    # The last automatic update may have gone out only in ACK-only packets, which are never sent
    # again when lost: a PING (retransmitted until acknowledged) carries the current phase to aioquic.
    rudp.conn.ping()
    assert pair.drive(
        until=lambda: sum(_aioquic_updates(logger).values()) == rudp.conn.stats.key_updates, max_time=5
    )
    _check_echo(payloads, aioquic.streams, aioquic.finished)
    _check_echo(payloads, rudp.streams, rudp.finished)
    assert aioquic.terminated is None and rudp.terminated is None
    stats = rudp.conn.stats
    assert stats.forged_packets == 0  # no packet of aioquic's failed to open across the updates

    ours, theirs = _rudp_updates(tmp_path), _aioquic_updates(logger)
    # rudp started several updates; aioquic followed each one, and rudp followed aioquic's.
    assert ours["local_update"] >= 2
    assert theirs["remote_update"] == ours["local_update"]
    assert theirs["local_update"] == ours["remote_update"] == 1
    assert stats.key_updates == sum(ours.values()) == sum(theirs.values())
