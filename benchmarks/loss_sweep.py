"""Loss sweep: bulk goodput against random loss for every stack and congestion controller.

Run: ``python -m benchmarks.loss_sweep [--losses 0 0.5 1 2 5] [--seconds 5] [--rtt-ms 40] [--rate-mbit 20]``.

Each point is one connection downloading for ``--seconds`` over a rate-limited link with random loss in
both directions; goodput counts application bytes received in that time (handshake and slow start
included). Stacks: rudp QUIC with NewReno, CUBIC and BBR (BBRv3, draft-ietf-ccwg-bbr), rudp's TCP+TLS
baseline with the kernel's CUBIC and with the kernel's BBR, each set per socket, aioquic with its Reno and
with CUBIC.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any

from benchmarks.common import (
    VARIANTS,
    Bench,
    bench_network,
    link_summary,
    ratio,
    save_result,
    saved,
    session,
    table,
    wan,
)
from rudp.testing.certs import TestPki


class _TimeUp(Exception):
    pass


async def _timed_download(
    stack: str, congestion: str, host: str, pki: TestPki, seconds: float, cap: int
) -> float:
    got = 0
    start = time.perf_counter()
    deadline = start + seconds

    def progress(n: int) -> None:  # raising here ends the read loop at the deadline, whatever the stack
        nonlocal got
        if time.perf_counter() >= deadline:
            raise _TimeUp
        got += n

    async with session(stack, host, pki, congestion) as sess:
        with contextlib.suppress(_TimeUp, TimeoutError):
            await sess.get(cap, progress, stall=seconds)
        elapsed = min(time.perf_counter() - start, seconds)
    return got * 8 / elapsed / 1e6


def run(
    *,
    losses: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02, 0.05),
    seconds: float = 5.0,
    rtt: float = 0.040,
    rate_bps: float = 20e6,
    variants: tuple[str, ...] = tuple(VARIANTS),
    bench: Bench | None = None,
) -> dict[str, Any]:
    """Goodput (Mbit/s) per variant and loss rate; the JSON-able result."""
    if bench is None:
        with bench_network() as fresh:
            return run(
                losses=losses, seconds=seconds, rtt=rtt, rate_bps=rate_bps, variants=variants, bench=fresh
            )
    cap = int(rate_bps / 8 * seconds * 1.5)  # more than the link can carry in the time
    points = []
    for loss in losses:
        bench.impair(wan(rtt / 2, loss, rate_bps))
        for name in variants:
            stack, cc = VARIANTS[name]
            mbit = bench.client(
                _timed_download, stack, cc, bench.host, bench.pki, seconds, cap, timeout=seconds + 60
            )
            points.append({"loss": loss, "variant": name, "mbit_s": mbit})
    conditions = {
        "rtt_ms": rtt * 1000,
        "rate_mbit_s": rate_bps / 1e6,
        "seconds": seconds,
        "loss": "random, both directions",
        "tcp_congestion": "cubic and bbr (set per socket)",
    }
    return {"conditions": conditions, "points": points, "link": link_summary(bench)}


def report(result: dict[str, Any]) -> str:
    """Goodput table: one row per loss rate, one column per variant, then the ratios rudp cubic / kernel
    cubic, rudp cubic / aioquic cubic, rudp bbr / kernel bbr and rudp bbr / the link."""
    c = result["conditions"]
    variants = list(dict.fromkeys(p["variant"] for p in result["points"]))
    losses = list(dict.fromkeys(p["loss"] for p in result["points"]))
    value = {(p["loss"], p["variant"]): p["mbit_s"] for p in result["points"]}
    rows = []
    for loss in losses:
        cells = [f"{value[(loss, v)]:.2f}" for v in variants]
        quic, tcp = value.get((loss, "rudp-quic cubic")), value.get((loss, "rudp-tcp kernel-cubic"))
        aio = value.get((loss, "aioquic cubic"))
        bbr, kbbr = value.get((loss, "rudp-quic bbr")), value.get((loss, "rudp-tcp kernel-bbr"))
        link = c["rate_mbit_s"]
        share = "-" if bbr is None else f"{bbr / link:.0%}"
        rows.append([f"{loss * 100:g}%", *cells, ratio(quic, tcp), ratio(quic, aio), ratio(bbr, kbbr), share])
    head = (
        f"loss sweep: goodput Mbit/s, RTT {c['rtt_ms']:.0f} ms, {c['rate_mbit_s']:g} Mbit/s link, "
        f"{c['seconds']:g} s per point, {c['loss']}; TCP uses kernel {c['tcp_congestion']}"
    )
    headers = [
        "loss",
        *variants,
        "rudp cubic/TCP",
        "rudp cubic/aioquic cubic",
        "rudp bbr/kernel bbr",
        "rudp bbr/link",
    ]
    return head + "\n" + table(headers, rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", type=float, nargs="+", default=[0, 0.5, 1, 2, 5], help="percent")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    parser.add_argument("--rate-mbit", type=float, default=20.0)
    args = parser.parse_args(argv)
    result = run(
        losses=tuple(v / 100 for v in args.losses),
        seconds=args.seconds,
        rtt=args.rtt_ms / 1000,
        rate_bps=args.rate_mbit * 1e6,
    )
    print(report(result))
    print(saved(save_result("loss_sweep", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
