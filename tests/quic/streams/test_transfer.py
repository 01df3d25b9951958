"""Sender-to-receiver loops through a lossy, reordering, duplicating fake link."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rudp.codec.frames import Stream
from rudp.errors import StreamLimitReached
from rudp.quic.events import StreamOpened, StreamReadable, StreamWritable
from rudp.quic.streams import StreamManager
from rudp.quic.streams.ids import is_bidirectional

from .helpers import Link, manager, params


def _payloads(count: int, seed: int, max_size: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(0, max_size)) for _ in range(count)]


def _run_transfer(
    link: Link,
    sender: StreamManager,
    receiver: StreamManager,
    payloads: list[bytes],
    *,
    read_size: int = -1,
    max_steps: int = 20_000,
    on_step: object = None,
) -> dict[int, bytearray]:
    stream_ids: list[int] = []
    offsets: dict[int, int] = {}
    finished: set[int] = set()
    received: dict[int, bytearray] = {}
    done: set[int] = set()
    for _ in range(max_steps):
        while len(stream_ids) < len(payloads):  # open as many streams as the peer allows
            try:
                stream_ids.append(sender.open_stream(bidirectional=len(stream_ids) % 2 == 0))
            except StreamLimitReached:
                break
            offsets[stream_ids[-1]] = 0
        for stream_id, payload in zip(stream_ids, payloads, strict=False):
            if stream_id in finished:
                continue
            offset = offsets[stream_id]
            accepted = sender.send(stream_id, payload[offset:], fin=True)
            offsets[stream_id] = offset + accepted
            if offset + accepted == len(payload):
                finished.add(stream_id)
        link.step()
        for event in list(receiver.events):
            if isinstance(event, StreamOpened):
                received.setdefault(event.stream_id, bytearray())
        receiver.events.clear()
        sender.events.clear()
        for stream_id, buffer in received.items():
            if stream_id not in done:
                buffer += receiver.read(stream_id, read_size)
                if receiver.at_eof(stream_id):
                    done.add(stream_id)
                    if is_bidirectional(stream_id):
                        receiver.send(stream_id, b"", fin=True)  # finish our side so the stream closes
        for stream_id in stream_ids:
            if is_bidirectional(stream_id):
                assert sender.read(stream_id) == b""
        if callable(on_step):
            on_step()
        if len(done) == len(payloads) and not sender.has_data_to_send() and not receiver.has_data_to_send():
            break
    else:
        raise AssertionError(f"transfer did not finish: {len(done)}/{len(payloads)} streams")
    for stream_id, payload in zip(stream_ids, payloads, strict=True):
        assert hashlib.sha256(received[stream_id]).digest() == hashlib.sha256(payload).digest()
    return received


@pytest.mark.parametrize("loss", [0.0, 0.05, 0.2])
def test_many_streams_intact_under_loss(loss: float) -> None:
    payloads = _payloads(30, seed=7, max_size=20_000)
    local = params(max_data=64_000, stream_data=8_000, streams_bidi=8, streams_uni=8)
    client = manager(is_client=True, local=local, peer=local, send_buffer_bytes=4_000)
    server = manager(is_client=False, local=local, peer=local, send_buffer_bytes=4_000)
    link = Link(client, server, loss=loss, duplicate=0.05, seed=11)
    _run_transfer(link, client, server, payloads)
    # every peer stream was closed and credited back: the server keeps granting new ones
    assert server.open_streams == 0
    assert client.open_streams == 0
    assert client.send_buffered_bytes == 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    loss=st.floats(0.0, 0.3),
    capacity=st.integers(60, 1500),
    read_size=st.sampled_from([-1, 1, 100, 5000]),
)
def test_random_links_deliver_intact(seed: int, loss: float, capacity: int, read_size: int) -> None:
    payloads = _payloads(6, seed=seed, max_size=6_000)
    local = params(max_data=20_000, stream_data=3_000, streams_bidi=6, streams_uni=6)
    client = manager(is_client=True, local=local, peer=local, send_buffer_bytes=2_500)
    server = manager(is_client=False, local=local, peer=local, send_buffer_bytes=2_500)
    link = Link(client, server, loss=loss, duplicate=0.1, seed=seed, capacity=capacity)
    _run_transfer(link, client, server, payloads, read_size=read_size)


def test_slow_reader_bounds_memory_on_both_sides() -> None:
    budget, stream_window, conn_window = 5_000, 4_000, 6_000
    local = params(max_data=conn_window, stream_data=stream_window)
    client = manager(
        is_client=True, local=local, peer=local, send_buffer_bytes=budget,
        max_stream_window=stream_window, max_connection_window=conn_window,
    )  # fmt: skip
    server = manager(
        is_client=False, local=local, peer=local, send_buffer_bytes=budget,
        max_stream_window=stream_window, max_connection_window=conn_window,
    )  # fmt: skip
    link = Link(client, server, loss=0.05, seed=3)
    peaks = {"send": 0, "recv": 0}

    def check() -> None:
        send = client.send_buffered_bytes
        recv = server.recv_buffered_bytes
        assert send <= 3 * budget  # per stream budget, three streams
        assert recv <= conn_window
        peaks["send"] = max(peaks["send"], send)
        peaks["recv"] = max(peaks["recv"], recv)

    payloads = [b"s" * 60_000, b"t" * 40_000, b"u" * 30_000]
    _run_transfer(link, client, server, payloads, read_size=200, on_step=check)
    assert peaks["send"] > budget  # the sender really was ahead of the reader
    assert peaks["recv"] > stream_window // 2


def test_sender_blocked_by_slow_reader_gets_writable() -> None:
    local = params(max_data=10_000, stream_data=1_000)
    client = manager(
        is_client=True, local=local, peer=local, send_buffer_bytes=3_000, max_stream_window=1_000
    )
    server = manager(is_client=False, local=local, peer=local, max_stream_window=1_000)
    link = Link(client, server)
    stream_id = client.open_stream()
    assert client.send(stream_id, b"x" * 10_000) == 3_000
    for _ in range(10):
        link.step()
    assert client.send_budget(stream_id) == 1_000  # 1000 acked (the stream window), 2000 waiting
    assert not any(isinstance(e, StreamWritable) for e in client.events)  # less than half free
    assert server.recv_buffered_bytes == 1_000
    assert StreamReadable(stream_id) in server.events
    server.read(stream_id, 400)
    for _ in range(10):
        link.step()
    assert client.send_budget(stream_id) == 1_000  # no credit returned before half is consumed
    server.read(stream_id, 200)  # 600 consumed: past half the window
    for _ in range(10):
        link.step()
    assert client.send_budget(stream_id) == 1_600
    assert StreamWritable(stream_id) in client.events


def test_out_of_order_gap_on_one_stream_does_not_block_another() -> None:
    server = manager(is_client=False, peer=params())
    server.on_stream(Stream(0, 100, b"later"))  # stream 0 has a gap
    server.on_stream(Stream(4, 0, b"ready", fin=True))
    assert server.read(4) == b"ready"
    assert server.at_eof(4)
    assert server.read(0) == b""
    assert not server.at_eof(0)
