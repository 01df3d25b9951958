"""The asyncio side of the core contract: :class:`StreamCore`, :class:`Link` and :class:`ConnectionDriver`.

This module is the meeting point of the two transports. The sans-IO QUIC connection
(:class:`rudp.quic.connection.QuicConnection`) and the TCP baseline's mux (``rudp.tcp``) both satisfy
:class:`StreamCore`; the public :class:`rudp.aio.connection.Connection` and
:class:`rudp.aio.stream.Stream` only ever talk to a :class:`ConnectionDriver`, so both transports share
one code path above this line.

Who does what (the contract, stable API):

* A **core** (:class:`StreamCore`) is a sans-IO state machine. It is never called from two places at
  once and never does I/O; time is passed in as ``now`` (the event loop's ``loop.time()``).
* A **link** (:class:`Link`) owns the socket(s) and the timer. After every *input* (bytes or datagrams
  received, a timer fired) and after every batch of *commands* it runs, in this order: transmit
  everything the core wants to send, re-arm its timer from ``core.next_timer()``, then call
  :meth:`ConnectionDriver.dispatch_events` of each driver it serves. The QUIC link is
  :class:`rudp.aio.endpoint.UdpEndpoint` (one socket, many connections, one timer). A transport with one
  core per socket (TCP) subclasses :class:`SingleCoreLink` and implements :meth:`SingleCoreLink.transmit`
  (for TCP: ``transport.write(mux.data_to_send())``); on input it calls ``receive_data(...)`` on the core
  and then :meth:`SingleCoreLink.flush`.
* A **driver** (:class:`ConnectionDriver`) pairs one core with its link. The application layer issues
  commands directly on ``driver.core`` and then calls :meth:`ConnectionDriver.after_command`, which asks
  the link for a (coalesced, next loop iteration) flush; a link may transmit part of a long burst of
  commands early (the UDP endpoint's ``FLUSH_PORTION``), but events are only ever dispatched by the
  flush, never from inside a command. Events pulled from the core are handed to the driver's
  :class:`EventSink` (the :class:`~rudp.aio.connection.Connection`).

How a transport module plugs in (what ``rudp._api`` expects of ``rudp.aio.tcp``)::

    async def tcp_connect(host: str, port: int, config: Config) -> Connection
        # handshake done on return; raises ConnectTimeout (config.handshake_timeout), HandshakeFailed,
        # ConnectionRefused, NameResolutionError or NetworkError: rudp errors, as QUIC's connect.
    async def tcp_listen(host: str | None, port: int, config: Config,
                         on_connection: Callable[[Connection], None]) -> Listener
        # on_connection is called once per accepted connection, after its handshake; rudp.aio.server
        # runs the user's handler for it. ``Listener`` is the protocol below.

Build the Connection as ``Connection(ConnectionDriver(core, link), is_client=...)``; a core whose
``handshake_complete`` is already True (TLS done by ``ssl``) counts as established at once.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sized
from typing import Protocol

from rudp.quic.events import ConnectionTerminated, Event
from rudp.quic.stats import ConnectionStats
from rudp.quic.weak_callbacks import weak_callback

Address = tuple[str, int]
"""A peer address as (host, port)."""


class StreamCore(Protocol):
    """What the asyncio layer needs from a sans-IO connection (QuicConnection, TcpMux).

    Inputs and outputs proper (datagrams, bytes) are transport-specific and handled by the link; the
    methods here are the timer, the event queue, the commands and read-only state. Commands raise
    ``ConnectionClosed`` once the connection is closing, and ``StreamStateError`` for misuse;
    ``open_stream`` raises ``StreamLimitReached`` when the peer's stream limit is reached (a
    ``StreamsAvailable`` event follows when it rises). ``send_datagram`` raises ``DatagramError`` when
    datagrams were not negotiated or the datagram is too large.
    """

    def handle_timer(self, now: float) -> None:
        """Process every timer due at ``now``."""

    def next_timer(self) -> float | None:
        """The earliest deadline for :meth:`handle_timer`, or None."""

    def next_event(self) -> Event | None:
        """Pop the next event (the classes of :mod:`rudp.quic.events`), or None."""

    def open_stream(self, *, bidirectional: bool = True) -> int:
        """Open a local stream and return its ID."""

    def read_stream(self, stream_id: int, max_bytes: int = -1) -> bytes:
        """Consume up to ``max_bytes`` in-order bytes (all when negative); b"" when none."""

    def stream_at_eof(self, stream_id: int) -> bool:
        """True once all data and the FIN were read, or the stream was reset or stopped."""

    def send_stream(self, stream_id: int, data: bytes | memoryview, *, fin: bool = False) -> int:
        """Queue data (and FIN, if all of it is taken); return the number of bytes accepted."""

    def reset_stream(self, stream_id: int, code: int) -> None:
        """Abandon sending on a stream with an application error code."""

    def stop_sending(self, stream_id: int, code: int) -> None:
        """Ask the peer to stop sending on a stream."""

    def send_datagram(self, data: bytes) -> None:
        """Queue an unreliable datagram."""

    def ping(self) -> int:
        """Send a ping; the returned id comes back in a ``PingAcknowledged`` event."""

    def close(self, code: int = 0, reason: str = "", *, application: bool = True) -> None:
        """Close the connection (idempotent); a ``ConnectionTerminated`` event follows."""

    @property
    def is_closed(self) -> bool:
        """True once nothing more will be sent or timed."""

    @property
    def handshake_complete(self) -> bool:
        """True once the handshake completed."""

    @property
    def alpn_protocol(self) -> str | None:
        """The negotiated ALPN protocol."""

    @property
    def session_resumed(self) -> bool:
        """True when the session was resumed from a ticket."""

    @property
    def early_data_accepted(self) -> bool:
        """True when 0-RTT data was accepted."""

    @property
    def close_cause(self) -> ConnectionTerminated | None:
        """Why the connection ended, or None while it is alive."""

    @property
    def stats(self) -> ConnectionStats:
        """A statistics snapshot (fields a transport does not measure are 0)."""

    @property
    def peer_address(self) -> Address:
        """The peer's current address."""


class Link(Protocol):
    """The I/O owner a driver is attached to (see the module docstring for the flush order)."""

    def request_flush(self) -> None:
        """Transmit, re-arm the timer and dispatch events soon (coalesced; never re-entrant)."""

    def output_due(self) -> bool:
        """True when a core of this link may have something to transmit (False only when it knows
        none has, or a flush already scheduled will send it: a request would add nothing)."""


class EventSink(Protocol):
    """Receives a core's events (implemented by :class:`rudp.aio.connection.Connection`)."""

    def handle_event(self, event: Event) -> None:
        """Handle one event; must not call back into the link synchronously."""


def _no_sink() -> None:
    """The sink of a driver without one (events wait in the core)."""


class ConnectionDriver:
    """One core plus the link that moves its bytes: the single code path of both transports.

    The application layer calls commands on :attr:`core`, then :meth:`after_command`. The link calls
    :meth:`dispatch_events` after transmitting; events go to :attr:`sink` in order.
    """

    def __init__(self, core: StreamCore, link: Link) -> None:
        self.core = core
        self.link = link
        self._sink: Callable[[], EventSink | None] = _no_sink
        """Where events go (a weak reference: the Connection that owns this driver is the sink, and a
        strong reference back would make the two a reference cycle, freed only by a collection)."""
        self.unflushed = False
        """True from a command until the link's next dispatch: what the command queued may be unsent."""
        self.on_dispatched: Callable[[], None] | None = None
        """Called after each dispatch, i.e. after the link transmitted: lets a waiter re-check the core
        (the Connection uses it to wait until queued stream data is delivered)."""

    @property
    def sink(self) -> EventSink | None:
        """Where events go; set by the Connection that owns this driver (held weakly)."""
        return self._sink()

    @sink.setter
    def sink(self, sink: EventSink | None) -> None:
        self._sink = _no_sink if sink is None else weakref.ref(sink)

    def after_command(self) -> None:
        """Ask the link to transmit what the last command(s) produced (coalesced).

        Call it only after a command that changed the core: the link flushes (and dispatches) the cores
        that changed, and :attr:`unflushed` stays True until it does.
        """
        self.unflushed = True
        self.link.request_flush()

    def after_read(self) -> None:
        """After a read: ask for a flush only when the link has output due (the read returned
        flow-control credit, RFC 9000 §4.2). A read that returned none costs no flush, nor the loop
        iteration of one (issue 13: one per small request)."""
        link = self.link
        if link.output_due():
            link.request_flush()

    def dispatch_events(self, *, transmitted: bool = True) -> None:
        """Hand every pending core event to the sink (events are kept until a sink is attached).

        ``transmitted=False``: the link dispatches an input's events before transmitting (so that the
        answers the application gives at once leave with the ACKs owed); :attr:`unflushed` then stays.
        """
        sink = self._sink()
        if sink is None:
            return
        if transmitted:
            self.unflushed = False  # the link transmitted just before
        core = self.core
        while (event := core.next_event()) is not None:
            sink.handle_event(event)
        if self.on_dispatched is not None:
            self.on_dispatched()


class Listener(Protocol):
    """A listening transport as seen by :class:`rudp.aio.server.Server`."""

    @property
    def port(self) -> int:
        """The local port number listened on."""

    def close(self) -> None:
        """Stop listening and close every connection this listener serves."""

    async def wait_closed(self) -> None:
        """Wait until the sockets are closed."""


MIN_TIMER_GRANULARITY = 0.001
"""The shortest timer wait any loop honours here, seconds: epoll and select take whole milliseconds, and
libuv (uvloop) keeps its clock and its timers in milliseconds."""
_FINE_CLOCK = 1e-6
"""A loop clock at least this fine never fires a timer early enough to matter: no rounding needed."""


def loop_has_ready_work(loop: asyncio.AbstractEventLoop) -> bool:
    """True when callbacks besides the running one wait to run in this loop pass (asyncio's ready
    queue); False when the loop would poll its sockets next, or it does not tell (uvloop)."""
    ready = getattr(loop, "_ready", None)
    try:
        return bool(ready)
    except TypeError:  # not a sized container: an unknown loop
        return False


def loop_ready_queue(loop: asyncio.AbstractEventLoop) -> Sized | None:
    """asyncio's ready queue of ``loop`` (the callbacks of this loop pass), or None when the loop does
    not tell (uvloop): its length tells whether a callback scheduled something to run."""
    ready = getattr(loop, "_ready", None)
    return ready if isinstance(ready, Sized) else None


def loop_clock_resolution(loop: asyncio.AbstractEventLoop) -> float:
    """The resolution of ``loop.time()``, seconds: asyncio's ``_clock_resolution`` (the monotonic
    clock's), else 1 ms (uvloop and other libuv loops: ``loop.time()`` is libuv's millisecond clock)."""
    resolution = getattr(loop, "_clock_resolution", None)
    if isinstance(resolution, int | float) and not isinstance(resolution, bool) and resolution > 0:
        return float(resolution)
    return MIN_TIMER_GRANULARITY


def loop_timer_granularity(loop: asyncio.AbstractEventLoop) -> float:
    """The shortest timer wait ``loop`` honours: its clock resolution, at least 1 ms."""
    return max(MIN_TIMER_GRANULARITY, loop_clock_resolution(loop))


class LoopTimer:
    """One re-armable ``loop.call_at`` timer: the single timer of a link or an endpoint.

    On a loop with a coarse clock (uvloop: ``loop.time()`` and its timers are whole milliseconds, and a
    sub-millisecond delay is rounded to the nearest, often 0) the wait is rounded *up* to the clock's
    resolution, so the callback never runs while ``loop.time()`` is still before the deadline: a core
    handed such a time finds nothing due, re-arms the same deadline and the loop spins.

    A deadline that moves but still falls at or before the armed handle's firing time (on a coarse
    clock: within the tick it was rounded up to) keeps that handle. Any other move replaces it: a
    handle kept for a deadline that moved later would wake the loop early only to re-arm, an idle timer
    callback (issue 13's "no timer spin": bulk transfers push the PTO later on every flush, and kept
    handles made every timer callback of a 32 MiB run such a wake-up). So the callback runs once per
    deadline reached, never before it, and the loop never wakes for nothing.
    """

    __slots__ = ("_armed_for", "_callback", "_handle", "_handle_at", "_loop", "_resolution", "deadline")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for = 0.0  # the deadline the armed handle was made for
        self._handle_at = 0.0  # when it fires (loop time; later on a coarse clock)
        resolution = loop_clock_resolution(loop)
        self._resolution = resolution if resolution >= _FINE_CLOCK else 0.0
        self.deadline: float | None = None
        """When the callback runs next (loop time), or None."""

    def arm(self, deadline: float | None) -> None:
        """Run the callback at ``deadline`` (None: never); a deadline between the armed handle's own
        and its firing time (the same coarse-clock tick) makes no new handle."""
        if deadline == self.deadline:
            return
        self.deadline = deadline
        handle = self._handle
        if handle is not None:
            if deadline is not None and self._armed_for <= deadline <= self._handle_at:
                return  # the armed handle fires at the new deadline's tick, not before it: keep it
            handle.cancel()
            self._handle = None
        if deadline is not None:
            self._start(deadline)

    def _start(self, deadline: float) -> None:
        when = deadline
        resolution = self._resolution
        if resolution:
            now = self._loop.time()
            if deadline > now:
                # Whole ticks from the loop's own "now", so the loop's rounding cannot make it early.
                when = now + math.ceil((deadline - now) / resolution - 1e-9) * resolution
        self._armed_for = deadline
        self._handle_at = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        deadline = self.deadline
        if deadline is None:
            return
        self.deadline = None
        self._callback()


class SingleCoreLink(ABC):
    """A :class:`Link` for transports with one core per socket: own timer, coalesced flushes.

    Subclasses implement :meth:`transmit`. Call :meth:`attach` with the driver before the first flush,
    :meth:`flush` after every input, and :meth:`stop` when the socket is gone.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.driver: ConnectionDriver | None = None
        self._timer = LoopTimer(self.loop, weak_callback(self._on_timer))  # (weak: no reference cycle)
        self._flush_scheduled = False
        self._stopped = False

    def attach(self, driver: ConnectionDriver) -> None:
        """Set the driver this link serves (once)."""
        self.driver = driver

    def detach(self) -> None:
        """Serve no driver any more (the socket is gone and its last events were dispatched): commands
        on the connection then reach a link that has nothing left to do."""
        self.driver = None

    @abstractmethod
    def transmit(self) -> None:
        """Send everything the core has to send (e.g. ``transport.write(core.data_to_send())``)."""

    def request_flush(self) -> None:
        """Schedule :meth:`flush` on the next loop iteration (at most one pending)."""
        if not self._flush_scheduled and not self._stopped:
            self._flush_scheduled = True
            self.loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def output_due(self) -> bool:
        """Always True: the core may owe credit after any read (a flush finds out)."""
        return True

    def flush(self) -> None:
        """Transmit, re-arm the timer, then dispatch events (call after every input)."""
        driver = self.driver
        if driver is None:
            return
        if not self._stopped:
            self.transmit()
        self._rearm(None if self._stopped else driver.core.next_timer())
        driver.dispatch_events()

    def stop(self) -> None:
        """The socket is gone: cancel the timer; pending events are still dispatched by :meth:`flush`."""
        self._stopped = True
        self._rearm(None)

    def _rearm(self, deadline: float | None) -> None:
        self._timer.arm(deadline)

    def _on_timer(self) -> None:
        driver = self.driver
        if driver is None or self._stopped:
            return
        driver.core.handle_timer(self.loop.time())
        self.flush()


__all__ = [
    "Address",
    "ConnectionDriver",
    "EventSink",
    "Link",
    "Listener",
    "LoopTimer",
    "SingleCoreLink",
    "StreamCore",
    "loop_has_ready_work",
]
