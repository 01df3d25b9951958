"""Bulk throughput and CPU per datagram: rudp vs aioquic vs qh3, server and client in separate processes.

Run as root: ``python -m benchmarks.bulk [--mbytes 64] [--repeat 3] [--paths netns loopback] [--quick]``.

One connection per run moves ``--mbytes`` MiB on one stream, either ``download`` (server to client) or
``upload`` (client to server). Server and client are two fresh processes (``python -m benchmarks.bulk
--worker ...``), so each one has its own core's worth of Python and its own ``getrusage``.

Paths:

``netns``     (the headline) a network namespace created for the run whose loopback has MTU 1500, like an
              Ethernet path. Every QUIC stack uses 1452-byte datagrams (the most a 1500-byte IPv4 MTU
              carries): aioquic and qh3 with ``QuicConfiguration(max_datagram_size=1452)``, rudp with
              ``Config(max_datagram_size=1452, pmtu_discovery=False)`` (PMTU discovery off, not capped: on
              this path it would stop at 1452 anyway). ``rudp-default`` is rudp as users get it, with
              ``Config()``'s defaults (1350-byte datagrams, PMTU discovery on, which finds 1452 here
              within the first few round trips). The namespace is deleted on exit, failure or not.
``loopback``  the machine's own loopback (MTU 65536), reported separately and labelled as such; there
              ``rudp-pmtud`` runs with PMTU discovery, which settles on 16 KiB datagrams.

Stacks: ``rudp`` (QUIC), ``aioquic`` and ``qh3`` (when installed: ``pip install -e '.[bench]'``), and
rudp's TCP+TLS 1.3 baseline ``rudp-tcp`` (kernel TCP, asyncio only) for reference. Each QUIC stack runs
on the asyncio event loop and on uvloop (when installed). Every socket asks for 4 MiB send and receive
buffers (rudp sets them itself; the benchmark sets them on aioquic's and qh3's sockets).

Runs are interleaved (every configuration once, then again: ABAB...) ``--repeat`` times; the table shows
the median run of each configuration. Per process, CPU (user + system from ``getrusage``) is measured
over the transfer only (from the request to the last byte), and divided by the datagrams the process
sent (the sender) or received (the receiver), counted inside the process without touching the stacks:
rudp's socket-layer counters (``rudp.aio.udp_io.IoStats``), aioquic's and qh3's
``QuicConnection.datagrams_to_send``/``receive_datagram`` wrapped on the instance. Peak RSS is each
process's ``ru_maxrss``. ``timer callbacks`` counts the event loop timers (``call_at``/``call_later``)
that fired during the transfer in the sending process, and how many of them sent no datagram.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import ratio, save_result, saved, table

ROOT = Path(__file__).resolve().parent.parent
ALPN = ["hq-interop"]
MTU = 1500
DATAGRAM = 1452
SOCKET_BUFFER = 4 << 20
CHUNK = 1 << 16
BLOCK = random.Random(13).randbytes(1 << 20)
"""What every sender sends (repeated) and every receiver compares against: 1 MiB of seeded random bytes."""
HEADER = 32
"""Request header: direction (``D``/``U``), body bytes (15 digits), where in BLOCK the body starts (16)."""
BASELINE = "aioquic-1452"
DIRECTIONS = ("download", "upload")
QUIC_STACKS = ("rudp", "aioquic", "qh3")
PACING = os.environ.get("RUDP_PACING", "1") == "1"


def available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def variants(path: str) -> list[tuple[str, str]]:
    """(label, stack) of the stacks measured on `path`; the label names the datagram size."""
    out = [("rudp-1452", "rudp")]
    if path == "loopback":
        out.insert(0, ("rudp-pmtud", "rudp-pmtud"))
    else:  # the default configuration (PMTU discovery on) on the 1500-byte path: what users get
        out.append(("rudp-default", "rudp-pmtud"))
    out += [("aioquic-1452", "aioquic"), ("qh3-1452", "qh3"), ("rudp-tcp", "rudp-tcp")]
    return out


# ------------------------------------------------------------------------------------------ worker side


class Meter:
    """Counters of one worker process: datagrams, timer callbacks, CPU over the transfer window.

    The window opens at the first stream's start and, where the process learns the end from its streams
    (the client; the server of an upload), closes when the last of its `streams` is done.
    """

    def __init__(self, streams: int = 1) -> None:
        self.streams_left = streams
        self.sent = 0
        self.received = 0
        self.timers = 0
        self.idle_timers = 0
        self.window = False
        self.io_stats: list[Any] = []
        self.start: dict[str, float] = {}
        self.end: dict[str, float] = {}

    def datagrams(self) -> tuple[int, int]:
        if self.io_stats:  # rudp: the socket layer's own counters
            return sum(s.datagrams_sent for s in self.io_stats), sum(
                s.datagrams_received for s in self.io_stats
            )
        return self.sent, self.received

    def snapshot(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        sent, received = self.datagrams()
        return {
            "cpu": usage.ru_utime + usage.ru_stime,
            "sent": sent,
            "received": received,
            "timers": self.timers,
            "idle_timers": self.idle_timers,
            "t": time.perf_counter(),
        }

    def begin(self) -> None:
        if self.window or self.start:
            return
        if not self.io_stats and "rudp.aio.udp_io" in sys.modules:
            from rudp.aio.udp_io import IoStats

            self.io_stats = [o for o in gc.get_objects() if isinstance(o, IoStats)]
        self.start = self.snapshot()
        self.window = True

    def finish(self) -> None:
        if self.window:
            self.end = self.snapshot()
            self.window = False

    def stream_done(self) -> None:
        self.streams_left -= 1
        if self.streams_left <= 0:
            self.finish()

    def result(self) -> dict[str, Any]:
        delta = {k: self.end.get(k, 0) - self.start.get(k, 0) for k in self.start}
        delta["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return delta

    def instrument_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wrap the loop's timer calls (on the instance) to count callbacks that send nothing."""
        meter = self

        def wrap(callback: Any) -> Any:
            if getattr(callback, "_bulk_wrapped", False):
                return callback

            def timed(*args: Any) -> Any:
                if not meter.window:
                    return callback(*args)
                before = meter.datagrams()[0]
                try:
                    return callback(*args)
                finally:
                    meter.timers += 1
                    if meter.datagrams()[0] == before:
                        meter.idle_timers += 1

            timed._bulk_wrapped = True  # type: ignore[attr-defined]
            return timed

        call_at, call_later = loop.call_at, loop.call_later

        def patched_call_at(when: float, callback: Any, *args: Any, **kw: Any) -> Any:
            return call_at(when, wrap(callback), *args, **kw)

        def patched_call_later(delay: float, callback: Any, *args: Any, **kw: Any) -> Any:
            return call_later(delay, wrap(callback), *args, **kw)

        loop.call_at = patched_call_at  # type: ignore[method-assign]
        loop.call_later = patched_call_later  # type: ignore[method-assign]

    def count_quic(self, quic: Any) -> None:
        """Count an aioquic/qh3 QuicConnection's datagrams by wrapping its two methods on the instance."""
        meter = self
        to_send, receive = quic.datagrams_to_send, quic.receive_datagram

        def datagrams_to_send(*args: Any, **kw: Any) -> Any:
            out = to_send(*args, **kw)
            meter.sent += len(out)
            return out

        def receive_datagram(*args: Any, **kw: Any) -> Any:
            meter.received += 1
            return receive(*args, **kw)

        quic.datagrams_to_send = datagrams_to_send
        quic.receive_datagram = receive_datagram
        receive_many = getattr(quic, "receive_many_datagrams", None)
        if receive_many is not None:  # qh3 with GRO: one call per coalesced batch

            def receive_many_datagrams(data: Any, *args: Any, **kw: Any) -> Any:
                meter.received += len(data)
                return receive_many(data, *args, **kw)

            quic.receive_many_datagrams = receive_many_datagrams


class Verifier:
    """Checks received bytes against the repeated BLOCK without keeping them (a C memcmp per chunk)."""

    def __init__(self, start: int = 0) -> None:
        self.start = start
        self.offset = 0
        self.ok = True

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            at = (self.start + self.offset) % len(BLOCK)
            n = min(len(view), len(BLOCK) - at)
            if self.ok and view[:n] != BLOCK[at : at + n]:
                self.ok = False
            self.offset += n
            view = view[n:]


async def send_body(write: Any, drain: Any, nbytes: int, start: int = 0) -> None:
    block = memoryview(BLOCK)
    sent = 0
    while sent < nbytes:
        at = (start + sent) % len(BLOCK)
        n = min(CHUNK, nbytes - sent, len(BLOCK) - at)
        write(bytes(block[at : at + n]))
        sent += n
        await drain()


async def receive_body(read: Any, nbytes: int, start: int = 0) -> Verifier:
    check = Verifier(start)
    while chunk := await read(CHUNK):
        check.feed(chunk)
    if check.offset != nbytes or not check.ok:
        raise RuntimeError(f"body corrupted or short: {check.offset}/{nbytes} bytes, content ok={check.ok}")
    return check


async def read_header(read: Any) -> tuple[str, int, int]:
    head = b""
    while len(head) < HEADER:
        part = await read(HEADER - len(head))
        if not part:
            raise RuntimeError("no request header")
        head += part
    return head[:1].decode(), int(head[1:16]), int(head[16:])


async def serve_stream(meter: Meter, read: Any, write: Any, drain: Any, write_eof: Any) -> None:
    """The server's side of one transfer (request header, then the body one way)."""
    meter.begin()
    direction, nbytes, start = await read_header(read)
    if direction == "D":
        await send_body(write, drain, nbytes, start)
        write_eof()
        await drain()
    else:
        await receive_body(read, nbytes, start)
        write(b"OK")
        write_eof()
        await drain()
        meter.stream_done()


STREAM_STRIDE = 7919
"""Stream i's body starts at BLOCK[i * 7919 % len(BLOCK)]: bodies differ, so a mixed-up stream fails."""


async def client_stream(
    spec: dict[str, Any], index: int, meter: Meter, read: Any, write: Any, drain: Any, write_eof: Any
) -> tuple[float, float]:
    """The client's side of stream `index`: (start, end) of the request to its last byte or upload's OK."""
    nbytes = spec["nbytes"]
    body_start = index * STREAM_STRIDE % len(BLOCK)
    meter.begin()
    start = time.perf_counter()
    write(b"%s%015d%016d" % (b"D" if spec["direction"] == "download" else b"U", nbytes, body_start))
    if spec["direction"] == "download":
        write_eof()
        await receive_body(read, nbytes, body_start)
    else:
        await send_body(write, drain, nbytes, body_start)
        write_eof()
        if await read(16) != b"OK":
            raise RuntimeError("upload not acknowledged")
    end = time.perf_counter()
    meter.stream_done()
    return start, end


async def client_streams(spec: dict[str, Any], open_one: Any) -> float:
    """Runs ``spec["streams"]`` (default 1) streams at once, each from ``await open_one(index)``; the wall
    time from the first request to the last stream's end."""
    spans = await asyncio.gather(*(open_one(i) for i in range(spec.get("streams", 1))))
    return max(end for _, end in spans) - min(start for start, _ in spans)


def rudp_config(spec: dict[str, Any], **kw: Any) -> Any:
    import rudp

    if spec["stack"] != "rudp-pmtud" and spec["stack"] != "rudp-tcp":
        kw.update(max_datagram_size=DATAGRAM, pmtu_discovery=False)
    return rudp.Config(alpn=ALPN, pacing=PACING, **kw)


def aio_config(spec: dict[str, Any], is_client: bool) -> Any:
    module = __import__(f"{spec['stack']}.quic.configuration", fromlist=["QuicConfiguration"])
    config = module.QuicConfiguration(is_client=is_client, alpn_protocols=ALPN, max_datagram_size=DATAGRAM)
    if is_client:
        config.server_name = "localhost"
        config.verify_mode = ssl.CERT_NONE
    else:
        config.load_cert_chain(spec["cert"], spec["key"])
    return config


async def _yield() -> None:
    """qh3's stream writers have no working ``drain()``; aioquic's only yields to the loop, like this."""
    await asyncio.sleep(0)


def tune(transport: Any) -> None:
    sock = transport.get_extra_info("socket")
    import socket as _socket

    for option in (_socket.SO_RCVBUF, _socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(_socket.SOL_SOCKET, option, SOCKET_BUFFER)


async def run_server(spec: dict[str, Any], meter: Meter, stop: asyncio.Event) -> None:
    stack = spec["stack"]
    tasks: set[asyncio.Task[None]] = set()
    if stack.startswith("rudp"):
        import rudp

        async def handler(conn: rudp.Connection) -> None:
            async with asyncio.TaskGroup() as group:
                async for stream in conn:
                    group.create_task(
                        serve_stream(meter, stream.read, stream.write, stream.drain, stream.write_eof)
                    )

        transport = "tcp" if stack == "rudp-tcp" else "quic"
        config = rudp_config(spec, certfile=spec["cert"], keyfile=spec["key"])
        server = await rudp.serve("127.0.0.1", 0, handler, config=config, transport=transport)
        port = server.port
    else:
        protocol_module = __import__(f"{stack}.asyncio.protocol", fromlist=["QuicConnectionProtocol"])
        serve = __import__(f"{stack}.asyncio", fromlist=["serve"]).serve

        class Counted(protocol_module.QuicConnectionProtocol):  # type: ignore[name-defined,misc]
            def __init__(self, quic: Any, *args: Any, **kwargs: Any) -> None:
                meter.count_quic(quic)
                super().__init__(quic, *args, **kwargs)

        def stream_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            drain = writer.drain if stack == "aioquic" else _yield
            task = asyncio.ensure_future(
                serve_stream(meter, reader.read, writer.write, drain, writer.write_eof)
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        server = await serve(
            "127.0.0.1",
            0,
            configuration=aio_config(spec, False),
            create_protocol=Counted,
            stream_handler=stream_handler,
        )
        tune(server._transport)
        port = server._transport.get_extra_info("sockname")[1]
    print(json.dumps({"port": port}), flush=True)
    await stop.wait()
    meter.finish()
    server.close()


async def run_client(spec: dict[str, Any], meter: Meter) -> float:
    stack = spec["stack"]
    if stack.startswith("rudp"):
        import rudp

        config = rudp_config(spec, cafile=spec["ca"], server_name="localhost")
        transport = "tcp" if stack == "rudp-tcp" else "quic"
        async with rudp.connect("127.0.0.1", spec["port"], config=config, transport=transport) as conn:  # type: ignore[arg-type]

            async def open_rudp(index: int) -> tuple[float, float]:
                s = await conn.open_stream()
                return await client_stream(spec, index, meter, s.read, s.write, s.drain, s.write_eof)

            return await client_streams(spec, open_rudp)
    connect = __import__(f"{stack}.asyncio", fromlist=["connect"]).connect
    async with connect("127.0.0.1", spec["port"], configuration=aio_config(spec, True)) as protocol:
        meter.count_quic(protocol._quic)
        tune(protocol._transport)

        async def open_quic(index: int) -> tuple[float, float]:
            reader, writer = await protocol.create_stream()
            drain = writer.drain if stack == "aioquic" else _yield
            return await client_stream(spec, index, meter, reader.read, writer.write, drain, writer.write_eof)

        return await client_streams(spec, open_quic)


async def worker_main(spec: dict[str, Any]) -> dict[str, Any]:
    meter = Meter(spec.get("streams", 1))
    meter.instrument_loop(asyncio.get_running_loop())
    out: dict[str, Any] = {}
    if spec["role"] == "server":
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, stop.set)
        await run_server(spec, meter, stop)
    else:
        out["elapsed"] = await run_client(spec, meter)
    out.update(meter.result())
    return out


def worker(spec: dict[str, Any]) -> None:
    """Body of a worker process: runs one side, prints its JSON result as the last stdout line."""
    factory = None
    if spec["loop"] == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not wall: idle epoll waits count nothing
        profiler.enable()
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(worker_main(spec))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(spec["profile"])
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------ parent side


@contextlib.contextmanager
def netns(mtu: int = MTU) -> Iterator[list[str]]:
    """A fresh network namespace whose loopback has MTU `mtu`; yields the command prefix to run in it."""
    name = f"rudp-bulk-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the finally below runs
    try:
        subprocess.run(
            ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "mtu", str(mtu), "up"], check=True
        )
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
        signal.signal(signal.SIGTERM, previous)


def netns_available() -> str | None:
    """None when a namespace with an MTU-1500 loopback can be made here, else why not."""
    try:
        with netns():
            return None
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"cannot create a network namespace: {exc}"


def _spawn(prefix: list[str], spec: dict[str, Any]) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [*prefix, sys.executable, "-m", "benchmarks.bulk", "--worker", json.dumps(spec)]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )


def _last_json(proc: subprocess.Popen[str], timeout: float, who: str) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"{who} timed out; stderr: {err[-2000:]}") from None
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{who} failed ({proc.returncode}): {err[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_once(prefix: list[str], base: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One transfer: a server process, then a client process; both sides' measurements."""
    server = _spawn(prefix, {**base, "role": "server", "profile": base.get("profile_server")})
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("{"):
            server.kill()
            raise RuntimeError(
                f"server did not start: {line} {server.stderr.read() if server.stderr else ''}"
            )
        port = json.loads(line)["port"]
        client = _spawn(
            prefix, {**base, "role": "client", "port": port, "profile": base.get("profile_client")}
        )
        client_result = _last_json(client, timeout, "client")
        server.send_signal(signal.SIGUSR1)
        server_result = _last_json(server, 30, "server")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return {"client": client_result, "server": server_result}


def summarize(nbytes: int, direction: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run's figures (by throughput) plus the spread of all of them."""
    mbit = [nbytes * 8 / r["client"]["elapsed"] / 1e6 for r in runs]
    median_index = sorted(range(len(runs)), key=lambda i: mbit[i])[len(runs) // 2]
    run = runs[median_index]
    sender, receiver = (
        (run["server"], run["client"]) if direction == "download" else (run["client"], run["server"])
    )

    def per(cpu: float, count: float) -> float | None:
        return cpu / count * 1e6 if count else None

    return {
        "mbit_s": mbit[median_index],
        "mbit_s_runs": mbit,
        "seconds": run["client"]["elapsed"],
        "seconds_runs": [r["client"]["elapsed"] for r in runs],
        "sender_us_per_datagram": per(sender["cpu"], sender["sent"]),
        "receiver_us_per_datagram": per(receiver["cpu"], receiver["received"]),
        "sender_cpu_s": sender["cpu"],
        "receiver_cpu_s": receiver["cpu"],
        "datagrams_sent": sender["sent"],
        "datagrams_received": receiver["received"],
        "acks_sent": receiver["sent"],
        "sender_rss_mib": sender["max_rss_kib"] / 1024,
        "receiver_rss_mib": receiver["max_rss_kib"] / 1024,
        "timer_callbacks": sender["timers"],
        "idle_timer_callbacks": sender["idle_timers"],
    }


def run(
    *,
    mbytes: float = 64.0,
    repeat: int = 3,
    paths: tuple[str, ...] = ("netns", "loopback"),
    loops: tuple[str, ...] = ("asyncio", "uvloop"),
    loopback_loops: tuple[str, ...] = ("asyncio",),
    stacks: tuple[str, ...] | None = None,
    directions: tuple[str, ...] = DIRECTIONS,
    timeout: float = 300.0,
    streams: int = 1,
) -> dict[str, Any]:
    """Every configuration, interleaved `repeat` times; the JSON-able result (see the module docstring).

    With `streams` > 1 the client opens that many streams at once, each carrying `mbytes` MiB.
    """
    nbytes = int(mbytes * (1 << 20))
    pki_dir = tempfile.mkdtemp(prefix="rudp-bulk-")
    from rudp.testing.certs import make_test_pki

    pki = make_test_pki(pki_dir)
    certs = {"cert": str(pki.cert_file), "key": str(pki.key_file), "ca": str(pki.ca_file)}
    loops = tuple(lp for lp in loops if lp == "asyncio" or available(lp))
    result: dict[str, Any] = {
        "conditions": {
            "mbytes": mbytes,
            "streams": streams,
            "repeat": repeat,
            "datagram": DATAGRAM,
            "mtu": MTU,
            "socket_buffer": SOCKET_BUFFER,
            "pacing": PACING,
            "cpus": os.cpu_count(),
            "rudp_1452": "Config(max_datagram_size=1452, pmtu_discovery=False)",
            "rudp_default": "Config() defaults: 1350-byte base, PMTU discovery on (finds 1452 at MTU 1500)",
        },
        "missing": {m: "not installed" for m in ("qh3", "uvloop") if not available(m)},
        "paths": {},
    }
    for path in paths:
        configs = []
        for label, stack in variants(path):
            if stacks is not None and label not in stacks and stack not in stacks:
                continue
            if stack in QUIC_STACKS[1:] and not available(stack):
                continue
            for loop in (
                ("asyncio",) if stack == "rudp-tcp" else (loops if path == "netns" else loopback_loops)
            ):
                for direction in directions:
                    configs.append((label, stack, loop, direction))
        runs: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        errors: dict[str, str] = {}
        context = netns() if path == "netns" else contextlib.nullcontext([])
        with context as prefix:
            for _ in range(repeat):
                for label, stack, loop, direction in configs:
                    key = (label, loop, direction)
                    if f"{label} {loop} {direction}" in errors:
                        continue
                    base = {"stack": stack, "loop": loop, "direction": direction, "nbytes": nbytes, **certs}
                    base["streams"] = streams
                    try:
                        runs.setdefault(key, []).append(run_once(prefix, base, timeout))
                    except RuntimeError as exc:
                        errors[f"{label} {loop} {direction}"] = str(exc)[-600:]
        rows = []
        for (label, loop, direction), done in runs.items():
            if done:
                rows.append(
                    {
                        "stack": label,
                        "loop": loop,
                        "direction": direction,
                        **summarize(nbytes * streams, direction, done),
                    }
                )
        result["paths"][path] = {"rows": rows, "errors": errors}
    return result


def _baseline(rows: list[dict[str, Any]], row: dict[str, Any]) -> dict[str, Any] | None:
    for other in rows:
        if (
            other["stack"] == BASELINE
            and other["loop"] == row["loop"]
            and other["direction"] == row["direction"]
        ):
            return other
    for other in rows:  # rudp-tcp runs on asyncio only
        if (
            other["stack"] == BASELINE
            and other["loop"] == "asyncio"
            and other["direction"] == row["direction"]
        ):
            return other
    return None


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


PATH_TITLES = {
    "netns": "network namespace, loopback MTU 1500 (1452-byte datagrams)",
    "loopback": "default loopback, MTU 65536 (NOT a real path: rudp-pmtud uses 16 KiB datagrams)",
}


def report(result: dict[str, Any]) -> str:
    """One table per path: Mbit/s, CPU per datagram both sides, RSS, timers, ratios vs aioquic-1452."""
    c = result["conditions"]
    parts = []
    for path, data in result["paths"].items():
        rows = data["rows"]
        body = []
        for r in rows:
            base = _baseline(rows, r)
            is_tcp = r["stack"] == "rudp-tcp"
            body.append(
                [
                    r["stack"],
                    r["loop"],
                    r["direction"],
                    f"{r['mbit_s']:.0f}",
                    "/".join(f"{m:.0f}" for m in r["mbit_s_runs"]),
                    "-" if is_tcp else _us(r["sender_us_per_datagram"]),
                    "-" if is_tcp else _us(r["receiver_us_per_datagram"]),
                    f"{r['sender_rss_mib']:.0f}/{r['receiver_rss_mib']:.0f}",
                    "-" if is_tcp else f"{r['idle_timer_callbacks']}/{r['timer_callbacks']}",
                    ratio(r["mbit_s"], base and base["mbit_s"]),
                    "-"
                    if is_tcp or not base
                    else ratio(base["sender_us_per_datagram"], r["sender_us_per_datagram"]),
                    "-"
                    if is_tcp or not base
                    else ratio(base["receiver_us_per_datagram"], r["receiver_us_per_datagram"]),
                ]
            )
        head = (
            f"bulk on {PATH_TITLES.get(path, path)}: {c['mbytes']:g} MiB on one stream, server and client in "
            f"separate processes, {c['repeat']} interleaved runs (median shown)"
        )
        parts.append(
            head
            + "\n"
            + table(
                [
                    "stack",
                    "loop",
                    "direction",
                    "Mbit/s",
                    "runs",
                    "snd us/dgram",
                    "rcv us/dgram",
                    "RSS MiB s/r",
                    "idle/all timers",
                    "vs aioquic",
                    "snd CPU vs aioq",
                    "rcv CPU vs aioq",
                ],
                body,
            )
        )
        for name, error in data["errors"].items():
            parts.append(f"  {name}: FAILED {error.splitlines()[-1] if error else ''}")
    for name, why in result.get("missing", {}).items():
        parts.append(f"  {name}: {why}")
    return "\n\n".join(parts)


def add_selection_arguments(parser: argparse.ArgumentParser, loops: list[str]) -> None:
    """``--loops``, ``--stacks``, ``--directions``: which configurations a run measures."""
    parser.add_argument("--loops", nargs="+", default=loops, choices=["asyncio", "uvloop"])
    parser.add_argument("--stacks", nargs="+", help="labels or stacks (rudp, aioquic, qh3, rudp-tcp, ...)")
    parser.add_argument("--directions", nargs="+", default=list(DIRECTIONS), choices=DIRECTIONS)


def selection(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`run` that :func:`add_selection_arguments` parsed."""
    return {
        "loops": tuple(args.loops),
        "stacks": tuple(args.stacks) if args.stacks else None,
        "directions": tuple(args.directions),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--mbytes", type=float, default=64.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 MiB, one run each: a fast look")
    parser.add_argument("--paths", nargs="+", default=["netns", "loopback"], choices=["netns", "loopback"])
    add_selection_arguments(parser, ["asyncio", "uvloop"])
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    mbytes, repeat = (2.0, 1) if args.quick else (args.mbytes, args.repeat)
    result = run(mbytes=mbytes, repeat=repeat, paths=tuple(args.paths), **selection(args))
    print(report(result))
    print(saved(save_result("bulk", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
