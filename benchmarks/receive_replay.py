"""The receiver's work per data datagram, replayed: CPU time or, under callgrind, instructions.

A rudp client uploads ``--mib`` MiB to a rudp server endpoint on the simulator, as
:mod:`benchmarks.calls` does with ``--batch-window`` (the server takes each wake-up's datagrams in one
call and transmits once per wake-up). The upload runs in a forked child that records every operation
of the server: the batches it received, its timers, its flushes. The parent, whose server is untouched
since the fork, then replays exactly that sequence (each repetition in a fork of its own), reading the
stream after each operation as an application would, and measures only that: the receive path, the ACKs
it sends, the reads. The sender's work and the simulator are not in it.

    python -m benchmarks.receive_replay [--mib 4] [--batch-window 1] [--reps 9]
    python -m benchmarks.receive_replay --instructions [--mib 1] [--pmtu fixed|default]

Default: thread CPU time per datagram (min and median over ``--reps``), which other processes on the
machine still disturb. ``--instructions`` runs the replay once under ``valgrind --tool=callgrind``,
counting instructions only while the replay runs (it goes through ``itertools.starmap``, which nothing
else here uses, so ``--toggle-collect=starmap_next`` selects it): deterministic to about 0.05% and
blind to the load, the figure to compare two trees with (``PYTHONPATH`` selects the tree; Linux only,
as ``os.fork`` is).

``--pmtu default`` records the upload with ``Config``'s defaults (PMTU discovery on, 1350-byte base) on
the simulated link's 1500-byte MTU, where the search settles at 1452-byte datagrams, as
:mod:`benchmarks.calls` does; ``--pmtu fixed`` (the default) with 1452-byte datagrams and no search.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import pickle
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.calls import CLIENT, FIXED_1452, SERVER, _Counter, _Side
from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.events import StreamReadable
from rudp.testing import LinkConfig, Pair, VirtualClock
from rudp.testing.certs import make_test_pki

Operation = tuple[str, Any, float]
"""("batch", [(data, addr, ecn), ...], now), ("timer", None, now) or ("send", None, now)."""


def _setup(
    mib: float, window: float, work: Path, pmtu: str
) -> tuple[QuicEndpoint, Pair, _Side, _Side, bytes]:
    pki = make_test_pki(work)
    common: dict[str, Any] = {"alpn": ["bench"], **(FIXED_1452 if pmtu == "fixed" else {})}
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file, **common)
    client_config = Config(cafile=pki.ca_file, server_name="localhost", **common)
    clock = VirtualClock(1000.0)
    endpoint = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    conn = QuicConnection.client(client_config, server_address=SERVER, now=clock.now)
    counter = _Counter()
    client, server = _Side(conn, "sender", counter), _Side(endpoint, "receiver", counter, window)
    c2s, s2c = LinkConfig(delay=0.01, bandwidth=200e6, seed=1), LinkConfig(delay=0.01, seed=2)
    pair = Pair(client, server, client_addr=CLIENT, server_addr=SERVER, c2s=c2s, s2c=s2c, clock=clock)
    if not pair.drive(until=lambda: conn.handshake_complete and bool(endpoint.connections), max_time=10):
        raise RuntimeError("handshake did not complete")
    body = bytes(range(256)) * (int(mib * 1024 * 1024) // 256)
    client.stream_id = conn.open_stream()
    client.pending = memoryview(body)
    return endpoint, pair, client, server, body


def _record(endpoint: QuicEndpoint, pair: Pair, server: _Side, body: bytes, path: Path) -> None:
    """In a forked child: run the upload, writing the server's operations to ``path``."""
    log: list[Operation] = []
    receive_batch, handle_timer, to_send = (
        server._receive_batch,
        endpoint.handle_timer,
        endpoint.datagrams_to_send,
    )

    def batch(items: list[tuple[bytes, tuple[str, int], int]], now: float) -> None:
        log.append(("batch", [(bytes(d), a, e) for d, a, e in items], now))
        receive_batch(items, now)

    def timer(now: float) -> None:
        log.append(("timer", None, now))
        handle_timer(now)

    def send(now: float) -> list[tuple[bytes, tuple[str, int]]]:
        log.append(("send", None, now))
        return to_send(now)

    server._receive_batch = batch  # type: ignore[method-assign]
    endpoint.handle_timer = timer  # type: ignore[method-assign]
    endpoint.datagrams_to_send = send  # type: ignore[method-assign]
    if not pair.drive(until=lambda: server.eof, max_time=600):
        raise RuntimeError("the upload did not finish")
    if server.received.digest() != hashlib.sha256(body).digest():
        raise RuntimeError("the upload did not arrive intact")
    path.write_bytes(pickle.dumps(log))


def _replay(endpoint: QuicEndpoint, log: list[Operation]) -> tuple[float, int]:
    """Replay ``log`` into ``endpoint``; (thread CPU seconds, stream bytes read)."""
    many = getattr(endpoint, "receive_datagrams", None)
    one = endpoint.receive_datagram

    def step(kind: str, items: Any, now: float) -> int:
        if kind == "batch":
            if many is not None:
                many(items, now)
            else:  # a tree without receive_datagrams: one call per datagram, as its aio layer did
                for data, addr, ecn in items:
                    one(data, addr, now, ecn)
        elif kind == "timer":
            endpoint.handle_timer(now)
        else:
            endpoint.datagrams_to_send(now)
        read = 0
        for conn in endpoint.connections:
            while (event := conn.next_event()) is not None:
                if isinstance(event, StreamReadable):
                    read += len(conn.read_stream(event.stream_id))
        return read

    start = time.thread_time()
    read = sum(itertools.starmap(step, log))
    return time.thread_time() - start, read


def _in_child(fn: Any) -> Any:
    """``fn()`` in a forked child (so the parent's endpoint stays untouched); its JSON-able result."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        try:
            os.write(writer, json.dumps(fn()).encode())
        finally:
            os._exit(0)
    os.close(writer)
    out = b""
    while chunk := os.read(reader, 65536):
        out += chunk
    os.close(reader)
    os.waitpid(pid, 0)
    if not out:
        raise RuntimeError("the child failed")
    return json.loads(out)


def measure(mib: float, window: float, reps: int, pmtu: str = "fixed") -> dict[str, Any]:
    """Record once, replay ``reps`` times; the JSON-able result (CPU per datagram)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        endpoint, pair, _client, server, body = _setup(mib, window, work, pmtu)
        recording = work / "operations.pickle"
        _in_child(lambda: _record(endpoint, pair, server, body, recording) or 0)
        log: list[Operation] = pickle.loads(recording.read_bytes())
        datagrams = sum(len(items) for kind, items, _ in log if kind == "batch")
        batches = sum(kind == "batch" for kind, _, _ in log)
        if reps == 0:  # under callgrind: one replay here, counted by the caller
            _cpu, read = _replay(endpoint, log)
            cpu_us: list[float] = []
        else:
            runs = [_in_child(lambda: _replay(endpoint, log)) for _ in range(reps)]
            read = runs[0][1]
            cpu_us = [cpu / datagrams * 1e6 for cpu, _ in runs]
        if read != len(body):
            raise RuntimeError(f"the replay read {read} bytes of {len(body)}")
    result: dict[str, Any] = {
        "mib": mib,
        "pmtu": pmtu,
        "batch_window_ms": window * 1e3,
        "datagrams": datagrams,
        "datagrams_per_batch": round(datagrams / batches, 1),
    }
    if cpu_us:
        result["cpu_us_per_datagram_min"] = round(min(cpu_us), 2)
        result["cpu_us_per_datagram_median"] = round(statistics.median(cpu_us), 2)
    return result


def instructions(mib: float, window_ms: float, pmtu: str = "fixed") -> dict[str, Any]:
    """The replay once under callgrind: instructions per datagram."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp}/callgrind.%p",
            "--toggle-collect=starmap_next",
            sys.executable,
            "-m",
            "benchmarks.receive_replay",
            "--mib",
            str(mib),
            "--batch-window",
            str(window_ms),
            "--reps",
            "0",
            "--pmtu",
            pmtu,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    collected = [int(n.replace(",", "")) for n in re.findall(r"Collected : ([\d,]+)", done.stderr)]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["instructions_per_datagram"] = round(max(collected) / result["datagrams"])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mib", type=float, default=None, help="upload size (default 4; 1 with --instructions)"
    )
    parser.add_argument("--batch-window", type=float, default=1.0, help="ms (see benchmarks.calls)")
    parser.add_argument("--reps", type=int, default=9, help="replays timed (0: one, untimed)")
    parser.add_argument(
        "--pmtu",
        choices=("fixed", "default"),
        default="fixed",
        help="fixed (default): 1452-byte datagrams, PMTU discovery off; default: Config's defaults "
        "(1350-byte base, PMTU discovery on) on a 1500-byte MTU link, which it finds as 1452",
    )
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind")
    args = parser.parse_args(argv)
    if args.instructions:
        print(json.dumps(instructions(args.mib or 1.0, args.batch_window, args.pmtu)))
        return
    print(json.dumps(measure(args.mib or 4.0, args.batch_window / 1e3, args.reps, args.pmtu)))


if __name__ == "__main__":
    main()
