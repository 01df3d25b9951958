"""Head-of-line blocking: per-request latency of many concurrent requests on one connection under loss.

Run: ``python -m benchmarks.hol_blocking [--rtt-ms 40] [--losses 0 1 2 5] [--streams 16] [--size 1024]
[--rounds 20]``.

One connection per stack; each round starts ``--streams`` requests of ``--size`` bytes at once, each on
its own stream, and waits for all. A request's latency runs from its start to its last byte. With rudp's
TCP baseline the streams are multiplexed over one TLS/TCP connection (like HTTP/2), so one lost segment
holds back every stream behind it; with QUIC only the stream whose data was lost waits. Random loss is
applied in both directions of a rate-limited link; senders use CUBIC (rudp QUIC, aioquic, and kernel
cubic for the TCP baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from benchmarks.common import (
    Bench,
    bench_network,
    percentile,
    ratio,
    save_result,
    saved,
    session,
    table,
    wan,
)
from rudp.testing.certs import TestPki

STACKS = ("rudp-quic", "rudp-tcp", "aioquic")


async def _rounds(
    stack: str, host: str, pki: TestPki, streams: int, size: int, rounds: int
) -> dict[str, Any]:
    latencies: list[float] = []
    start = time.perf_counter()
    async with session(stack, host, pki, congestion="cubic") as sess:

        async def one() -> None:
            began = time.perf_counter()
            if await sess.get(size) != size:
                raise RuntimeError(f"{stack}: short response")
            latencies.append(time.perf_counter() - began)

        for _ in range(rounds):
            await asyncio.gather(*(one() for _ in range(streams)))
    return {"latencies": latencies, "elapsed": time.perf_counter() - start}


def run(
    *,
    rtt: float = 0.040,
    losses: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05),
    streams: int = 16,
    size: int = 1024,
    rounds: int = 20,
    rate_bps: float = 20e6,
    stacks: tuple[str, ...] = STACKS,
    bench: Bench | None = None,
) -> dict[str, Any]:
    """Measure every stack at every loss rate; the JSON-able result (latencies in ms).

    Each point keeps its percentiles and every request's latency (``latencies_ms``, for the CDF plot).
    """
    if bench is None:
        with bench_network() as fresh:
            return run(
                rtt=rtt,
                losses=losses,
                streams=streams,
                size=size,
                rounds=rounds,
                rate_bps=rate_bps,
                stacks=stacks,
                bench=fresh,
            )
    points = []
    for loss in losses:
        bench.impair(wan(rtt / 2, loss, rate_bps))
        for stack in stacks:
            raw = bench.client(_rounds, stack, bench.host, bench.pki, streams, size, rounds, timeout=300.0)
            lat = [v * 1000 for v in raw["latencies"]]
            points.append(
                {
                    "loss": loss,
                    "stack": stack,
                    "requests": len(lat),
                    "p50_ms": percentile(lat, 50),
                    "p95_ms": percentile(lat, 95),
                    "p99_ms": percentile(lat, 99),
                    "max_ms": max(lat),
                    "elapsed_s": raw["elapsed"],
                    "latencies_ms": [round(v, 2) for v in lat],
                }
            )
    conditions = {
        "rtt_ms": rtt * 1000,
        "rate_mbit_s": rate_bps / 1e6,
        "loss_both_directions": list(losses),
        "streams": streams,
        "response_bytes": size,
        "rounds": rounds,
        "congestion": "cubic (rudp QUIC, aioquic; kernel cubic for rudp-tcp)",
    }
    return {"conditions": conditions, "points": points}


def report(result: dict[str, Any]) -> str:
    """Per loss rate and stack: p50/p95/p99, and TCP's percentiles over QUIC's (how much worse TCP is)."""
    c = result["conditions"]
    by_key = {(p["loss"], p["stack"]): p for p in result["points"]}
    rows = []
    for p in result["points"]:
        quic = by_key.get((p["loss"], "rudp-quic"))
        tcp = by_key.get((p["loss"], "rudp-tcp"))
        rows.append(
            [
                f"{p['loss'] * 100:g}%",
                p["stack"],
                f"{p['p50_ms']:.0f}",
                f"{p['p95_ms']:.0f}",
                f"{p['p99_ms']:.0f}",
                ratio(tcp["p50_ms"], quic["p50_ms"]) if tcp and quic and p["stack"] == "rudp-quic" else "",
                ratio(tcp["p99_ms"], quic["p99_ms"]) if tcp and quic and p["stack"] == "rudp-quic" else "",
            ]
        )
    head = (
        f"head-of-line blocking: RTT {c['rtt_ms']:.0f} ms, {c['rate_mbit_s']:g} Mbit/s, random loss both "
        f"ways; {c['rounds']} rounds x {c['streams']} concurrent {c['response_bytes']}-byte requests, one "
        f"connection; {c['congestion']}"
    )
    headers = ["loss", "stack", "p50 ms", "p95 ms", "p99 ms", "TCP/QUIC p50", "TCP/QUIC p99"]
    return head + "\n" + table(headers, rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    parser.add_argument("--losses", type=float, nargs="+", default=[0, 1, 2, 5], help="percent")
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--rate-mbit", type=float, default=20.0)
    args = parser.parse_args(argv)
    result = run(
        rtt=args.rtt_ms / 1000,
        losses=tuple(v / 100 for v in args.losses),
        streams=args.streams,
        size=args.size,
        rounds=args.rounds,
        rate_bps=args.rate_mbit * 1e6,
    )
    print(report(result))
    print(saved(save_result("hol_blocking", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
