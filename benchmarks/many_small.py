"""Many small requests over one connection: requests per second and per-request latency.

Run: ``python -m benchmarks.many_small [--requests 2000] [--concurrency 32] [--rtt-ms 10 0] [--repeat 3]``.

Two phases per stack over the emulated link (no loss): ``sequential`` sends ``--sequential`` requests
one after the other (latency is then about one RTT plus the stacks' processing); ``concurrent`` keeps
``--concurrency`` requests in flight until ``--requests`` are done. Each request is a new stream with a
100-byte response.

Each RTT is its own run. At RTT 10 ms the round trip bounds the concurrent phase (at most
``concurrency / RTT`` requests/s, 3,200/s for 32 in flight, with zero processing); at RTT 0 (the
emulator forwards without delay) the CPU cost per request decides, which is what compares the stacks.
The stacks run interleaved (``--repeat`` rounds, the order rotated each round); each row is the stack's
median round by concurrent requests/s, and ``runs`` lists every round.

Both the client of each phase and the server process freeze the garbage collector's view of their
start-up heap (``gc.freeze()`` after a collection): otherwise a full collection of the imported modules
(20-30 ms here) lands in whichever stack happens to run when it comes due, and shows up as that
stack's p99.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
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
RESPONSE_BYTES = 100


async def _phases(
    stack: str, host: str, pki: TestPki, sequential: int, requests: int, concurrency: int
) -> dict[str, Any]:
    async with session(stack, host, pki) as sess:
        gc.collect()
        gc.freeze()  # see the module docstring

        async def one(latencies: list[float]) -> None:
            began = time.perf_counter()
            if await sess.get(RESPONSE_BYTES) != RESPONSE_BYTES:
                raise RuntimeError(f"{stack}: short response")
            latencies.append(time.perf_counter() - began)

        seq: list[float] = []
        for _ in range(sequential):
            await one(seq)
        conc: list[float] = []
        left = requests

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await one(conc)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"sequential": seq, "concurrent": conc, "concurrent_elapsed": elapsed}


def _row(raw: dict[str, Any]) -> dict[str, Any]:
    seq = [v * 1000 for v in raw["sequential"]]
    conc = [v * 1000 for v in raw["concurrent"]]
    return {
        "sequential_p50_ms": percentile(seq, 50),
        "sequential_p99_ms": percentile(seq, 99),
        "sequential_req_s": len(seq) / (sum(seq) / 1000) if seq else 0.0,
        "concurrent_req_s": len(conc) / raw["concurrent_elapsed"],
        "concurrent_p50_ms": percentile(conc, 50),
        "concurrent_p99_ms": percentile(conc, 99),
    }


def run(
    *,
    rtt: float = 0.010,
    sequential: int = 200,
    requests: int = 2000,
    concurrency: int = 32,
    repeat: int = 1,
    stacks: tuple[str, ...] = STACKS,
    bench: Bench | None = None,
) -> dict[str, Any]:
    """Both phases per stack, ``repeat`` interleaved rounds; the JSON-able result (latencies in ms)."""
    if bench is None:
        with bench_network() as fresh:
            return run(
                rtt=rtt,
                sequential=sequential,
                requests=requests,
                concurrency=concurrency,
                repeat=repeat,
                stacks=stacks,
                bench=fresh,
            )
    bench.impair(wan(rtt / 2))
    rounds: dict[str, list[dict[str, Any]]] = {stack: [] for stack in stacks}
    for index in range(repeat):
        shift = index % len(stacks)
        for stack in stacks[shift:] + stacks[:shift]:
            raw = bench.client(
                _phases, stack, bench.host, bench.pki, sequential, requests, concurrency, timeout=600.0
            )
            rounds[stack].append(_row(raw))
    rows = {}
    for stack in stacks:
        ordered = sorted(rounds[stack], key=lambda r: r["concurrent_req_s"])
        rows[stack] = {
            **ordered[(len(ordered) - 1) // 2],
            "runs": [r["concurrent_req_s"] for r in rounds[stack]],
            "median_concurrent_req_s": statistics.median(r["concurrent_req_s"] for r in rounds[stack]),
        }
    conditions = {
        "rtt_ms": rtt * 1000,
        "loss": 0.0,
        "sequential": sequential,
        "requests": requests,
        "concurrency": concurrency,
        "repeat": repeat,
        "response_bytes": RESPONSE_BYTES,
    }
    return {"conditions": conditions, "stacks": rows}


def report(result: dict[str, Any]) -> str:
    """One row per stack; ratios of concurrent requests/s against rudp-tcp and aioquic."""
    c = result["conditions"]
    s = result["stacks"]
    tcp = s.get("rudp-tcp", {}).get("concurrent_req_s")
    aio = s.get("aioquic", {}).get("concurrent_req_s")
    aio_runs = s.get("aioquic", {}).get("runs", [])

    def per_round(r: dict[str, Any]) -> str:
        """This stack against aioquic round by round (each round ran every stack once, in turn)."""
        runs = r.get("runs", [])
        if not aio_runs or len(runs) != len(aio_runs):
            return "-"
        return "/".join(f"{mine / theirs:.2f}" for mine, theirs in zip(runs, aio_runs, strict=True) if theirs)

    rows = [
        [
            stack,
            f"{r['sequential_p50_ms']:.1f}",
            f"{r['sequential_p99_ms']:.1f}",
            f"{r['concurrent_req_s']:.0f}",
            "/".join(f"{v:.0f}" for v in r.get("runs", [r["concurrent_req_s"]])),
            f"{r['concurrent_p50_ms']:.1f}",
            f"{r['concurrent_p99_ms']:.1f}",
            ratio(r["concurrent_req_s"], tcp),
            ratio(r["concurrent_req_s"], aio),
            per_round(r),
        ]
        for stack, r in s.items()
    ]
    head = (
        f"many small requests: RTT {c['rtt_ms']:.0f} ms, no loss, one connection, {c['response_bytes']}-byte "
        f"responses; {c['sequential']} sequential, then {c['requests']} with {c['concurrency']} in flight; "
        f"{c.get('repeat', 1)} interleaved round(s), median round shown"
    )
    if c["rtt_ms"] > 0 and s:
        # Little's law: requests/s = requests in flight / mean latency. A request among others takes
        # no less than one alone, so concurrency / the lowest mean latency of a lone request bounds
        # every stack's concurrent rate on this link.
        alone = 1000 / max(r["sequential_req_s"] for r in s.values())
        head += (
            f"\nbound here: {c['concurrency']} in flight / {alone:.1f} ms (a lone request's mean "
            f"latency) = {c['concurrency'] / alone * 1000:.0f} req/s"
        )
    headers = [
        "stack",
        "seq p50 ms",
        "seq p99 ms",
        "conc req/s",
        "runs",
        "conc p50 ms",
        "conc p99 ms",
        "vs TCP",
        "vs aioquic",
        "per round vs aioquic",
    ]
    return head + "\n" + table(headers, rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=[10.0, 0.0])
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with bench_network() as bench:
        for rtt_ms in args.rtt_ms:
            result = run(
                rtt=rtt_ms / 1000,
                sequential=args.sequential,
                requests=args.requests,
                concurrency=args.concurrency,
                repeat=args.repeat,
                bench=bench,
            )
            print(report(result))
            print(saved(save_result("many_small", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
