"""The receive fast path for STREAM frames given as fields (``on_stream_data``), including the frame
with the FIN (``RecvStream.take_final``) and a stream's first frame: the same events, states, credit,
frames to send and errors as the general path (``on_stream``, RFC 9000 §3.2, §4.1, §4.5)."""

from __future__ import annotations

import pytest

from rudp.codec.frames import Stream
from rudp.errors import TransportError
from rudp.quic.streams import StreamManager

from .helpers import manager, params, write_packet

# (stream ID, offset, data, FIN) to receive, ("read", stream ID, max bytes) or ("stop", stream ID).
Step = tuple[object, ...]

SCENARIOS: dict[str, list[Step]] = {
    "request in one frame": [(0, 0, b"GET 100\n", True), ("read", 0, -1), ("read", 0, -1)],
    "request in one frame, read before more": [(0, 0, b"GET", True), ("read", 0, 1), ("read", 0, -1)],
    "FIN after data": [(0, 0, b"abc", False), (0, 3, b"def", True), ("read", 0, -1)],
    "FIN alone after everything was read": [(0, 0, b"abc", False), ("read", 0, -1), (0, 3, b"", True)],
    "FIN before a hole is filled": [(0, 3, b"def", True), (0, 0, b"abc", False), ("read", 0, -1)],
    "FIN repeated": [(0, 0, b"abc", True), (0, 0, b"abc", True), ("read", 0, -1), (0, 0, b"abc", True)],
    "FIN below received data": [(0, 0, b"abcdef", False), (0, 0, b"abc", True)],
    "FIN past the stream limit": [(0, 0, b"x" * 1001, True)],
    "FIN past the connection limit": [(0, 0, b"x" * 900, True), (4, 0, b"y" * 900, True)],
    "final size changed": [(0, 0, b"abc", True), (0, 0, b"abcd", True)],
    "FIN after STOP_SENDING": [(0, 0, b"abc", False), ("stop", 0), (0, 3, b"def", True)],
    "MAX_STREAM_DATA due, then the FIN": [
        (0, 0, b"x" * 600, False), ("read", 0, -1), (0, 600, b"y", True), ("read", 0, -1)
    ],
    "a later stream opens the earlier ones": [(8, 0, b"c", True), (0, 0, b"a", True), ("read", 8, -1)],
    "a closed stream": [(0, 0, b"a", True), ("read", 0, -1), (0, 0, b"a", True)],
    "a unidirectional stream": [(2, 0, b"u", True), ("read", 2, -1)],
}


def _snapshot(target: StreamManager) -> object:
    streams = {
        sid: (e.recv.state, e.recv.highest, e.recv.final_size, e.recv.discarding)
        for sid, e in target._streams.items()
        if e.recv is not None
    }
    return streams, target._conn_recv.received, target._conn_recv.consumed, target.has_data_to_send()


def _run(steps: list[Step], *, fields: bool) -> list[object]:
    target = manager(
        is_client=False, local=params(stream_data=1000, max_data=1500, streams_uni=4), peer=params()
    )
    seen: list[object] = []
    for step in steps:
        try:
            if step[0] == "read":
                seen.append(target.read(int(step[1]), int(step[2])))  # type: ignore[call-overload]
            elif step[0] == "stop":
                target.stop_sending(int(step[1]), 5)  # type: ignore[call-overload]
            else:
                sid, offset, data, fin = step
                assert isinstance(sid, int) and isinstance(offset, int) and isinstance(data, bytes)
                if fields:
                    target.on_stream_data(sid, offset, memoryview(data), 0x0E | (0x01 if fin else 0))
                else:
                    target.on_stream(Stream(sid, offset, data, bool(fin)))
        except TransportError as error:
            seen.append(("error", error.code))  # (the frame types differ: no OFF bit in one)
            break
        seen.append(list(target.events))
        target.events.clear()
        seen.append(_snapshot(target))
    seen.append([frame for frame, _ in write_packet(target).frames])
    return seen


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fields_path_matches_the_frame_path(name: str) -> None:
    assert _run(SCENARIOS[name], fields=True) == _run(SCENARIOS[name], fields=False)


def test_the_one_frame_request_is_readable_and_the_stream_closes_after_the_read() -> None:
    seen = _run(SCENARIOS["request in one frame"], fields=True)
    assert seen[-1] == []  # nothing to send for a tiny request (MAX_STREAMS waits: 1 of 10 used)
    assert any(isinstance(item, bytes) and item == b"GET 100\n" for item in seen)
