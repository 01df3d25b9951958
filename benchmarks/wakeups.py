"""Event-loop iterations, endpoint flushes, datagrams and Python calls per small request, in one process.

A load-independent figure for issue 13's many-small-requests case: a client and a server (the
benchmark's own request handler, :mod:`benchmarks.common`) run on one event loop over loopback, and
each request opens a stream, sends ``GET 100`` and reads the 100-byte response. Counted per request,
both ends together:

- ``loop_iterations``: passes of the event loop (``BaseEventLoop._run_once``): each is a wake-up, and
  with the two ends in two processes most of them cost a system call and a context switch;
- ``flushes``: ``UdpEndpoint.flush`` calls (rudp only): transmit, re-arm the timer, dispatch events;
- ``timer_arms``: ``loop.call_at`` calls (timer handles made);
- ``datagrams``: UDP datagrams sent by both ends;
- ``python_calls``: Python function calls (``sys.setprofile`` ``call`` events), sequential phase;
- ``concurrent``: the counts above per request with ``--concurrency`` requests in flight
  (``--requests`` x 4 of them);
- ``cpu_us``: thread CPU time per request with the profiler off, one at a time (``sequential``) and
  with ``--concurrency`` in flight (``concurrent``).

    python -m benchmarks.wakeups [--stack rudp|aioquic] [--requests 300] [--concurrency 32]

Runs against whatever ``rudp`` is importable (``PYTHONPATH`` selects a tree). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from types import FrameType
from typing import Any

import rudp
from benchmarks import common
from rudp.aio.endpoint import UdpEndpoint
from rudp.testing.certs import make_test_pki

RESPONSE_BYTES = 100


class _Counts:
    def __init__(self) -> None:
        self.loop_iterations = 0
        self.flushes = 0
        self.timer_arms = 0
        self.datagrams = 0
        self.python_calls = 0

    def snapshot(self) -> dict[str, int]:
        return dict(vars(self))


def _instrument(loop: asyncio.AbstractEventLoop, counts: _Counts) -> None:
    run_once = loop._run_once  # type: ignore[attr-defined]
    call_at = loop.call_at

    def counted_run_once() -> None:
        counts.loop_iterations += 1
        run_once()

    def counted_call_at(when: float, callback: Callable[..., object], *args: Any, **kwargs: Any) -> Any:
        counts.timer_arms += 1
        return call_at(when, callback, *args, **kwargs)

    loop._run_once = counted_run_once  # type: ignore[attr-defined]
    loop.call_at = counted_call_at  # type: ignore[method-assign]
    flush = UdpEndpoint.flush

    def counted_flush(self: UdpEndpoint) -> int:
        counts.flushes += 1
        sent = flush(self)
        return sent

    UdpEndpoint.flush = counted_flush  # type: ignore[method-assign]


def _count_sends(counts: _Counts) -> None:
    """Count datagrams at the transport: rudp's socket layer and asyncio's datagram transport."""
    from rudp.aio import udp_io

    send = udp_io.DatagramSocket.send  # (TransportDatagramSocket sends through the transport below)

    def counted(self: Any, datagrams: Any) -> None:
        counts.datagrams += len(datagrams)
        send(self, datagrams)

    udp_io.DatagramSocket.send = counted  # type: ignore[method-assign]
    sendto = asyncio.selector_events._SelectorDatagramTransport.sendto  # type: ignore[attr-defined]

    def counted_sendto(self: Any, data: Any, addr: Any = None) -> None:
        counts.datagrams += 1
        sendto(self, data, addr)

    asyncio.selector_events._SelectorDatagramTransport.sendto = counted_sendto  # type: ignore[attr-defined]


async def _rudp_get(stack: AsyncExitStack, pki: Any) -> Callable[[], Awaitable[int]]:
    config = rudp.Config(alpn=common.ALPN, certfile=pki.cert_file, keyfile=pki.key_file)
    server = await rudp.serve("127.0.0.1", 0, common._rudp_handler, config=config)
    stack.callback(server.close)
    client_config = rudp.Config(alpn=common.ALPN, cafile=pki.ca_file, server_name=common.SERVER_NAME)
    conn = await stack.enter_async_context(rudp.connect("127.0.0.1", server.port, config=client_config))
    return common.RudpSession(conn).get


async def _aioquic_get(stack: AsyncExitStack, pki: Any) -> Callable[[], Awaitable[int]]:
    from aioquic.asyncio import connect, serve
    from aioquic.quic.configuration import QuicConfiguration

    server_config = QuicConfiguration(is_client=False, alpn_protocols=common.ALPN)
    server_config.load_cert_chain(str(pki.cert_file), str(pki.key_file))
    server = await serve("127.0.0.1", 0, configuration=server_config, stream_handler=common._aioquic_handler)
    stack.callback(server.close)
    port = server._transport.get_extra_info("sockname")[1]
    client_config = QuicConfiguration(
        is_client=True, alpn_protocols=common.ALPN, server_name=common.SERVER_NAME
    )
    client_config.load_verify_locations(cafile=str(pki.ca_file))
    client_config.verify_mode = ssl.CERT_REQUIRED
    proto = await stack.enter_async_context(connect("127.0.0.1", port, configuration=client_config))
    return common.AioquicSession(proto).get


async def _main(stack_name: str, requests: int, concurrency: int) -> dict[str, Any]:
    counts = _Counts()
    loop = asyncio.get_running_loop()
    _instrument(loop, counts)
    _count_sends(counts)
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_test_pki(tmp)
        async with AsyncExitStack() as stack:
            make = _rudp_get if stack_name == "rudp" else _aioquic_get
            bound = await make(stack, pki)

            async def get() -> None:
                if await bound(RESPONSE_BYTES) != RESPONSE_BYTES:  # type: ignore[call-arg]
                    raise RuntimeError("short response")

            for _ in range(20):  # warm up: stream credit, caches
                await get()
            gc.collect()
            gc.freeze()
            before = counts.snapshot()
            start = time.thread_time()
            for _ in range(requests):
                await get()
            seq_cpu = time.thread_time() - start
            after = counts.snapshot()

            def hook(frame: FrameType, event: str, arg: Any) -> None:
                if event == "call":
                    counts.python_calls += 1

            sys.setprofile(hook)
            for _ in range(requests):
                await get()
            sys.setprofile(None)
            left = requests * 4

            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    await get()

            conc_before = counts.snapshot()
            start = time.thread_time()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            conc_cpu = time.thread_time() - start
            conc_after = counts.snapshot()
    result: dict[str, Any] = {
        key: round((after[key] - before[key]) / requests, 2) for key in before if key != "python_calls"
    }
    result["python_calls"] = round(counts.python_calls / requests, 1)
    result["concurrent"] = {
        key: round((conc_after[key] - conc_before[key]) / (requests * 4), 2)
        for key in conc_before
        if key != "python_calls"
    }
    result["cpu_us"] = {
        "sequential": round(seq_cpu / requests * 1e6, 1),
        "concurrent": round(conc_cpu / (requests * 4) * 1e6, 1),
    }
    return {"stack": stack_name, "requests": requests, "per_request": result}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stack", choices=("rudp", "aioquic"), default="rudp")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_main(args.stack, args.requests, args.concurrency))))


if __name__ == "__main__":
    main()
