"""Tests of the virtual clock, the impaired link and Pair.step/drive, with toy sans-IO endpoints."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

import rudp.testing
from rudp.errors import ConfigError
from rudp.testing import (
    DropCause,
    DropRange,
    GilbertElliott,
    Link,
    LinkConfig,
    Pair,
    SimEndpoint,
    SimulationError,
    TimerLoopError,
    TraceEvent,
    VirtualClock,
)

Addr = tuple[str, int]
SERVER: Addr = ("10.0.0.2", 4433)
START = 1000.0


class Sender:
    """Sends numbered datagrams of ``size`` bytes at the scheduled times; records what comes back."""

    def __init__(self, times: list[float], size: int = 100, dst: Addr = SERVER) -> None:
        self.schedule = sorted(times)
        self.size = size
        self.dst = dst
        self.sent = 0
        self.received: list[tuple[int, float, Addr]] = []

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        self.received.append((int.from_bytes(data[:4], "big"), now, addr))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out = []
        while self.sent < len(self.schedule) and self.schedule[self.sent] <= now:
            out.append((self.sent.to_bytes(4, "big") + bytes(self.size - 4), self.dst))
            self.sent += 1
        return out

    def next_timer(self) -> float | None:
        return self.schedule[self.sent] if self.sent < len(self.schedule) else None

    def handle_timer(self, now: float) -> None:
        pass


class Receiver:
    """Records (index, arrival time, source); with ``echo`` sends every datagram back to its source."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.arrivals: list[tuple[int, float, Addr]] = []
        self._out: list[tuple[bytes, Addr]] = []

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        self.arrivals.append((int.from_bytes(data[:4], "big"), now, addr))
        if self.echo:
            self._out.append((data, addr))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def next_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass

    @property
    def indexes(self) -> list[int]:
        return [i for i, _, _ in self.arrivals]


def burst(n: int, at: float = START, gap: float = 0.0) -> list[float]:
    return [at + i * gap for i in range(n)]


def run(times: list[float], c2s: LinkConfig, *, size: int = 100) -> tuple[Sender, Receiver, Pair]:
    sender, receiver = Sender(times, size), Receiver()
    pair = Pair(sender, receiver, c2s=c2s, clock=VirtualClock(START))
    pair.drive()
    return sender, receiver, pair


def binomial_bounds(n: int, p: float, sigmas: float = 4.5) -> tuple[float, float]:
    sd = math.sqrt(n * p * (1 - p))
    return n * p - sigmas * sd, n * p + sigmas * sd


# -- clock -----------------------------------------------------------------------------------------


def test_clock_moves_forward_only() -> None:
    clock = VirtualClock(START)
    assert clock.now == START and clock() == START
    assert clock.advance(0.5) == START + 0.5
    assert clock.advance_to(START + 2) == START + 2
    clock.advance_to(START + 2)  # standing still is fine
    with pytest.raises(ConfigError):
        clock.advance(-0.1)
    with pytest.raises(ConfigError):
        clock.advance_to(START)
    assert clock.now == START + 2


def test_toys_satisfy_the_protocol() -> None:
    assert isinstance(Sender([]), SimEndpoint)
    assert isinstance(Receiver(), SimEndpoint)


# -- delay, drive, timers --------------------------------------------------------------------------


def test_delay_is_exact() -> None:
    times = burst(20, gap=0.003)
    _, receiver, pair = run(times, LinkConfig(delay=0.05))
    assert receiver.indexes == list(range(20))
    for (i, arrived, _), sent in zip(receiver.arrivals, times, strict=True):
        assert arrived == pytest.approx(sent + 0.05, abs=1e-12), i
    assert pair.idle and pair.c2s.stats.delivered == 20 and pair.c2s.stats.bytes_delivered == 2000


def test_ping_pong_round_trip_uses_both_delays() -> None:
    sender, receiver = Sender([START]), Receiver(echo=True)
    pair = Pair(
        sender, receiver, c2s=LinkConfig(delay=0.03), s2c=LinkConfig(delay=0.02), clock=VirtualClock(START)
    )
    assert pair.drive(lambda: bool(sender.received))
    assert sender.received[0][1] == pytest.approx(START + 0.05)
    assert sender.received[0][2] == SERVER
    assert pair.now == pytest.approx(START + 0.05)


def test_drive_results_and_deadline() -> None:
    sender, receiver = Sender(burst(3, gap=10.0)), Receiver()
    pair = Pair(sender, receiver, c2s=LinkConfig(delay=0.1), clock=VirtualClock(START))
    assert not pair.drive(lambda: len(receiver.arrivals) == 3, max_time=5.0)
    assert pair.now == START + 5.0 and len(receiver.arrivals) == 1
    assert pair.drive(lambda: len(receiver.arrivals) == 3)
    assert pair.now == pytest.approx(START + 20.1)
    assert not pair.drive(lambda: False)  # idle, predicate never true
    assert pair.drive()  # idle, no predicate
    pair.run_for(2.0)
    assert pair.now == pytest.approx(START + 22.1)
    assert not pair.step()


def test_overdue_timer_fires_now_and_clock_never_goes_back() -> None:
    sender = Sender([START - 5.0, START - 1.0, START + 1.0])
    receiver = Receiver()
    pair = Pair(sender, receiver, clock=VirtualClock(START))
    seen: list[float] = []
    while pair.step():
        seen.append(pair.now)
    assert seen == sorted(seen) and min(seen) >= START
    assert [t for _, t, _ in receiver.arrivals] == [START, START, START + 1.0]


class StuckTimer(Receiver):
    def next_timer(self) -> float | None:
        return 0.0  # always due, handle_timer never clears it


def test_timer_loop_guard_raises() -> None:
    pair = Pair(Sender([]), StuckTimer(), clock=VirtualClock(START), max_timer_repeats=50)
    with pytest.raises(TimerLoopError, match="server"):
        pair.drive()


def test_step_budget_raises() -> None:
    # Two echoing endpoints bounce one datagram forever: the step budget stops it.
    client, server = Receiver(echo=True), Receiver(echo=True)
    pair = Pair(client, server, c2s=LinkConfig(delay=0.001), s2c=LinkConfig(delay=0.001))
    pair.c2s.send(bytes(8), pair.client_addr, SERVER, pair.now)
    with pytest.raises(SimulationError, match="200 steps"):
        pair.drive(max_steps=200, max_time=1e9)


# -- loss ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", [0.01, 0.05, 0.20])
def test_loss_rate_within_binomial_bounds(loss: float) -> None:
    n = 20_000
    link = Link(LinkConfig(loss=loss, seed=7))
    for i in range(n):
        link.send(bytes(50), ("a", 1), ("b", 2), i * 1e-4)
    lost = link.stats.dropped.get(DropCause.LOSS, 0)
    low, high = binomial_bounds(n, loss)
    assert low <= lost <= high
    assert link.stats.sent == n and link.in_flight == n - lost


def test_loss_through_pair_counts_match() -> None:
    _, receiver, pair = run(burst(2000, gap=0.001), LinkConfig(delay=0.01, loss=0.05, seed=3))
    stats = pair.c2s.stats
    assert len(receiver.arrivals) == stats.delivered == 2000 - stats.dropped_total
    low, high = binomial_bounds(2000, 0.05)
    assert low <= stats.dropped[DropCause.LOSS] <= high
    assert receiver.indexes == sorted(receiver.indexes)


def test_drop_filter_drops_exactly_the_chosen_datagrams() -> None:
    chosen = {0, 2, 5, 17}
    cfg = LinkConfig(delay=0.01, drop_filter=lambda data, index: index in chosen)
    _, receiver, pair = run(burst(20, gap=0.001), cfg)
    assert receiver.indexes == [i for i in range(20) if i not in chosen]
    assert pair.c2s.stats.dropped == {DropCause.FILTER: 4}


def test_drop_range_burst() -> None:
    _, receiver, pair = run(burst(20), LinkConfig(burst_loss=DropRange(start=4, count=3)))
    assert receiver.indexes == [i for i in range(20) if i not in (4, 5, 6)]
    assert pair.c2s.stats.dropped == {DropCause.BURST: 3}


def test_gilbert_elliott_gives_bursts() -> None:
    link = Link(LinkConfig(burst_loss=GilbertElliott(p=0.01, r=0.25), seed=11))
    lost: list[bool] = []
    for i in range(40_000):
        lost.append(link.send(bytes(10), ("a", 1), ("b", 2), float(i)) is None)
    rate = sum(lost) / len(lost)
    assert rate == pytest.approx(0.01 / 0.26, rel=0.2)
    runs = [len(r) for r in "".join("x" if x else "." for x in lost).split(".") if r]
    assert sum(runs) / len(runs) == pytest.approx(1 / 0.25, rel=0.2)


def test_mtu_drops_oversized() -> None:
    _, receiver, pair = run(burst(3), LinkConfig(mtu=1200), size=1300)
    assert receiver.arrivals == [] and pair.c2s.stats.dropped == {DropCause.MTU: 3}
    _, receiver, _ = run(burst(3), LinkConfig(), size=1472)
    assert len(receiver.arrivals) == 3


def test_config_change_mid_run() -> None:
    sender, receiver = Sender(burst(20, gap=0.01)), Receiver()
    pair = Pair(sender, receiver, c2s=LinkConfig(delay=0.005), clock=VirtualClock(START))
    assert pair.drive(lambda: len(receiver.arrivals) == 10)
    pair.c2s.update(loss=1.0)
    pair.drive()
    assert len(receiver.arrivals) == 10 and pair.c2s.stats.dropped[DropCause.LOSS] == 10
    with pytest.raises(ConfigError):
        pair.c2s.update(loss=1.5)
    pair.c2s.config = LinkConfig()
    assert pair.c2s.config.loss == 0.0


# -- duplication, reordering, jitter ---------------------------------------------------------------


def test_duplication_observed() -> None:
    _, receiver, pair = run(burst(2000, gap=0.001), LinkConfig(delay=0.01, duplicate=0.1, seed=5))
    stats = pair.c2s.stats
    low, high = binomial_bounds(2000, 0.1)
    assert low <= stats.duplicated <= high
    assert len(receiver.arrivals) == 2000 + stats.duplicated == stats.delivered
    assert sorted(set(receiver.indexes)) == list(range(2000))


def test_reordering_observed() -> None:
    cfg = LinkConfig(delay=0.01, reorder=0.1, reorder_delay=0.005, seed=9)
    _, receiver, pair = run(burst(1000, gap=0.001), cfg)
    stats = pair.c2s.stats
    assert stats.reordered > 50 and stats.out_of_order > 50
    assert receiver.indexes != sorted(receiver.indexes)
    assert sorted(receiver.indexes) == list(range(1000))


def test_jitter_keeps_order_unless_allowed() -> None:
    times = burst(1000, gap=0.001)
    cfg = LinkConfig(delay=0.02, jitter=0.01, seed=2)
    _, receiver, pair = run(times, cfg)
    assert receiver.indexes == list(range(1000)) and pair.c2s.stats.out_of_order == 0
    delays = [t - times[i] for i, t, _ in receiver.arrivals]
    assert min(delays) >= 0.02 - 1e-12 and max(delays) > 0.025
    _, receiver, pair = run(times, LinkConfig(delay=0.02, jitter=0.01, allow_reorder=True, seed=2))
    assert receiver.indexes != list(range(1000)) and pair.c2s.stats.out_of_order > 0
    assert max(t - times[i] for i, t, _ in receiver.arrivals) <= 0.03 + 1e-12


# -- bandwidth and queue ---------------------------------------------------------------------------


def test_bandwidth_spaces_deliveries() -> None:
    rate, size = 1_000_000.0, 1000
    _, receiver, _ = run(burst(10), LinkConfig(delay=0.01, bandwidth=rate), size=size)
    expected = [START + (i + 1) * size * 8 / rate + 0.01 for i in range(10)]
    assert [t for _, t, _ in receiver.arrivals] == pytest.approx(expected, abs=1e-9)


def test_drop_tail_queue() -> None:
    rate, size = 1_000_000.0, 1000  # 8 ms per datagram
    times = [*burst(10), START + 0.1]
    cfg = LinkConfig(delay=0.01, bandwidth=rate, queue_bytes=3000)
    _, receiver, pair = run(times, cfg, size=size)
    assert receiver.indexes == [0, 1, 2, 10]
    stats = pair.c2s.stats
    assert stats.dropped == {DropCause.QUEUE: 7} and stats.max_queue_bytes == 3000
    assert receiver.arrivals[-1][1] == pytest.approx(START + 0.1 + 0.008 + 0.01)


def test_burst_size_observable() -> None:
    paced = burst(20, gap=0.01)
    bursty = burst(10) + burst(10, at=START + 1.0)
    _, _, pair = run(paced, LinkConfig(), size=1000)
    assert pair.c2s.max_burst_bytes(0.05) == 5000
    _, _, pair = run(bursty, LinkConfig(), size=1000)
    assert pair.c2s.max_burst_bytes(0.05) == 10000
    assert pair.c2s.max_burst_bytes(2.0) == 20000


# -- addressing, tracing, determinism --------------------------------------------------------------


def test_rebind_changes_source_and_replies_follow() -> None:
    sender, receiver = Sender(burst(4, gap=1.0)), Receiver(echo=True)
    pair = Pair(
        sender, receiver, c2s=LinkConfig(delay=0.01), s2c=LinkConfig(delay=0.01), clock=VirtualClock(START)
    )
    old = pair.client_addr
    assert pair.drive(lambda: len(sender.received) == 2)
    new = ("192.0.2.7", 61000)
    assert pair.rebind_client(new) == old
    pair.drive()
    assert [a for _, _, a in receiver.arrivals] == [old, old, new, new]
    assert [i for i, _, _ in sender.received] == [0, 1, 2, 3]


def test_rebind_drops_in_flight_replies_to_old_address() -> None:
    sender, receiver = Sender([START]), Receiver(echo=True)
    pair = Pair(
        sender, receiver, c2s=LinkConfig(delay=0.01), s2c=LinkConfig(delay=0.01), clock=VirtualClock(START)
    )
    assert pair.drive(lambda: pair.s2c.in_flight == 1)
    pair.rebind_client(("192.0.2.7", 61000))
    pair.drive()
    assert sender.received == [] and pair.s2c.stats.dropped == {DropCause.UNROUTABLE: 1}


def traced_run(seed: int) -> list[TraceEvent]:
    events: list[TraceEvent] = []
    cfg = LinkConfig(
        delay=0.01,
        jitter=0.005,
        loss=0.05,
        reorder=0.05,
        duplicate=0.05,
        bandwidth=5e6,
        queue_bytes=20_000,
        seed=seed,
    )
    sender, receiver = Sender(burst(500, gap=0.0005), size=600), Receiver(echo=True)
    pair = Pair(sender, receiver, c2s=cfg, s2c=cfg, clock=VirtualClock(START), on_trace=events.append)
    pair.drive()
    return events


def test_same_seed_same_trace() -> None:
    first, second = traced_run(42), traced_run(42)
    assert first == second
    kinds = {e.kind for e in first}
    assert kinds == {"sent", "delivered", "dropped", "duplicated"}
    assert {e.direction for e in first} == {"c2s", "s2c"}
    assert all(e.cause is not None for e in first if e.kind == "dropped")
    assert traced_run(43) != first


def test_trace_callback_sees_every_drop_and_delivery() -> None:
    events: list[TraceEvent] = []
    cfg = LinkConfig(delay=0.01, loss=0.1, seed=1)
    sender, receiver = Sender(burst(300, gap=0.001)), Receiver()
    pair = Pair(sender, receiver, c2s=cfg, clock=VirtualClock(START), on_trace=events.append)
    pair.drive()

    def count(kind: str) -> int:
        return sum(e.kind == kind for e in events)

    stats = pair.c2s.stats
    assert count("sent") == stats.sent == 300
    assert count("delivered") == stats.delivered == len(receiver.arrivals)
    assert count("dropped") == stats.dropped_total
    assert all(e.size == 100 for e in events)
    delivered_times = [e.time for e in events if e.kind == "delivered"]
    assert delivered_times == [t for _, t, _ in receiver.arrivals]


def test_directions_are_independent_with_one_config() -> None:
    cfg = LinkConfig(loss=0.5, seed=1)
    c2s, s2c = Link(cfg, name="c2s"), Link(cfg, name="s2c")
    fates = [
        (c2s.send(b"x", ("a", 1), ("b", 2), 0.0) is None, s2c.send(b"x", ("b", 2), ("a", 1), 0.0) is None)
        for _ in range(200)
    ]
    assert any(a != b for a, b in fates)


def test_invalid_configs_rejected() -> None:
    for bad in (
        {"loss": -0.1},
        {"delay": -1.0},
        {"bandwidth": 0.0},
        {"mtu": 0},
        {"burst_loss": GilbertElliott(p=2.0, r=0.1)},
        {"burst_loss": DropRange(-1, 3)},
    ):
        with pytest.raises(ConfigError):
            LinkConfig(**bad)


def test_simulator_modules_stay_sans_io() -> None:
    """No event loop, socket, clock or assert in the simulator (relay.py is the asyncio tool)."""
    package = Path(rudp.testing.__file__).parent
    for module in ("__init__.py", "clock.py", "link.py", "netsim.py"):
        tree = ast.parse((package / module).read_text(), module)
        for node in ast.walk(tree):
            assert not isinstance(node, ast.Assert), module
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                assert root not in {"asyncio", "socket", "time", "threading", "aioquic"}, f"{module}: {name}"
                assert name != "rudp.testing.relay" or module == "__init__.py", f"{module}: {name}"


def test_turning_on_one_impairment_keeps_the_others_fates() -> None:
    def lost_indexes(cfg: LinkConfig) -> set[int]:
        link = Link(cfg)
        return {i for i in range(3000) if link.send(bytes(20), ("a", 1), ("b", 2), i * 1e-3) is None}

    base = lost_indexes(LinkConfig(loss=0.05, seed=8))
    assert base == lost_indexes(LinkConfig(loss=0.05, duplicate=0.2, jitter=0.01, reorder=0.1, seed=8))
    assert base != lost_indexes(LinkConfig(loss=0.05, seed=9))


def test_rebind_server_keeps_old_address_reachable() -> None:
    sender, receiver = Sender(burst(2, gap=1.0)), Receiver(echo=True)
    pair = Pair(
        sender, receiver, c2s=LinkConfig(delay=0.01), s2c=LinkConfig(delay=0.01), clock=VirtualClock(START)
    )
    new = ("10.0.0.3", 443)
    assert pair.rebind_server(new) == SERVER
    pair.drive()
    assert len(receiver.arrivals) == 2  # the client still sends to the old address
    assert [a for _, _, a in sender.received] == [new, new]
