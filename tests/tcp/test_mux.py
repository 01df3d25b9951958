"""TcpMux back to back in memory: streams, FIN, reset, stop, flow control, limits, ping, close."""

from __future__ import annotations

import hashlib
import random

import pytest

from rudp.config import Config
from rudp.errors import (
    ConnectionClosed,
    DatagramError,
    StreamLimitReached,
    StreamStateError,
    TransportErrorCode,
)
from rudp.quic.events import (
    ConnectionTerminated,
    DatagramReceived,
    HandshakeCompleted,
    PingAcknowledged,
    StopSendingReceived,
    StreamOpened,
    StreamReset,
    StreamsAvailable,
    StreamWritable,
)
from rudp.tcp import STREAM_COUNT_FLOOR, STREAM_WINDOW_FLOOR, TcpMux
from rudp.tcp.mux import LOST_CODE, KernelTcpInfo
from tests.tcp.pair import MuxPair, of_type


def test_hello_and_handshake_event() -> None:
    pair = MuxPair()
    pair.drive()
    for mux in (pair.client, pair.server):
        assert pair.events(mux)[0] == HandshakeCompleted("hq-interop", False, False)
        assert mux.alpn_protocol == "hq-interop"
        assert not mux.is_closed
    assert pair.client.stats.smoothed_rtt > 0  # from the PING sent with HELLO


def test_stream_ids_follow_quic_numbering() -> None:
    pair = MuxPair()
    assert [pair.client.open_stream() for _ in range(3)] == [0, 4, 8]
    assert [pair.client.open_stream(bidirectional=False) for _ in range(2)] == [2, 6]
    assert [pair.server.open_stream() for _ in range(2)] == [1, 5]
    assert pair.server.open_stream(bidirectional=False) == 3


def test_many_streams_intact_both_ways() -> None:
    rng = random.Random(7)
    pair = MuxPair()
    pair.drive()
    payloads = {}
    for _ in range(40):
        sid = pair.client.open_stream()
        data = rng.randbytes(rng.randrange(0, 300_000))
        payloads[sid] = data
    pending = dict(payloads)
    server_got: dict[int, bytearray] = {}
    echoed: dict[int, int] = {}
    client_got: dict[int, bytearray] = {}
    finished: set[int] = set()

    def app(p: MuxPair) -> None:
        for sid, data in list(pending.items()):
            taken = p.client.send_stream(sid, data, fin=True)
            if taken == len(data):
                del pending[sid]
            else:
                pending[sid] = data[taken:]
        for sid in [e.stream_id for e in of_type(p.events(p.server), StreamOpened)]:  # type: ignore[attr-defined]
            chunk = p.server.read_stream(sid)
            server_got.setdefault(sid, bytearray()).extend(chunk)
            if chunk:
                echoed[sid] = echoed.get(sid, 0) + p.server.send_stream(sid, chunk)
            if (
                sid not in finished
                and p.server.stream_at_eof(sid)
                and echoed.get(sid, 0) == len(server_got[sid])
            ):
                p.server.send_stream(sid, b"", fin=True)
                finished.add(sid)
        for sid in payloads:
            client_got.setdefault(sid, bytearray()).extend(p.client.read_stream(sid))

    pair.drive(app)
    assert not pending
    for sid, data in payloads.items():
        assert hashlib.sha256(server_got[sid]).digest() == hashlib.sha256(data).digest()
        assert hashlib.sha256(client_got[sid]).digest() == hashlib.sha256(data).digest()
        assert pair.client.stream_at_eof(sid)
    assert len(of_type(pair.events(pair.server), StreamOpened)) == 40
    # every stream finished both ways is forgotten and its slot given back
    assert pair.server.stats.recv_buffered_bytes == 0
    assert pair.client.open_streams == pair.server.open_streams == 0


def test_fin_semantics() -> None:
    pair = MuxPair()
    sid = pair.client.open_stream()
    assert pair.client.send_stream(sid, b"hello", fin=True) == 5
    with pytest.raises(StreamStateError):
        pair.client.send_stream(sid, b"more")
    pair.drive()
    assert not pair.server.stream_at_eof(sid)
    assert pair.server.read_stream(sid, 2) == b"he"
    assert not pair.server.stream_at_eof(sid)
    assert pair.server.read_stream(sid) == b"llo"
    assert pair.server.stream_at_eof(sid)
    assert pair.server.read_stream(sid) == b""
    # an empty FIN on the reverse direction ends the stream; afterwards it is forgotten
    pair.server.send_stream(sid, b"", fin=True)
    pair.drive()
    assert pair.client.stream_at_eof(sid)
    assert pair.client.read_stream(sid) == b""
    assert pair.client.open_streams == 0


def test_fin_is_ignored_when_data_is_not_all_accepted() -> None:
    pair = MuxPair(Config(send_buffer_bytes=10))
    sid = pair.client.open_stream()
    assert pair.client.send_stream(sid, b"x" * 25, fin=True) == 10
    assert pair.client.stream_send_budget(sid) == 0
    pair.drive()
    assert of_type(pair.events(pair.client), StreamWritable) == [StreamWritable(sid)]
    assert pair.client.send_stream(sid, b"y" * 15, fin=True) == 10
    pair.drive()
    assert pair.client.send_stream(sid, b"z" * 5, fin=True) == 5
    pair.drive()
    assert pair.server.read_stream(sid) == b"x" * 10 + b"y" * 10 + b"z" * 5
    assert pair.server.stream_at_eof(sid)


def test_reset_stream() -> None:
    pair = MuxPair()
    sid = pair.client.open_stream()
    pair.client.send_stream(sid, b"a" * 1000)
    pair.drive()
    pair.client.send_stream(sid, b"b" * 100_000)
    pair.client.reset_stream(sid, 77)
    pair.client.reset_stream(sid, 78)  # no-op once reset
    with pytest.raises(StreamStateError):
        pair.client.send_stream(sid, b"late")
    assert pair.client.stream_send_budget(sid) == 0
    pair.drive()
    assert StreamReset(sid, 77) in pair.events(pair.server)
    assert pair.server.stream_at_eof(sid)
    assert pair.server.read_stream(sid) == b""
    # the other direction still works
    pair.server.send_stream(sid, b"reply", fin=True)
    pair.drive()
    assert pair.client.read_stream(sid) == b"reply"


def test_stop_sending_resets_the_peer_with_the_same_code() -> None:
    pair = MuxPair()
    sid = pair.client.open_stream()
    pair.client.send_stream(sid, b"x" * 500_000)
    pair.step()
    pair.server.stop_sending(sid, 9)
    assert pair.server.stream_at_eof(sid)
    pair.drive()
    assert StopSendingReceived(sid, 9) in pair.events(pair.client)
    with pytest.raises(StreamStateError):
        pair.client.send_stream(sid, b"more")
    # data in flight when STOP was sent is discarded; the RESET closes the receiving half
    assert pair.server.read_stream(sid) == b""
    assert pair.server.stats.recv_buffered_bytes == 0
    assert not of_type(pair.events(pair.server), StreamReset)  # we asked for it: no news


def test_slow_reader_bounds_memory_and_writer_resumes() -> None:
    window = STREAM_WINDOW_FLOOR
    config = Config(initial_max_stream_data=window, max_stream_window=window, send_buffer_bytes=100_000)
    pair = MuxPair(config, config)
    sid = pair.client.open_stream()
    data = random.Random(1).randbytes(3_000_000)
    offset = pair.client.send_stream(sid, data)
    pair.drive()
    # the reader did not read: one window on the server, a full send buffer on the client
    assert pair.server.stats.recv_buffered_bytes == window
    offset += pair.client.send_stream(sid, data[offset:])
    pair.drive()
    assert pair.server.stats.recv_buffered_bytes == window
    assert pair.client.stats.send_buffered_bytes == 100_000
    assert pair.client.stream_send_budget(sid) == 0
    got = bytearray()
    peak = 0

    def app(p: MuxPair) -> bool:
        nonlocal offset, peak
        chunk = p.server.read_stream(sid, 10_000)
        got.extend(chunk)
        if offset < len(data) and p.client.stream_send_budget(sid):
            offset += p.client.send_stream(sid, data[offset : offset + 50_000], fin=False)
            if offset == len(data):
                p.client.send_stream(sid, b"", fin=True)
        peak = max(peak, p.server.stats.recv_buffered_bytes)
        return bool(chunk)

    pair.drive(app)
    assert bytes(got) == data
    assert pair.server.stream_at_eof(sid)
    assert peak <= window
    assert of_type(pair.events(pair.client), StreamWritable)


def _transfer_time(max_stream_window: int) -> float:
    config = Config(initial_max_stream_data=STREAM_WINDOW_FLOOR, max_stream_window=max_stream_window)
    pair = MuxPair(config, config, delay=0.05)
    pair.drive()
    sid = pair.client.open_stream()
    data = bytes(4_000_000)
    sent = 0
    got = 0

    def app(p: MuxPair) -> None:
        nonlocal sent, got
        if sent < len(data):
            sent += p.client.send_stream(sid, data[sent:], fin=True)
        if of_type(p.events(p.server), StreamOpened):
            got += len(p.server.read_stream(sid))

    start = pair.now
    pair.drive(app)
    assert got == len(data)
    assert pair.server.stats.recv_buffered_bytes == 0
    return pair.now - start


def test_window_autotunes_for_a_fast_reader() -> None:
    """Credit needed more often than every two RTTs doubles the window, up to max_stream_window."""
    fixed = _transfer_time(STREAM_WINDOW_FLOOR)
    tuned = _transfer_time(1 << 20)
    assert tuned < fixed / 4


def test_stream_limit_and_streams_available() -> None:
    pair = MuxPair(server_config=Config(max_streams_bidi=STREAM_COUNT_FLOOR))
    pair.drive()
    ids = [pair.client.open_stream() for _ in range(STREAM_COUNT_FLOOR)]
    with pytest.raises(StreamLimitReached):
        pair.client.open_stream()
    pair.client.send_stream(ids[0], b"q", fin=True)
    pair.drive()
    assert pair.server.read_stream(ids[0]) == b"q"
    pair.server.send_stream(ids[0], b"a", fin=True)
    pair.drive()
    assert StreamsAvailable(True) in pair.events(pair.client)
    assert pair.client.open_stream() == STREAM_COUNT_FLOOR * 4


def test_floors_let_the_client_send_before_the_server_hello() -> None:
    pair = MuxPair()
    sid = pair.client.open_stream()
    pair.client.send_stream(sid, b"x" * STREAM_WINDOW_FLOOR, fin=True)
    first = pair.client.data_to_send(0.0)
    pair.server.receive_data(first, 0.0)
    assert pair.server.read_stream(sid) == b"x" * STREAM_WINDOW_FLOOR
    assert pair.server.close_cause is None


def test_ping_is_acknowledged_with_rtt() -> None:
    pair = MuxPair(delay=0.02)
    pair.drive()
    uid = pair.client.ping()
    pair.drive()
    assert PingAcknowledged(uid) in pair.events(pair.client)
    assert pair.client.stats.latest_rtt == pytest.approx(0.04)


def test_datagrams() -> None:
    config = Config(datagrams=True, max_datagram_frame_size=100)
    pair = MuxPair(config, config)
    pair.client.send_datagram(b"hello")
    pair.drive()
    assert DatagramReceived(b"hello") in pair.events(pair.server)
    with pytest.raises(DatagramError, match="101 bytes is larger than the 100 bytes"):
        pair.client.send_datagram(bytes(101))
    plain = MuxPair()
    with pytest.raises(DatagramError, match="not enabled"):
        plain.client.send_datagram(b"x")
    one_sided = MuxPair(config, Config())
    one_sided.drive()
    with pytest.raises(DatagramError, match="not enabled"):
        one_sided.client.send_datagram(b"x")


def test_close_with_code_is_seen_by_the_peer() -> None:
    pair = MuxPair()
    pair.drive()
    sid = pair.client.open_stream()
    pair.client.close(42, "bye")
    pair.client.close(43, "again")  # idempotent
    assert pair.events(pair.client)[-1] == ConnectionTerminated(42, "bye", False, True)
    pair.drive()
    assert pair.client.is_closed and pair.server.is_closed
    assert pair.events(pair.server)[-1] == ConnectionTerminated(42, "bye", True, True)
    for mux in (pair.client, pair.server):
        with pytest.raises(ConnectionClosed) as info:
            mux.open_stream()
        assert info.value.code == 42
        assert mux.next_timer() is None
    with pytest.raises(ConnectionClosed):
        pair.client.send_stream(sid, b"x")


def _hello_done() -> MuxPair:
    pair = MuxPair()
    pair.drive()
    return pair


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (b"\xee\x00\x00", TransportErrorCode.FRAME_ENCODING_ERROR),  # unknown kind
        (b"\x0a\x00\x00", TransportErrorCode.FRAME_ENCODING_ERROR),  # HELLO without its fields
        (b"\x06\x04\x00", TransportErrorCode.FRAME_ENCODING_ERROR),  # PING on a stream
    ],
)
def test_malformed_input_closes_cleanly(wire: bytes, code: int) -> None:
    pair = _hello_done()
    pair.server.receive_data(wire, 1.0)
    terminated = pair.events(pair.server)[-1]
    assert isinstance(terminated, ConnectionTerminated)
    assert (terminated.code, terminated.by_peer, terminated.application) == (code, False, False)
    pair.drive()
    assert pair.events(pair.client)[-1] == ConnectionTerminated(
        code, terminated.reason, True, False, terminated.frame_type
    )
    assert pair.server.is_closed and pair.client.is_closed


def _violation(frames: list[object], *, fresh: bool = False) -> ConnectionTerminated:
    from rudp.tcp import framing as fr

    pair = MuxPair() if fresh else _hello_done()
    wire = b"".join(fr.encode_frame(f) for f in frames)  # type: ignore[arg-type]
    pair.server.receive_data(wire, 1.0)
    event = pair.events(pair.server)[-1]
    assert isinstance(event, ConnectionTerminated)
    assert pair.server.data_to_send()  # the CLOSE goes out
    assert pair.server.is_closed
    return event


def test_protocol_violations_close_with_their_code() -> None:
    from rudp.tcp import framing as fr

    code = TransportErrorCode
    assert _violation([fr.Ping(b"")], fresh=True).code == code.PROTOCOL_VIOLATION
    assert _violation([fr.Hello(65536, 16, 16)]).code == code.PROTOCOL_VIOLATION
    assert _violation([fr.Hello(1024, 16, 16)], fresh=True).code == code.PROTOCOL_VIOLATION
    assert _violation([fr.Hello(65536, 16, 16, version=9)], fresh=True).code == code.PROTOCOL_VIOLATION
    assert _violation([fr.Data(0, bytes(100_000))] * 3).code == code.FLOW_CONTROL_ERROR
    assert _violation([fr.Data(0, b"ab"), fr.Reset(0, 1, 5)]).code == code.FINAL_SIZE_ERROR
    assert _violation([fr.Data(0, b"ab", fin=True), fr.Data(0, b"c")]).code == code.FINAL_SIZE_ERROR
    assert _violation([fr.Data(3, b"x")]).code == code.STREAM_STATE_ERROR  # our own uni stream
    assert _violation([fr.Data(1, b"x")]).code == code.STREAM_STATE_ERROR  # not opened by us
    assert _violation([fr.Credit(2, 5)]).code == code.STREAM_STATE_ERROR  # peer's uni: no sending half
    assert _violation([fr.Data(4 * 200, b"x")]).code == code.STREAM_LIMIT_ERROR
    assert _violation([fr.Datagram(b"x")]).code == code.PROTOCOL_VIOLATION
    assert _violation([fr.MaxStreams(True, 1 << 61)]).code == code.FRAME_ENCODING_ERROR


def test_random_garbage_never_raises() -> None:
    rng = random.Random(3)
    for _ in range(300):
        pair = _hello_done()
        for _ in range(3):
            pair.server.receive_data(rng.randbytes(rng.randrange(1, 64)), 1.0)
        pair.server.data_to_send()
        events = pair.events(pair.server)
        closes = of_type(events, ConnectionTerminated)
        assert len(closes) <= 1


def test_idle_timeout_closes_and_tells_the_peer() -> None:
    pair = MuxPair(Config(idle_timeout=5.0), Config(idle_timeout=10.0))
    pair.drive()
    deadline = pair.client.next_timer()
    assert deadline is not None and deadline == pytest.approx(pair.now + 5.0, abs=0.1)
    pair.client.handle_timer(deadline)
    assert pair.events(pair.client)[-1] == ConnectionTerminated(0, "idle timeout", False, False)
    pair.drive()
    assert pair.events(pair.server)[-1] == ConnectionTerminated(0, "idle timeout", True, False)


def test_keepalive_sends_pings() -> None:
    pair = MuxPair(Config(keepalive_interval=1.0, idle_timeout=0))
    pair.drive()
    deadline = pair.client.next_timer()
    assert deadline is not None
    pair.client.handle_timer(deadline)
    assert pair.client.data_to_send(deadline)
    assert not pair.events(pair.client)[1:]  # internal pings produce no event


def test_connection_lost_terminates() -> None:
    pair = _hello_done()
    pair.client.connection_lost("TCP connection lost: reset", 2.0)
    assert pair.events(pair.client)[-1] == ConnectionTerminated(
        LOST_CODE, "TCP connection lost: reset", False, False
    )
    assert pair.client.is_closed
    assert pair.client.data_to_send() == b""


def test_misuse_raises_stream_state_error() -> None:
    pair = _hello_done()
    with pytest.raises(StreamStateError):
        pair.client.read_stream(0)  # never opened
    uni = pair.client.open_stream(bidirectional=False)
    with pytest.raises(StreamStateError):
        pair.client.read_stream(uni)  # send-only
    with pytest.raises(StreamStateError):
        pair.client.stop_sending(uni, 1)
    with pytest.raises(StreamStateError):
        pair.client.send_stream(3, b"x")  # the server's uni stream
    with pytest.raises(StreamStateError):
        pair.client.stream_send_budget(1)  # not opened by the server


def test_round_robin_interleaves_streams() -> None:
    pair = MuxPair(max_bytes=64 * 1024)
    a, b = pair.client.open_stream(), pair.client.open_stream()
    pair.client.send_stream(a, bytes(200_000))
    pair.client.send_stream(b, bytes(200_000))
    pair.server.receive_data(pair.client.data_to_send(0.0, max_bytes=64 * 1024), 0.0)
    assert len(pair.server.read_stream(a)) == len(pair.server.read_stream(b)) == 32 * 1024


def test_stats_take_kernel_figures_when_given() -> None:
    info = KernelTcpInfo(
        smoothed_rtt=0.012,
        congestion_window_bytes=14480,
        bytes_in_flight=2896,
        retransmitted_segments=3,
        mss=1448,
    )
    mux = TcpMux(Config(), is_client=True, now=0.0, kernel_info=lambda: info)
    stats = mux.stats
    assert (stats.smoothed_rtt, stats.congestion_window, stats.bytes_in_flight) == (0.012, 14480, 2896)
    assert (stats.packets_lost, stats.bytes_lost) == (3, 3 * 1448)
    assert TcpMux(Config(), is_client=True, now=0.0).stats.congestion_window == 0
