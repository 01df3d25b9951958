"""Hostile input on the full receive path: authenticated 1-RTT packets (forged with the key log) carrying
random or mutated frame bytes never raise out of the connection; the connection either ignores them or
closes with a QUIC transport error code."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rudp.codec import frames as f
from rudp.codec.frame_codec import encode_frames
from rudp.crypto.protection import min_payload_length
from rudp.crypto.suites import CipherSuite
from rudp.errors import TransportErrorCode
from rudp.quic.state import State
from rudp.testing.certs import TestPki
from tests.strategies import frames_with_length
from tests.support.sim import CLIENT_ADDR, SERVER_ADDR, Sim, Sniffer, make_sim

KNOWN_CODES = {int(code) for code in TransportErrorCode} | set(range(0x100, 0x200))  # + CRYPTO_ERROR range


def _keyed_sim(pki: TestPki, directory: Path) -> tuple[Sim, Sniffer]:
    keylog = Path(tempfile.mkstemp(dir=directory, suffix=".log")[1])
    sim = make_sim(pki, client={"secrets_log": keylog, "cipher_suites": [CipherSuite.AES_128_GCM_SHA256]})
    sim.handshake()
    return sim, Sniffer(keylog, "CLIENT_TRAFFIC_SECRET_0", CipherSuite.AES_128_GCM_SHA256)


@pytest.fixture
def keyed(pki: TestPki, tmp_path: Path) -> tuple[Sim, Sniffer]:
    return _keyed_sim(pki, tmp_path)


def _inject_raw(sim: Sim, sniffer: Sniffer, payload: bytes, packet_number: int) -> None:
    from rudp.codec.packet import encode_short_header

    server = sim.server.conn
    header = encode_short_header(
        server.local_cids()[0], packet_number=packet_number & 0xFFFFFFFF, pn_length=4
    )
    payload += bytes(max(0, min_payload_length(4) - len(payload)))
    packet = sniffer.protection.protect(header, payload, packet_number, len(header) - 4, 4)
    sim.server.receive_datagram(packet, CLIENT_ADDR, sim.clock.now)


def _check(sim: Sim) -> None:
    server = sim.server.conn
    server.datagrams_to_send(sim.clock.now)  # must not raise either
    cause = server.close_cause
    if cause is None:
        return
    if cause.by_peer:  # the forged packet carried a CONNECTION_CLOSE of its own: we drain
        assert server.state in (State.DRAINING, State.CLOSED)
    else:  # we closed because of the input: with a QUIC transport error code
        assert cause.code in KNOWN_CODES and not cause.application
        assert server.state in (State.CLOSING, State.CLOSED)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(min_size=1, max_size=300))
def test_random_frame_bytes(pki: TestPki, tmp_path: Path, payload: bytes) -> None:
    sim, sniffer = _keyed_sim(pki, tmp_path)  # a fresh connection for every example
    _inject_raw(sim, sniffer, payload, 10_000 + len(payload))
    _check(sim)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(frames_with_length, min_size=1, max_size=6), flip=st.integers(0, 10_000))
def test_valid_then_mutated_frames(pki: TestPki, tmp_path: Path, frames: list[f.Frame], flip: int) -> None:
    sim, sniffer = _keyed_sim(pki, tmp_path)
    payload = bytearray(encode_frames(frames))
    payload[flip % len(payload)] ^= 0x5A
    _inject_raw(sim, sniffer, bytes(payload), 20_000 + flip)
    _check(sim)


def test_garbage_after_a_valid_packet_in_one_datagram(keyed: tuple[Sim, Sniffer]) -> None:
    sim, sniffer = keyed
    server = sim.server.conn
    packet = sniffer.forge(server.local_cids()[0], 30_000, [f.Ping()])
    sim.server.receive_datagram(packet + os.urandom(50), CLIENT_ADDR, sim.clock.now)
    _check(sim)
    assert server.close_cause is None  # the trailing garbage fails authentication and is dropped


def test_malformed_frames_in_an_authenticated_packet_close_the_connection(keyed: tuple[Sim, Sniffer]) -> None:
    # RFC 9000 §12.4: an unknown frame type is a FRAME_ENCODING_ERROR (it is not dropped like a packet
    # that fails authentication).
    sim, sniffer = keyed
    _inject_raw(sim, sniffer, bytes([0x21, 0, 0, 0]), 40_000)
    cause = sim.server.conn.close_cause
    assert cause is not None and cause.code == TransportErrorCode.FRAME_ENCODING_ERROR
    assert cause.frame_type == 0x21
    assert sim.pair.drive(until=lambda: sim.client.terminated is not None, max_time=2)
    assert (
        sim.client.terminated is not None
        and sim.client.terminated.code == TransportErrorCode.FRAME_ENCODING_ERROR
    )


def test_optimistic_ack_of_a_skipped_packet_number_is_caught(
    keyed: tuple[Sim, Sniffer], tmp_path: Path
) -> None:
    # RFC 9000 §21.4: rudp skips a packet number now and then; a peer acknowledging one of those claims
    # to have received a packet that never existed (an optimistic ACK) and the connection is closed.
    sim, client_sniffer = keyed
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, os.urandom(1_500_000))
    seen: list[int] = []

    def record(datagram: bytes, index: int) -> bool:
        if client_sniffer.frames(datagram) is not None:
            seen.append(client_sniffer.largest)
        return False

    sim.pair.c2s.update(drop_filter=record)
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=30)
    numbers = sorted(set(seen))
    skipped = [n for n in range(numbers[0], numbers[-1]) if n not in set(numbers)]
    assert skipped, "the client skipped no packet number in ~1100 packets"

    keylog = next(p for p in tmp_path.iterdir() if p.suffix == ".log")
    server_sniffer = Sniffer(keylog, "SERVER_TRAFFIC_SECRET_0", CipherSuite.AES_128_GCM_SHA256)
    # The gaps also hold PMTU probes the link dropped (too large); acknowledge every gap at once.
    ranges: list[tuple[int, int]] = []
    for number in sorted(skipped, reverse=True):
        if ranges and ranges[-1][0] == number + 1:
            ranges[-1] = (number, ranges[-1][1])
        else:
            ranges.append((number, number))
    spaced = tuple(r for i, r in enumerate(ranges) if i == 0 or ranges[i - 1][0] - r[1] >= 2)
    forged = server_sniffer.forge(sim.conn.local_cids()[0], 50_000, [f.Ack(ranges=spaced)])
    sim.conn.receive_datagram(forged, SERVER_ADDR, sim.clock.now)
    cause = sim.conn.close_cause
    assert cause is not None and cause.code == TransportErrorCode.PROTOCOL_VIOLATION and not cause.by_peer
