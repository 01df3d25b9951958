"""Test doubles for the streams subsystem: a fixed-capacity frame sink and a lossy two-way link."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TypeVar

from rudp.codec.frame_codec import frame_size
from rudp.codec.frames import (
    DataBlocked,
    Frame,
    MaxData,
    MaxStreamData,
    MaxStreams,
    ResetStream,
    StopSending,
    Stream,
    StreamDataBlocked,
    StreamsBlocked,
)
from rudp.codec.transport_params import TransportParameters
from rudp.quic.delivery import DeliveryHandler
from rudp.quic.streams import StreamManager

F = TypeVar("F")


class FakeSink:
    """Collects frames up to a fixed byte capacity, like one packet being assembled."""

    def __init__(self, capacity: int = 1200) -> None:
        self._remaining = capacity
        self.frames: list[tuple[Frame, DeliveryHandler | None]] = []

    @property
    def remaining(self) -> int:
        return self._remaining

    def push_frame(self, frame: Frame, handler: DeliveryHandler | None = None) -> None:
        size = frame_size(frame)
        if size > self._remaining:
            raise ValueError(f"frame of {size} bytes does not fit in {self._remaining}")
        self._remaining -= size
        self.frames.append((frame, handler))

    def push_stream(
        self, stream_id: int, offset: int, data: bytes, fin: bool, handler: DeliveryHandler
    ) -> None:
        self.push_frame(Stream(stream_id, offset, data, fin), handler)

    def of_type(self, kind: type[F]) -> list[F]:
        return [frame for frame, _ in self.frames if isinstance(frame, kind)]


def params(
    *,
    max_data: int = 1 << 20,
    stream_data: int = 1 << 18,
    streams_bidi: int = 10,
    streams_uni: int = 10,
) -> TransportParameters:
    return TransportParameters(
        initial_max_data=max_data,
        initial_max_stream_data_bidi_local=stream_data,
        initial_max_stream_data_bidi_remote=stream_data,
        initial_max_stream_data_uni=stream_data,
        initial_max_streams_bidi=streams_bidi,
        initial_max_streams_uni=streams_uni,
    )


def manager(
    *,
    is_client: bool,
    local: TransportParameters | None = None,
    peer: TransportParameters | None = None,
    max_stream_window: int = 1 << 20,
    max_connection_window: int = 1 << 22,
    send_buffer_bytes: int = 1 << 16,
) -> StreamManager:
    result = StreamManager(
        is_client=is_client,
        local=local or params(),
        max_stream_window=max_stream_window,
        max_connection_window=max_connection_window,
        send_buffer_bytes=send_buffer_bytes,
    )
    if peer is not None:
        result.apply_peer_parameters(peer)
    return result


def dispatch(target: StreamManager, frame: Frame) -> None:
    """Feed one frame to the manager's matching handler, as the connection would."""
    match frame:
        case Stream():
            target.on_stream(frame)
        case ResetStream():
            target.on_reset_stream(frame)
        case StopSending():
            target.on_stop_sending(frame)
        case MaxData():
            target.on_max_data(frame)
        case MaxStreamData():
            target.on_max_stream_data(frame)
        case MaxStreams():
            target.on_max_streams(frame)
        case DataBlocked():
            target.on_data_blocked(frame)
        case StreamDataBlocked():
            target.on_stream_data_blocked(frame)
        case StreamsBlocked():
            target.on_streams_blocked(frame)
        case _:
            raise AssertionError(f"unexpected frame {frame!r}")


def write_packet(source: StreamManager, capacity: int = 1200, now: float = 0.0, rtt: float = 0.1) -> FakeSink:
    sink = FakeSink(capacity)
    source.write_frames(sink, now, rtt)
    return sink


@dataclass
class Link:
    """Two managers joined by a lossy, reordering, duplicating link driven in steps.

    A step is half a round trip. Each step, each side writes up to ``burst`` packets; packets are
    dropped with probability ``loss``, shuffled, some duplicated, delivered, and their frames' handlers
    called (acknowledged or lost).
    """

    a: StreamManager
    b: StreamManager
    loss: float = 0.0
    duplicate: float = 0.0
    seed: int = 0
    capacity: int = 1200
    burst: int = 8
    now: float = 0.0
    rtt: float = 0.05
    sent_frames: list[Frame] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def step(self) -> bool:
        """Run one round; return True if any packet was sent."""
        wire: list[tuple[StreamManager, FakeSink, bool]] = []
        for source, target in ((self.a, self.b), (self.b, self.a)):
            for _ in range(self.burst):
                if not source.has_data_to_send():
                    break
                sink = write_packet(source, self.capacity, self.now, self.rtt)
                if not sink.frames:
                    raise AssertionError("has_data_to_send() was True but nothing was written")
                self.sent_frames.extend(frame for frame, _ in sink.frames)
                wire.append((target, sink, self.rng.random() >= self.loss))
        self.rng.shuffle(wire)
        for target, sink, delivered in wire:
            if delivered:
                copies = 2 if self.rng.random() < self.duplicate else 1
                for _ in range(copies):
                    for frame, _handler in sink.frames:
                        dispatch(target, frame)
        for _target, sink, delivered in wire:
            for _frame, handler in sink.frames:
                if handler is not None:
                    handler(delivered)
        self.now += self.rtt / 2  # a step is one one-way trip
        return bool(wire)
