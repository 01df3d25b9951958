"""Fairness: two bulk flows sharing one bottleneck; each flow's share and Jain's fairness index.

Run: ``python -m benchmarks.fairness [--seconds 20] [--skip 3] [--repeat 3] [--rtt-ms 40]
[--rate-mbit 20] [--queue-bdp 1.5]``.

The server-to-client direction is the bottleneck (``--rate-mbit``, a drop-tail queue of ``--queue-bdp``
bandwidth-delay products in bytes, no AQM, so ECN plays no part), the other direction only has the
delay. Each run starts two downloads at the same moment, each in its own client process, and counts
the bytes each receives from ``--skip`` seconds on (past slow start) to the end. Pairs: rudp QUIC CUBIC
against kernel TCP CUBIC (rudp's TCP+TLS baseline, CUBIC set per socket), rudp BBR against kernel
CUBIC, rudp CUBIC against rudp CUBIC, and kernel CUBIC against kernel CUBIC (the control). The pairs
are interleaved ``--repeat`` times; the report gives the median of each figure over the repetitions.

Jain's index of two rates x1, x2 is (x1 + x2)^2 / (2 (x1^2 + x2^2)): 1 for equal shares, 0.5 when one
flow has everything.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

from benchmarks.bottleneck import FlowSpec, jain, link_delta, run_flows, variant_servers
from benchmarks.common import Bench, bench_network, save_result, saved, table
from rudp.netem import Impairments

RUDP_CUBIC = FlowSpec("rudp-quic", "cubic")
RUDP_BBR = FlowSpec("rudp-quic", "bbr")
KERNEL_CUBIC = FlowSpec("kernel-tcp", "cubic")

PAIRS: dict[str, tuple[FlowSpec, FlowSpec]] = {
    "rudp cubic vs kernel cubic": (RUDP_CUBIC, KERNEL_CUBIC),
    "rudp bbr vs kernel cubic": (RUDP_BBR, KERNEL_CUBIC),
    "rudp cubic vs rudp cubic": (RUDP_CUBIC, RUDP_CUBIC),
    "kernel cubic vs kernel cubic": (KERNEL_CUBIC, KERNEL_CUBIC),
}


def _rep(bench: Bench, pair: str, seconds: float, skip: float, bin_s: float) -> dict[str, Any]:
    flows, before = run_flows(bench, list(PAIRS[pair]), seconds, bin_s=bin_s)
    link = link_delta(before.s2c, bench.net.stats().s2c)
    first = round(skip / bin_s)
    window = seconds - first * bin_s
    rates = [sum(f["bins"][first:]) * 8 / window / 1e6 for f in flows]
    total = sum(rates)
    return {
        "mbit_s": rates,
        "shares": [r / total if total else 0.0 for r in rates],
        "ratio": rates[0] / rates[1] if rates[1] else float("inf"),
        "jain": jain(rates),
        "bins_mbit_s": [[round(b * 8 / bin_s / 1e6, 3) for b in f["bins"]] for f in flows],
        "sender_lost": [(f["sender"] or {}).get("packets_lost") for f in flows],
        "link": link,
    }


def run(
    *,
    pairs: tuple[str, ...] = tuple(PAIRS),
    seconds: float = 20.0,
    skip: float = 3.0,
    repeat: int = 3,
    rtt: float = 0.040,
    rate_bps: float = 20e6,
    queue_bdp: float = 1.5,
    bin_s: float = 0.5,
    bench: Bench | None = None,
) -> dict[str, Any]:
    """`repeat` rounds, each running every pair once; the JSON-able result with per-pair medians."""
    if bench is None:
        with bench_network() as fresh:
            return run(
                pairs=pairs,
                seconds=seconds,
                skip=skip,
                repeat=repeat,
                rtt=rtt,
                rate_bps=rate_bps,
                queue_bdp=queue_bdp,
                bin_s=bin_s,
                bench=fresh,
            )
    if not 0 <= skip < seconds:
        raise ValueError("skip must be in [0, seconds)")
    queue_bytes = int(rate_bps * rtt / 8 * queue_bdp)
    reps: dict[str, list[dict[str, Any]]] = {pair: [] for pair in pairs}
    with variant_servers(bench):
        bench.net.set_impairments("c2s", Impairments(delay=rtt / 2))
        bench.net.set_impairments(
            "s2c", Impairments(delay=rtt / 2, rate_bps=rate_bps, queue_bytes=queue_bytes)
        )
        for _ in range(repeat):
            for pair in pairs:
                reps[pair].append(_rep(bench, pair, seconds, skip, bin_s))
    points = []
    for pair, runs in reps.items():
        a, b = PAIRS[pair]
        points.append(
            {
                "pair": pair,
                "flows": [a.label, b.label],
                "median_mbit_s": [statistics.median(r["mbit_s"][i] for r in runs) for i in (0, 1)],
                "median_share": statistics.median(r["shares"][0] for r in runs),
                "median_ratio": statistics.median(r["ratio"] for r in runs),
                "median_jain": statistics.median(r["jain"] for r in runs),
                "reps": runs,
            }
        )
    conditions = {
        "rtt_ms": rtt * 1000,
        "rate_mbit_s": rate_bps / 1e6,
        "queue_bytes": queue_bytes,
        "queue_bdp": queue_bdp,
        "seconds": seconds,
        "skip_s": skip,
        "repeat": repeat,
        "bin_s": bin_s,
        "bottleneck": "server to client, drop-tail, no AQM; ACK direction: delay only",
        "tcp": "rudp's TCP+TLS baseline, kernel cubic set per socket",
    }
    return {"conditions": conditions, "points": points}


def report(result: dict[str, Any]) -> str:
    """Per pair: medians of both flows' rates, the first flow's share, A/B and Jain's index; every
    repetition's A/B ratio."""
    c = result["conditions"]
    rows = []
    for p in result["points"]:
        a, b = p["median_mbit_s"]
        rows.append(
            [
                p["pair"],
                f"{a:.2f}",
                f"{b:.2f}",
                f"{p['median_share']:.0%}",
                f"{p['median_ratio']:.2f}",
                f"{p['median_jain']:.3f}",
                " ".join(f"{r['ratio']:.2f}" for r in p["reps"]),
            ]
        )
    head = (
        f"fairness: two flows, {c['rate_mbit_s']:g} Mbit/s, RTT {c['rtt_ms']:.0f} ms, drop-tail queue "
        f"{c['queue_bytes']} B ({c['queue_bdp']:g} BDP), {c['seconds']:g} s per run counted from "
        f"{c['skip_s']:g} s, median of {c['repeat']} interleaved runs"
    )
    headers = ["pair (A vs B)", "A Mbit/s", "B Mbit/s", "A share", "A/B", "Jain", "A/B per run"]
    return head + "\n" + table(headers, rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--skip", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    parser.add_argument("--rate-mbit", type=float, default=20.0)
    parser.add_argument("--queue-bdp", type=float, default=1.5)
    args = parser.parse_args(argv)
    result = run(
        seconds=args.seconds,
        skip=args.skip,
        repeat=args.repeat,
        rtt=args.rtt_ms / 1000,
        rate_bps=args.rate_mbit * 1e6,
        queue_bdp=args.queue_bdp,
    )
    print(report(result))
    print(saved(save_result("fairness", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
