"""Two sans-IO endpoints joined by simulated links, driven one event at a time on a virtual clock.

:class:`Pair` connects a client and a server endpoint through two :class:`~rudp.testing.link.Link`
objects (client-to-server and server-to-client). Each :meth:`Pair.step` takes the earliest pending event
(a datagram arriving, or an endpoint timer falling due), moves the virtual clock to it, feeds it to the
endpoint, and puts whatever that endpoint now wants to send on its outgoing link. :meth:`Pair.drive`
repeats that until a predicate holds, nothing is left to do, or a virtual-time budget runs out.

Any object with the four methods of :class:`SimEndpoint` can be driven: rudp's ``QuicConnection`` and a
thin adapter around another stack's sans-IO connection alike. Given the link seeds, a run is fully
deterministic, and nothing here sleeps or touches a socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from rudp.errors import RudpError
from rudp.testing.clock import VirtualClock
from rudp.testing.link import Addr, Datagram, Link, LinkConfig, TraceCallback

__all__ = ["Pair", "SimEndpoint", "SimulationError", "TimerLoopError"]

CLIENT_ADDR: Addr = ("10.0.0.1", 50000)
SERVER_ADDR: Addr = ("10.0.0.2", 4433)


@runtime_checkable
class SimEndpoint(Protocol):
    """The sans-IO surface the simulator drives (rudp's ``QuicConnection`` has exactly these)."""

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Take one datagram that arrived from ``addr`` at ``now``."""

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        """Return the datagrams to send now, each with its destination address."""

    def next_timer(self) -> float | None:
        """Return the absolute time the endpoint next wants :meth:`handle_timer`, or None."""

    def handle_timer(self, now: float) -> None:
        """Called at or after the time :meth:`next_timer` returned."""


class SimulationError(RudpError, RuntimeError):
    """The simulation could not make progress as asked (for example a step budget ran out)."""


class TimerLoopError(SimulationError):
    """An endpoint keeps asking for a timer that is already due, so virtual time cannot move."""


class Pair:
    """A client and a server endpoint on one simulated path.

    ``c2s`` and ``s2c`` are the two directions' :class:`LinkConfig` (default: a perfect link); the
    :class:`Link` objects are :attr:`c2s` and :attr:`s2c`, whose ``config`` can be changed mid-run and
    whose ``stats`` count datagrams and bytes. ``on_trace`` sees every datagram event of both links.
    """

    def __init__(
        self,
        client: SimEndpoint,
        server: SimEndpoint,
        *,
        client_addr: Addr = CLIENT_ADDR,
        server_addr: Addr = SERVER_ADDR,
        c2s: LinkConfig | None = None,
        s2c: LinkConfig | None = None,
        clock: VirtualClock | None = None,
        on_trace: TraceCallback | None = None,
        max_timer_repeats: int = 1000,
    ) -> None:
        self.client = client
        self.server = server
        self.client_addr = client_addr
        self.server_addr = server_addr
        self.clock = clock if clock is not None else VirtualClock()
        self.c2s = Link(c2s, name="c2s", on_trace=on_trace)
        self.s2c = Link(s2c, name="s2c", on_trace=on_trace)
        self.max_timer_repeats = max_timer_repeats
        self.steps = 0
        self._stale_client_addrs: set[Addr] = set()
        self._stale_server_addrs: set[Addr] = set()
        self._repeat_time = float("-inf")
        self._repeats = 0

    @property
    def now(self) -> float:
        """The current virtual time."""
        return self.clock.now

    # -- addressing ------------------------------------------------------------------------------

    def rebind_client(self, new_addr: Addr, *, keep_old: bool = False) -> Addr:
        """Give the client a new address, as a NAT rebinding would; return the old one.

        Datagrams the client sends from now on reach the server from ``new_addr``, and the server's
        datagrams to ``new_addr`` reach the client. Unless ``keep_old``, datagrams to the old address
        (including those already in flight) are dropped as unroutable, as when a NAT mapping expires.
        """
        old = self.client_addr
        self.client_addr = new_addr
        self._stale_client_addrs.discard(new_addr)
        if keep_old and old != new_addr:
            self._stale_client_addrs.add(old)
        return old

    def rebind_server(self, new_addr: Addr, *, keep_old: bool = True) -> Addr:
        """Move the server to ``new_addr`` (its datagrams come from there); return the old address.

        By default the old address still reaches the server, so a client may keep using it.
        """
        old = self.server_addr
        self.server_addr = new_addr
        self._stale_server_addrs.discard(new_addr)
        if keep_old and old != new_addr:
            self._stale_server_addrs.add(old)
        return old

    def _reaches_client(self, dst: Addr) -> bool:
        return dst == self.client_addr or dst in self._stale_client_addrs

    def _reaches_server(self, dst: Addr) -> bool:
        return dst == self.server_addr or dst in self._stale_server_addrs

    # -- the event loop --------------------------------------------------------------------------

    def _collect_client(self) -> int:
        now = self.clock.now
        out = self.client.datagrams_to_send(now)
        ecn = getattr(self.client, "ecn_codepoint", 0)
        for data, dst in out:
            self.c2s.send(data, self.client_addr, dst, now, ecn)
        return len(out)

    def _collect_server(self) -> int:
        now = self.clock.now
        out = self.server.datagrams_to_send(now)
        ecn = getattr(self.server, "ecn_codepoint", 0)
        for data, dst in out:
            self.s2c.send(data, self.server_addr, dst, now, ecn)
        return len(out)

    def flush(self) -> int:
        """Put what both endpoints want to send now on the links (call after issuing commands);
        return the number of datagrams collected. :meth:`step` and :meth:`drive` do this themselves."""
        return self._collect_client() + self._collect_server()

    def _next_event(self) -> tuple[float, int] | None:
        """(time, kind) of the earliest event: kind 0/1 = a c2s/s2c delivery, 2/3 = client/server timer.

        At equal times deliveries come before timers (c2s first, by send order), then the client timer.
        """
        best: tuple[float, int, int] | None = None
        for kind, key in ((0, self.c2s.next_key()), (1, self.s2c.next_key())):
            if key is not None and (best is None or (key[0], kind, key[1]) < best):
                best = (key[0], kind, key[1])
        for kind, timer in ((2, self.client.next_timer()), (3, self.server.next_timer())):
            if timer is not None and (best is None or timer < best[0]):
                best = (timer, kind, 0)
        return None if best is None else (best[0], best[1])

    def next_event_time(self) -> float | None:
        """When the next event is due (possibly in the past, for an overdue timer), or None if idle."""
        event = self._next_event()
        return None if event is None else event[0]

    @property
    def idle(self) -> bool:
        """True when no datagram is in flight and neither endpoint has a timer armed."""
        return self._next_event() is None

    def _check_timer_loop(self, now: float, which: str, timer: float) -> None:
        if now != self._repeat_time:
            self._repeat_time = now
            self._repeats = 0
        self._repeats += 1
        if self._repeats > self.max_timer_repeats:
            raise TimerLoopError(
                f"the {which} fired its timer {self._repeats} times at t={now!r} without time moving "
                f"(next_timer() keeps returning {timer!r} <= now after handle_timer())"
            )

    def _run_event(self, when: float, kind: int) -> None:
        now = self.clock.advance_to(max(when, self.clock.now))
        if kind == 0:
            datagram = self.c2s.pop(now, self._reaches_server)
            if datagram is not None:
                self._deliver(self.server, datagram, now)
                self._collect_server()
        elif kind == 1:
            datagram = self.s2c.pop(now, self._reaches_client)
            if datagram is not None:
                self._deliver(self.client, datagram, now)
                self._collect_client()
        elif kind == 2:
            self._check_timer_loop(now, "client", when)
            self.client.handle_timer(now)
            self._collect_client()
        else:
            self._check_timer_loop(now, "server", when)
            self.server.handle_timer(now)
            self._collect_server()
        self.steps += 1

    @staticmethod
    def _deliver(endpoint: SimEndpoint, datagram: Datagram, now: float) -> None:
        if datagram.ecn and hasattr(endpoint, "ecn_codepoint"):
            # ECN-aware endpoints (they report the codepoint they send with) take the received one.
            endpoint.receive_datagram(datagram.data, datagram.src, now, datagram.ecn)  # type: ignore[call-arg]
        else:
            endpoint.receive_datagram(datagram.data, datagram.src, now)

    def step(self) -> bool:
        """Process the earliest pending event; return False if there was nothing to do.

        A timer that is already overdue fires at the current time; the clock never goes backwards.
        """
        self.flush()
        event = self._next_event()
        if event is None:
            return False
        self._run_event(*event)
        return True

    def drive(
        self,
        until: Callable[[], bool] | None = None,
        max_time: float = 60.0,
        max_steps: int = 1_000_000,
    ) -> bool:
        """Step until ``until()`` is true, nothing is left to do, or ``max_time`` virtual seconds (from
        now) would pass; in that last case the clock stops at the deadline.

        Returns True if ``until()`` became true (with no predicate: if the pair went idle), False
        otherwise. Raises :class:`SimulationError` after ``max_steps`` steps in this call, and
        :class:`TimerLoopError` if an endpoint's timer stays due without time moving.
        """
        deadline = self.clock.now + max_time
        steps = 0
        while True:
            if until is not None and until():
                return True
            self.flush()
            event = self._next_event()
            if event is None:
                return until is None
            if event[0] > deadline:
                self.clock.advance_to(max(deadline, self.clock.now))
                return False
            if steps >= max_steps:
                raise SimulationError(
                    f"drive() gave up after {max_steps} steps at t={self.clock.now!r} "
                    f"({self.c2s.in_flight + self.s2c.in_flight} datagrams in flight); "
                    "an endpoint may keep re-arming a timer that is already due"
                )
            self._run_event(*event)
            steps += 1

    def run_for(self, duration: float, max_steps: int = 1_000_000) -> None:
        """Let ``duration`` virtual seconds pass, processing every event due in that time."""
        deadline = self.clock.now + duration
        self.drive(max_time=duration, max_steps=max_steps)
        self.clock.advance_to(max(deadline, self.clock.now))
