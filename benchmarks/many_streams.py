"""100 streams x 64 KiB on one connection: time to complete all of them, Mbit/s and CPU per side.

Run as root: ``python -m benchmarks.many_streams [--streams 100] [--kib 64] [--repeat 5] [--quick]``.

One connection per run; the client opens ``--streams`` streams at once. ``download``: each stream is a
request the server answers with ``--kib`` KiB; ``upload``: each stream carries ``--kib`` KiB to the
server, which answers ``OK``. Every stream's body starts at a different place in a seeded random block
and is compared byte for byte with what that stream should carry, so a short, corrupted or mixed-up
stream fails the run.

The machinery is :mod:`benchmarks.bulk`'s (its workers, stacks and network namespace): server and client
are separate processes inside a network namespace whose loopback has MTU 1500; every QUIC stack uses
1452-byte datagrams (rudp with PMTU discovery off); rudp's TCP+TLS baseline ``rudp-tcp`` runs beside them;
qh3 where it installs. Runs are interleaved ``--repeat`` times and the median run (by time) is shown.
CPU is each process's user + system time (``getrusage``) from the first request to the last stream's end
(the server of a download: to when the client is done). Ratios are against ``aioquic-1452``: ``faster``
is aioquic's time over the stack's, ``CPU`` aioquic's CPU (both sides) over the stack's.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmarks import bulk
from benchmarks.common import save_result, saved, table

STREAMS = 100
KIB = 64


def run(
    *,
    streams: int = STREAMS,
    kib: float = KIB,
    repeat: int = 5,
    loops: tuple[str, ...] = ("asyncio",),
    stacks: tuple[str, ...] | None = None,
    directions: tuple[str, ...] = bulk.DIRECTIONS,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Every stack and direction, interleaved `repeat` times, on the MTU-1500 namespace; JSON-able."""
    result = bulk.run(
        mbytes=kib / 1024,
        streams=streams,
        repeat=repeat,
        paths=("netns",),
        loops=loops,
        stacks=stacks,
        directions=directions,
        timeout=timeout,
    )
    result["conditions"]["kib"] = kib
    rows = result["paths"]["netns"]["rows"]
    for r in rows:
        download = r["direction"] == "download"
        r["server_cpu_s"] = r["sender_cpu_s"] if download else r["receiver_cpu_s"]
        r["client_cpu_s"] = r["receiver_cpu_s"] if download else r["sender_cpu_s"]
    for r in rows:
        base = bulk._baseline(rows, r)
        r["faster_vs_aioquic"] = base and base["seconds"] / r["seconds"]
        r["cpu_vs_aioquic"] = base and (base["server_cpu_s"] + base["client_cpu_s"]) / (
            r["server_cpu_s"] + r["client_cpu_s"]
        )
    return result


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def report(result: dict[str, Any]) -> str:
    """Time to complete all streams, Mbit/s, CPU per side, and ratios vs aioquic-1452."""
    c = result["conditions"]
    data = result["paths"]["netns"]
    rows = data["rows"]
    body = []
    for r in rows:
        body.append(
            [
                r["stack"],
                r["loop"],
                r["direction"],
                f"{r['seconds'] * 1000:.0f}",
                "/".join(f"{t * 1000:.0f}" for t in r["seconds_runs"]),
                f"{r['mbit_s']:.0f}",
                f"{r['server_cpu_s'] * 1000:.0f}",
                f"{r['client_cpu_s'] * 1000:.0f}",
                _times(r["faster_vs_aioquic"]),
                _times(r["cpu_vs_aioquic"]),
            ]
        )
    head = (
        f"{c['streams']} streams x {c['kib']:g} KiB on one connection, network namespace with loopback MTU "
        f"{c['mtu']} ({c['datagram']}-byte datagrams), server and client in separate processes, "
        f"{c['repeat']} interleaved runs (median shown)"
    )
    headers = [
        "stack",
        "loop",
        "direction",
        "ms",
        "runs ms",
        "Mbit/s",
        "server CPU ms",
        "client CPU ms",
        "faster vs aioquic",
        "CPU vs aioquic",
    ]
    parts = [head + "\n" + table(headers, body)]
    parts += [f"  {name}: FAILED {e.splitlines()[-1] if e else ''}" for name, e in data["errors"].items()]
    parts += [f"  {name}: {why}" for name, why in result.get("missing", {}).items()]
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=STREAMS)
    parser.add_argument("--kib", type=float, default=KIB)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10 streams x 16 KiB, one run each")
    bulk.add_selection_arguments(parser, ["asyncio"])
    args = parser.parse_args(argv)
    streams, kib, repeat = (10, 16.0, 1) if args.quick else (args.streams, args.kib, args.repeat)
    result = run(streams=streams, kib=kib, repeat=repeat, **bulk.selection(args))
    print(report(result))
    print(saved(save_result("many_streams", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
