"""How many small requests travel together: wake-ups, datagrams and CPU of both processes (issue 13).

Run: ``python -m benchmarks.small_rounds [--stack rudp|aioquic|both] [--requests 3000] [--concurrency 32]
[--rounds 3]``.

Same set-up as :mod:`benchmarks.small_cpu` (the benchmark server in a child process, the client here,
loopback, 100-byte responses, 32 requests in flight), with each stack's socket layer counted in both
processes during the concurrent phase: wake-ups that read datagrams, datagrams read, send calls,
datagrams sent. Per request that gives how many requests share one datagram and one wake-up, and the
processes' CPU over the phase's wall time gives how many cores the pair kept busy. A stack whose
requests travel as one round (every request of the round in one datagram, each side handling the whole
round while the other waits) keeps about one core busy whatever its CPU per request; one whose requests
travel in several smaller rounds keeps both processes working at once. This is the structure behind
requests/s at RTT 0 in :mod:`benchmarks.many_small` (see benchmarks/README.md section 5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import threading
import time
from contextlib import AsyncExitStack
from typing import Any

from benchmarks import small_cpu
from rudp.testing.certs import TestPki, make_test_pki

COUNTS = {"wakeups": 0, "read": 0, "sends": 0, "sent": 0, "sent_bytes": 0}
"""This process's socket counters (rudp: ``DatagramSocket``; aioquic: its protocol and transport)."""


def _instrument(stack: str) -> None:
    """Count reads and sends in this process (and in the server forked after this)."""
    counts = COUNTS
    if stack == "rudp":
        from rudp.aio import udp_io

        read_ready, send = udp_io.DatagramSocket._read_ready, udp_io.DatagramSocket.send

        def counted_read(self: udp_io.DatagramSocket) -> None:
            before = self.stats.datagrams_received
            read_ready(self)
            if self.stats.datagrams_received > before:
                counts["wakeups"] += 1
                counts["read"] += self.stats.datagrams_received - before

        def counted_send(self: udp_io.DatagramSocket, datagrams: Any) -> None:
            if datagrams:
                counts["sends"] += 1
                counts["sent"] += len(datagrams)
                counts["sent_bytes"] += sum(len(d[0]) for d in datagrams)
            send(self, datagrams)

        udp_io.DatagramSocket._read_ready = counted_read  # type: ignore[method-assign]
        udp_io.DatagramSocket.send = counted_send  # type: ignore[method-assign]
        return
    import asyncio.selector_events as selector_events

    from aioquic.asyncio.protocol import QuicConnectionProtocol

    received, sendto = (
        QuicConnectionProtocol.datagram_received,
        selector_events._SelectorDatagramTransport.sendto,
    )

    def counted_received(self: Any, data: bytes, addr: Any) -> None:
        # asyncio's datagram transport reads one datagram per wake-up of the socket
        counts["wakeups"] += 1
        counts["read"] += 1
        received(self, data, addr)

    def counted_sendto(self: Any, data: bytes, addr: Any = None) -> None:
        counts["sends"] += 1
        counts["sent"] += 1
        counts["sent_bytes"] += len(data)
        sendto(self, data, addr)

    QuicConnectionProtocol.datagram_received = counted_received  # type: ignore[method-assign]
    selector_events._SelectorDatagramTransport.sendto = counted_sendto  # type: ignore[method-assign]


def _server_main(stack: str, pki: TestPki, port_out: Any, stop: Any, query: Any) -> None:
    def answer() -> None:
        while query.recv() == "counts":
            query.send(dict(COUNTS))

    threading.Thread(target=answer, daemon=True).start()
    asyncio.run(small_cpu._serve(stack, pki, port_out, stop))


async def _measure(
    stack: str, pki: TestPki, port: int, pid: int, query: Any, requests: int, concurrency: int
) -> dict[str, Any]:
    open_session = await small_cpu._client(stack, pki, port)
    async with AsyncExitStack() as exits:
        session = await open_session(exits)

        async def get() -> None:
            if await session.get(small_cpu.RESPONSE_BYTES) != small_cpu.RESPONSE_BYTES:
                raise RuntimeError("short response")

        for _ in range(50):
            await get()
        left = requests

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await get()

        query.send("counts")
        server0, client0 = query.recv(), dict(COUNTS)
        cpu0, scpu0, wall0 = time.process_time(), small_cpu._cpu_of(pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - wall0
        cpu, scpu = time.process_time() - cpu0, small_cpu._cpu_of(pid) - scpu0
        query.send("counts")
        server1, client1 = query.recv(), dict(COUNTS)
    result: dict[str, Any] = {
        "stack": stack,
        "req_s": round(requests / wall),
        "cores_busy": round((cpu + scpu) / wall, 2),
    }
    for side, before, after, side_cpu in (
        ("client", client0, client1, cpu),
        ("server", server0, server1, scpu),
    ):
        d = {k: after[k] - before[k] for k in after}
        result[side] = {
            "cpu_share": round(side_cpu / wall, 2),
            "requests_per_wakeup": round(requests / max(d["wakeups"], 1), 1),
            "requests_per_send": round(requests / max(d["sends"], 1), 1),
            "datagrams_per_request": round(d["sent"] / requests, 2),
            "bytes_per_datagram": round(d["sent_bytes"] / max(d["sent"], 1)),
        }
    return result


def run_one(stack: str, pki: TestPki, requests: int, concurrency: int) -> dict[str, Any]:
    _instrument(stack)
    context = multiprocessing.get_context("fork")
    port_in, port_out = context.Pipe(duplex=False)
    query, server_query = context.Pipe()
    stop = context.Event()
    child = context.Process(target=_server_main, args=(stack, pki, port_out, stop, server_query), daemon=True)
    child.start()
    try:
        if not port_in.poll(30):
            raise RuntimeError("server did not start")
        port = port_in.recv()
        if child.pid is None:
            raise RuntimeError("server has no pid")
        return asyncio.run(_measure(stack, pki, port, child.pid, query, requests, concurrency))
    finally:
        query.send("stop")
        stop.set()
        child.join(10)
        if child.is_alive():
            child.kill()


def _one_process(into: Any, stack: str, pki: TestPki, requests: int, concurrency: int) -> None:
    into.send(run_one(stack, pki, requests, concurrency))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stack", choices=("rudp", "aioquic", "both"), default="both")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    stacks = ("rudp", "aioquic") if args.stack == "both" else (args.stack,)
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_test_pki(tmp)
        for _ in range(args.rounds):
            for stack in stacks:
                # each stack in a fresh process: the patches of one must not count the other
                context = multiprocessing.get_context("fork")
                out, into = context.Pipe(duplex=False)
                proc = context.Process(
                    target=_one_process, args=(into, stack, pki, args.requests, args.concurrency)
                )
                proc.start()
                print(json.dumps(out.recv()), flush=True)
                proc.join()


if __name__ == "__main__":
    main()
