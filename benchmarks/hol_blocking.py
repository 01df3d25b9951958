"""Head-of-line blocking: per-request latency of many concurrent requests on one connection under loss.

Run: ``python -m benchmarks.hol_blocking [--rtt-ms 40] [--losses 0 1 2 5] [--workloads 16x1024 32x2048]
[--rounds 20]``.

One connection per variant; each round starts ``streams`` requests of ``size`` bytes at once (one
workload ``<streams>x<size>``), each on its own stream, and waits for all. A request's latency runs
from its start to its last byte. With rudp's TCP baseline the streams are multiplexed over one
TLS/TCP connection (like HTTP/2), so one lost segment holds back every stream behind it; with QUIC
only the stream whose data was lost waits. Random loss is applied in both directions of a
rate-limited link. Every workload runs with CUBIC and with BBR: rudp QUIC with its own controller, the
TCP baseline with the kernel's set per socket (``benchmarks.common.VARIANTS``), aioquic with CUBIC.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from benchmarks.common import (
    VARIANTS,
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

HOL_VARIANTS = (
    "rudp-quic cubic",
    "rudp-tcp kernel-cubic",
    "aioquic cubic",
    "rudp-quic bbr",
    "rudp-tcp kernel-bbr",
)
WORKLOADS = ((16, 1024), (32, 2048))
"""(concurrent requests per round, bytes per response)."""
PAIRS = {
    "cubic": ("rudp-quic cubic", "rudp-tcp kernel-cubic"),
    "bbr": ("rudp-quic bbr", "rudp-tcp kernel-bbr"),
}
"""Controller -> (rudp QUIC variant, TCP baseline variant) compared in the ratio columns."""


async def _rounds(
    stack: str, congestion: str, host: str, pki: TestPki, streams: int, size: int, rounds: int
) -> dict[str, Any]:
    latencies: list[float] = []
    start = time.perf_counter()
    async with session(stack, host, pki, congestion) as sess:

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
    workloads: tuple[tuple[int, int], ...] = WORKLOADS,
    rounds: int = 20,
    rate_bps: float = 20e6,
    variants: tuple[str, ...] = HOL_VARIANTS,
    bench: Bench | None = None,
) -> dict[str, Any]:
    """Measure every variant at every loss rate and workload; the JSON-able result (latencies in ms).

    Each point keeps its percentiles and every request's latency (``latencies_ms``, for the CDF plot).
    """
    if bench is None:
        with bench_network() as fresh:
            return run(
                rtt=rtt,
                losses=losses,
                workloads=workloads,
                rounds=rounds,
                rate_bps=rate_bps,
                variants=variants,
                bench=fresh,
            )
    points = []
    for loss in losses:
        bench.impair(wan(rtt / 2, loss, rate_bps))
        for streams, size in workloads:
            for name in variants:
                stack, cc = VARIANTS[name]
                raw = bench.client(
                    _rounds, stack, cc, bench.host, bench.pki, streams, size, rounds, timeout=300.0
                )
                lat = [v * 1000 for v in raw["latencies"]]
                points.append(
                    {
                        "loss": loss,
                        "streams": streams,
                        "size": size,
                        "variant": name,
                        "stack": stack,
                        "congestion": cc,
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
        "workloads": [list(w) for w in workloads],
        "rounds": rounds,
        "congestion": "rudp QUIC cubic/bbr, kernel cubic/bbr per socket for rudp-tcp, aioquic cubic",
    }
    return {"conditions": conditions, "points": points}


def ratios(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per loss rate, workload and controller: TCP's p50 and p99 over rudp QUIC's (> 1: QUIC faster)."""
    by_key = {(p["loss"], p["streams"], p["size"], p["variant"]): p for p in result["points"]}
    out = []
    for loss, streams, size, name in by_key:
        for cc, (quic_name, tcp_name) in PAIRS.items():
            if name != quic_name or (loss, streams, size, tcp_name) not in by_key:
                continue
            quic, tcp = by_key[(loss, streams, size, quic_name)], by_key[(loss, streams, size, tcp_name)]
            out.append(
                {
                    "loss": loss,
                    "streams": streams,
                    "size": size,
                    "congestion": cc,
                    "quic_p50_ms": quic["p50_ms"],
                    "tcp_p50_ms": tcp["p50_ms"],
                    "quic_p99_ms": quic["p99_ms"],
                    "tcp_p99_ms": tcp["p99_ms"],
                    "tcp_over_quic_p50": tcp["p50_ms"] / quic["p50_ms"],
                    "tcp_over_quic_p99": tcp["p99_ms"] / quic["p99_ms"],
                }
            )
    return out


def report(result: dict[str, Any]) -> str:
    """Per loss rate, workload and variant: p50/p95/p99; then, per controller, TCP over QUIC."""
    c = result["conditions"]
    rows = [
        [
            f"{p['loss'] * 100:g}%",
            f"{p['streams']}x{p['size']}",
            p["variant"],
            f"{p['p50_ms']:.0f}",
            f"{p['p95_ms']:.0f}",
            f"{p['p99_ms']:.0f}",
        ]
        for p in result["points"]
    ]
    head = (
        f"head-of-line blocking: RTT {c['rtt_ms']:.0f} ms, {c['rate_mbit_s']:g} Mbit/s, random loss both "
        f"ways; {c['rounds']} rounds of <streams>x<bytes> concurrent requests, one connection; "
        f"{c['congestion']}"
    )
    latencies = table(["loss", "workload", "variant", "p50 ms", "p95 ms", "p99 ms"], rows)
    cmp_rows = [
        [
            f"{r['loss'] * 100:g}%",
            f"{r['streams']}x{r['size']}",
            r["congestion"],
            f"{r['quic_p50_ms']:.0f} / {r['tcp_p50_ms']:.0f}",
            f"{r['quic_p99_ms']:.0f} / {r['tcp_p99_ms']:.0f}",
            ratio(r["tcp_p50_ms"], r["quic_p50_ms"]),
            ratio(r["tcp_p99_ms"], r["quic_p99_ms"]),
        ]
        for r in ratios(result)
    ]
    headers = ["loss", "workload", "cc", "p50 QUIC / TCP", "p99 QUIC / TCP", "TCP/QUIC p50", "TCP/QUIC p99"]
    return head + "\n" + latencies + "\n\n" + table(headers, cmp_rows)


def _workload(text: str) -> tuple[int, int]:
    streams, _, size = text.partition("x")
    return int(streams), int(size)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    parser.add_argument("--losses", type=float, nargs="+", default=[0, 1, 2, 5], help="percent")
    parser.add_argument(
        "--workloads",
        type=_workload,
        nargs="+",
        default=list(WORKLOADS),
        help="<streams>x<bytes>, e.g. 16x1024",
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--rate-mbit", type=float, default=20.0)
    args = parser.parse_args(argv)
    result = run(
        rtt=args.rtt_ms / 1000,
        losses=tuple(v / 100 for v in args.losses),
        workloads=tuple(args.workloads),
        rounds=args.rounds,
        rate_bps=args.rate_mbit * 1e6,
    )
    print(report(result))
    print(saved(save_result("hol_blocking", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
