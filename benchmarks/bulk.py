"""Bulk throughput over real loopback UDP/TCP sockets: rudp-quic vs rudp-tcp vs aioquic, in one run.

Run: ``python -m benchmarks.bulk [--mbytes 20] [--repeat 3]``. Each stack downloads the same number of
bytes from its own server on 127.0.0.1 over one stream (sha256-verified); the best of ``--repeat`` runs
is reported in Mbit/s and as ratios against aioquic. Results are also written as JSON to
``benchmarks/results/``. Server and client share one event loop and one core, so the figures compare
per-byte CPU cost more than network behaviour.

``rudp-quic`` runs with PMTU discovery (RFC 9000 §14.3), which on loopback (MTU 65536) settles on
16 KB datagrams (``Config.max_pmtu``); ``rudp-quic-1350`` keeps 1350-byte datagrams, like aioquic's
fixed size, for the like-for-like per-packet comparison. On a 1500-byte Ethernet path PMTU discovery
stops at 1452 bytes and the two rows converge.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import rudp
from benchmarks.common import ratio, save_result, saved, table
from rudp.testing.certs import TestPki, make_test_pki

PACING = os.environ.get("RUDP_PACING", "1") == "1"
Runner = Callable[[TestPki, bytes], Awaitable[float]]


async def run_rudp(pki: TestPki, payload: bytes, transport: str, *, pmtud: bool = True) -> float:
    async def handler(conn: rudp.Connection) -> None:
        async for stream in conn:
            await stream.read()
            stream.write(payload)
            stream.write_eof()
            await stream.drain()

    server_config = rudp.Config(
        certfile=pki.cert_file, keyfile=pki.key_file, pacing=PACING, pmtu_discovery=pmtud
    )
    server = await rudp.serve("127.0.0.1", 0, handler, config=server_config, transport=transport)
    port = server.port
    try:
        config = rudp.Config(cafile=pki.ca_file, server_name="localhost")
        async with rudp.connect("127.0.0.1", port, config=config, transport=transport) as conn:
            stream = await conn.open_stream()
            start = time.perf_counter()
            stream.write(b"GET /bulk\r\n")
            stream.write_eof()
            body = await stream.read()
            elapsed = time.perf_counter() - start
    finally:
        server.close()
        await server.wait_closed()
    if hashlib.sha256(body).digest() != hashlib.sha256(payload).digest():
        raise SystemExit(f"rudp-{transport}: payload corrupted")
    return elapsed


async def run_aioquic(pki: TestPki, payload: bytes) -> float:
    from aioquic.asyncio import connect, serve
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import StreamDataReceived

    class Server(QuicConnectionProtocol):
        def quic_event_received(self, event: object) -> None:
            if isinstance(event, StreamDataReceived) and event.end_stream:
                self._quic.send_stream_data(event.stream_id, payload, end_stream=True)
                self.transmit()

    class Client(QuicConnectionProtocol):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            self.body = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def quic_event_received(self, event: object) -> None:
            if isinstance(event, StreamDataReceived):
                self.body += event.data
                if event.end_stream and not self.done.done():
                    self.done.set_result(None)

    server_cfg = QuicConfiguration(is_client=False, alpn_protocols=["hq-interop"])
    server_cfg.load_cert_chain(str(pki.cert_file), str(pki.key_file))
    server = await serve("127.0.0.1", 0, configuration=server_cfg, create_protocol=Server)
    port = server._transport.get_extra_info("sockname")[1]
    client_cfg = QuicConfiguration(is_client=True, alpn_protocols=["hq-interop"], server_name="localhost")
    client_cfg.verify_mode = ssl.CERT_NONE
    try:
        async with connect("127.0.0.1", port, configuration=client_cfg, create_protocol=Client) as client:
            stream_id = client._quic.get_next_available_stream_id()
            start = time.perf_counter()
            client._quic.send_stream_data(stream_id, b"GET /bulk\r\n", end_stream=True)
            client.transmit()
            await client.done
            elapsed = time.perf_counter() - start
            body = bytes(client.body)
    finally:
        server.close()
    if hashlib.sha256(body).digest() != hashlib.sha256(payload).digest():
        raise SystemExit("aioquic: payload corrupted")
    return elapsed


async def _run(mbytes: float, repeat: int) -> dict[str, float]:
    payload = os.urandom(int(mbytes * 1e6))
    pki = make_test_pki(tempfile.mkdtemp(prefix="rudp-bench-"))
    stacks: dict[str, Callable[[], Awaitable[float]]] = {
        "rudp-quic": lambda: run_rudp(pki, payload, "quic"),
        "rudp-quic-1350": lambda: run_rudp(pki, payload, "quic", pmtud=False),
        "rudp-tcp": lambda: run_rudp(pki, payload, "tcp"),
        "aioquic": lambda: run_aioquic(pki, payload),
    }
    results: dict[str, float] = {}
    for name, runner in stacks.items():
        best = min([await runner() for _ in range(repeat)])
        results[name] = len(payload) * 8 / best / 1e6
    return results


def run(*, mbytes: float = 20.0, repeat: int = 3) -> dict[str, Any]:
    """Best-of-`repeat` loopback throughput per stack (Mbit/s); the JSON-able result."""
    mbit_s = asyncio.run(_run(mbytes, repeat))
    return {
        "conditions": {"path": "loopback 127.0.0.1", "mbytes": mbytes, "repeat": repeat},
        "mbit_s": mbit_s,
    }


def report(result: dict[str, Any]) -> str:
    """Mbit/s per stack and the ratio against aioquic and rudp-tcp."""
    c, values = result["conditions"], result["mbit_s"]
    rows = [
        [name, f"{v:.1f}", ratio(v, values.get("aioquic")), ratio(v, values.get("rudp-tcp"))]
        for name, v in values.items()
    ]
    head = f"bulk: {c['mbytes']:g} MB over {c['path']}, one stream, best of {c['repeat']} (CPU-bound)"
    return head + "\n" + table(["stack", "Mbit/s", "vs aioquic", "vs rudp-tcp"], rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbytes", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(mbytes=args.mbytes, repeat=args.repeat)
    print(report(result))
    print(saved(save_result("bulk", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
