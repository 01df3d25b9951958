"""Acknowledged STREAM frames are applied once per ACK frame (issue 13): loss recovery hands the
frames of the packets one ACK acknowledges to the stream manager in one call (``Batched`` handlers,
``StreamOutput.deliver_acked``), which applies each run of contiguous ranges of a stream as one
range. The outcome must be that of the frames delivered one by one, as a direct call of each
handler does: the same events, stream states, send budgets and re-sent bytes."""

from __future__ import annotations

import random

import pytest

from rudp.codec.frames import Frame
from rudp.quic.delivery import Batched, DeliveryHandler
from rudp.quic.recovery import LossRecovery
from rudp.quic.sent import PacketSpace, SentPacket
from rudp.quic.streams import StreamManager

from .helpers import manager, params, write_packet


def _snapshot(target: StreamManager) -> object:
    sends = []
    for stream_id, entry in sorted(target._streams.items()):
        send = entry.send
        if send is not None:
            buffer = send.buffer
            held = (buffer.acked_offset, buffer.buffered_bytes, buffer.has_lost)
            sends.append((stream_id, send.state, held, send.write_blocked))
    return list(target.events), sends, target.open_streams


def _pair() -> tuple[list[StreamManager], list[int]]:
    pair = []
    for _ in range(2):
        client = manager(is_client=True, peer=params(stream_data=1 << 20), send_buffer_bytes=6000)
        streams = [client.open_stream() for _ in range(3)]
        pair.append(client)
    return pair, streams


@pytest.mark.parametrize("seed", range(12))
def test_acks_batched_per_ack_frame_match_acks_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    (plain, batched), streams = _pair()
    written = dict.fromkeys(streams, 0)
    outstanding: list[list[list[tuple[Frame, DeliveryHandler | None]]]] = [[], []]
    others: list[int] = []  # a handler of another kind on the same packets: still called per packet
    pn = acks = 0
    for _ in range(60):
        action = rng.random()
        if action < 0.3:
            stream_id = rng.choice(streams)
            if written[stream_id] >= 0:
                data = bytes(rng.randrange(1, 4000))
                fin = rng.random() < 0.1
                sizes = [target.send(stream_id, data, fin=fin) for target in (plain, batched)]
                assert sizes[0] == sizes[1]
                written[stream_id] = -1 if fin and sizes[0] == len(data) else written[stream_id] + sizes[0]
        elif action < 0.7:
            capacity = rng.choice([300, 700, 1200])
            sinks = [write_packet(target, capacity) for target in (plain, batched)]
            assert sinks[0].frames == [] or [f for f, _ in sinks[0].frames] == [f for f, _ in sinks[1].frames]
            if sinks[0].frames:
                for side in (0, 1):
                    outstanding[side].append(sinks[side].frames)
        elif outstanding[0]:
            # An ACK of some outstanding packets (any of them, in packet order), others lost.
            count = len(outstanding[0])
            chosen = sorted(rng.sample(range(count), rng.randrange(1, count + 1)))
            lost = [i for i in range(min(chosen)) if rng.random() < 0.2]
            for index in lost:
                for side in (0, 1):
                    for _, handler in outstanding[side][index]:
                        assert handler is not None
                        handler(False)
            # plain: every handler called directly; batched: through loss recovery's ACK delivery.
            for index in chosen:
                for _, handler in outstanding[0][index]:
                    assert handler is not None
                    handler(True)
            packets = []
            for index in chosen:
                handlers: list[DeliveryHandler] = [handler for _, handler in outstanding[1][index] if handler]
                assert all(type(handler) is Batched for handler in handlers)
                number = pn
                handlers.append(lambda acked, number=number: others.append(number))
                packets.append(SentPacket(pn, PacketSpace.APPLICATION, 0.0, 1200, True, True, handlers))
                pn += 1
            LossRecovery._deliver_acked(packets)
            acks += 1
            assert others[-len(packets):] == [packet.packet_number for packet in packets]
            for side in (0, 1):
                outstanding[side] = [
                    frames for i, frames in enumerate(outstanding[side]) if i not in chosen and i not in lost
                ]
        assert _snapshot(plain) == _snapshot(batched)
    assert acks > 5


def test_a_run_of_contiguous_ranges_is_one_acknowledgment() -> None:
    # A bulk transfer's ACK: the frames of one stream in order, merged into one range (one call of
    # the stream's acknowledgment), the FIN included; a gap or another stream starts a new run.
    client = manager(is_client=True, peer=params(stream_data=1 << 20), send_buffer_bytes=1 << 16)
    first, second = client.open_stream(), client.open_stream()
    client.send(first, b"a" * 5000, fin=True)
    client.send(second, b"b" * 3000)
    calls: list[tuple[int, int, int, bool, bool]] = []
    original = client._on_stream_delivered

    def spy(stream_id: int, start: int, stop: int, fin: bool, acked: bool) -> None:
        calls.append((stream_id, start, stop, fin, acked))
        original(stream_id, start, stop, fin, acked)

    client._on_stream_delivered = spy  # type: ignore[method-assign]
    client.deliver_acked([(first, 0, 1000, False), (first, 1000, 2200, False), (first, 2200, 5000, True)])
    assert calls == [(first, 0, 5000, True, True)]
    calls.clear()
    client.deliver_acked([(second, 0, 1000, False), (second, 2000, 3000, False), (first, 5000, 5000, True)])
    assert calls == [(second, 0, 1000, False, True), (second, 2000, 3000, False, True),
                     (first, 5000, 5000, True, True)]
