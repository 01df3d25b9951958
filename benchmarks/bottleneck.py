"""Shared pieces of the bottleneck benchmarks (``ecn_bottleneck``, ``fairness``): servers, timed flows,
link counters over one run.

Both benchmarks run on :func:`benchmarks.common.bench_network` and start, beside its servers, one more
server process (:func:`serve_variants`) in the server namespace: rudp with each congestion controller
with ECN on and off, on QUIC and, on the same port, rudp's TCP+TLS baseline with the kernel's
controller of the same name set per socket. Their streams answer ``GET <n>`` like every benchmark
server, and ``STATS``: the sender's view of the connection (packets sent and lost, CE marks the
controller was told about, the ECN validation state, RTT), which is how a benchmark sees whether
ECN reached the congestion controller.

A flow (:func:`timed_flow`, run in a forked child in the client namespace) connects, waits for a
common start time (so that two flows of the fairness benchmark start together), downloads for a fixed
time, counting the bytes received per ``bin_s`` bin of that common clock (``time.monotonic`` is the
same in every namespace), then stops the stream and asks the sender for its ``STATS``.

Kernel TCP cannot turn ECN on per socket (Linux has no socket option for it: the ECN bits of
``IP_TOS`` are masked on TCP sockets). It is set per namespace with ``net.ipv4.tcp_ecn``, which is
writable inside one (unlike ``tcp_congestion_control``): the client namespace asks for ECN with 1
(the server namespace's default 2 accepts it). :func:`set_tcp_ecn` does that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import rudp
from benchmarks.common import Bench, _response, _write_body, rudp_client_config, server_process
from rudp.netem import DirectionStats, LinkStats
from rudp.netem.stats import bucket_value
from rudp.testing.certs import TestPki

VARIANT_PORTS: dict[tuple[str, bool], int] = {
    ("cubic", True): 4450,
    ("cubic", False): 4451,
    ("bbr", True): 4452,
    ("bbr", False): 4453,
}
"""(congestion controller, ECN) -> port of :func:`serve_variants` (QUIC on UDP, TCP baseline on TCP)."""

SENDER_STATS = (
    "packets_sent",
    "packets_lost",
    "bytes_lost",
    "ce_count",
    "ecn_state",
    "ecn_marked_sent",
    "smoothed_rtt",
    "min_rtt",
    "congestion_window",
    "persistent_congestion_count",
)
"""The sender's ConnectionStats fields a ``STATS`` request answers."""


@dataclass(frozen=True)
class FlowSpec:
    """One bulk flow: ``stack`` is ``rudp-quic`` or ``kernel-tcp`` (rudp's TCP+TLS baseline, the kernel's
    controller set per socket); ``ecn`` is rudp's ``Config.ecn`` on both ends (for kernel TCP the
    namespace's ``tcp_ecn``, see :func:`set_tcp_ecn`)."""

    stack: str
    congestion: str
    ecn: bool = True

    @property
    def label(self) -> str:
        who = "rudp" if self.stack == "rudp-quic" else "kernel"
        return f"{who} {self.congestion}"


# ----------------------------------------------------------------------------------------- server side


async def _stream(conn: rudp.Connection, stream: rudp.Stream) -> None:
    with contextlib.suppress(Exception):  # a stopped GET stream ends in StreamStopped: expected
        request = await stream.read()
        if request.strip() == b"STATS":
            stats = conn.stats
            stream.write(json.dumps({k: getattr(stats, k, None) for k in SENDER_STATS}).encode())
        else:
            size, _ = _response(request)
            await _write_body(stream.write, stream.drain, size)
        stream.write_eof()
        await stream.drain()


async def _handler(conn: rudp.Connection) -> None:
    tasks: set[asyncio.Task[None]] = set()
    with contextlib.suppress(rudp.RudpError, OSError):
        async for stream in conn:
            task = asyncio.create_task(_stream(conn, stream))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


async def _serve(ready_fd: int, pki: TestPki, host: str, max_seconds: float) -> None:
    servers = []
    for (cc, ecn), port in VARIANT_PORTS.items():
        config = rudp.Config(
            alpn=["hq-interop"], certfile=pki.cert_file, keyfile=pki.key_file, congestion=cc, ecn=ecn
        )
        servers.append(await rudp.serve(host, port, _handler, config=config, transport="both"))
    os.write(ready_fd, b"R")
    os.close(ready_fd)
    await asyncio.sleep(max_seconds)  # self-stopping even if nobody kills us
    for server in servers:
        server.close()


def serve_variants(ready_fd: int, pki: TestPki, host: str, max_seconds: float) -> None:
    """Run the :data:`VARIANT_PORTS` servers on `host`; one byte to `ready_fd` once they listen."""
    asyncio.run(_serve(ready_fd, pki, host, max_seconds))


@contextlib.contextmanager
def variant_servers(bench: Bench, max_seconds: float = 1800.0) -> Iterator[None]:
    """:func:`serve_variants` running in the server namespace for the duration of the block."""
    with server_process(bench.net, "the variant servers", serve_variants, bench.pki, bench.host, max_seconds):
        yield


def set_tcp_ecn(bench: Bench, on: bool | None) -> None:
    """Kernel TCP ECN for connections the client opens: 1 (request it), 0 (never) or None (default 2:
    only answer a request). Per namespace: Linux has no per-socket switch."""
    value = 2 if on is None else int(on)
    bench.net.client.run(["sysctl", "-q", "-w", f"net.ipv4.tcp_ecn={value}"], check=True)


# ----------------------------------------------------------------------------------------- client side


async def _flow(
    spec: FlowSpec, host: str, pki: TestPki, start_at: float, seconds: float, bin_s: float
) -> dict[str, Any]:
    port = VARIANT_PORTS[(spec.congestion, spec.ecn)]
    transport = "quic" if spec.stack == "rudp-quic" else "tcp"
    config = rudp_client_config(pki, congestion=spec.congestion, ecn=spec.ecn)
    bins = [0] * max(1, round(seconds / bin_s))
    end = start_at + seconds
    sender: dict[str, Any] | None = None
    receiver: dict[str, Any] = {}
    async with rudp.connect(host, port, config=config, transport=transport) as conn:  # type: ignore[arg-type]
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        stream = await conn.open_stream()
        stream.write(b"GET %d\n" % (1 << 40))
        stream.write_eof()
        while (left := end - time.monotonic()) > 0:
            try:
                chunk = await asyncio.wait_for(stream.read(1 << 16), left)
            except TimeoutError:
                break
            if not chunk:
                break
            now = time.monotonic()
            if now < end:
                bins[min(len(bins) - 1, int((now - start_at) / bin_s))] += len(chunk)
        if transport == "quic":
            stream.stop_sending()
            stats = await conn.open_stream()
            stats.write(b"STATS\n")
            stats.write_eof()
            with contextlib.suppress(TimeoutError):
                sender = json.loads(await asyncio.wait_for(stats.read(), 10.0))
            mine = conn.stats
            receiver = {"ecn_received": list(mine.ecn_received), "smoothed_rtt": mine.smoothed_rtt}
    return {"bins": bins, "bytes": sum(bins), "sender": sender, "receiver": receiver}


def timed_flow(
    spec: FlowSpec, host: str, pki: TestPki, start_at: float, seconds: float, bin_s: float = 0.5
) -> dict[str, Any]:
    """One flow (see the module docstring); run in a client-namespace child. Returns ``bins`` (bytes
    per bin from `start_at`), ``bytes``, ``sender`` (the ``STATS`` answer; None for kernel TCP or if it
    did not come) and ``receiver`` (rudp only: ECT(0)/ECT(1)/CE received, smoothed RTT)."""
    from benchmarks.common import run_coroutine

    return run_coroutine(_flow, spec, host, pki, start_at, seconds, bin_s)


def run_flows(
    bench: Bench, specs: list[FlowSpec], seconds: float, *, bin_s: float = 0.5, lead: float = 2.0
) -> tuple[list[dict[str, Any]], LinkStats]:
    """Run `specs` at the same time, each in its own client-namespace process, starting their
    downloads together `lead` seconds from now (time for the handshakes); their results, in order, and
    the link's counters when the downloads started (so that what a previous run left in the queue, and
    the handshakes, are not counted)."""
    start_at = time.monotonic() + lead
    tasks = [
        bench.net.client.spawn(timed_flow, spec, bench.host, bench.pki, start_at, seconds, bin_s)
        for spec in specs
    ]
    try:
        time.sleep(max(0.0, start_at - time.monotonic()))  # the measurement window opens at start_at
        at_start = bench.net.stats()
        return [task.join(timeout=seconds + lead + 60.0) for task in tasks], at_start
    finally:
        for task in tasks:
            task.kill()


# ----------------------------------------------------------------------------------------- link counters


def link_delta(before: DirectionStats, after: DirectionStats) -> dict[str, Any]:
    """What one direction of the link did between two snapshots: packets forwarded, drops by cause,
    CE marks, and the queue delay percentiles (ms) of the packets that passed the bottleneck."""
    hist = {
        b: n - before.queue_delay_hist.get(b, 0)
        for b, n in after.queue_delay_hist.items()
        if n > before.queue_delay_hist.get(b, 0)
    }
    window = DirectionStats(queue_delay_hist=hist, queue_delay_max=bucket_value(max(hist)) if hist else 0.0)
    dropped = {
        cause: n - before.dropped.get(cause, 0)
        for cause, n in after.dropped.items()
        if n > before.dropped.get(cause, 0)
    }
    return {
        "forwarded_packets": after.forwarded_packets - before.forwarded_packets,
        "dropped": dropped,
        "ce_marked": after.ce_marked - before.ce_marked,
        "queue_delay_ms": {
            **{f"p{q}": round(window.queue_delay_percentile(q) * 1e3, 3) for q in (50, 95, 99)},
            "max": round(window.queue_delay_max * 1e3, 3),
        },
        "tun_tx_dropped": after.tun_tx_dropped,
    }


def jain(values: list[float]) -> float:
    """Jain's fairness index (sum x)^2 / (n sum x^2): 1 for equal shares, 1/n when one flow has all."""
    squares = sum(v * v for v in values)
    return sum(values) ** 2 / (len(values) * squares) if squares else float("nan")
