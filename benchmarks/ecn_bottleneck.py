"""ECN bottleneck: one bulk flow through a finite queue with a CE-marking AQM, ECN on against ECN off.

Run: ``python -m benchmarks.ecn_bottleneck [--aqms droptail step red codel] [--seconds 10] [--rtt-ms 40]
[--rate-mbit 20] [--queue-bdp 1.5]``.

The server-to-client direction is the bottleneck: ``--rate-mbit`` with a drop-tail queue of
``--queue-bdp`` bandwidth-delay products in bytes and an AQM in front of it that marks ECN-capable
packets CE and drops Not-ECT ones where it signals (``rudp/netem/README.md``); the client-to-server
direction (ACKs) only has the delay. Each point is one download of ``--seconds`` by one flow: rudp QUIC
with CUBIC and with BBR, ECN on and off (``Config.ecn`` on both ends), and rudp's TCP+TLS baseline with
the kernel's CUBIC, ECN on and off (``net.ipv4.tcp_ecn`` of the client namespace: there is no per-socket
switch). The link's counters over the run give the packets the bottleneck dropped, the CE marks and the
queue delay (sojourn) of every packet that crossed it; the rudp sender reports the CE marks its
controller was told about.

AQMs: ``droptail`` (none: the baseline, where ECN changes nothing, so only ECN off runs), ``step``
(CE above 5 ms of queue delay: a shallow step, since classic CUBIC backs off by 30% per mark where
L4S senders expect 1 ms), ``red`` (30-90 kB, max_p 10%, instantaneous backlog) and
``codel`` (5 ms target, 100 ms interval), all from ``rudp.netem``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmarks.bottleneck import FlowSpec, link_delta, run_flows, set_tcp_ecn, variant_servers
from benchmarks.common import Bench, bench_network, ratio, save_result, saved, table
from rudp.netem import Aqm, CodelMarker, Impairments, RedMarker, StepMarker

AQMS: dict[str, Aqm | None] = {
    "droptail": None,
    "step": StepMarker(threshold=0.005),
    "red": RedMarker(min_bytes=30_000, max_bytes=90_000, max_p=0.1),
    "codel": CodelMarker(target=0.005, interval=0.1),
}

VARIANTS: dict[str, FlowSpec] = {
    "rudp cubic ecn": FlowSpec("rudp-quic", "cubic", True),
    "rudp cubic no-ecn": FlowSpec("rudp-quic", "cubic", False),
    "rudp bbr ecn": FlowSpec("rudp-quic", "bbr", True),
    "rudp bbr no-ecn": FlowSpec("rudp-quic", "bbr", False),
    "kernel cubic ecn": FlowSpec("kernel-tcp", "cubic", True),
    "kernel cubic no-ecn": FlowSpec("kernel-tcp", "cubic", False),
}


def _point(bench: Bench, aqm: str, name: str, seconds: float) -> dict[str, Any]:
    spec = VARIANTS[name]
    set_tcp_ecn(bench, spec.ecn if spec.stack == "kernel-tcp" else None)
    (flow,), before = run_flows(bench, [spec], seconds)
    link = link_delta(before.s2c, bench.net.stats().s2c)
    drops = link["dropped"]
    return {
        "aqm": aqm,
        "variant": name,
        "stack": spec.stack,
        "congestion": spec.congestion,
        "ecn": spec.ecn,
        "mbit_s": flow["bytes"] * 8 / seconds / 1e6,
        "lost": drops.get("queue", 0) + drops.get("aqm", 0),
        "ce_marked": link["ce_marked"],
        "queue_delay_ms": link["queue_delay_ms"],
        "link": link,
        "sender": flow["sender"],
        "receiver": flow["receiver"],
        "bins": flow["bins"],
    }


def run(
    *,
    aqms: tuple[str, ...] = tuple(AQMS),
    variants: tuple[str, ...] = tuple(VARIANTS),
    seconds: float = 10.0,
    rtt: float = 0.040,
    rate_bps: float = 20e6,
    queue_bdp: float = 1.5,
    bench: Bench | None = None,
) -> dict[str, Any]:
    """One flow per AQM and variant (ECN on and off alternate); the JSON-able result."""
    if bench is None:
        with bench_network() as fresh:
            return run(
                aqms=aqms,
                variants=variants,
                seconds=seconds,
                rtt=rtt,
                rate_bps=rate_bps,
                queue_bdp=queue_bdp,
                bench=fresh,
            )
    queue_bytes = int(rate_bps * rtt / 8 * queue_bdp)
    points = []
    with variant_servers(bench):
        try:
            bench.net.set_impairments("c2s", Impairments(delay=rtt / 2))
            for aqm in aqms:
                bottleneck = Impairments(
                    delay=rtt / 2, rate_bps=rate_bps, queue_bytes=queue_bytes, aqm=AQMS[aqm]
                )
                bench.net.set_impairments("s2c", bottleneck)
                # Without an AQM nothing is marked: ECN on would repeat ECN off, so only the latter runs.
                chosen = [n for n in variants if AQMS[aqm] is not None or not VARIANTS[n].ecn]
                points += [_point(bench, aqm, name, seconds) for name in chosen]
        finally:
            set_tcp_ecn(bench, None)
    conditions = {
        "rtt_ms": rtt * 1000,
        "rate_mbit_s": rate_bps / 1e6,
        "queue_bytes": queue_bytes,
        "queue_bdp": queue_bdp,
        "seconds": seconds,
        "aqms": {name: repr(AQMS[name]) if AQMS[name] else "none (drop-tail)" for name in aqms},
        "bottleneck": "server to client only; ACK direction: delay only",
        "tcp": "rudp's TCP+TLS baseline, kernel cubic per socket, ECN: tcp_ecn of the client netns",
    }
    return {"conditions": conditions, "points": points, "summary": summarize(points)}


def summarize(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per AQM and flow (stack + controller), the issue's goal: ECN on against ECN off with the same
    AQM (which then drops where it would mark), and against the drop-tail queue without ECN."""
    by = {(p["aqm"], p["stack"], p["congestion"], p["ecn"]): p for p in points}
    rows = []
    for (aqm, stack, cc, ecn), on in by.items():
        if not ecn:
            continue
        for against in ("no-ecn", "droptail"):
            off = by.get((aqm if against == "no-ecn" else "droptail", stack, cc, False))
            if off is not None:
                rows.append(_compare(aqm, against, FlowSpec(stack, cc).label, on, off))
    return rows


def _compare(aqm: str, against: str, flow: str, on: dict[str, Any], off: dict[str, Any]) -> dict[str, Any]:
    return {
        "aqm": aqm,
        "against": against,
        "flow": flow,
        "lost_ecn": on["lost"],
        "lost_without": off["lost"],
        "lost_ratio": on["lost"] / off["lost"] if off["lost"] else None,
        "goodput_ratio": on["mbit_s"] / off["mbit_s"] if off["mbit_s"] else None,
        "delay_p50_ms": [on["queue_delay_ms"]["p50"], off["queue_delay_ms"]["p50"]],
        "delay_p95_ms": [on["queue_delay_ms"]["p95"], off["queue_delay_ms"]["p95"]],
    }


def report(result: dict[str, Any]) -> str:
    """One row per AQM and variant, then per AQM and flow the ratios of ECN on to ECN off with the same
    AQM and to the drop-tail queue without ECN."""
    c = result["conditions"]
    rows = []
    for p in result["points"]:
        sender = p["sender"] or {}
        rows.append(
            [
                p["aqm"],
                p["variant"],
                f"{p['mbit_s']:.2f}",
                p["lost"],
                p["ce_marked"],
                f"{p['queue_delay_ms']['p50']:.1f}",
                f"{p['queue_delay_ms']['p95']:.1f}",
                sender.get("packets_lost", "-"),
                sender.get("ce_count", "-"),
                sender.get("ecn_state", "-"),
            ]
        )
    head = (
        f"ECN bottleneck: {c['rate_mbit_s']:g} Mbit/s, RTT {c['rtt_ms']:.0f} ms, queue {c['queue_bytes']} B "
        f"({c['queue_bdp']:g} BDP), {c['seconds']:g} s per flow; lost = dropped at the bottleneck"
    )
    headers = [
        "aqm",
        "variant",
        "Mbit/s",
        "lost",
        "CE",
        "qdelay p50 ms",
        "p95 ms",
        "sender lost",
        "sender CE",
        "ecn state",
    ]
    out = head + "\n" + table(headers, rows)
    srows = [
        [
            s["aqm"],
            s["flow"],
            s["against"],
            f"{s['lost_ecn']} / {s['lost_without']}",
            "-" if s["lost_ratio"] is None else f"{s['lost_ratio']:.1%}",
            "-" if s["goodput_ratio"] is None else f"{s['goodput_ratio']:.2f}x",
            ratio(*s["delay_p50_ms"]),
            ratio(*s["delay_p95_ms"]),
        ]
        for s in result["summary"]
    ]
    sheaders = [
        "aqm + ECN",
        "flow",
        "against",
        "lost ecn / without",
        "ratio (goal < 10%)",
        "goodput ratio",
        "qdelay p50 ratio",
        "p95 ratio",
    ]
    return out + "\n\n" + table(sheaders, srows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aqms", nargs="+", default=list(AQMS), choices=list(AQMS))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    parser.add_argument("--rate-mbit", type=float, default=20.0)
    parser.add_argument("--queue-bdp", type=float, default=1.5)
    args = parser.parse_args(argv)
    result = run(
        aqms=tuple(args.aqms),
        seconds=args.seconds,
        rtt=args.rtt_ms / 1000,
        rate_bps=args.rate_mbit * 1e6,
        queue_bdp=args.queue_bdp,
    )
    print(report(result))
    print(saved(save_result("ecn_bottleneck", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
