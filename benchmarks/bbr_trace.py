"""BBR trace: one rudp BBR bulk flow through the emulator, its congestion window, delivery rate, pacing
rate and BBR state over time, read from the sender's qlog.

Run: ``python -m benchmarks.bbr_trace [--seconds 10] [--loss 1] [--rtt-ms 40] [--rate-mbit 20]``.

A rudp server with ``Config(congestion="bbr", qlog_dir=...)`` runs in the server namespace (beside the
benchmark servers, on :data:`PORT`); one client downloads from it for ``--seconds`` through the
rate-limited, lossy link, then closes. The server's qlog (the sender's view) gives the series:
``recovery:metrics_updated`` carries ``congestion_window``, ``bytes_in_flight``, ``pacing_rate`` and,
for a controller fed delivery-rate samples, ``delivery_rate`` (the latest sample) and
``bandwidth_estimate`` (BBR's ``bw``), all rates in bits/s; ``recovery:congestion_state_updated``
carries BBR's state (the logging proxy asks the controller for its name); ``recovery:packet_lost``
marks each loss. Series are thinned to the last value per ``bin_ms`` so the JSON stays small.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import rudp
from benchmarks.common import (
    ALPN,
    Bench,
    _rudp_handler,
    bench_network,
    rudp_client_config,
    save_result,
    saved,
    server_process,
    table,
    wan,
)
from rudp.testing.certs import TestPki

PORT = 4460
SERIES = ("congestion_window", "bytes_in_flight", "delivery_rate", "bandwidth_estimate", "pacing_rate")
"""The ``recovery:metrics_updated`` fields kept, as ``[t_s, value]`` pairs."""


async def _serve(ready_fd: int, pki: TestPki, host: str, qlog_dir: str, max_seconds: float) -> None:
    config = rudp.Config(
        alpn=ALPN, certfile=pki.cert_file, keyfile=pki.key_file, congestion="bbr", qlog_dir=qlog_dir
    )
    server = await rudp.serve(host, PORT, _rudp_handler, config=config, transport="quic")
    os.write(ready_fd, b"R")
    os.close(ready_fd)
    await asyncio.sleep(max_seconds)  # self-stopping even if nobody kills us
    server.close()


def serve_qlogged(ready_fd: int, pki: TestPki, host: str, qlog_dir: str, max_seconds: float) -> None:
    """A rudp BBR server on :data:`PORT` writing qlogs to `qlog_dir`; one byte to `ready_fd` when up."""
    asyncio.run(_serve(ready_fd, pki, host, qlog_dir, max_seconds))


@contextlib.contextmanager
def qlogged_server(bench: Bench, qlog_dir: str, max_seconds: float = 300.0) -> Iterator[None]:
    """:func:`serve_qlogged` running in the server namespace for the duration of the block."""
    with server_process(
        bench.net, "the qlog server", serve_qlogged, bench.pki, bench.host, qlog_dir, max_seconds
    ):
        yield


async def _download(host: str, pki: TestPki, seconds: float) -> dict[str, Any]:
    """Download for `seconds`, then stop the stream and close; bytes received and the time taken."""
    config = rudp_client_config(pki, congestion="bbr")
    got = 0
    async with rudp.connect(host, PORT, config=config) as conn:
        stream = await conn.open_stream()
        stream.write(b"GET %d\n" % (1 << 40))
        stream.write_eof()
        start = time.monotonic()
        end = start + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                chunk = await asyncio.wait_for(stream.read(1 << 16), left)
            except TimeoutError:
                break
            if not chunk:
                break
            got += len(chunk)
        elapsed = min(time.monotonic() - start, seconds)
        stream.stop_sending()
    return {"bytes": got, "elapsed_s": elapsed}


def _settle(path: Path, quiet: float = 0.3, limit: float = 5.0) -> None:
    """Wait (at most `limit` s) until `path` stopped growing for `quiet` s: the server's connection
    closes, and its qlog ends, once the client's CONNECTION_CLOSE arrives."""
    deadline = time.monotonic() + limit
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = path.stat().st_size
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        select.select([], [], [], 0.05)


def _records(text: str) -> list[dict[str, Any]]:
    """The JSON-SEQ records of a qlog; a last record cut short (the server still writing) is left out."""
    out = []
    for chunk in text.split("\x1e"):
        with contextlib.suppress(ValueError):
            if chunk.strip():
                out.append(json.loads(chunk))
    return out


def _thin(points: list[tuple[float, float]], bin_s: float) -> list[list[float]]:
    """The last value in each `bin_s` bin (keeps the steps of a series, drops what a plot cannot show)."""
    kept: dict[int, tuple[float, float]] = {}
    for t, v in points:
        kept[int(t / bin_s)] = (t, v)
    return [[round(t, 4), v] for t, v in kept.values()]


def parse_qlog(path: Path, bin_ms: float = 5.0) -> dict[str, Any]:
    """The series of one sender qlog (JSON-SEQ), times in seconds from its first event."""
    records = _records(path.read_text())
    events = [r for r in records[1:] if "name" in r]
    t0 = events[0]["time"]
    raw: dict[str, list[tuple[float, float]]] = {name: [] for name in SERIES}
    states: list[list[Any]] = []
    losses: list[float] = []
    for e in events:
        t = (e["time"] - t0) / 1000
        name, data = e["name"], e["data"]
        if name == "recovery:metrics_updated":
            for key in SERIES:
                if key in data:
                    raw[key].append((t, data[key]))
        elif name == "recovery:congestion_state_updated":
            states.append([round(t, 4), data["new"]])
        elif name == "recovery:packet_lost":
            losses.append(round(t, 4))
    return {
        "series": {key: _thin(points, bin_ms / 1000) for key, points in raw.items()},
        "states": states,
        "losses_s": losses,
        "end_s": round((events[-1]["time"] - t0) / 1000, 4),
    }


def state_durations(states: list[list[Any]], end_s: float) -> dict[str, float]:
    """Seconds spent in each state, from the state changes and the trace's end."""
    out: dict[str, float] = {}
    for (t, state), nxt in zip(states, [*states[1:], [end_s, None]], strict=True):
        out[state] = out.get(state, 0.0) + max(0.0, nxt[0] - t)
    return {k: round(v, 3) for k, v in out.items()}


def run(
    *,
    seconds: float = 10.0,
    loss: float = 0.01,
    rtt: float = 0.040,
    rate_bps: float = 20e6,
    bin_ms: float = 5.0,
    bench: Bench | None = None,
) -> dict[str, Any]:
    """One qlogged rudp BBR download; the JSON-able result (series, states, losses, summary)."""
    if bench is None:
        with bench_network() as fresh:
            return run(seconds=seconds, loss=loss, rtt=rtt, rate_bps=rate_bps, bin_ms=bin_ms, bench=fresh)
    bench.impair(wan(rtt / 2, loss, rate_bps))
    with tempfile.TemporaryDirectory(prefix="rudp-bbr-trace-") as qlog_dir:
        with qlogged_server(bench, qlog_dir):
            flow = bench.client(_download, bench.host, bench.pki, seconds, timeout=seconds + 60)
            (path,) = Path(qlog_dir).glob("*_server.sqlog")
            _settle(path)
        trace = parse_qlog(path, bin_ms)
    rates = [v for _, v in trace["series"]["delivery_rate"]]
    estimates = [v for _, v in trace["series"]["bandwidth_estimate"]]
    summary = {
        "goodput_mbit_s": flow["bytes"] * 8 / flow["elapsed_s"] / 1e6,
        "bytes": flow["bytes"],
        "packets_lost": len(trace["losses_s"]),
        "state_s": state_durations(trace["states"], trace["end_s"]),
        "max_delivery_rate_mbit_s": max(rates, default=0) / 1e6,
        "last_bandwidth_estimate_mbit_s": (estimates[-1] if estimates else 0) / 1e6,
        "max_cwnd_bytes": max((v for _, v in trace["series"]["congestion_window"]), default=0),
    }
    conditions = {
        "rtt_ms": rtt * 1000,
        "rate_mbit_s": rate_bps / 1e6,
        "loss": loss,
        "seconds": seconds,
        "bin_ms": bin_ms,
        "sender": "rudp QUIC server, Config(congestion='bbr'), qlog of the sender",
    }
    return {"conditions": conditions, "summary": summary, **trace}


def report(result: dict[str, Any]) -> str:
    """Goodput, losses, the last bandwidth estimate and the time spent in each BBR state."""
    c, s = result["conditions"], result["summary"]
    head = (
        f"BBR trace: one rudp BBR download, RTT {c['rtt_ms']:.0f} ms, {c['rate_mbit_s']:g} Mbit/s, "
        f"{c['loss'] * 100:g}% random loss both ways, {c['seconds']:g} s"
    )
    rows = [
        ["goodput Mbit/s", f"{s['goodput_mbit_s']:.2f}"],
        ["packets lost (sender)", s["packets_lost"]],
        ["max delivery-rate sample Mbit/s", f"{s['max_delivery_rate_mbit_s']:.2f}"],
        ["last bandwidth estimate Mbit/s", f"{s['last_bandwidth_estimate_mbit_s']:.2f}"],
        ["max cwnd bytes", s["max_cwnd_bytes"]],
        *[[f"time in {state} s", f"{t:.2f}"] for state, t in s["state_s"].items()],
    ]
    return head + "\n" + table(["", "value"], rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--loss", type=float, default=1.0, help="percent, both directions")
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    parser.add_argument("--rate-mbit", type=float, default=20.0)
    args = parser.parse_args(argv)
    result = run(
        seconds=args.seconds, loss=args.loss / 100, rtt=args.rtt_ms / 1000, rate_bps=args.rate_mbit * 1e6
    )
    print(report(result))
    print(saved(save_result("bbr_trace", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
