"""Handshake latency: time to a connection and to the first response, TCP+TLS 1.3 vs QUIC 1-RTT vs 0-RTT.

Run: ``python -m benchmarks.handshake [--rtt-ms 40] [--count 10]``; ``--cpu`` measures the CPU per
handshake and side instead (rudp vs aioquic, full and resumed: :mod:`benchmarks.handshake_cpu`).

Every connection is fresh and crosses the emulated link (no loss). For each mode the median of
``--count`` connections is reported:

- ``connect``: until the client API says the connection is usable;
- ``first response``: from the start until a 1000-byte response to the first request has arrived;
  it is also given in round trips (it is what a user waits for).

Expected shape: TCP needs 1 RTT (SYN) + 1 RTT (TLS 1.3) before the request leaves, so ~3 RTT to the
response; QUIC merges transport and TLS, ~2 RTT; a resumed QUIC connection with 0-RTT sends the request
in its first flight, ~1 RTT. rudp's TCP baseline cannot resume TLS sessions (asyncio's
``create_connection`` takes no ``ssl.SSLSession``), and TLS 1.3 resumption over TCP saves no round trip
without TCP Fast Open + early data anyway, so TCP has only the full-handshake row.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import rudp
from benchmarks.common import (
    PORT_AIOQUIC,
    PORT_NEWRENO,
    Bench,
    aioquic_client_config,
    bench_network,
    ratio,
    rudp_client_config,
    save_result,
    saved,
    table,
    wan,
)
from rudp.testing.certs import TestPki

RESPONSE_BYTES = 1000
MODES = ("rudp-tcp", "rudp-quic", "rudp-quic-0rtt", "aioquic", "aioquic-0rtt")


async def _get(stream: rudp.Stream) -> int:
    stream.write(b"GET %d\n" % RESPONSE_BYTES)
    stream.write_eof()
    return len(await stream.read())


async def _rudp(host: str, pki: TestPki, transport: str, count: int, zero_rtt: bool) -> dict[str, Any]:
    tickets = rudp.TicketStore()
    config = rudp_client_config(pki, session_ticket_store=tickets, enable_0rtt=zero_rtt)
    if zero_rtt:  # a first, untimed connection to obtain session tickets
        async with rudp.connect(host, PORT_NEWRENO, config=config) as conn:
            await conn.ping()
    connects, responses, accepted = [], [], 0
    for _ in range(count):
        start = time.perf_counter()
        async with rudp.connect(host, PORT_NEWRENO, config=config, transport=transport) as conn:  # type: ignore[arg-type]
            connected = time.perf_counter()
            if await _get(await conn.open_stream()) != RESPONSE_BYTES:
                raise RuntimeError("short response")
            done = time.perf_counter()
            if zero_rtt:
                await conn.wait_established()
                accepted += conn.zero_rtt_accepted
                await conn.ping()  # fresh tickets for the next round
        connects.append(connected - start)
        responses.append(done - start)
    return {
        "connect": connects,
        "first_response": responses,
        "zero_rtt_accepted": accepted if zero_rtt else None,
    }


async def _aioquic(host: str, pki: TestPki, count: int, zero_rtt: bool) -> dict[str, Any]:
    from aioquic.asyncio import QuicConnectionProtocol, connect
    from aioquic.quic.events import HandshakeCompleted, QuicEvent

    class Protocol(QuicConnectionProtocol):
        early_data_accepted = False

        def quic_event_received(self, event: QuicEvent) -> None:
            if isinstance(event, HandshakeCompleted):
                self.early_data_accepted = event.early_data_accepted
            super().quic_event_received(event)

    tickets: list[Any] = []
    if zero_rtt:
        config = aioquic_client_config(pki)
        async with connect(
            host, PORT_AIOQUIC, configuration=config, session_ticket_handler=tickets.append
        ) as p:
            await p.ping()
    connects, responses, accepted = [], [], 0
    for _ in range(count):
        config = aioquic_client_config(pki)
        if zero_rtt:
            config.session_ticket = tickets.pop()
        start = time.perf_counter()
        async with connect(
            host,
            PORT_AIOQUIC,
            configuration=config,
            session_ticket_handler=tickets.append,
            wait_connected=not zero_rtt,
            create_protocol=Protocol,
        ) as proto:
            connected = time.perf_counter()
            reader, writer = await proto.create_stream()
            writer.write(b"GET %d\n" % RESPONSE_BYTES)
            writer.write_eof()
            if len(await reader.read()) != RESPONSE_BYTES:
                raise RuntimeError("short response")
            done = time.perf_counter()
            await proto.ping()  # the handshake is over and fresh tickets arrived
            accepted += proto.early_data_accepted
        connects.append(connected - start)
        responses.append(done - start)
    return {
        "connect": connects,
        "first_response": responses,
        "zero_rtt_accepted": accepted if zero_rtt else None,
    }


async def _measure(mode: str, host: str, pki: TestPki, count: int) -> dict[str, Any]:
    zero_rtt = mode.endswith("-0rtt")
    if mode.startswith("aioquic"):
        return await _aioquic(host, pki, count, zero_rtt)
    return await _rudp(host, pki, "tcp" if mode == "rudp-tcp" else "quic", count, zero_rtt)


def run(
    *, rtt: float = 0.040, count: int = 10, modes: tuple[str, ...] = MODES, bench: Bench | None = None
) -> dict[str, Any]:
    """Measure every mode over a link of round-trip `rtt` (s); the JSON-able result."""
    if bench is None:
        with bench_network(wan(rtt / 2)) as fresh:
            return run(rtt=rtt, count=count, modes=modes, bench=fresh)
    bench.impair(wan(rtt / 2))
    rows: dict[str, Any] = {}
    for mode in modes:
        raw = bench.client(_measure, mode, bench.host, bench.pki, count)
        rows[mode] = {
            "connect_ms": statistics.median(raw["connect"]) * 1000,
            "first_response_ms": statistics.median(raw["first_response"]) * 1000,
            "first_response_rtts": statistics.median(raw["first_response"]) / rtt,
            "zero_rtt_accepted": raw["zero_rtt_accepted"],
            "samples_ms": [round(v * 1000, 2) for v in raw["first_response"]],
        }
    return {"conditions": {"rtt_ms": rtt * 1000, "loss": 0.0, "count": count}, "modes": rows}


def report(result: dict[str, Any]) -> str:
    """Side-by-side table; ratios are TCP's first-response time over each mode's."""
    c = result["conditions"]
    modes = result["modes"]
    tcp = modes.get("rudp-tcp", {}).get("first_response_ms")
    rows = []
    for mode, r in modes.items():
        acc = "" if r["zero_rtt_accepted"] is None else f"{r['zero_rtt_accepted']}/{c['count']}"
        rows.append(
            [
                mode,
                f"{r['connect_ms']:.1f}",
                f"{r['first_response_ms']:.1f}",
                f"{r['first_response_rtts']:.2f}",
                ratio(tcp, r["first_response_ms"]),
                acc,
            ]
        )
    head = f"handshake: RTT {c['rtt_ms']:.0f} ms, no loss, median of {c['count']} fresh connections"
    headers = ["mode", "connect ms", "1st response ms", "in RTTs", "TCP/this", "0-RTT ok"]
    return head + "\n" + table(headers, rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="instead: CPU ms per handshake per side, rudp vs aioquic, full and resumed "
        "(benchmarks.handshake_cpu; --count handshakes per mode, default 300)",
    )
    args = parser.parse_args(argv)
    if args.cpu:
        from benchmarks import handshake_cpu

        return handshake_cpu.main(["--count", str(args.count if args.count != 10 else 300), "--rounds", "1"])
    result = run(rtt=args.rtt_ms / 1000, count=args.count)
    print(report(result))
    print(saved(save_result("handshake", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
