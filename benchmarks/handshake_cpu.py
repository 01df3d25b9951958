"""CPU per QUIC handshake and side, rudp against aioquic, full and resumed, one process per mode.

Run: ``python -m benchmarks.handshake_cpu [--count 200] [--rounds 3] [--block 10]`` (or ``python -m
benchmarks.handshake --cpu``); ``--profile "rudp full" --side server`` prints a cProfile of one side.

Both stacks' sans-IO cores are driven back to back with no network in between, each mode in a process
of its own (so each stack pays for its own garbage collections; ``--shared-heap`` runs them all in
one): a client and a server exchange datagrams until both report the handshake complete and nothing is
left to send (the NewSessionTicket, HANDSHAKE_DONE and their ACKs included). Each side's calls are timed
with the thread's CPU clock (``CLOCK_THREAD_CPUTIME_ID``, what ``getrusage(RUSAGE_THREAD)`` counts,
at nanosecond resolution), so the client's and the server's CPU are told apart. What a real
deployment does once is done once here too: the server's configuration (certificate, key, ticket
key) and the client's configuration; what it does per connection is timed: for rudp a client
``QuicEndpoint`` and its connection (as ``rudp.connect`` makes them), for aioquic a
``QuicConnection``; on the server the endpoint's accept path (rudp) or a new ``QuicConnection``
(aioquic, as its asyncio server does). "Resumed" offers the ticket of the previous connection (PSK
with (EC)DHE, no early data). The modes take turns, 10 handshakes of a mode per turn (``--block``;
1 makes every handshake start cold), so load from other processes falls on all of them alike; each
figure is the median over a mode's handshakes (and the mean), quoted with the load average before
and after.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import ALPN, SERVER_NAME, ratio, save_result, saved, table
from rudp.testing.certs import TestPki, make_test_pki

MODES = ("rudp full", "aioquic full", "rudp resumed", "aioquic resumed")
CLIENT_ADDR = ("10.0.0.1", 5000)
SERVER_ADDR = ("10.0.0.2", 4433)
Exchange = Callable[[], tuple[float, float]]
"""One handshake: (client CPU s, server CPU s)."""


_PROFILED: tuple[int, cProfile.Profile] | None = None
"""(side, profiler): the side (0 client, 1 server) whose calls :func:`_pump` profiles."""


def _toggle(profiler: cProfile.Profile | None, enable: bool) -> None:
    if profiler is not None:
        profiler.enable() if enable else profiler.disable()


def _pump(
    client_send: Callable[[float], list[bytes]],
    client_recv: Callable[[bytes, float], None],
    server_send: Callable[[float], list[bytes]],
    server_recv: Callable[[bytes, float], None],
    done: Callable[[], bool],
    now: float,
    times: list[float],
) -> float:
    """Move datagrams both ways until ``done()`` and both sides are quiet; CPU into ``times``."""
    clock = time.thread_time
    on: list[cProfile.Profile | None] = [None, None]
    if _PROFILED is not None:
        on[_PROFILED[0]] = _PROFILED[1]
    for _ in range(50):
        start = clock()
        _toggle(on[0], True)
        out = client_send(now)
        _toggle(on[0], False)
        times[0] += clock() - start
        start = clock()
        _toggle(on[1], True)
        for data in out:
            server_recv(data, now)
        back = server_send(now)
        _toggle(on[1], False)
        times[1] += clock() - start
        start = clock()
        _toggle(on[0], True)
        for data in back:
            client_recv(data, now)
        _toggle(on[0], False)
        times[0] += clock() - start
        now += 0.001
        if not out and not back and done():
            return now
    raise RuntimeError("handshake did not complete")


def rudp_exchange(pki: TestPki, resumed: bool) -> Exchange:
    """A function that runs one rudp handshake (the ticket of the previous one offered if resumed)."""
    import rudp
    from rudp.quic import events as ev
    from rudp.quic.endpoint import QuicEndpoint

    tickets = rudp.TicketStore() if resumed else None
    client_config = rudp.Config(
        alpn=ALPN, cafile=pki.ca_file, server_name=SERVER_NAME, session_ticket_store=tickets
    )
    server_config = rudp.Config(alpn=ALPN, certfile=pki.cert_file, keyfile=pki.key_file)
    server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    clock = [1000.0]

    def exchange() -> tuple[float, float]:
        now = clock[0]
        times = [0.0, 0.0]
        offered = tickets is not None and len(tickets) > 0
        start = time.thread_time()
        client = QuicEndpoint(client_config)
        conn = client.connect(SERVER_ADDR, now, server_name=SERVER_NAME)
        times[0] += time.thread_time() - start
        states = {"client": False, "server": False}

        def drain(endpoint: QuicEndpoint, side: str) -> None:
            for c in endpoint.flushed:
                while (event := c.next_event()) is not None:
                    if isinstance(event, ev.HandshakeCompleted):
                        states[side] = True

        def client_send(t: float) -> list[bytes]:
            out = [d for d, _ in client.datagrams_to_send(t)]
            drain(client, "client")
            return out

        def server_send(t: float) -> list[bytes]:
            out = [d for d, _ in server.datagrams_to_send(t)]
            drain(server, "server")
            return out

        now = _pump(
            client_send,
            lambda d, t: client.receive_datagram(d, SERVER_ADDR, t) and None,
            server_send,
            lambda d, t: server.receive_datagram(d, CLIENT_ADDR, t) and None,
            lambda: states["client"] and states["server"],
            now,
            times,
        )
        if offered and not conn.session_resumed:
            raise RuntimeError("rudp did not resume")
        conn.close(now=now)  # untimed: leave the server with no connection
        for data, _ in client.datagrams_to_send(now):
            server.receive_datagram(data, CLIENT_ADDR, now)
        server.datagrams_to_send(now)
        now += 5.0
        server.handle_timer(now)
        server.datagrams_to_send(now)  # (the connection ends here; the endpoint's `flushed` still holds it)
        server.datagrams_to_send(now)  # untimed, as aioquic's teardown: the connection is freed now
        clock[0] = now + 1.0
        return times[0], times[1]

    return exchange


def aioquic_exchange(pki: TestPki, resumed: bool) -> Exchange:
    """A function that runs one aioquic handshake (the ticket of the previous one offered if resumed)."""
    import ssl

    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.events import HandshakeCompleted

    client_config = QuicConfiguration(is_client=True, alpn_protocols=ALPN, server_name=SERVER_NAME)
    client_config.load_verify_locations(cafile=str(pki.ca_file))
    client_config.verify_mode = ssl.CERT_REQUIRED
    server_config = QuicConfiguration(is_client=False, alpn_protocols=ALPN)
    server_config.load_cert_chain(str(pki.cert_file), str(pki.key_file))
    server_tickets: dict[bytes, Any] = {}
    client_tickets: list[Any] = []
    clock = [1000.0]

    def exchange() -> tuple[float, float]:
        now = clock[0]
        times = [0.0, 0.0]
        start = time.thread_time()
        client_config.session_ticket = client_tickets[-1] if resumed and client_tickets else None
        client = QuicConnection(configuration=client_config, session_ticket_handler=client_tickets.append)
        client.connect(SERVER_ADDR, now)
        times[0] += time.thread_time() - start
        holder: list[QuicConnection] = []
        states = {"client": False, "server": False}

        def drain(conn: QuicConnection, side: str) -> None:
            while (event := conn.next_event()) is not None:
                if isinstance(event, HandshakeCompleted):
                    states[side] = True

        def server_recv(data: bytes, t: float) -> None:
            if not holder:
                holder.append(
                    QuicConnection(
                        configuration=server_config,
                        original_destination_connection_id=data[6 : 6 + data[5]],
                        session_ticket_fetcher=server_tickets.pop,
                        session_ticket_handler=lambda tk: server_tickets.__setitem__(tk.ticket, tk),
                    )
                )
            holder[0].receive_datagram(data, CLIENT_ADDR, t)
            drain(holder[0], "server")

        def server_send(t: float) -> list[bytes]:
            return [d for d, _ in holder[0].datagrams_to_send(t)] if holder else []

        def client_recv(data: bytes, t: float) -> None:
            client.receive_datagram(data, SERVER_ADDR, t)
            drain(client, "client")

        now = _pump(
            lambda t: [d for d, _ in client.datagrams_to_send(t)],
            client_recv,
            server_send,
            server_recv,
            lambda: states["client"] and states["server"],
            now,
            times,
        )
        if resumed and client_config.session_ticket is not None and not client.tls.session_resumed:
            raise RuntimeError("aioquic did not resume")
        clock[0] = now + 1.0
        return times[0], times[1]

    return exchange


def _exchange(mode: str, pki: TestPki) -> Exchange:
    stack, kind = mode.split()
    make = rudp_exchange if stack == "rudp" else aioquic_exchange
    exchange = make(pki, kind == "resumed")
    exchange()  # warm-up (and the first ticket)
    return exchange


class _Worker:
    """One mode's handshakes in a process of its own (``--worker``), run one per call, so each stack
    has a heap (and garbage collections) of its own; the CPU times come back over a pipe."""

    def __init__(self, mode: str, pki_dir: Path) -> None:
        command = [sys.executable, "-m", "benchmarks.handshake_cpu", "--worker", mode, "--pki", str(pki_dir)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._ask("ready")

    def _ask(self, command: str) -> str:
        stdin, stdout = self._process.stdin, self._process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("worker without pipes")
        stdin.write(command + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"handshake worker ended (exit code {self._process.wait()})")
        return line

    def __call__(self) -> tuple[float, float]:
        client, server = self._ask("run").split()
        return float(client), float(server)

    def collect(self) -> None:
        self._ask("collect")

    def collections(self) -> dict[str, Any]:
        """The worker's garbage collections during its timed handshakes (:class:`_Collections`)."""
        totals: dict[str, Any] = json.loads(self._ask("gc"))
        return totals

    def close(self) -> None:
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                pipe.close()
        self._process.wait(timeout=30)


def _serve(mode: str, pki_dir: Path) -> int:
    """The ``--worker`` side of :class:`_Worker`: one handshake per "run" line on stdin."""
    pki = TestPki(ca_file=pki_dir / "ca.pem", cert_file=pki_dir / "cert.pem", key_file=pki_dir / "key.pem")
    exchange = _exchange(mode, pki)
    collections = _Collections()
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            with collections.counting():
                client, server = exchange()
            print(f"{client!r} {server!r}", flush=True)
        elif command == "collect":
            gc.collect()
            print("ok", flush=True)
        elif command == "gc":
            print(json.dumps(collections.totals), flush=True)
        else:
            print("ok", flush=True)
    return 0


class _Collections:
    """The garbage collections during timed handshakes: how many per generation, their CPU time and
    the objects they freed (objects on reference cycles, which reference counting could not free)."""

    def __init__(self) -> None:
        self.totals = {"handshakes": 0, "gen0": 0, "gen1": 0, "gen2": 0, "seconds": 0.0, "collected": 0}
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
            return
        totals = self.totals
        totals[f"gen{info['generation']}"] += 1
        totals["seconds"] += time.thread_time() - self._started
        totals["collected"] += info["collected"]

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        gc.callbacks.append(self._callback)
        try:
            yield
        finally:
            gc.callbacks.remove(self._callback)
            self.totals["handshakes"] += 1


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run(
    *,
    count: int = 200,
    rounds: int = 3,
    block: int = 10,
    modes: tuple[str, ...] = MODES,
    separate: bool = True,
) -> dict[str, Any]:
    """CPU ms per handshake per side for every mode; the JSON-able result.

    The modes take turns, ``block`` handshakes of one mode in a row per turn (``rounds`` times
    ``count // block`` turns each), so a burst of load from other processes hits them alike; each
    mode's figure is the median over its handshakes, which a few disturbed ones do not move (the mean
    is given too). Within a block a stack finds its own code and data in the CPU caches, as a server
    busy with handshakes does (the case where CPU per handshake matters); with ``block=1`` every
    handshake starts cold, after the other stacks' processes ran, which inflates every figure ~1.5x
    with the VM's process switches and makes the ratios swing by 0.3 between runs.

    With ``separate`` (the default) each mode runs in a process of its own, told when to run each
    handshake: a stack then pays for its own garbage collections only, as a server running one stack
    does. In one shared process (``separate=False``) a collection runs whenever the allocations of
    any stack cross the collector's threshold, and scans every stack's objects: one stack's reference
    cycles then cost the others time too.
    """
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_test_pki(tmp)
        workers: dict[str, Exchange] = {}
        try:
            for mode in modes:
                workers[mode] = _Worker(mode, Path(tmp)) if separate else _exchange(mode, pki)
            load_before = _loadavg()
            samples: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
            for _ in range(rounds):
                for worker in workers.values():
                    worker.collect() if isinstance(worker, _Worker) else gc.collect()
                for _ in range(max(1, count // block)):
                    for mode in modes:
                        for _ in range(block):
                            samples[mode].append(workers[mode]())
            load_after = _loadavg()
            collections = {mode: w.collections() for mode, w in workers.items() if isinstance(w, _Worker)}
        finally:
            for worker in workers.values():
                if isinstance(worker, _Worker):
                    worker.close()
    rows = {}
    for mode, pairs in samples.items():
        clients = [c * 1000 for c, _ in pairs]
        servers = [s * 1000 for _, s in pairs]
        rows[mode] = {
            "client_ms": statistics.median(clients),
            "server_ms": statistics.median(servers),
            "client_mean_ms": statistics.fmean(clients),
            "server_mean_ms": statistics.fmean(servers),
        }
        if mode in collections:
            rows[mode]["collections"] = collections[mode]
    conditions = {
        "handshakes_per_mode": max(1, count // block) * block * rounds,
        "block": block,
        "processes": "one per mode" if separate else "one shared",
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    return {"conditions": conditions, "modes": rows}


def report(result: dict[str, Any]) -> str:
    """One row per mode: CPU ms per handshake per side and rudp/aioquic ratios."""
    c = result["conditions"]
    modes = result["modes"]
    block = c.get("block", 1)
    turns = f" in blocks of {block} handshakes" if block > 1 else " handshake by handshake"
    rows = []
    for mode, r in modes.items():
        kind = mode.split()[1]
        other = modes.get(f"aioquic {kind}")
        rows.append(
            [
                mode,
                f"{r['client_ms']:.2f}",
                f"{r['server_ms']:.2f}",
                ratio(r["client_ms"], other["client_ms"]) if other else "",
                ratio(r["server_ms"], other["server_ms"]) if other else "",
                f"{r['client_mean_ms']:.2f}/{r['server_mean_ms']:.2f}",
                ratio(r["client_mean_ms"], other["client_mean_ms"]) if other else "",
                ratio(r["server_mean_ms"], other["server_mean_ms"]) if other else "",
            ]
        )
    head = (
        f"handshake CPU (sans-IO; processes: {c.get('processes', 'one shared')}): {c['handshakes_per_mode']} "
        f"handshakes per mode, modes taking turns{turns}; medians, and means (what a busy server pays per "
        f"connection, garbage collections included); load average {c['loadavg_before']} -> "
        f"{c['loadavg_after']}"
    )
    gc_lines = []
    for mode, r in modes.items():
        g = r.get("collections")
        if g and g["handshakes"]:
            n = g["handshakes"]
            gc_lines.append(
                f"  {mode}: collections per 1000 handshakes gen0/gen1/gen2 {1000 * g['gen0'] / n:.0f}/"
                f"{1000 * g['gen1'] / n:.0f}/{1000 * g['gen2'] / n:.0f}, {1e6 * g['seconds'] / n:.0f} us of "
                f"collection and {g['collected'] / n:.0f} objects freed by them per handshake (both sides)"
            )
    headers = [
        "mode",
        "client ms",
        "server ms",
        "client/aioquic",
        "server/aioquic",
        "mean c/s ms",
        "mean client/aioquic",
        "mean server/aioquic",
    ]
    gc_text = "\ngarbage collections (each mode's own process):\n" + "\n".join(gc_lines) if gc_lines else ""
    return head + "\n" + table(headers, rows) + gc_text


def profile(mode: str, side: str, count: int) -> str:
    """cProfile of one side of ``count`` handshakes of one mode (the top functions; the client's
    connection setup before its first datagram is not included)."""
    global _PROFILED
    with tempfile.TemporaryDirectory() as tmp:
        exchange = _exchange(mode, make_test_pki(tmp))
        profiler = cProfile.Profile()
        _PROFILED = (0 if side == "client" else 1, profiler)
        try:
            for _ in range(count):
                exchange()
        finally:
            _PROFILED = None
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(60)
    stats.sort_stats("tottime").print_stats(40)
    return out.getvalue()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="handshakes per mode and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--block", type=int, default=10, help="handshakes of one mode in a row per turn (1: each one cold)"
    )
    parser.add_argument("--profile", choices=MODES, help="print a cProfile of one mode instead")
    parser.add_argument("--side", choices=("client", "server"), default="server", help="side to profile")
    parser.add_argument(
        "--shared-heap",
        action="store_true",
        help="run every mode in this one process (one heap, shared collections)",
    )
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--pki", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _serve(args.worker, args.pki)
    if args.profile:
        print(profile(args.profile, args.side, args.count))
        return 0
    result = run(count=args.count, rounds=args.rounds, block=args.block, separate=not args.shared_heap)
    print(report(result))
    print(saved(save_result("handshake_cpu", result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
