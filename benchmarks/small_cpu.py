"""CPU time per small request, client and server in two processes over loopback (issue 13).

The server (the benchmark's own handler, :mod:`benchmarks.common`) runs in a child process, the client
here; each request opens a stream, sends ``GET 100`` and reads the 100-byte response. Measured per
request: each process's CPU time (user + system, from ``/proc/<pid>/stat`` for the server and
``time.process_time`` for the client), one request at a time (``sequential``) and with
``--concurrency`` in flight. Unlike requests/s, CPU time barely depends on what else the machine runs,
and unlike the in-process figures of :mod:`benchmarks.wakeups` it includes what each wake-up of a
process costs (the system calls, the event loop's pass).

    python -m benchmarks.small_cpu [--stack rudp|aioquic] [--requests 1000] [--concurrency 32]

Runs against whatever ``rudp`` is importable (``PYTHONPATH`` selects a tree). Prints one JSON line;
``--stack both`` alternates the stacks ``--rounds`` times and prints one line per run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import rudp
from benchmarks import common
from rudp.testing.certs import TestPki, make_test_pki

RESPONSE_BYTES = 100
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


async def _serve(stack: str, pki: TestPki, port_out: Any, stop: Any) -> None:
    if stack == "rudp":
        config = rudp.Config(alpn=common.ALPN, certfile=pki.cert_file, keyfile=pki.key_file)
        server = await rudp.serve("127.0.0.1", 0, common._rudp_handler, config=config)
        port = server.port
    else:
        from aioquic.asyncio import serve
        from aioquic.quic.configuration import QuicConfiguration

        aio_config = QuicConfiguration(is_client=False, alpn_protocols=common.ALPN)
        aio_config.load_cert_chain(str(pki.cert_file), str(pki.key_file))
        aio_server = await serve(
            "127.0.0.1", 0, configuration=aio_config, stream_handler=common._aioquic_handler
        )
        port = aio_server._transport.get_extra_info("sockname")[1]
    gc.collect()
    gc.freeze()
    port_out.send(port)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, stop.wait)


def _server_main(stack: str, pki: TestPki, port_out: Any, stop: Any) -> None:
    asyncio.run(_serve(stack, pki, port_out, stop))


async def _client(stack: str, pki: TestPki, port: int) -> Callable[[AsyncExitStack], Awaitable[Any]]:
    async def open_session(exits: AsyncExitStack) -> Any:
        if stack == "rudp":
            config = rudp.Config(alpn=common.ALPN, cafile=pki.ca_file, server_name=common.SERVER_NAME)
            conn = await exits.enter_async_context(rudp.connect("127.0.0.1", port, config=config))
            return common.RudpSession(conn)
        from aioquic.asyncio import connect
        from aioquic.quic.configuration import QuicConfiguration

        aio_config = QuicConfiguration(
            is_client=True, alpn_protocols=common.ALPN, server_name=common.SERVER_NAME
        )
        aio_config.load_verify_locations(cafile=str(pki.ca_file))
        aio_config.verify_mode = ssl.CERT_REQUIRED
        proto = await exits.enter_async_context(connect("127.0.0.1", port, configuration=aio_config))
        return common.AioquicSession(proto)

    return open_session


async def _measure(
    stack: str, pki: TestPki, port: int, server_pid: int, requests: int, concurrency: int
) -> dict[str, Any]:
    open_session = await _client(stack, pki, port)
    result: dict[str, Any] = {"stack": stack}
    async with AsyncExitStack() as exits:
        session = await open_session(exits)

        async def get() -> None:
            if await session.get(RESPONSE_BYTES) != RESPONSE_BYTES:
                raise RuntimeError("short response")

        for _ in range(50):
            await get()
        gc.collect()
        gc.freeze()

        async def sequential() -> None:
            for _ in range(requests):
                await get()

        async def concurrent() -> None:
            left = requests

            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    await get()

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        for name, phase in (("sequential", sequential), ("concurrent", concurrent)):
            client0, server0, wall0 = time.process_time(), _cpu_of(server_pid), time.perf_counter()
            await phase()
            client = time.process_time() - client0
            server = _cpu_of(server_pid) - server0
            wall = time.perf_counter() - wall0
            result[name] = {
                "client_us": round(client / requests * 1e6, 1),
                "server_us": round(server / requests * 1e6, 1),
                "total_us": round((client + server) / requests * 1e6, 1),
                "req_s": round(requests / wall),
            }
    return result


def run_one(stack: str, pki: TestPki, requests: int, concurrency: int) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    port_in, port_out = context.Pipe(duplex=False)
    stop = context.Event()
    child = context.Process(target=_server_main, args=(stack, pki, port_out, stop), daemon=True)
    child.start()
    try:
        if not port_in.poll(30):
            raise RuntimeError("server did not start")
        port = port_in.recv()
        assert child.pid is not None
        return asyncio.run(_measure(stack, pki, port, child.pid, requests, concurrency))
    finally:
        stop.set()
        child.join(10)
        if child.is_alive():
            child.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stack", choices=("rudp", "aioquic", "both"), default="both")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    stacks = ("rudp", "aioquic") if args.stack == "both" else (args.stack,)
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_test_pki(tmp)
        for _ in range(args.rounds):
            for stack in stacks:
                print(json.dumps(run_one(stack, pki, args.requests, args.concurrency)), flush=True)


if __name__ == "__main__":
    main()
