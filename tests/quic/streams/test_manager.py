from __future__ import annotations

import itertools

import pytest

from rudp.codec.frames import (
    DataBlocked,
    MaxData,
    MaxStreamData,
    MaxStreams,
    ResetStream,
    StopSending,
    Stream,
    StreamDataBlocked,
    StreamsBlocked,
)
from rudp.errors import StreamLimitReached, StreamStateError, TransportError, TransportErrorCode
from rudp.quic.events import (
    StopSendingReceived,
    StreamOpened,
    StreamReadable,
    StreamReset,
    StreamsAvailable,
    StreamWritable,
)
from rudp.quic.streams import RecvState, SendState, StreamManager

from .helpers import FakeSink, Link, manager, params, write_packet

E = TransportErrorCode


def _code(call: object) -> int:
    with pytest.raises(TransportError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code


def _server(**kwargs: object) -> StreamManager:
    return manager(is_client=False, peer=params(), **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- opening and stream limits


def test_open_stream_ids_follow_role() -> None:
    client = manager(is_client=True, peer=params())
    server = manager(is_client=False, peer=params())
    assert [client.open_stream() for _ in range(3)] == [0, 4, 8]
    assert [client.open_stream(bidirectional=False) for _ in range(2)] == [2, 6]
    assert [server.open_stream() for _ in range(2)] == [1, 5]
    assert server.open_stream(bidirectional=False) == 3


def test_open_stream_limit_then_streams_available() -> None:
    client = manager(is_client=True, peer=params(streams_bidi=2, streams_uni=0))
    client.open_stream()
    client.open_stream()
    with pytest.raises(StreamLimitReached):
        client.open_stream()
    with pytest.raises(StreamLimitReached):
        client.open_stream(bidirectional=False)
    sink = write_packet(client)
    assert sorted(sink.of_type(StreamsBlocked), key=lambda f: f.bidirectional) == [
        StreamsBlocked(False, 0),
        StreamsBlocked(True, 2),
    ]
    with pytest.raises(StreamLimitReached):
        client.open_stream()
    assert write_packet(client).frames == []  # once per limit value
    client.on_max_streams(MaxStreams(True, 1))  # smaller: ignored
    assert not client.events
    assert client.opener_blocked
    client.on_max_streams(MaxStreams(True, 3))
    assert list(client.events) == [StreamsAvailable(True)]
    assert client.opener_blocked  # the unidirectional opener still waits
    assert client.open_stream() == 8
    client.on_max_streams(MaxStreams(False, 1))
    assert not client.opener_blocked


def test_peer_stream_beyond_limit_is_stream_limit_error() -> None:
    server = manager(is_client=False, local=params(streams_bidi=2, streams_uni=1), peer=params())
    server.on_stream(Stream(4, 0, b"x"))  # index 1: fine
    assert _code(lambda: server.on_stream(Stream(8, 0, b"x"))) == E.STREAM_LIMIT_ERROR
    assert _code(lambda: server.on_stream(Stream(6, 0, b"x"))) == E.STREAM_LIMIT_ERROR  # uni index 1
    assert _code(lambda: server.on_max_stream_data(MaxStreamData(8, 10))) == E.STREAM_LIMIT_ERROR


def test_stream_limit_is_the_announced_one() -> None:
    """Credit earned by closed streams but not yet announced (MAX_STREAMS waits until half the limit
    is used) does not widen the limit a peer is held to (RFC 9000 §4.6)."""
    server = manager(is_client=False, local=params(streams_uni=10), peer=params())
    server.on_stream(Stream(2, 0, b"", fin=True))  # uni index 0, closed at once when read
    server.read(2)
    assert write_packet(server).of_type(MaxStreams) == []  # 9 of 10 left: not announced yet
    server.on_stream(Stream(2 + 4 * 9, 0, b"x"))  # index 9: the last one announced
    assert _code(lambda: server.on_stream(Stream(2 + 4 * 10, 0, b"x"))) == E.STREAM_LIMIT_ERROR


def test_streams_blocked_gets_the_earned_credit_at_once() -> None:
    server = manager(is_client=False, local=params(streams_uni=10), peer=params())
    server.on_stream(Stream(2, 0, b"", fin=True))
    server.read(2)
    server.on_streams_blocked(StreamsBlocked(False, 10))
    assert write_packet(server).of_type(MaxStreams) == [MaxStreams(False, 11)]


def test_implicit_open_of_lower_streams() -> None:
    server = _server()
    server.on_stream(Stream(8, 0, b"hi"))
    opened = [e.stream_id for e in server.events if isinstance(e, StreamOpened)]
    assert opened == [0, 4, 8]
    assert StreamReadable(8) in server.events
    server.events.clear()
    server.on_stream(Stream(4, 0, b"x"))
    assert list(server.events) == [StreamReadable(4)]  # already open: no second StreamOpened


def test_max_streams_credit_after_peer_streams_close() -> None:
    server = manager(is_client=False, local=params(streams_bidi=2, streams_uni=2), peer=params())
    server.on_stream(Stream(2, 0, b"abc", fin=True))  # client uni stream
    assert server.read(2) == b"abc"
    assert server.at_eof(2)
    sink = write_packet(server)
    assert sink.of_type(MaxStreams) == [MaxStreams(False, 3)]
    server.on_stream(Stream(6, 0, b"", fin=True))
    server.on_stream(Stream(10, 0, b"", fin=True))  # allowed thanks to the new credit
    server.on_stream(Stream(0, 0, b"q", fin=True))  # bidi: closes only when both directions are done
    server.read(0)
    assert write_packet(server).of_type(MaxStreams) == [MaxStreams(False, 5)]
    server.send(0, b"answer", fin=True)
    (frame, handler) = write_packet(server).frames[0]
    assert isinstance(frame, Stream) and frame.fin
    assert handler is not None
    handler(True)
    assert write_packet(server).of_type(MaxStreams) == [MaxStreams(True, 3)]


def test_lost_max_streams_is_resent() -> None:
    server = manager(is_client=False, local=params(streams_uni=1), peer=params())
    server.on_stream(Stream(2, 0, b"", fin=True))
    server.read(2)
    ((frame, handler),) = write_packet(server).frames
    assert frame == MaxStreams(False, 2)
    assert handler is not None
    handler(False)
    assert write_packet(server).of_type(MaxStreams) == [MaxStreams(False, 2)]


# ---------------------------------------------------------------- wrong-direction frames


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (Stream(3, 0, b"x"), E.STREAM_STATE_ERROR),  # our (server) send-only uni stream
        (ResetStream(3, 0, 0), E.STREAM_STATE_ERROR),
        (StreamDataBlocked(3, 0), E.STREAM_STATE_ERROR),
        (MaxStreamData(2, 100), E.STREAM_STATE_ERROR),  # the client's uni stream: receive-only for us
        (StopSending(2, 0), E.STREAM_STATE_ERROR),
        (Stream(1, 0, b"x"), E.STREAM_STATE_ERROR),  # our bidi stream, not opened yet
        (MaxStreamData(5, 100), E.STREAM_STATE_ERROR),
        (StopSending(7, 0), E.STREAM_STATE_ERROR),  # our uni stream 1, not opened yet
    ],
)
def test_state_errors_for_wrong_direction_frames(frame: object, code: int) -> None:
    server = _server()
    server.open_stream(bidirectional=False)  # stream 3 exists
    handler = {
        Stream: server.on_stream,
        ResetStream: server.on_reset_stream,
        StreamDataBlocked: server.on_stream_data_blocked,
        MaxStreamData: server.on_max_stream_data,
        StopSending: server.on_stop_sending,
    }[type(frame)]
    assert _code(lambda: handler(frame)) == code  # type: ignore[operator]


def test_api_misuse_raises_stream_state_error() -> None:
    client = manager(is_client=True, peer=params())
    uni = client.open_stream(bidirectional=False)
    with pytest.raises(StreamStateError):
        client.read(uni)
    with pytest.raises(StreamStateError):
        client.send(4, b"x")  # never opened
    with pytest.raises(StreamStateError):
        client.read(0)
    client.on_stream(Stream(3, 0, b"x"))  # server's uni stream
    with pytest.raises(StreamStateError):
        client.send(3, b"x")
    with pytest.raises(StreamStateError):
        client.reset(3, 0)
    client.send(uni, b"x", fin=True)
    with pytest.raises(StreamStateError):
        client.send(uni, b"more")


# ---------------------------------------------------------------- flow control and final size


def test_stream_window_violation() -> None:
    server = manager(is_client=False, local=params(stream_data=100), peer=params())
    server.on_stream(Stream(0, 0, b"x" * 100))
    assert _code(lambda: server.on_stream(Stream(0, 100, b"y"))) == E.FLOW_CONTROL_ERROR


def test_connection_window_violation_across_streams() -> None:
    server = manager(is_client=False, local=params(max_data=150, stream_data=100), peer=params())
    server.on_stream(Stream(0, 0, b"x" * 100))
    server.on_stream(Stream(4, 0, b"x" * 50))
    server.on_stream(Stream(4, 0, b"x" * 50))  # duplicate: costs nothing new
    assert _code(lambda: server.on_stream(Stream(8, 0, b"z"))) == E.FLOW_CONTROL_ERROR


def test_reset_final_size_counts_toward_connection_window() -> None:
    server = manager(is_client=False, local=params(max_data=150, stream_data=100), peer=params())
    server.on_stream(Stream(0, 0, b"x" * 10))
    server.on_reset_stream(ResetStream(0, 1, 100))
    server.on_stream(Stream(4, 0, b"x" * 50))
    assert _code(lambda: server.on_reset_stream(ResetStream(8, 1, 1))) == E.FLOW_CONTROL_ERROR


def test_reset_beyond_stream_window_is_flow_control_error() -> None:
    server = manager(is_client=False, local=params(stream_data=100), peer=params())
    assert _code(lambda: server.on_reset_stream(ResetStream(0, 1, 101))) == E.FLOW_CONTROL_ERROR


@pytest.mark.parametrize(
    "frames",
    [
        [Stream(0, 0, b"abc", fin=True), Stream(0, 0, b"abcd")],  # data beyond the final size
        [Stream(0, 0, b"abc", fin=True), Stream(0, 0, b"ab", fin=True)],  # final size changed
        [Stream(0, 0, b"abcdef"), Stream(0, 0, b"abc", fin=True)],  # FIN below data received
        [Stream(0, 0, b"abc", fin=True), ResetStream(0, 0, 4)],  # reset changes the final size
        [Stream(0, 0, b"abcdef"), ResetStream(0, 0, 3)],  # reset below data received
        [ResetStream(0, 0, 5), ResetStream(0, 0, 6)],
        [ResetStream(0, 0, 5), Stream(0, 4, b"xy")],
    ],
)
def test_final_size_errors(frames: list[object]) -> None:
    server = _server()
    *good, bad = frames
    for frame in good:
        (server.on_stream if isinstance(frame, Stream) else server.on_reset_stream)(frame)  # type: ignore[operator]
    call = server.on_stream if isinstance(bad, Stream) else server.on_reset_stream
    assert _code(lambda: call(bad)) == E.FINAL_SIZE_ERROR  # type: ignore[arg-type]


def test_max_stream_data_only_after_half_consumed() -> None:
    server = manager(is_client=False, local=params(stream_data=1000, max_data=100_000), peer=params())
    server.on_stream(Stream(0, 0, b"x" * 1000))
    assert not server.has_data_to_send()  # received, but nothing consumed
    server.read(0, 500)
    assert not server.has_data_to_send()
    server.read(0, 1)
    sink = write_packet(server)
    assert sink.of_type(MaxStreamData) == [MaxStreamData(0, 1501)]
    assert sink.of_type(MaxData) == []  # 501 of a 100000 window: no connection update yet


def test_max_data_after_half_connection_window_consumed() -> None:
    server = manager(is_client=False, local=params(stream_data=1000, max_data=1000), peer=params())
    server.on_stream(Stream(0, 0, b"x" * 600))
    server.on_stream(Stream(4, 0, b"x" * 400))
    server.read(0)
    assert write_packet(server).of_type(MaxData) == [MaxData(1600)]


def test_no_window_update_after_fin() -> None:
    server = manager(is_client=False, local=params(stream_data=1000), peer=params())
    server.on_stream(Stream(0, 0, b"x" * 900, fin=True))
    server.read(0)
    assert write_packet(server).of_type(MaxStreamData) == []  # RFC 9000 §3.2: Size Known


def test_autotune_grows_windows_up_to_max() -> None:
    client = manager(
        is_client=True,
        local=params(stream_data=4000, max_data=8000),
        peer=params(stream_data=4000, max_data=8000),
        max_stream_window=16_000,
        max_connection_window=32_000,
    )
    server = manager(
        is_client=False,
        local=params(stream_data=4000, max_data=8000),
        peer=params(stream_data=4000, max_data=8000),
        max_stream_window=16_000,
        max_connection_window=32_000,
        send_buffer_bytes=1 << 20,
    )
    stream_id = client.open_stream()
    payload = b"p" * 300_000
    sent = 0
    link = Link(client, server, rtt=1.0, burst=4)  # an update every round trip: frequent
    received = bytearray()
    while len(received) < len(payload):
        sent += client.send(stream_id, payload[sent : sent + 50_000])
        link.step()
        received += server.read(stream_id)
    updates = [f.maximum for f in link.sent_frames if isinstance(f, MaxStreamData)]
    increments = [b - a for a, b in itertools.pairwise(updates)]
    assert max(increments) > 4000  # the window grew
    assert server.stats().connection_recv_window == 32_000  # ... and stopped at the ceiling
    assert all(inc <= 16_000 for inc in increments)


def test_data_blocked_and_stream_data_blocked_once_per_limit() -> None:
    client = manager(is_client=True, peer=params(max_data=1000, stream_data=300))
    a, b = client.open_stream(), client.open_stream()
    client.send(a, b"a" * 500)
    client.send(b, b"b" * 800)
    frames = []
    while client.has_data_to_send():
        frames += [f for f, _ in write_packet(client).frames]
    stream_bytes = sum(len(f.data) for f in frames if isinstance(f, Stream))
    assert stream_bytes == 600  # both streams stopped by their stream credit (300 each)
    assert sorted(f.stream_id for f in frames if isinstance(f, StreamDataBlocked)) == [a, b]
    assert all(f.limit == 300 for f in frames if isinstance(f, StreamDataBlocked))
    client.on_max_stream_data(MaxStreamData(a, 2000))
    client.on_max_stream_data(MaxStreamData(b, 2000))
    frames = []
    while client.has_data_to_send():
        frames += [f for f, _ in write_packet(client).frames]
    assert sum(len(f.data) for f in frames if isinstance(f, Stream)) == 400  # connection credit
    assert [f for f in frames if isinstance(f, DataBlocked)] == [DataBlocked(1000)]
    assert not client.has_data_to_send()
    client.on_max_data(MaxData(5000))
    assert client.has_data_to_send()


def test_write_frames_true_only_when_more_stream_data_waits() -> None:
    """write_frames' True (the last frame was cut to fit) means has_data_to_send, which a packet train
    then does not ask; with ample credit and with streams blocked by either credit, many streams,
    small and large packets."""
    for max_data, stream_data in ((1 << 20, 1 << 20), (6000, 2500)):
        client = manager(is_client=True, peer=params(max_data=max_data, stream_data=stream_data))
        streams = [client.open_stream() for _ in range(4)]
        for index, stream_id in enumerate(streams):
            client.send(stream_id, bytes(700 * (index + 1)), fin=index == 2)
        answers = []
        for size in itertools.cycle((1200, 90, 400)):
            if not client.has_data_to_send():
                break
            answer = client.write_frames(FakeSink(size), 0.0, 0.0)
            answers.append(answer)
            assert client.has_data_to_send() or not answer
        assert answers.count(True) > 5 and not answers[-1]


def _train_writes(*, train: bool) -> list[tuple[bool, list[object]]]:
    """Packets of a server with window updates due and data on four streams, two blocked by stream
    credit and all by connection credit: each write's answer and frames (``train``: after a True
    answer, only write_more_frames, as a packet train)."""
    local, peer = params(stream_data=1000, max_data=1000), params(max_data=5200, stream_data=1500)
    server = manager(is_client=False, local=local, peer=peer)
    server.on_stream(Stream(0, 0, b"x" * 600))
    server.on_stream(Stream(4, 0, b"x" * 400))
    server.read(0)  # MAX_DATA and MAX_STREAM_DATA due
    for index in range(4):
        stream_id = server.open_stream()
        server.send(stream_id, bytes(1000 * (index + 1)))
    writes: list[tuple[bool, list[object]]] = []
    answer = False
    for size in itertools.cycle((1200, 60, 700)):
        if not (answer or server.has_data_to_send()):
            break
        sink = FakeSink(size)
        answer = server.write_more_frames(sink) if train and answer else server.write_frames(sink, 0.0, 0.1)
        writes.append((answer, [frame for frame, _ in sink.frames]))
    return writes


def test_write_more_frames_after_true_writes_what_write_frames_would() -> None:
    """A packet train's write_more_frames (after a True answer) writes exactly the frames and gives
    the answers write_frames would, control and blocked frames included."""
    train, general = _train_writes(train=True), _train_writes(train=False)
    assert train == general
    frames = [frame for _, packet in general for frame in packet]
    kinds = {MaxData, MaxStreamData, Stream, StreamDataBlocked, DataBlocked}
    assert {type(frame) for frame in frames} >= kinds
    assert sum(answer for answer, _ in general) > 3


# ---------------------------------------------------------------- reset and stop sending


def test_peer_reset_event_and_credit() -> None:
    server = manager(is_client=False, local=params(max_data=1000, stream_data=1000), peer=params())
    server.on_stream(Stream(0, 0, b"x" * 100))
    server.on_reset_stream(ResetStream(0, 42, 700))
    assert StreamReset(0, 42) in server.events
    assert server.at_eof(0)
    assert server.read(0) == b""
    assert server.recv_buffered_bytes == 0
    # the whole final size is returned to the connection window (700 > half of 1000)
    assert write_packet(server).of_type(MaxData) == [MaxData(1700)]
    server.on_stream(Stream(0, 100, b"late"))  # data after reset: ignored


def test_stop_sending_received_resets_with_that_code() -> None:
    client = manager(is_client=True, peer=params())
    stream_id = client.open_stream()
    client.send(stream_id, b"x" * 100)
    write_packet(client)
    client.on_stop_sending(StopSending(stream_id, 9))
    assert list(client.events) == [StopSendingReceived(stream_id, 9)]
    ((frame, handler),) = write_packet(client).frames
    assert frame == ResetStream(stream_id, 9, 100)
    with pytest.raises(StreamStateError):
        client.send(stream_id, b"more")
    assert client.send_budget(stream_id) == 0
    assert handler is not None
    handler(False)  # lost: sent again
    ((again, handler2),) = write_packet(client).frames
    assert again == frame
    client.on_stop_sending(StopSending(stream_id, 9))  # repeated: no second event
    assert len(client.events) == 1
    assert handler2 is not None
    handler2(True)
    assert not client.has_data_to_send()


def test_local_stop_sending_discards_and_returns_credit() -> None:
    server = manager(is_client=False, local=params(max_data=1000, stream_data=1000), peer=params())
    server.on_stream(Stream(0, 0, b"x" * 300))
    server.stop_sending(0, 5)
    assert server.recv_buffered_bytes == 0
    sink = write_packet(server)
    assert sink.of_type(StopSending) == [StopSending(0, 5)]
    server.on_stream(Stream(0, 300, b"y" * 300))  # still counted, then discarded
    assert server.recv_buffered_bytes == 0
    assert server.read(0) == b""
    assert server.at_eof(0)
    assert write_packet(server).of_type(MaxData) == [MaxData(1600)]
    server.on_reset_stream(ResetStream(0, 5, 600))
    assert StreamReset(0, 5) in server.events


def test_local_reset_final_size_is_bytes_sent() -> None:
    client = manager(is_client=True, peer=params(stream_data=1000), send_buffer_bytes=5000)
    stream_id = client.open_stream()
    client.send(stream_id, b"x" * 3000)
    write_packet(client, capacity=600)
    client.reset(stream_id, 3)
    resets = write_packet(client).of_type(ResetStream)
    assert len(resets) == 1 and 0 < resets[0].final_size <= 600
    assert not client.has_data_to_send()  # no STREAM frame after RESET_STREAM (§3.3)


def test_stream_closes_after_reset_acked_and_reset_read() -> None:
    client = manager(is_client=True, peer=params())
    stream_id = client.open_stream()
    client.reset(stream_id, 1)
    ((_, handler),) = write_packet(client).frames
    assert handler is not None
    handler(True)
    assert client.open_streams == 1
    client.on_reset_stream(ResetStream(stream_id, 2, 0))
    assert client.open_streams == 0
    assert client.at_eof(stream_id) and client.read(stream_id) == b""


# ---------------------------------------------------------------- writable and memory bounds


def test_stream_writable_after_acks_free_budget() -> None:
    client = manager(is_client=True, peer=params(), send_buffer_bytes=1000)
    stream_id = client.open_stream()
    assert client.send(stream_id, b"x" * 1500) == 1000
    assert client.send_budget(stream_id) == 0
    sink = write_packet(client)
    for _frame, handler in sink.frames:
        assert handler is not None
        handler(True)
    assert list(client.events) == [StreamWritable(stream_id)]
    assert client.send_budget(stream_id) > 0


def test_write_frames_never_exceeds_capacity() -> None:
    client = manager(is_client=True, peer=params(stream_data=1 << 20), send_buffer_bytes=10_000)
    for _ in range(5):
        stream_id = client.open_stream()
        client.send(stream_id, b"d" * 5000, fin=True)
    client.reset(0, 1)
    for capacity in (1, 5, 17, 30, 100, 1200, 3, 9):
        sink = write_packet(client, capacity=capacity)
        assert sink.remaining >= 0  # FakeSink raises if a frame does not fit


def test_round_robin_fairness() -> None:
    client = manager(is_client=True, peer=params(), send_buffer_bytes=100_000)
    streams = [client.open_stream() for _ in range(4)]
    for stream_id in streams:
        client.send(stream_id, b"z" * 50_000)
    order = []
    for _ in range(8):
        order += [f.stream_id for f, _ in write_packet(client).frames if isinstance(f, Stream)]
    assert order == streams + streams


def test_states_exposed_as_enums() -> None:
    client = manager(is_client=True, peer=params())
    stream_id = client.open_stream()
    client.send(stream_id, b"a", fin=True)
    sink = write_packet(client)
    client.on_stream(Stream(stream_id, 0, b"b", fin=True))
    assert client.read(stream_id) == b"b"
    assert client.at_eof(stream_id)
    assert client.open_streams == 1  # our FIN is not acknowledged yet
    for _frame, handler in sink.frames:
        assert handler is not None
        handler(True)
    assert client.open_streams == 0
    assert SendState.DATA_RECVD.value == "Data Recvd" and RecvState.DATA_READ.value == "Data Read"


def test_lost_window_updates_are_resent_while_current() -> None:
    server = manager(is_client=False, local=params(stream_data=1000, max_data=1000), peer=params())
    server.on_stream(Stream(0, 0, b"x" * 1000))
    server.read(0, 600)
    sink = write_packet(server)
    assert sink.of_type(MaxStreamData) == [MaxStreamData(0, 1600)]
    assert sink.of_type(MaxData) == [MaxData(1600)]
    for _frame, handler in sink.frames:
        assert handler is not None
        handler(False)
    again = write_packet(server)
    assert again.of_type(MaxStreamData) == [MaxStreamData(0, 1600)]
    assert again.of_type(MaxData) == [MaxData(1600)]
    server.on_stream(Stream(0, 1000, b"x" * 600))
    server.read(0)  # newer limits get announced ...
    newer = write_packet(server, now=100.0)
    assert newer.of_type(MaxStreamData) == [MaxStreamData(0, 2600)]
    assert newer.of_type(MaxData) == [MaxData(2600)]
    for _frame, handler in again.frames:  # ... so losing the older ones changes nothing
        assert handler is not None
        handler(False)
    assert not server.has_data_to_send()


def test_lost_stream_data_blocked_resent_only_while_blocked() -> None:
    client = manager(is_client=True, peer=params(stream_data=10))
    stream_id = client.open_stream()
    client.send(stream_id, b"x" * 50)
    sink = write_packet(client)
    (blocked,) = [(f, h) for f, h in sink.frames if isinstance(f, StreamDataBlocked)]
    assert blocked[0] == StreamDataBlocked(stream_id, 10)
    assert blocked[1] is not None
    blocked[1](False)
    assert write_packet(client).of_type(StreamDataBlocked) == [StreamDataBlocked(stream_id, 10)]
    client.on_max_stream_data(MaxStreamData(stream_id, 20))
    blocked[1](False)  # stale now: the limit moved
    frames = write_packet(client)
    assert frames.of_type(StreamDataBlocked) == [StreamDataBlocked(stream_id, 20)]  # blocked anew at 20


def test_peer_parameters_applied_twice_raise_credit() -> None:
    client = manager(is_client=True)
    with pytest.raises(StreamLimitReached):
        client.open_stream()
    client.apply_peer_parameters(params(stream_data=10, streams_bidi=1))  # remembered 0-RTT values
    assert list(client.events) == [StreamsAvailable(True)]
    stream_id = client.open_stream()
    client.send(stream_id, b"y" * 100)
    assert sum(len(f.data) for f in write_packet(client).of_type(Stream)) == 10
    client.apply_peer_parameters(params(stream_data=5, streams_bidi=1))  # smaller: no effect
    assert write_packet(client).of_type(Stream) == []
    client.apply_peer_parameters(params(stream_data=60, streams_bidi=2))
    assert sum(len(f.data) for f in write_packet(client).of_type(Stream)) == 50
    assert client.open_stream() == 4
    client.send(4, b"z" * 100)  # a stream opened after the update starts with the new credit
    assert [len(f.data) for f in write_packet(client).of_type(Stream)] == [60]


def test_read_calls_on_due_only_when_a_credit_frame_became_due() -> None:
    """A read that returns no credit asks for no transmission (issue 13: one empty flush per small
    request); one that makes MAX_STREAM_DATA, MAX_DATA or MAX_STREAMS due does (RFC 9000 §4.2, §4.6)."""
    server = manager(is_client=False, local=params(stream_data=1000, max_data=100_000), peer=params())
    due: list[int] = []
    server.on_stream(Stream(0, 0, b"x" * 1000))
    assert server.read(0, 500, lambda: due.append(0)) == b"x" * 500
    assert due == []  # half the window left: no MAX_STREAM_DATA yet
    assert server.read(0, 1, lambda: due.append(1)) == b"x"
    assert due == [1]
    assert write_packet(server).of_type(MaxStreamData) == [MaxStreamData(0, 1501)]
    assert server.read(0, 10, lambda: due.append(2)) == b"x" * 10
    assert due == [1]  # the update went out: nothing due again
    assert server.read(0, 10, lambda: due.append(3)) == b"x" * 10 and due == [1]


def test_a_read_that_consumes_nothing_asks_for_no_transmission() -> None:
    """The end-of-stream read (or one with nothing readable) changes no credit: even with a
    MAX_STREAM_DATA still waiting (the read that made it due asked already) it does not ask again."""
    server = manager(is_client=False, local=params(stream_data=1000, max_data=100_000), peer=params())
    due: list[int] = []
    server.on_stream(Stream(0, 0, b"x" * 600))
    assert server.read(0, -1, lambda: due.append(0)) == b"x" * 600
    assert due == [0]
    assert server.read(0, -1, lambda: due.append(1)) == b""
    assert due == [0]
    assert write_packet(server).of_type(MaxStreamData) == [MaxStreamData(0, 1600)]


def test_max_streams_rides_along_until_the_peer_has_a_quarter_left() -> None:
    """RFC 9000 §4.6: the new limit is due once the peer has half its streams left, but worth a
    datagram of its own only at a quarter (or when the peer is blocked): until then it rides on a
    packet that goes anyway, and a read that makes it due asks for no transmission."""
    server = manager(is_client=False, local=params(streams_uni=8), peer=params())
    due: list[int] = []
    for index in range(5):  # 5 of 8: 3 left
        server.on_stream(Stream(2 + 4 * index, 0, b"x", fin=True))
    assert server.read(2, -1, lambda: due.append(2)) == b"x"  # closed: the limit becomes 9
    assert due == []
    assert not server.has_data_to_send()  # not worth a datagram: 3 of 8 left
    assert server.has_frames()  # but a packet that goes anyway carries it
    assert write_packet(server).of_type(MaxStreams) == [MaxStreams(False, 9)]
    assert not server.has_frames()
    server.on_stream(Stream(22, 0, b"x", fin=True))
    server.on_stream(Stream(26, 0, b"x", fin=True))  # 7 of 9: 2 left, a quarter of 8
    assert server.read(6, -1, lambda: due.append(6)) == b"x"
    assert due == [6]
    assert server.has_data_to_send()
    assert write_packet(server).of_type(MaxStreams) == [MaxStreams(False, 10)]


def test_streams_blocked_makes_the_announcement_urgent() -> None:
    server = manager(is_client=False, local=params(streams_uni=8), peer=params())
    for index in range(5):
        server.on_stream(Stream(2 + 4 * index, 0, b"x", fin=True))
    server.read(2)
    assert not server.has_data_to_send()
    server.on_streams_blocked(StreamsBlocked(False, 8))  # the peer says it waits (it cannot, yet)
    assert server.has_data_to_send()
    assert write_packet(server).of_type(MaxStreams) == [MaxStreams(False, 9)]


def test_read_closing_a_peer_stream_calls_on_due_when_max_streams_is_due() -> None:
    server = manager(is_client=False, local=params(streams_uni=2), peer=params())
    due: list[int] = []
    server.on_stream(Stream(2, 0, b"a", fin=True))
    server.on_stream(Stream(6, 0, b"b", fin=True))
    assert server.read(2, -1, lambda: due.append(2)) == b"a"
    assert due == [2]  # both streams of a limit of 2 used: the new limit is due at once (§4.6)
    assert write_packet(server).of_type(MaxStreams) == [MaxStreams(False, 3)]
    assert server.read(6, -1, lambda: due.append(6)) == b"b"
    assert due == [2]  # 1 of 2 left: the next packet that goes carries it, none goes for it
    assert server.read(6, -1, lambda: due.append(7)) == b""  # a forgotten stream: the read changes nothing
    assert write_packet(server).of_type(MaxStreams) == [MaxStreams(False, 4)]


def test_has_data_to_send_agrees_with_the_control_frame_check_when_no_stream_is_queued() -> None:
    """has_data_to_send inlines _has_control_frames(riding=False): each kind of control frame that is
    worth a datagram makes both True, a MAX_STREAMS that can wait makes neither True."""
    server = manager(is_client=False, local=params(stream_data=1000, streams_uni=8), peer=params())

    def check(expected: bool) -> None:
        assert server.has_data_to_send() is expected
        assert server._has_control_frames(riding=False) is expected

    check(False)
    server.on_stream(Stream(0, 0, b"x" * 600))
    server.read(0)  # MAX_STREAM_DATA due
    check(True)
    write_packet(server)
    check(False)
    server.stop_sending(0, 7)  # STOP_SENDING
    check(True)
    write_packet(server)
    check(False)
    for index in range(5):  # 5 of 8 unidirectional streams: 3 left
        server.on_stream(Stream(2 + 4 * index, 0, b"x", fin=True))
    server.read(2)  # MAX_STREAMS due, but it rides along (not urgent)
    check(False)
    assert server.has_frames()
    server.on_streams_blocked(StreamsBlocked(False, 8))  # urgent now
    check(True)
    write_packet(server)
    check(False)
    server.reset(0, 3)  # RESET_STREAM
    check(True)
    write_packet(server)
    check(False)
