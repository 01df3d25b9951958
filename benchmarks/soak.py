"""Soak: a rudp server under handshake floods and connection churn, with its RSS, CPU and fds sampled.

Runs a QUIC echo server in its own process (so its resources are measured alone), then in turn:

- ``flood``: valid client Initials from 64 addresses of 127.0.0.0/8 at the highest rate one process
  generates (``rudp.testing.flood``), once with ``retry=True`` and once with the defaults (automatic
  Retry above ``retry_threshold``); meanwhile a legitimate client connects and echoes over and over,
  recording each handshake's duration.
- ``churn``: connect / request / close cycles (a third of the clients vanish without closing).

Every second the server reports its RSS, CPU seconds, open fds and the sizes of its endpoint's tables.
Results go to ``benchmarks/results/soak-<time>.json`` and a plot to ``soak-<time>.svg``.

    python -m benchmarks.soak                 # quick: 20 s of flood per mode, 60 s of churn
    python -m benchmarks.soak --long          # 1 h of each (or --flood-seconds / --churn-seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import rudp
from benchmarks.common import percentile, save_result, table
from rudp.aio.endpoint import UdpEndpoint
from rudp.testing.certs import make_test_pki

RESULTS = Path(__file__).parent / "results"


# -- the server process -------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _echo(conn: rudp.Connection) -> None:
    async for stream in conn:
        data = await stream.read()
        stream.write(data)
        stream.write_eof()
        await stream.drain()


async def _serve(cert: str, key: str, retry: bool, seconds: float) -> None:
    config = rudp.Config(certfile=cert, keyfile=key, retry=retry, idle_timeout=10.0)
    server = await rudp.serve("127.0.0.1", 0, _echo, config=config)
    (endpoint,) = server.listeners
    if not isinstance(endpoint, UdpEndpoint):
        raise TypeError("QUIC listener expected")
    print(json.dumps({"port": server.port}), flush=True)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        await asyncio.sleep(1.0)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        quic = endpoint.quic
        sample = {
            "t": round(time.monotonic() - start, 2),
            "rss": _rss_bytes(),
            "cpu": round(usage.ru_utime + usage.ru_stime, 3),
            "fds": len(os.listdir("/proc/self/fd")),
            "retries": quic.admission.retries_sent,
            "refusals": quic.admission.refusals_sent,
            "accepted": quic.connections_accepted,
            **quic.state_sizes(),
        }
        print(json.dumps(sample), flush=True)
    server.close()
    await server.wait_closed()


# -- the driver -----------------------------------------------------------------------------------


class ServerProcess:
    """The server subprocess and the samples it prints."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.samples: list[dict[str, Any]] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(cls, pki_dir: Path, retry: bool, seconds: float) -> ServerProcess:
        pki = make_test_pki(pki_dir)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.soak", "--server",
            str(pki.cert_file), str(pki.key_file), "1" if retry else "0", str(seconds),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        if process.stdout is None:
            raise RuntimeError("no stdout")
        first = json.loads(await process.stdout.readline())
        return cls(process, int(first["port"]))

    async def _read(self) -> None:
        stdout = self.process.stdout
        while stdout is not None and (line := await stdout.readline()):
            self.samples.append(json.loads(line))

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
        await self.process.wait()
        await self._reader


async def _client_loop(
    port: int, ca: Path, until: float, vanish_every: int = 0, failures: list[str] | None = None
) -> list[float]:
    """Connect, echo, close until ``until``; return the handshake durations (failures as inf, their
    errors appended to ``failures``)."""
    failures = [] if failures is None else failures
    loop = asyncio.get_running_loop()
    config = rudp.Config(cafile=ca, server_name="localhost", handshake_timeout=10.0)
    durations: list[float] = []
    i = 0
    while loop.time() < until:
        i += 1
        start = loop.time()
        try:
            conn = await rudp.connect("127.0.0.1", port, config=config)
        except rudp.RudpError as exc:
            durations.append(float("inf"))
            failures.append(f"connect after {loop.time() - start:.1f} s: {exc!r}")
            continue
        durations.append(loop.time() - start)
        try:
            stream = await conn.open_stream()
            stream.write(os.urandom(1000))
            stream.write_eof()
            await stream.drain()
            await asyncio.wait_for(stream.read(), 10.0)
        except (rudp.RudpError, TimeoutError) as exc:
            durations[-1] = float("inf")
            failures.append(f"echo: {exc!r}")
        link = conn._driver.link
        io = link.io if isinstance(link, UdpEndpoint) else None
        if vanish_every and i % vanish_every == 0 and io is not None:
            io.abort()  # the client vanishes: its socket is gone, no CONNECTION_CLOSE
        else:
            conn.close()
        await conn.wait_closed()
    return durations


async def _flood_mode(work: Path, retry: bool, seconds: float) -> dict[str, Any]:
    server = await ServerProcess.start(work / f"pki-flood-{int(retry)}", retry, seconds + 15)
    flooder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rudp.testing.flood", "127.0.0.1", str(server.port),
        "--seconds", str(seconds), "--sources", "64", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    ca = work / f"pki-flood-{int(retry)}" / "ca.pem"
    failures: list[str] = []
    durations = await _client_loop(server.port, ca, loop.time() + seconds, failures=failures)
    flood_out, _ = await flooder.communicate()
    await server.stop()
    return {
        "mode": "flood, retry=True" if retry else "flood, defaults (auto Retry)",
        "flooder": flood_out.decode().strip(),
        "handshakes": durations,
        "failures": failures,
        "samples": server.samples,
    }


async def _churn_mode(work: Path, seconds: float) -> dict[str, Any]:
    server = await ServerProcess.start(work / "pki-churn", False, seconds + 15)
    loop = asyncio.get_running_loop()
    durations = await _client_loop(server.port, work / "pki-churn" / "ca.pem", loop.time() + seconds, 3)
    await asyncio.sleep(12)  # idle timeout of the vanished clients (10 s) runs out: the tables empty
    await server.stop()
    return {"mode": "churn", "handshakes": durations, "samples": server.samples}


def _summary(record: dict[str, Any]) -> list[object]:
    durations = [d for d in record["handshakes"] if d != float("inf")]
    failed = len(record["handshakes"]) - len(durations)
    samples = record["samples"]
    rss = [s["rss"] for s in samples] or [0]
    last = samples[-1] if samples else {}
    return [
        record["mode"],
        len(record["handshakes"]),
        failed,
        f"{percentile(durations, 50) * 1000:.1f}" if durations else "-",
        f"{percentile(durations, 99) * 1000:.1f}" if durations else "-",
        f"{rss[0] / 2**20:.0f} -> {max(rss) / 2**20:.0f} -> {rss[-1] / 2**20:.0f}",
        max((s["connections"] for s in samples), default=0),
        max((s["handshakes"] for s in samples), default=0),
        last.get("connections", "-"),
        last.get("retries", "-"),
        last.get("fds", "-"),
    ]


def _polyline(
    samples: list[dict[str, Any]], key: str, t_max: float, scale: float, box: tuple[int, int, int, int]
) -> str:
    x0, y0, width, height = box
    return " ".join(
        f"{x0 + s['t'] / t_max * width:.1f},{y0 + height - s[key] / scale * height:.1f}" for s in samples
    )


def _svg(records: list[dict[str, Any]]) -> str:
    """RSS (MiB) and connections over time, one panel per mode: a dependency-free line plot."""
    width, height, pad = 520, 180, 40
    panels = []
    for i, record in enumerate(records):
        samples = record["samples"] or [{"t": 0, "rss": 0, "connections": 0}]
        t_max = max(s["t"] for s in samples) or 1
        rss_max = max(s["rss"] for s in samples) / 2**20 or 1
        conn_max = max(max(s["connections"] for s in samples), 1)
        y0 = i * (height + pad) + pad

        box = (pad, y0, width, height)
        rss_line = _polyline(samples, "rss", t_max, rss_max * 2**20, box)
        conn_line = _polyline(samples, "connections", t_max, conn_max, box)
        panels.append(
            f'<text x="{pad}" y="{y0 - 8}" font-size="12">{record["mode"]}: RSS (blue, max '
            f'{rss_max:.0f} MiB) and connections (red, max {conn_max}) over {t_max:.0f} s</text>'
            f'<rect x="{pad}" y="{y0}" width="{width}" height="{height}" fill="none" stroke="#999"/>'
            f'<polyline fill="none" stroke="blue" points="{rss_line}"/>'
            f'<polyline fill="none" stroke="red" points="{conn_line}"/>'
        )
    total = len(records) * (height + pad) + pad
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 2 * pad}" height="{total}">'
        + "".join(panels)
        + "</svg>\n"
    )


async def _main(args: argparse.Namespace) -> None:
    work = RESULTS / "soak-work"
    work.mkdir(parents=True, exist_ok=True)
    records = []
    if args.only in (None, "flood"):
        records.append(await _flood_mode(work, True, args.flood_seconds))
        records.append(await _flood_mode(work, False, args.flood_seconds))
    if args.only in (None, "churn"):
        records.append(await _churn_mode(work, args.churn_seconds))
    headers = [
        "mode", "connects", "failed", "handshake p50 ms", "p99 ms", "server RSS MiB start->max->end",
        "max conns", "max half-open", "conns at end", "retries", "fds at end",
    ]  # fmt: skip
    print(table(headers, [_summary(r) for r in records]))
    path = save_result("soak", {"records": records})
    svg = path.with_suffix(".svg")
    svg.write_text(_svg(records))
    print(f"results: {path}\nplot: {svg}")


def main(argv: list[str] | None = None) -> None:
    """Entry point (``--server`` runs the measured server process)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--server"]:
        cert, key, retry, seconds = argv[1:5]
        asyncio.run(_serve(cert, key, retry == "1", float(seconds)))
        return
    parser = argparse.ArgumentParser(description="rudp server under floods and churn")
    parser.add_argument("--long", action="store_true", help="an hour of each mode")
    parser.add_argument("--flood-seconds", type=float, default=20.0)
    parser.add_argument("--churn-seconds", type=float, default=60.0)
    parser.add_argument("--only", choices=["flood", "churn"], default=None, help="run one mode")
    args = parser.parse_args(argv)
    if args.long:
        args.flood_seconds, args.churn_seconds = 3600.0, 3600.0
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
