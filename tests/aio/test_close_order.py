"""After a close nothing waits: every pending and later call fails at once with the close error,
whatever the order of the core's events, and data that arrived before the close stays readable.

Two deterministic set-ups, no sockets: a fake core driven event by event (the exact order
ConnectionTerminated, then StreamOpened/StreamReadable/DatagramReceived), and a real QUIC server core
(handshake on the simulator) given one 1-RTT packet, protected with the real keys, that carries a STREAM
frame opening a stream and then CONNECTION_CLOSE. The same checks on real sockets, over QUIC and the TCP
baseline, are in ``test_close_semantics.py``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from rudp.aio.connection import Connection
from rudp.aio.driver import Address, ConnectionDriver
from rudp.codec.frames import ConnectionClose
from rudp.codec.frames import Stream as StreamFrame
from rudp.crypto.suites import CipherSuite
from rudp.errors import ConnectionClosed, StreamLimitReached
from rudp.quic.events import (
    ConnectionTerminated,
    DatagramReceived,
    Event,
    StreamOpened,
    StreamReadable,
    StreamsAvailable,
)
from rudp.quic.stats import ConnectionStats
from rudp.testing.certs import TestPki
from tests.support.sim import CLIENT_ADDR, Sniffer, make_sim

SAFETY = 2.0
"""wait_for bound of calls that must end at once (a hang fails the test instead of blocking it)."""
CLOSE_CODE, CLOSE_REASON = 0x42, "bye"


class FakeLink:
    """A link that never flushes by itself: the test dispatches events when it wants."""

    def request_flush(self) -> None:
        pass

    def output_due(self) -> bool:
        return False


class FakeCore:
    """A StreamCore whose events the test queues; streams are byte buffers with an optional FIN."""

    def __init__(self) -> None:
        self.events: deque[Event] = deque()
        self.buffers: dict[int, bytearray] = {}
        self.fins: set[int] = set()
        self.closed: ConnectionTerminated | None = None
        self.stream_limit = 0

    def _check_open(self) -> None:
        if self.closed is not None:
            raise ConnectionClosed(self.closed.code, self.closed.reason, by_peer=self.closed.by_peer)

    def handle_timer(self, now: float) -> None:
        pass

    def next_timer(self) -> float | None:
        return None

    def next_event(self) -> Event | None:
        return self.events.popleft() if self.events else None

    def open_stream(self, *, bidirectional: bool = True) -> int:
        self._check_open()
        if self.stream_limit <= 0:
            raise StreamLimitReached("no stream credit")
        self.stream_limit -= 1
        return 0

    def read_stream(self, stream_id: int, max_bytes: int = -1) -> bytes:
        buffer = self.buffers.setdefault(stream_id, bytearray())
        size = len(buffer) if max_bytes < 0 else min(max_bytes, len(buffer))
        data = bytes(buffer[:size])
        del buffer[:size]
        return data

    def stream_at_eof(self, stream_id: int) -> bool:
        return stream_id in self.fins and not self.buffers.get(stream_id)

    def send_stream(self, stream_id: int, data: bytes | memoryview, *, fin: bool = False) -> int:
        self._check_open()
        return len(data)

    def reset_stream(self, stream_id: int, code: int) -> None:
        self._check_open()

    def stop_sending(self, stream_id: int, code: int) -> None:
        self._check_open()

    def send_datagram(self, data: bytes) -> None:
        self._check_open()

    def ping(self) -> int:
        self._check_open()
        return 1

    def close(self, code: int = 0, reason: str = "", *, application: bool = True) -> None:
        if self.closed is None:
            self.closed = ConnectionTerminated(code, reason, False, application)
            self.events.append(self.closed)

    @property
    def is_closed(self) -> bool:
        return self.closed is not None

    @property
    def handshake_complete(self) -> bool:
        return True

    @property
    def alpn_protocol(self) -> str | None:
        return "test"

    @property
    def session_resumed(self) -> bool:
        return False

    @property
    def early_data_accepted(self) -> bool:
        return False

    @property
    def close_cause(self) -> ConnectionTerminated | None:
        return self.closed

    @property
    def stats(self) -> ConnectionStats:
        return ConnectionStats(0.0, 0.0, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    @property
    def peer_address(self) -> Address:
        return ("127.0.0.1", 1)

    # -- what the peer does --------------------------------------------------------------------------

    def peer_data(self, stream_id: int, data: bytes, *, fin: bool = False, new: bool = False) -> None:
        self.buffers.setdefault(stream_id, bytearray()).extend(data)
        if fin:
            self.fins.add(stream_id)
        if new:
            self.events.append(StreamOpened(stream_id))
        self.events.append(StreamReadable(stream_id))

    def peer_close(self) -> None:
        self.closed = ConnectionTerminated(CLOSE_CODE, CLOSE_REASON, True, True)
        self.events.append(self.closed)


class Recorder:
    """An event sink that records each event, then hands it to the Connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.seen: list[Event] = []

    def handle_event(self, event: Event) -> None:
        self.seen.append(event)
        self.conn.handle_event(event)


def _check_close_error(error: BaseException) -> None:
    assert isinstance(error, ConnectionClosed), repr(error)
    assert (error.code, error.reason, error.by_peer) == (CLOSE_CODE, CLOSE_REASON, True)


async def _fails_at_once(call: Awaitable[object]) -> None:
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(call, SAFETY)
    _check_close_error(info.value)


async def _pending(call: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Start ``call`` and let it run up to its first wait; it must be waiting then."""
    task = asyncio.ensure_future(call)
    await asyncio.sleep(0)
    assert not task.done(), "the call did not wait"
    return task


async def test_events_after_connection_terminated_never_leave_a_waiter() -> None:
    core = FakeCore()
    driver = ConnectionDriver(core, FakeLink())
    conn = Connection(driver, is_client=True)
    core.peer_data(1, b"before", new=True)  # a server stream accepted before the close
    driver.dispatch_events()
    early = await conn.accept_stream()
    assert await early.read(100) == b"before"

    pending_read = await _pending(early.read())
    pending_exact = await _pending(early.readexactly(10))
    pending_accept = await _pending(conn.accept_stream())
    pending_datagram = await _pending(conn.receive_datagram())
    pending_open = await _pending(conn.open_stream())  # no stream credit: it waits
    pending_ping = await _pending(conn.ping())

    # The exact order of a packet carrying STREAM frames, a DATAGRAM and then CONNECTION_CLOSE, as the
    # QUIC core reports it: the termination first, then what the earlier frames produced.
    core.peer_close()
    core.events.append(DatagramReceived(b"last datagram"))
    core.peer_data(5, b"request", new=True)  # opened by the packet that closes, no FIN
    core.peer_data(9, b"whole", fin=True, new=True)  # opened and finished by it
    core.events.append(StreamsAvailable(True))
    driver.dispatch_events()

    for task in (pending_read, pending_exact, pending_open, pending_ping):
        await _fails_at_once(task)
    # What arrived before the close is still handed out first, then the error.
    late = await asyncio.wait_for(pending_accept, SAFETY)
    assert late.stream_id == 5
    assert await asyncio.wait_for(pending_datagram, SAFETY) == b"last datagram"
    await _fails_at_once(conn.receive_datagram())
    assert await late.read(3) == b"req"
    await _fails_at_once(late.read())  # read-to-end fails: no FIN came; the bytes stay buffered
    assert await late.read(100) == b"uest"
    await _fails_at_once(late.read(100))
    await _fails_at_once(late.readexactly(1))
    await _fails_at_once(late.readuntil(b"\n"))
    whole = await asyncio.wait_for(conn.accept_stream(), SAFETY)
    assert await asyncio.wait_for(whole.read(), SAFETY) == b"whole"  # complete before the close
    assert whole.at_eof()
    # Every later call fails at once.
    await _fails_at_once(conn.accept_stream())
    await _fails_at_once(conn.open_stream())
    await _fails_at_once(conn.ping())
    await _fails_at_once(early.read())
    await _fails_at_once(late.drain())
    with pytest.raises(ConnectionClosed):
        late.write(b"x")
    assert [stream async for stream in conn] == []
    assert conn.is_closed and conn.close_error is not None
    _check_close_error(conn.close_error)


async def test_stream_opened_after_termination_of_a_real_quic_packet(pki: TestPki, tmp_path: Path) -> None:
    """A client 1-RTT packet [STREAM(opens stream 4), CONNECTION_CLOSE] reaches a server Connection."""
    suite = CipherSuite.AES_128_GCM_SHA256
    keylog = tmp_path / "keys.log"
    sim = make_sim(pki, client={"secrets_log": keylog, "cipher_suites": [suite]})
    sim.handshake()
    sniffer = Sniffer(keylog, "CLIENT_TRAFFIC_SECRET_0", suite)
    core = sim.server.conn
    endpoint = sim.server.target  # fed directly from here on: the simulator's peer must not read
    driver = ConnectionDriver(core, FakeLink())
    conn = Connection(driver, is_client=False)
    recorder = Recorder(conn)
    driver.sink = recorder
    seen = recorder.seen
    packet_number = 1_000_000

    def inject(*frames: object) -> None:
        nonlocal packet_number
        packet_number += 1
        packet = sniffer.forge(core.local_cids()[0], packet_number, list(frames))  # type: ignore[arg-type]
        endpoint.receive_datagram(packet, CLIENT_ADDR, sim.clock.now)
        driver.dispatch_events()

    inject(StreamFrame(0, 0, b"first"))
    early = await asyncio.wait_for(conn.accept_stream(), SAFETY)
    assert await early.read(100) == b"first"
    pending_read = await _pending(early.read())
    pending_accept = await _pending(conn.accept_stream())

    seen.clear()
    inject(
        StreamFrame(4, 0, b"request"),
        ConnectionClose(CLOSE_CODE, CLOSE_REASON.encode(), 0, True),
    )
    kinds = [type(event).__name__ for event in seen]
    assert kinds.index("ConnectionTerminated") < kinds.index("StreamOpened"), kinds  # the hard order

    await _fails_at_once(pending_read)
    late = await asyncio.wait_for(pending_accept, SAFETY)
    assert late.stream_id == 4
    assert await asyncio.wait_for(late.read(100), SAFETY) == b"request"
    await _fails_at_once(late.read())
    await _fails_at_once(conn.accept_stream())
    await _fails_at_once(conn.open_stream())
    await _fails_at_once(conn.ping())
    await _fails_at_once(late.drain())
