"""Shared pieces of the benchmarks: the emulated network with its servers, client sessions, tables, JSON.

Layout of every emulated run (see ``rudp/netem/README.md``): a :class:`~rudp.netem.Network` whose
server namespace runs one forked process (:func:`serve_all`) with every server the benchmarks talk to,
and whose client namespace runs the measuring code in forked children (``net.client.call``/``spawn``).

Servers, all on the server host's address:

==========================  ====================================================================
port                        what listens
==========================  ====================================================================
``PORT_NEWRENO`` (4433)      rudp QUIC with NewReno on UDP, rudp's TCP+TLS baseline (kernel reno)
``PORT_CUBIC`` (4435)        rudp QUIC with CUBIC on UDP, rudp's TCP+TLS baseline (kernel cubic)
``PORT_AIOQUIC`` (4434)      aioquic with its default Reno
``PORT_AIOQUIC_CUBIC`` (4436) aioquic with CUBIC
``PORT_BBR`` (4437)          rudp QUIC with BBR on UDP, rudp's TCP+TLS baseline (kernel bbr)
==========================  ====================================================================

They all speak one tiny request protocol, one request per bidirectional stream: the client sends
``GET <n>\\n`` and FIN, the server answers ``n`` bytes and FIN; ``INFO\\n`` answers a JSON object
describing the connection as the server sees it (rudp only: peer address, path changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import os
import select
import ssl
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import rudp
from rudp.netem import Impairments, NatConfig, Network, NetworkConfig
from rudp.testing.certs import TestPki, make_test_pki

T = TypeVar("T")

PORT_NEWRENO = 4433
PORT_AIOQUIC = 4434
PORT_CUBIC = 4435
PORT_AIOQUIC_CUBIC = 4436
PORT_BBR = 4437
SERVER_NAME = "localhost"
ALPN = ["hq-interop"]
BLOCK = os.urandom(1 << 16)
"""The bytes responses are cut from (random, so nothing compresses)."""
RESULTS_DIR = Path(__file__).parent / "results"

STACKS = ("rudp-quic", "rudp-tcp", "aioquic")
"""Client stacks every session helper knows."""


def port_for(stack: str, congestion: str) -> int:
    """The server port that serves `stack` with the sender-side congestion controller `congestion`."""
    cubic = congestion == "cubic"
    if stack == "aioquic":
        if congestion == "bbr":
            raise ValueError("aioquic has no BBR")
        return PORT_AIOQUIC_CUBIC if cubic else PORT_AIOQUIC
    if stack in ("rudp-quic", "rudp-tcp"):
        if congestion == "bbr":
            return PORT_BBR
        return PORT_CUBIC if cubic else PORT_NEWRENO
    raise ValueError(f"unknown stack {stack!r}")


VARIANTS: dict[str, tuple[str, str]] = {
    "rudp-quic newreno": ("rudp-quic", "newreno"),
    "rudp-quic cubic": ("rudp-quic", "cubic"),
    "rudp-quic bbr": ("rudp-quic", "bbr"),
    "rudp-tcp kernel-cubic": ("rudp-tcp", "cubic"),
    "rudp-tcp kernel-bbr": ("rudp-tcp", "bbr"),
    "aioquic reno": ("aioquic", "newreno"),
    "aioquic cubic": ("aioquic", "cubic"),
}
"""Variant name -> (client stack, congestion controller) for :func:`session`: rudp QUIC with its own
controller; rudp's TCP baseline with the kernel's controller of that name set per socket
(TCP_CONGESTION, see :func:`kernel_congestion`) on the server port serving it (:func:`port_for`)."""


def kernel_congestion(congestion: str) -> str:
    """The kernel TCP controller rudp's TCP baseline sets per socket for a rudp controller name."""
    return congestion if congestion in ("cubic", "bbr") else "reno"


# ----------------------------------------------------------------------------------------- server side


def _response(request: bytes) -> tuple[int, bytes | None]:
    """(body size, literal body) for a request line; a literal body answers INFO."""
    line = request.strip()
    if line.startswith(b"GET "):
        return int(line[4:]), None
    raise ValueError(f"bad request {line[:40]!r}")


async def _write_body(
    write: Callable[[bytes], None], drain: Callable[[], Coroutine[Any, Any, None]], n: int
) -> None:
    view = memoryview(BLOCK)
    left = n
    while left > 0:
        chunk = view[: min(left, len(view))]
        write(bytes(chunk))
        left -= len(chunk)
        await drain()


async def _rudp_stream(conn: rudp.Connection, stream: rudp.Stream) -> None:
    with contextlib.suppress(rudp.RudpError, OSError, ValueError):
        request = await stream.read()
        if request.strip() == b"INFO":
            stats = conn.stats
            info = {"peer": list(conn.peer_address), "path_changes": stats.path_changes}
            stream.write(json.dumps(info).encode())
        else:
            size, _ = _response(request)
            await _write_body(stream.write, stream.drain, size)
        stream.write_eof()
        await stream.drain()


async def _rudp_handler(conn: rudp.Connection) -> None:
    tasks: set[asyncio.Task[None]] = set()
    with contextlib.suppress(rudp.RudpError, OSError):
        async for stream in conn:
            task = asyncio.create_task(_rudp_stream(conn, stream))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


async def _aioquic_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        request = await reader.read()
        if request.strip() == b"INFO":
            writer.write(b"{}")
        else:
            size, _ = _response(request)
            await _write_body(writer.write, writer.drain, size)
        writer.write_eof()


def _aioquic_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    task = asyncio.ensure_future(_aioquic_stream(reader, writer))
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Future[None]] = set()


async def _serve_all(ready_fd: int, pki: TestPki, host: str, max_seconds: float) -> None:
    from aioquic.asyncio import serve as aioquic_serve
    from aioquic.quic.configuration import QuicConfiguration

    servers: list[rudp.Server] = []
    for port, cc in ((PORT_NEWRENO, "newreno"), (PORT_CUBIC, "cubic"), (PORT_BBR, "bbr")):
        config = rudp.Config(
            alpn=ALPN, certfile=pki.cert_file, keyfile=pki.key_file, congestion=cc, enable_0rtt=True
        )
        servers.append(await rudp.serve(host, port, _rudp_handler, config=config, transport="both"))
    tickets: dict[bytes, Any] = {}
    for port, cc in ((PORT_AIOQUIC, "reno"), (PORT_AIOQUIC_CUBIC, "cubic")):
        aio_cfg = QuicConfiguration(is_client=False, alpn_protocols=ALPN, congestion_control_algorithm=cc)
        aio_cfg.load_cert_chain(str(pki.cert_file), str(pki.key_file))
        await aioquic_serve(
            host,
            port,
            configuration=aio_cfg,
            stream_handler=_aioquic_handler,
            session_ticket_fetcher=lambda label: tickets.pop(label, None),
            session_ticket_handler=lambda ticket: tickets.__setitem__(ticket.ticket, ticket),
        )
    # The start-up heap (imported modules, certificates) is permanent: without this a full collection
    # of it (20-30 ms) lands in whichever stack's run happens to be under way (benchmarks/many_small.py).
    gc.collect()
    gc.freeze()
    os.write(ready_fd, b"R")
    os.close(ready_fd)
    await asyncio.sleep(max_seconds)  # self-stopping even if nobody kills us
    for server in servers:
        server.close()


def serve_all(ready_fd: int, pki: TestPki, host: str, max_seconds: float) -> None:
    """Run every benchmark server on `host` (see the module docstring) for at most `max_seconds`.

    Writes one byte to `ready_fd` once all of them listen. Meant to run in the server namespace.
    """
    asyncio.run(_serve_all(ready_fd, pki, host, max_seconds))


@dataclass
class Bench:
    """A running emulated network with the benchmark servers up."""

    net: Network
    pki: TestPki

    @property
    def host(self) -> str:
        """The server's address, as the client dials it."""
        return self.net.server.address

    def impair(self, impairments: Impairments) -> None:
        """Replace the impairments of both directions."""
        self.net.set_impairments("both", impairments)

    def client(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, timeout: float = 120.0) -> T:
        """Run ``asyncio.run(fn(*args))`` in the client namespace and return its (picklable) result."""
        return self.net.client.call(run_coroutine, fn, *args, timeout=timeout)


def run_coroutine(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """``asyncio.run(fn(*args))``: the body of a client-namespace child (errors keep their traceback)."""
    try:
        return asyncio.run(fn(*args))
    except Exception as exc:
        raise RuntimeError(traceback.format_exc()) from exc


def wan(
    delay: float, loss: float = 0.0, rate_bps: float | None = None, queue_bytes: int | None = None
) -> Impairments:
    """Impairments of one direction: one-way `delay` (s), random `loss`, optional bottleneck."""
    fields: dict[str, Any] = {"delay": delay, "loss": loss}
    if rate_bps is not None:
        fields["rate_bps"] = rate_bps
        fields["queue_bytes"] = queue_bytes or max(64_000, int(rate_bps * 4 * delay / 8))
    return Impairments(**fields)


@contextlib.contextmanager
def bench_network(
    impairments: Impairments | None = None, *, nat: bool = False, max_seconds: float = 900.0
) -> Iterator[Bench]:
    """An emulated network (same impairments both ways) with :func:`serve_all` running in it.

    Everything is torn down on exit: the server process is killed, the namespaces deleted.
    """
    imp = impairments or Impairments()
    pki = make_test_pki(tempfile.mkdtemp(prefix="rudp-bench-"))
    config = NetworkConfig(c2s=imp, s2c=imp, nat=NatConfig(port=True) if nat else None)
    with (
        Network(config) as net,
        server_process(net, "the benchmark servers", serve_all, pki, net.server.address, max_seconds),
    ):
        yield Bench(net, pki)


@contextlib.contextmanager
def server_process(net: Network, what: str, target: Callable[..., None], *args: Any) -> Iterator[None]:
    """``target(ready_fd, *args)`` running in the server namespace for the duration of the block; it
    writes ``b"R"`` to ``ready_fd`` once it listens (30 s at most). Killed on exit."""
    read_fd, write_fd = os.pipe()
    task = net.server.spawn(target, write_fd, *args)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 30.0)
        if not ready or os.read(read_fd, 1) != b"R":
            raise RuntimeError(f"{what} did not start")
        yield
    finally:
        task.kill()
        os.close(read_fd)


# ----------------------------------------------------------------------------------------- client side


class Session(Protocol):
    """One client connection of any stack, speaking the benchmark request protocol."""

    async def get(
        self, nbytes: int, progress: Callable[[int], None] | None = None, stall: float = 30.0
    ) -> int:
        """Download `nbytes`; returns the count received. `progress` gets each chunk's size.

        Raises TimeoutError when no byte arrived for `stall` seconds.
        """
        ...

    async def info(self) -> dict[str, Any]:
        """The server's view of this connection (empty for aioquic)."""
        ...


class RudpSession:
    """A :class:`Session` over a rudp Connection (QUIC or the TCP baseline)."""

    def __init__(self, conn: rudp.Connection) -> None:
        self.conn = conn

    async def _request(self, request: bytes) -> rudp.Stream:
        stream = await self.conn.open_stream()
        stream.write(request)
        stream.write_eof()
        return stream

    async def get(
        self, nbytes: int, progress: Callable[[int], None] | None = None, stall: float = 30.0
    ) -> int:
        stream = await self._request(b"GET %d\n" % nbytes)
        got = 0
        while chunk := await asyncio.wait_for(stream.read(1 << 16), stall):
            got += len(chunk)
            if progress is not None:
                progress(len(chunk))
        return got

    async def info(self) -> dict[str, Any]:
        stream = await self._request(b"INFO\n")
        result: dict[str, Any] = json.loads(await stream.read())
        return result


class AioquicSession:
    """A :class:`Session` over an aioquic client protocol (public API: ``create_stream``)."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    async def get(
        self, nbytes: int, progress: Callable[[int], None] | None = None, stall: float = 30.0
    ) -> int:
        reader, writer = await self.protocol.create_stream()
        writer.write(b"GET %d\n" % nbytes)
        writer.write_eof()
        got = 0
        while chunk := await asyncio.wait_for(reader.read(1 << 16), stall):
            got += len(chunk)
            if progress is not None:
                progress(len(chunk))
        return got

    async def info(self) -> dict[str, Any]:
        return {}


def rudp_client_config(pki: TestPki, **kwargs: Any) -> rudp.Config:
    """A rudp client Config trusting the benchmark CA."""
    return rudp.Config(alpn=ALPN, cafile=pki.ca_file, server_name=SERVER_NAME, **kwargs)


def aioquic_client_config(pki: TestPki, congestion: str = "newreno") -> Any:
    """An aioquic client configuration trusting the benchmark CA."""
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(
        is_client=True,
        alpn_protocols=ALPN,
        server_name=SERVER_NAME,
        congestion_control_algorithm="cubic" if congestion == "cubic" else "reno",
    )
    config.load_verify_locations(cafile=str(pki.ca_file))
    config.verify_mode = ssl.CERT_REQUIRED
    return config


@contextlib.asynccontextmanager
async def session(stack: str, host: str, pki: TestPki, congestion: str = "newreno") -> AsyncIterator[Session]:
    """An established connection of `stack` to the server serving `congestion` (see :func:`port_for`)."""
    port = port_for(stack, congestion)
    if stack == "aioquic":
        from aioquic.asyncio import connect as aioquic_connect

        async with aioquic_connect(host, port, configuration=aioquic_client_config(pki, congestion)) as proto:
            yield AioquicSession(proto)
        return
    transport = "quic" if stack == "rudp-quic" else "tcp"
    config = rudp_client_config(pki, congestion=congestion)
    async with rudp.connect(host, port, config=config, transport=transport) as conn:  # type: ignore[arg-type]
        yield RudpSession(conn)


# ----------------------------------------------------------------------------------------- reporting


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` formatted as ``1.23x``, or ``-`` when undefined."""
    if a is None or b is None or b == 0 or a != a or b != b:
        return "-"
    return f"{a / b:.2f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


def save_result(name: str, record: dict[str, Any], *, results_dir: Path | None = None) -> Path:
    """Write `record` (plus the Python version and a timestamp) to ``benchmarks/results/<name>-<ts>.json``.

    When `name` has a plot in :mod:`benchmarks.plots` and matplotlib is installed, the plot is written
    beside the JSON with the suffix ``.png`` (see :func:`saved`); without matplotlib one line says so.
    """
    from benchmarks import plots

    directory = RESULTS_DIR if results_dir is None else results_dir
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = directory / f"{name}-{stamp}.json"
    full = {"benchmark": name, "time": stamp, "python": sys.version.split()[0], **record}
    path.write_text(json.dumps(full, indent=2, default=str))
    plots.save_plot(json.loads(path.read_text()), path.with_suffix(".png"))
    return path


def saved(path: Path) -> str:
    """``saved <json>``, plus ``and <png>`` when its plot was written: what a benchmark prints last."""
    png = path.with_suffix(".png")
    return f"saved {path}" + (f" and {png}" if png.exists() else "")


def link_summary(bench: Bench) -> dict[str, Any]:
    """Forwarder counters worth keeping with a result (drops by cause, TUN queue overflows)."""
    stats = bench.net.stats()
    return {
        d: {"dropped": dict(s.dropped), "tun_tx_dropped": s.tun_tx_dropped}
        for d, s in (("c2s", stats.c2s), ("s2c", stats.s2c))
    }
