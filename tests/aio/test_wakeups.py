"""Fewer event-loop wake-ups per small request (issue 13): no flush for a read that returns no credit,
and an endpoint timer that is not re-made on every flush, without ever stranding data or a deadline.

The timer tests drive :class:`LoopTimer` on a fake loop (deterministic: the test moves its clock); the
flush tests run a real client and server on loopback.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import rudp
from rudp.aio.driver import LoopTimer
from rudp.aio.endpoint import FLUSH_DEFERRALS, UdpEndpoint

WAIT = 10.0


class _Handle:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """``time()`` and ``call_at()`` of an event loop whose clock only the test moves."""

    def __init__(self, resolution: float = 1e-9) -> None:
        self._clock_resolution = resolution
        self.now = 100.0
        self.armed: list[float] = []  # every call_at's time, in order
        self._heap: list[tuple[float, int, _Handle]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle(when, callback)
        self.armed.append(when)
        heapq.heappush(self._heap, (when, next(self._seq), handle))
        return handle

    def live(self) -> list[float]:
        """The firing times of the handles not cancelled."""
        return sorted(when for when, _, handle in self._heap if not handle.cancelled)

    def advance(self, to: float) -> None:
        """Run every live handle due by ``to``, each at its own time, in order."""
        while self._heap and self._heap[0][0] <= to:
            when, _, handle = heapq.heappop(self._heap)
            if not handle.cancelled:
                self.now = max(self.now, when)
                handle.callback()
        self.now = max(self.now, to)


def _timer(loop: FakeLoop) -> tuple[LoopTimer, list[float]]:
    fired: list[float] = []
    timer = LoopTimer(loop, lambda: fired.append(loop.time()))  # type: ignore[arg-type]
    return timer, fired


def test_a_later_deadline_replaces_the_handle_so_the_loop_never_wakes_early() -> None:
    """A PTO or idle deadline moving later with each flush: a handle kept for the old time would wake
    the loop there for nothing but re-arming (an idle timer callback, bulk.py's "idle/all timers")."""
    loop = FakeLoop()
    timer, fired = _timer(loop)
    timer.arm(101.0)
    for later in (101.5, 102.0, 103.0):
        timer.arm(later)
    assert loop.armed == [101.0, 101.5, 102.0, 103.0]
    assert loop.live() == [103.0]  # the others were cancelled: no wake-up before the deadline
    loop.advance(102.999)
    assert fired == []
    loop.advance(103.0)
    assert fired == [103.0]
    assert timer.deadline is None
    loop.advance(200.0)
    assert fired == [103.0]  # once per deadline


def test_an_earlier_deadline_replaces_the_handle() -> None:
    loop = FakeLoop()
    timer, fired = _timer(loop)
    timer.arm(102.0)
    timer.arm(101.0)  # an ACK deadline before the PTO: must not wait for the later handle
    assert loop.armed == [102.0, 101.0]
    loop.advance(101.0)
    assert fired == [101.0]
    loop.advance(103.0)
    assert fired == [101.0]  # the replaced handle was cancelled


def test_no_deadline_cancels_and_a_moved_deadline_fires_once() -> None:
    loop = FakeLoop()
    timer, fired = _timer(loop)
    timer.arm(101.0)
    timer.arm(None)
    loop.advance(105.0)
    assert fired == []
    timer.arm(106.0)
    timer.arm(107.0)
    timer.arm(106.5)  # each move to another time makes the handle for it
    assert loop.armed == [101.0, 106.0, 107.0, 106.5]
    loop.advance(110.0)
    assert fired == [106.5]


def test_coarse_clock_never_calls_back_before_the_deadline() -> None:
    loop = FakeLoop(resolution=0.001)  # uvloop: whole milliseconds
    timer, fired = _timer(loop)
    timer.arm(100.0004)
    timer.arm(100.0007)  # still within the tick the handle was rounded up to
    assert loop.armed == [100.001]
    timer.arm(100.0012)  # past it: a new handle, rounded up again (the old one would wake for nothing)
    assert loop.armed == [100.001, 100.002] and loop.live() == [100.002]
    timer.arm(100.0002)  # earlier than the kept handle's deadline: replaced, never late
    assert loop.live() == [100.001]
    loop.advance(100.003)
    assert fired == [100.001]


# ------------------------------------------------------------------ flushes over loopback


async def _small_responses(conn: rudp.Connection) -> None:
    tasks: set[asyncio.Task[None]] = set()

    async def answer(stream: rudp.Stream) -> None:
        size = int(await stream.read())
        stream.write(b"r" * size)
        stream.write_eof()
        await stream.drain()

    async for stream in conn:
        task = asyncio.create_task(answer(stream))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def _count_flush_requests(conn: rudp.Connection) -> list[int]:
    """Count the client link's flush requests (the instance attribute shadows the method)."""
    link: Any = conn._driver.link
    original = link.request_flush
    counted: list[int] = []

    def counting() -> None:
        counted.append(1)
        original()

    link.request_flush = counting
    return counted


async def test_reading_a_small_response_asks_for_no_flush(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    """The client's read of a 100-byte answer returns no credit worth announcing: it costs no flush
    (it cost one, and a loop iteration, per request)."""
    async with (
        running_server(_small_responses) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(server_name="localhost")) as conn,
    ):
        counted = _count_flush_requests(conn)
        flushes: list[int] = []
        endpoint = conn._driver.link
        assert isinstance(endpoint, UdpEndpoint)
        original_flush = endpoint.flush

        def counting_flush() -> int:
            flushes.append(1)
            return original_flush()

        endpoint.flush = counting_flush  # type: ignore[method-assign]
        requests = 20
        for _ in range(requests):
            stream = await conn.open_stream()
            stream.write(b"100")
            stream.write_eof()
            before = len(counted)
            assert await asyncio.wait_for(stream.read(), WAIT) == b"r" * 100
            assert len(counted) == before  # the read (data, then the FIN) asked for nothing
        # Per request: the request goes out, the answer comes in (it was three: an empty one after
        # the read). Room for a timer's flush now and then.
        assert len(flushes) <= 2.5 * requests, len(flushes)


async def test_a_read_that_returns_credit_flushes_it(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    """No credit is stranded: after a read that makes MAX_STREAM_DATA due a flush is scheduled (the
    read asked for one, or the one an arrival scheduled is still pending), and a transfer of many
    receive windows completes while the client reads in small pieces."""
    window = 4096
    async with (
        running_server(_small_responses) as server,
        rudp.connect(
            "127.0.0.1",
            server.port,
            config=client_config(
                server_name="localhost", initial_max_stream_data=window, max_stream_window=window
            ),
        ) as conn,
    ):
        counted = _count_flush_requests(conn)
        stream = await conn.open_stream()
        size = 40 * window
        stream.write(b"%d" % size)
        stream.write_eof()
        endpoint = conn._driver.link
        assert isinstance(endpoint, UdpEndpoint)
        got = 0
        covered = 0
        while True:
            before = len(counted)
            chunk = await asyncio.wait_for(stream.read(1000), WAIT)
            if not chunk:
                break
            got += len(chunk)
            if endpoint.quic.output_pending:  # (credit, or an ACK) due: a flush must be on its way
                assert endpoint._flush_scheduled
                covered += len(counted) > before or endpoint._flush_scheduled
        assert got == size
        # Half a window (2048 bytes) read makes an update due: about one read in three has output due.
        assert covered >= size // window


async def test_the_next_request_carries_the_ack_a_response_made_due(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    """A response of several packets makes an ACK due at once (RFC 9000 §13.2.2). The endpoint hands
    the packets' events to the application before it transmits, and transmits once the tasks they woke
    have run: the request the client sends as soon as it has read the response carries that ACK, one
    datagram per round (flushing at once sent an ACK-only datagram first: two per round)."""
    size = 4000  # three packets of 1350-byte datagrams
    rounds = 10
    async with (
        running_server(_small_responses, max_pmtu=1350) as server,
        rudp.connect(
            "127.0.0.1", server.port, config=client_config(server_name="localhost", max_pmtu=1350)
        ) as conn,
    ):
        endpoint = conn._driver.link
        assert isinstance(endpoint, UdpEndpoint) and endpoint.io is not None
        stats = endpoint.io.stats

        async def get() -> bytes:
            stream = await conn.open_stream()
            stream.write(b"%d" % size)
            stream.write_eof()
            return await stream.read()

        assert await asyncio.wait_for(get(), WAIT) == b"r" * size  # (handshake done, stream credit)
        sent, received = stats.datagrams_sent, stats.datagrams_received
        for _ in range(rounds):
            assert await asyncio.wait_for(get(), WAIT) == b"r" * size
        assert stats.datagrams_received - received >= 3 * rounds  # each response was several packets
        # One datagram per round; the ACK of the last response may still leave alone.
        assert stats.datagrams_sent - sent <= rounds + 1


async def _pass_of_flush(endpoint: UdpEndpoint, command_at: int | None = None) -> list[int]:
    """The loop passes (counted by a callback ready in every pass) at which ``endpoint`` flushed after
    an input (an empty batch of datagrams); ``command_at``: a command asks for a flush in that pass."""
    loop = asyncio.get_running_loop()
    passes = 0
    flushed_at: list[int] = []
    done = loop.create_future()

    def busy() -> None:  # one ready callback in every loop pass
        nonlocal passes
        passes += 1
        if passes == command_at:
            endpoint.request_flush()
        if passes < 5 * FLUSH_DEFERRALS:
            loop.call_soon(busy)
        else:
            done.set_result(None)

    def flush() -> int:
        flushed_at.append(passes)
        return 0

    endpoint.flush = flush  # type: ignore[method-assign]
    loop.call_soon(busy)
    endpoint._on_datagrams([])
    endpoint._on_datagrams([])  # coalesced
    await done
    return flushed_at


async def test_the_flush_after_an_input_waits_for_ready_work_but_a_bounded_number_of_passes() -> None:
    """The flush an input scheduled lets the callbacks that are ready run first (the tasks the input
    woke may answer in the same transmission), but a loop that never runs dry still flushes after
    FLUSH_DEFERRALS passes."""
    # It waited while work was ready, then flushed once, in the pass after its last deferral.
    assert await _pass_of_flush(UdpEndpoint(rudp.Config())) == [FLUSH_DEFERRALS + 1]


async def test_the_flush_after_an_input_goes_with_the_first_answer() -> None:
    """A command (the application's answer) ends the wait: the waiting flush runs at its next turn
    (here in the same pass, after the command), and what the loop runs after it runs while the peer
    already has the answer."""
    assert await _pass_of_flush(UdpEndpoint(rudp.Config()), command_at=3) == [3]


async def test_a_flush_during_the_handshake_does_not_wait() -> None:
    """While the handshake is under way (a client's 0-RTT request, RFC 9001 §4.6.1) the flush goes
    out on the next pass, before the server's answer can make it a 1-RTT packet."""
    endpoint = UdpEndpoint(rudp.Config())
    endpoint._client_core = SimpleNamespace(handshake_complete=False)  # type: ignore[assignment]
    assert await _pass_of_flush(endpoint) == [1]


async def _burst(conn: rudp.Connection, count: int) -> tuple[int, list[bytes]]:
    """``count`` requests made in one loop pass (each a write and a FIN); (datagrams the client sent
    while making them, the answers)."""
    endpoint = conn._driver.link
    assert isinstance(endpoint, UdpEndpoint) and endpoint.io is not None
    stats = endpoint.io.stats
    streams = [await conn.open_stream() for _ in range(count)]
    await asyncio.wait_for(asyncio.gather(*(s.drain() for s in streams)), WAIT)  # nothing pending
    sent = stats.datagrams_sent
    for i, stream in enumerate(streams):
        stream.write(b"%d" % (100 + i))
        stream.write_eof()
    during = stats.datagrams_sent - sent  # only a portion can have left inside the commands
    answers = await asyncio.wait_for(asyncio.gather(*(s.read() for s in streams)), WAIT)
    return during, answers


async def test_a_burst_of_commands_leaves_in_portions(
    running_server: Any, client_config: Callable[..., rudp.Config], monkeypatch: Any
) -> None:
    """Requests made in one loop pass leave a portion of FLUSH_PORTION commands at a time, while the
    application is still making the rest (the peer starts on them: issue 13); every answer intact."""
    from rudp.aio import endpoint as endpoint_module

    count = 24  # 48 commands: one portion of 32 inside the burst, the rest at the scheduled flush
    async with (
        running_server(_small_responses) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(server_name="localhost")) as conn,
    ):
        during, answers = await _burst(conn, count)
        assert during == 1
        assert answers == [b"r" * (100 + i) for i in range(count)]
        monkeypatch.setattr(endpoint_module, "FLUSH_PORTION", 10_000)
        during, answers = await _burst(conn, count)
        assert during == 0  # without portions everything waits for the scheduled flush
        assert answers == [b"r" * (100 + i) for i in range(count)]


async def test_a_portion_transmits_without_dispatching_events() -> None:
    """A portion only transmits: the events of the connections it flushed are dispatched by the
    scheduled flush, never from inside the application's command."""
    from rudp.aio.endpoint import FLUSH_PORTION

    endpoint = UdpEndpoint(rudp.Config())
    calls: list[str] = []
    endpoint._io = SimpleNamespace(closing=False)  # type: ignore[assignment]
    endpoint._transmit = lambda io: calls.append("transmit") or 0  # type: ignore[method-assign]
    endpoint._dispatch = lambda cores, **kw: calls.append("dispatch")  # type: ignore[method-assign]
    endpoint.request_flush()  # schedules the flush
    for _ in range(FLUSH_PORTION):
        endpoint.request_flush()
    assert calls == ["transmit"]
    turn = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(turn.set_result, None)
    await turn  # the scheduled flush's turn (queued before this one)
    assert calls == ["transmit", "transmit", "dispatch"]


async def _flushes_of_input(endpoint: UdpEndpoint, *, other_work: bool) -> list[str]:
    """When ``endpoint`` flushed after an input (an empty batch) that woke no task: "inside" the input
    or "later" (a scheduled flush); ``other_work``: a callback was already waiting to run."""
    loop = asyncio.get_running_loop()
    where = "inside"
    flushed: list[str] = []

    def flush() -> int:
        flushed.append(where)
        return 0

    endpoint.flush = flush  # type: ignore[method-assign]
    await asyncio.sleep(0)  # (a pass of its own: nothing else is ready when the input comes)
    if other_work:
        loop.call_soon(lambda: None)
    endpoint._on_datagrams([])
    where = "later"
    for _ in range(FLUSH_DEFERRALS + 2):
        await asyncio.sleep(0)
    return flushed


async def test_a_handshake_input_that_woke_nothing_flushes_at_once() -> None:
    """The shortcut: during a handshake, with nothing else to run in this pass or the next, the flush an
    input needs goes out inside the input, where the general path (a scheduled flush) would run it
    first thing in the next pass: the same flush, without the extra loop pass."""
    endpoint = UdpEndpoint(rudp.Config())
    endpoint._client_core = SimpleNamespace(handshake_complete=False)  # type: ignore[assignment]
    assert await _flushes_of_input(endpoint, other_work=False) == ["inside"]


async def test_an_input_falls_back_to_the_scheduled_flush() -> None:
    """The general path stays: with other work ready (it may answer and join the flush), and with no
    handshake under way (the flush then waits for ready work), the flush is scheduled."""
    handshaking = UdpEndpoint(rudp.Config())
    handshaking._client_core = SimpleNamespace(handshake_complete=False)  # type: ignore[assignment]
    assert await _flushes_of_input(handshaking, other_work=True) == ["later"]
    established = UdpEndpoint(rudp.Config())
    established._client_core = SimpleNamespace(handshake_complete=True)  # type: ignore[assignment]
    assert await _flushes_of_input(established, other_work=False) == ["later"]
