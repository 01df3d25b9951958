"""Connection migration / NAT rebinding: a long download whose client port changes half-way.

Run: ``python -m benchmarks.migration [--mbytes 4] [--rtt-ms 20] [--rate-mbit 20]``.

The emulator's NAT gives the client a new external port (``net.rebind()``) as soon as the client has
received half of the body (it signals the parent through a pipe, so the rebinding happens at the same
point for every stack). A QUIC connection carries on: the server sees datagrams from a new address,
validates the path and answers there. A TCP connection cannot: the server's kernel answers the unknown
4-tuple with a RST (or the flow stalls). Reported per stack: completed or not, bytes received, total
time, the longest gap between two received chunks (the stall the rebinding caused) and, for rudp
servers, the peer address and path changes the server saw afterwards. Each run also records the bytes
received over time (``received``: ``[seconds, bytes]`` pairs, at most one per ``SAMPLE_S``) and when
the rebinding happened on that timeline (``rebind_at_s``), which ``benchmarks/plots.py`` draws.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import sys
import time
from typing import Any

from benchmarks.common import Bench, bench_network, run_coroutine, save_result, saved, session, table, wan
from rudp.testing.certs import TestPki

STACKS = ("rudp-quic", "rudp-tcp", "aioquic")
SAMPLE_S = 0.002
"""Minimum spacing of the received-bytes samples (s); the last chunk is always recorded."""


async def _download(
    stack: str, host: str, pki: TestPki, nbytes: int, signal_fd: int, stall: float
) -> dict[str, Any]:
    # time.monotonic() throughout: the parent stamps the rebinding with the same (system-wide) clock
    state = {"got": 0, "signalled": False, "last": 0.0, "max_gap": 0.0, "sampled": 0.0}
    outcome: dict[str, Any] = {
        "stack": stack,
        "completed": False,
        "error": None,
        "server_view": None,
        "half_at_s": None,
    }
    start = time.monotonic()
    state["last"] = start
    received: list[list[float]] = [[0.0, 0]]

    def progress(n: int) -> None:
        now = time.monotonic()
        state["max_gap"] = max(state["max_gap"], now - state["last"])
        state["last"] = now
        state["got"] += n
        half_way = not state["signalled"] and state["got"] >= nbytes // 2
        if half_way or now - state["sampled"] >= SAMPLE_S or state["got"] >= nbytes:
            state["sampled"] = now
            received.append([round(now - start, 4), state["got"]])
        if half_way:
            state["signalled"] = True
            outcome["half_at_s"] = round(now - start, 4)
            os.write(signal_fd, b"h")

    try:
        async with session(stack, host, pki) as sess:
            got = await sess.get(nbytes, progress, stall=stall)
            outcome["completed"] = got == nbytes
            outcome["elapsed_s"] = time.monotonic() - start
            outcome["server_view"] = await asyncio.wait_for(sess.info(), stall)
    except (Exception, asyncio.CancelledError) as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"[:200]
        outcome["elapsed_s"] = time.monotonic() - start
    if not state["signalled"]:
        os.write(signal_fd, b"x")  # never reached half-way: release the parent
    if received[-1][1] != state["got"]:
        received.append([round(state["last"] - start, 4), state["got"]])
    outcome["bytes"] = state["got"]
    outcome["max_gap_s"] = (
        max(state["max_gap"], time.monotonic() - state["last"])
        if not outcome["completed"]
        else state["max_gap"]
    )
    outcome["received"] = received
    outcome["started_monotonic"] = start
    return outcome


def _one(bench: Bench, stack: str, nbytes: int, stall: float) -> dict[str, Any]:
    read_fd, write_fd = os.pipe()
    task = bench.net.client.spawn(
        run_coroutine, _download, stack, bench.host, bench.pki, nbytes, write_fd, stall
    )
    os.close(write_fd)
    rebound_to, rebound_at = None, None
    try:
        ready, _, _ = select.select([read_fd], [], [], 120.0)
        if ready and os.read(read_fd, 1) == b"h":
            rebound_to = bench.net.rebind()
            rebound_at = time.monotonic()  # the forwarder has switched to the new port by now
        result: dict[str, Any] = task.join(timeout=180.0)
    finally:
        task.kill()
        os.close(read_fd)
    result["rebound_to"] = rebound_to
    started = result.pop("started_monotonic")
    result["rebind_at_s"] = None if rebound_at is None else round(rebound_at - started, 4)
    return result


def run(
    *,
    mbytes: float = 4.0,
    rtt: float = 0.020,
    rate_bps: float = 20e6,
    stall: float = 5.0,
    stacks: tuple[str, ...] = STACKS,
    bench: Bench | None = None,
) -> dict[str, Any]:
    """Download `mbytes` per stack with one NAT rebinding half-way; the JSON-able result."""
    if bench is None:
        with bench_network(nat=True) as fresh:
            return run(mbytes=mbytes, rtt=rtt, rate_bps=rate_bps, stall=stall, stacks=stacks, bench=fresh)
    bench.impair(wan(rtt / 2, 0.0, rate_bps))
    nbytes = int(mbytes * 1e6)
    runs = [_one(bench, stack, nbytes, stall) for stack in stacks]
    conditions = {
        "rtt_ms": rtt * 1000,
        "rate_mbit_s": rate_bps / 1e6,
        "bytes": nbytes,
        "rebind": "new client port (NAT) after half the body",
        "stall_limit_s": stall,
    }
    return {"conditions": conditions, "runs": runs}


def report(result: dict[str, Any]) -> str:
    """One row per stack: outcome, bytes, time, longest stall, what the server saw."""
    c = result["conditions"]
    rows = []
    for r in result["runs"]:
        view = r.get("server_view") or {}
        seen = f"{view['peer'][0]}:{view['peer'][1]}, {view['path_changes']} path change(s)" if view else "-"
        rows.append(
            [
                r["stack"],
                "completed" if r["completed"] else "BROKEN",
                f"{r['bytes'] / 1e6:.2f}/{c['bytes'] / 1e6:.2f}",
                f"{r['elapsed_s']:.2f}",
                f"{r['max_gap_s'] * 1000:.0f}",
                seen if r["completed"] else (r["error"] or "")[-60:],
            ]
        )
    head = (
        f"migration: {c['bytes'] / 1e6:g} MB download, RTT {c['rtt_ms']:.0f} ms, "
        f"{c['rate_mbit_s']:g} Mbit/s, {c['rebind']}; a stall of {c['stall_limit_s']:g} s counts as broken"
    )
    headers = ["stack", "outcome", "MB received", "seconds", "longest gap ms", "server saw / error"]
    return head + "\n" + table(headers, rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbytes", type=float, default=4.0)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--rate-mbit", type=float, default=20.0)
    args = parser.parse_args(argv)
    result = run(mbytes=args.mbytes, rtt=args.rtt_ms / 1000, rate_bps=args.rate_mbit * 1e6)
    print(report(result))
    print(saved(save_result("migration", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
