"""TcpMux takes the time from each call that carries it and stores no clock.

CREDIT is written (and the window tuned) by the ``data_to_send(now)`` after a read, and a PING is timed
by the ``data_to_send(now)`` that writes it; without ``now`` neither is timed.
"""

from __future__ import annotations

import pytest

from rudp.config import Config
from rudp.quic.events import Event, PingAcknowledged
from rudp.tcp import STREAM_WINDOW_FLOOR, TcpMux
from rudp.tcp.framing import Credit, Frame, FrameDecoder, Ping, Pong
from rudp.tcp.liveness import MAX_PINGS_IN_FLIGHT, Pings
from rudp.tcp.output import Outbox
from rudp.tcp.state import Lifecycle
from tests.tcp.pair import MuxPair

WINDOW = STREAM_WINDOW_FLOOR
QUARTER = WINDOW // 4


def _frames(data: bytes) -> list[Frame]:
    return list(FrameDecoder().feed(data))


def _loaded_pair() -> tuple[MuxPair, int]:
    """A pair whose server holds one full window of a client stream, with a 100 ms RTT sample."""
    config = Config(initial_max_stream_data=WINDOW, max_stream_window=1 << 20)
    pair = MuxPair(config, config, delay=0.05)
    pair.drive()
    assert pair.server.stats.smoothed_rtt == pytest.approx(0.1)
    sid = pair.client.open_stream()
    pair.client.send_stream(sid, bytes(WINDOW))
    pair.drive()
    assert pair.server.stats.recv_buffered_bytes == WINDOW
    return pair, sid


def test_credit_leaves_with_the_next_output_and_its_time_tunes_the_window() -> None:
    pair, sid = _loaded_pair()
    server, t = pair.server, pair.now
    assert len(server.read_stream(sid, QUARTER)) == QUARTER
    assert _frames(server.data_to_send(t)) == [Credit(sid, QUARTER)]
    # a second credit within two RTTs doubles the window: the increment carries the growth
    assert len(server.read_stream(sid, QUARTER)) == QUARTER
    assert _frames(server.data_to_send(t + 0.15)) == [Credit(sid, QUARTER + WINDOW)]
    # the window is now 2 * WINDOW: half a window read is a quarter of it; a second later, no growth
    assert len(server.read_stream(sid, QUARTER)) == QUARTER
    assert server.data_to_send(t + 0.2) == b""
    assert len(server.read_stream(sid, QUARTER)) == QUARTER
    assert _frames(server.data_to_send(t + 1.2)) == [Credit(sid, 2 * QUARTER)]


def test_credit_without_time_is_sent_but_never_grows_the_window() -> None:
    pair, sid = _loaded_pair()
    server, t = pair.server, pair.now
    server.read_stream(sid, QUARTER)
    assert _frames(server.data_to_send(t)) == [Credit(sid, QUARTER)]
    server.read_stream(sid, QUARTER)
    assert _frames(server.data_to_send()) == [Credit(sid, QUARTER)]  # no time: no growth


def test_a_ping_is_timed_by_the_output_that_carries_it() -> None:
    client = TcpMux(Config(), is_client=True, now=0.0)
    server = TcpMux(Config(), is_client=False, now=0.0)
    server.receive_data(client.data_to_send(), 0.0)  # HELLO and the early PING, written untimed
    client.receive_data(server.data_to_send(0.0), 0.5)  # its PONG
    assert client.stats.latest_rtt == 0.0  # an untimed PING gives no RTT sample
    uid = client.ping()
    server.receive_data(client.data_to_send(1.0), 1.1)
    client.receive_data(server.data_to_send(1.1), 1.3)
    events = []
    while (event := client.next_event()) is not None:
        events.append(event)
    assert PingAcknowledged(uid) in events
    assert client.stats.latest_rtt == pytest.approx(0.3)


def test_unanswered_pings_are_remembered_only_up_to_the_bound() -> None:
    """A peer that never answers PINGs cannot grow the table of PINGs in flight without limit."""
    events: list[Event] = []
    outbox = Outbox(Lifecycle(events.append))
    pings = Pings(outbox, events.append)
    for i in range(3 * MAX_PINGS_IN_FLIGHT):
        pings.ping()
        pings.write(float(i))
    assert pings.in_flight == MAX_PINGS_IN_FLIGHT
    sent = [f for f in _frames(outbox.take()) if isinstance(f, Ping)]
    assert len(sent) == 3 * MAX_PINGS_IN_FLIGHT
    # the newest PING is still answered (event and RTT sample); the oldest was forgotten
    pings.on_pong(Pong(sent[0].token), now=1000.0)
    assert events == [] and pings.in_flight == MAX_PINGS_IN_FLIGHT
    pings.on_pong(Pong(sent[-1].token), now=3 * MAX_PINGS_IN_FLIGHT - 0.5)
    assert events == [PingAcknowledged(3 * MAX_PINGS_IN_FLIGHT)]
    assert pings.smoothed_rtt == pytest.approx(0.5)
    assert pings.in_flight == MAX_PINGS_IN_FLIGHT - 1
