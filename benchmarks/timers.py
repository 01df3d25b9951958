"""Pacer and timers: timer callbacks of a loopback transfer, and how many sent nothing.

One process, both endpoints on one event loop (asyncio or uvloop), the client uploads ``--mib`` MiB on
one stream with ``max_datagram_size=1452`` and PMTU discovery off (the MTU-1500 datagram size on the
default loopback). Counts every ``UdpEndpoint._on_timer`` callback of both endpoints and those after
which no datagram left (``empty``); also wall time, Mbit/s and process CPU per datagram sent (both
endpoints share the process, so this is sender + receiver CPU per data datagram).

    python -m benchmarks.timers [--loop asyncio|uvloop] [--mib 32] [--pacing on|off]

Prints one JSON line. Runs against whatever ``rudp`` is importable (``PYTHONPATH`` selects a tree), so
an old checkout can be measured with the same script: the counting wraps the methods from outside.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import rudp
from rudp.aio.endpoint import UdpEndpoint
from rudp.quic.endpoint import QuicEndpoint
from rudp.testing.certs import make_test_pki

COUNTS = {"callbacks": 0, "empty": 0, "datagrams": 0}


def instrument() -> None:
    """Count datagrams leaving any endpoint, and timer callbacks after which none left."""
    to_send = QuicEndpoint.datagrams_to_send
    on_timer = UdpEndpoint._on_timer

    def counted_to_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        datagrams = to_send(self, *args, **kwargs)
        if not isinstance(datagrams, list):
            datagrams = list(datagrams)
        COUNTS["datagrams"] += len(datagrams)
        return datagrams

    def counted_on_timer(self: Any) -> None:
        before = COUNTS["datagrams"]
        on_timer(self)
        COUNTS["callbacks"] += 1
        if COUNTS["datagrams"] == before:
            COUNTS["empty"] += 1

    QuicEndpoint.datagrams_to_send = counted_to_send  # type: ignore[method-assign]
    UdpEndpoint._on_timer = counted_on_timer  # type: ignore[method-assign]


async def transfer(nbytes: int, pacing: bool, certs: Path) -> dict[str, Any]:
    pki = make_test_pki(certs)
    common: dict[str, Any] = {
        "alpn": ["bench"],
        "max_datagram_size": 1452,
        "pmtu_discovery": False,
        "pacing": pacing,
    }
    done = asyncio.get_running_loop().create_future()

    async def handler(conn: rudp.Connection) -> None:
        async for stream in conn:
            received = 0
            while True:
                chunk = await stream.read(1 << 20)
                if not chunk:
                    break
                received += len(chunk)
            stream.write(b"OK")
            stream.write_eof()
            await stream.drain()
            if not done.done():
                done.set_result(received)

    server_config = rudp.Config(certfile=str(pki.cert_file), keyfile=str(pki.key_file), **common)
    server = await rudp.serve("127.0.0.1", 0, handler, config=server_config)
    client_config = rudp.Config(cafile=str(pki.ca_file), server_name="localhost", **common)
    block = bytes(1 << 16)
    async with rudp.connect("127.0.0.1", server.port, config=client_config) as conn:
        stream = await conn.open_stream()
        for key in COUNTS:
            COUNTS[key] = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        sent = 0
        while sent < nbytes:
            stream.write(block)
            sent += len(block)
            await stream.drain()
        stream.write_eof()
        received = await done
        await stream.read(2)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        counts = dict(COUNTS)
    server.close()
    data_datagrams = nbytes / 1400  # ~payload per 1452-byte datagram, for CPU per datagram
    return {
        "mbit_s": round(received * 8 / wall / 1e6, 1),
        "wall_s": round(wall, 3),
        "cpu_us_per_datagram": round(cpu / data_datagrams * 1e6, 1),
        "timer_callbacks": counts["callbacks"],
        "empty_timer_callbacks": counts["empty"],
        "empty_share": round(counts["empty"] / max(counts["callbacks"], 1), 4),
        "datagrams": counts["datagrams"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--pacing", choices=("on", "off"), default="on")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    instrument()
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    with tempfile.TemporaryDirectory() as certs:
        result = asyncio.run(transfer(args.mib << 20, args.pacing == "on", Path(certs)))
    print(json.dumps({"label": args.label, "loop": args.loop, "pacing": args.pacing, **result}))


if __name__ == "__main__":
    main()
