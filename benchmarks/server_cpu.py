"""Server CPU per connection on real UDP sockets: rudp's asyncio server against aioquic's.

``handshake_cpu`` measures the sans-IO cores; this measures what a server process pays per accepted
connection with everything around the core (its asyncio server, socket calls, timers, the close and
the end of the connection's state), the way a deployment runs it. Each server runs in a process of
its own on 127.0.0.1 (rudp: ``rudp.serve`` with a handler that waits for the client to close;
aioquic: ``aioquic.asyncio.serve`` with its default protocol); one client process (rudp's client for
both, so the client side is the same) opens connections one after the other: handshake, one PING
answered (so the server completed its side of the handshake too), then close. The stacks take turns
in batches of ``--batch`` connections, ``--rounds`` times; each server reports its own CPU time
(``getrusage``) before and after each batch, so the figure is the server's CPU per connection,
medians over the batches. ``--resumed``: the client offers the ticket of its
previous connection to that server (PSK with (EC)DHE; both servers keep their tickets in memory).

Besides CPU time each server reports, per connection, its system time, minor page faults and garbage
collections (and the time they took). With two or more CPUs the servers run pinned to the last one and
the client to the first (``--no-pin`` to let the scheduler choose): a client sharing the server's core
and caches was the largest source of noise. CPU time on a shared VM still drifts by 20-50 % over
minutes; ``--instructions`` gives a figure that does not: each server runs under valgrind's callgrind
with counting switched on only around each batch (``callgrind_control``), and the result is the
server's instructions per connection (everything in its process: Python, asyncio, the crypto
libraries; not the kernel). Slow (valgrind runs ~50x slower): use small batches.

    python -m benchmarks.server_cpu [--batch 100] [--rounds 5] [--resumed] [--no-pin] [--instructions]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ALPN, SERVER_NAME, ratio, save_result, saved, table

STACKS = ("rudp", "aioquic")


class _Collections:
    """Garbage collections of this process and the CPU time they took (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self._start = 0.0
        gc.callbacks.append(self._on_collection)

    def _on_collection(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.count += 1
            self.seconds += time.thread_time() - self._start


def _usage(collections: _Collections) -> dict[str, float]:
    """This process's counters so far: CPU s (user + system), system s, minor faults, voluntary context
    switches (each a wait for the socket, the loop then woken), collections."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu": usage.ru_utime + usage.ru_stime,
        "sys": usage.ru_stime,
        "faults": float(usage.ru_minflt),
        "waits": float(usage.ru_nvcsw),
        "collections": float(collections.count),
        "gc": collections.seconds,
    }


async def _rudp_server(cert: str, key: str) -> int:
    import rudp

    async def handler(conn: rudp.Connection) -> None:
        async for _ in conn:  # until the client closes
            pass

    config = rudp.Config(alpn=ALPN, certfile=cert, keyfile=key)
    server = await rudp.serve("127.0.0.1", 0, handler, config=config)
    return server.port


async def _aioquic_server(cert: str, key: str) -> int:
    from aioquic.asyncio import serve
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(is_client=False, alpn_protocols=ALPN)
    config.load_cert_chain(cert, key)
    tickets: dict[bytes, Any] = {}
    server = await serve(
        "127.0.0.1",
        0,
        configuration=config,
        session_ticket_fetcher=tickets.pop,
        session_ticket_handler=lambda ticket: tickets.__setitem__(ticket.ticket, ticket),
    )
    return int(server._transport.get_extra_info("sockname")[1])  # (aioquic has no port API)


async def _serve(stack: str, cert: str, key: str, settle: float) -> None:
    """The server process: print the port, then its counters (JSON) for every line read on stdin."""
    collections = _Collections()
    port = await (_rudp_server if stack == "rudp" else _aioquic_server)(cert, key)
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        await asyncio.sleep(settle)  # let the last connections' closes and timers run first
        print(json.dumps(_usage(collections)), flush=True)


def _cpus() -> tuple[int, int] | None:
    """(the client's CPU, the servers' CPU) when pinning is possible: the first and the last."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[-1]) if len(cpus) >= 2 else None


class _Server:
    def __init__(self, process: asyncio.subprocess.Process, port: int, counts: Path | None) -> None:
        self.process, self.port, self.counts = process, port, counts

    @classmethod
    async def start(cls, stack: str, pki: Path, cpu: int | None, counts: Path | None) -> _Server:
        command = [sys.executable, "-m", "benchmarks.server_cpu", "--server", stack]
        command += [str(pki / "cert.pem"), str(pki / "key.pem"), "2.0" if counts else "0.2"]
        if counts is not None:  # counting off until a batch starts (see _Server.count)
            valgrind = [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={counts}",
            ]
            command = [*valgrind, *command]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL if counts else None,
            preexec_fn=None if cpu is None else lambda: os.sched_setaffinity(0, {cpu}),
        )
        if process.stdout is None:
            raise RuntimeError("no pipe")
        return cls(process, int(await process.stdout.readline()), counts)

    async def usage(self) -> dict[str, float]:
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("no pipe")
        stdin.write(b"usage\n")
        await stdin.drain()
        return dict(json.loads(await stdout.readline()))

    async def count(self, on: bool) -> None:
        """Switch callgrind's counting on or off (off: and write the counts so far)."""
        await _run_tool("callgrind_control", "-i", "on" if on else "off", str(self.process.pid))
        if not on:
            await _run_tool("callgrind_control", "-d", str(self.process.pid))

    def instructions(self) -> int:
        """Instructions counted so far (the dumps' totals: each dump holds the counts since the last)."""
        total = 0
        if self.counts is not None:
            for path in self.counts.parent.glob(self.counts.name + "*"):
                for line in path.read_text().splitlines():
                    if line.startswith("totals:"):  # (a dump's "summary:" line can read 0)
                        total += int(line.split()[1])
                        break
        return total

    async def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.kill()
        await self.process.wait()


async def _connections(port: int, ca: Path, count: int, tickets: Any) -> None:
    import rudp

    config = rudp.Config(alpn=ALPN, cafile=ca, server_name=SERVER_NAME, session_ticket_store=tickets)
    for _ in range(count):
        offered = tickets is not None and len(tickets) > 0
        async with rudp.connect("127.0.0.1", port, config=config) as conn:
            await conn.ping()  # one round trip: the server completed its side of the handshake
            if offered and not conn.session_resumed:
                raise RuntimeError("the client offered a ticket and did not resume")


async def _run(
    batch: int, rounds: int, resumed: bool, stacks: tuple[str, ...], pin: bool, instructions: bool
) -> dict[str, Any]:
    cpus = _cpus() if pin else None
    if cpus is None:
        return await _measure(batch, rounds, resumed, stacks, None, instructions)
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpus[0]})
    try:
        return await _measure(batch, rounds, resumed, stacks, cpus, instructions)
    finally:
        os.sched_setaffinity(0, allowed)  # (this process, e.g. a test run, goes on unpinned)


async def _measure(
    batch: int,
    rounds: int,
    resumed: bool,
    stacks: tuple[str, ...],
    cpus: tuple[int, int] | None,
    instructions: bool,
) -> dict[str, Any]:
    import rudp
    from rudp.testing.certs import make_test_pki

    with tempfile.TemporaryDirectory() as tmp:
        pki = Path(tmp)
        make_test_pki(pki)
        servers: dict[str, _Server] = {}
        for stack in stacks:
            counts = pki / f"callgrind-{stack}.out" if instructions else None
            servers[stack] = await _Server.start(stack, pki, None if cpus is None else cpus[1], counts)
        tickets = {stack: rudp.TicketStore() if resumed else None for stack in stacks}
        batches: dict[str, list[dict[str, float]]] = {stack: [] for stack in stacks}
        try:
            for stack, server in servers.items():  # warm-up (and the first ticket)
                await _connections(server.port, pki / "ca.pem", 3, tickets[stack])
                await server.usage()
            for _ in range(rounds):
                for stack, server in servers.items():
                    if instructions:
                        counted = server.instructions()
                        await server.count(True)
                    before = await server.usage()
                    await _connections(server.port, pki / "ca.pem", batch, tickets[stack])
                    after = await server.usage()
                    row = {key: (after[key] - before[key]) / batch for key in after}
                    if instructions:
                        await server.count(False)
                        row["instructions"] = (server.instructions() - counted) / batch
                    batches[stack].append(row)
        finally:
            for server in servers.values():
                await server.stop()
    rows = {stack: _summary(values) for stack, values in batches.items()}
    conditions = {
        "batch": batch,
        "rounds": rounds,
        "resumed": resumed,
        "pinned": cpus is not None,
        "instructions": instructions,
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    return {"conditions": conditions, "stacks": rows}


def _summary(batches: list[dict[str, float]]) -> dict[str, Any]:
    """Per connection, medians over the batches: CPU ms (and each batch's), system ms, faults, waits
    (voluntary context switches), GC."""

    def median(key: str, scale: float = 1.0) -> float:
        return statistics.median(row[key] for row in batches) * scale

    summary = {
        "median_ms": median("cpu", 1000),
        "batches_ms": [row["cpu"] * 1000 for row in batches],
        "sys_ms": median("sys", 1000),
        "faults": median("faults"),
        "waits": median("waits"),
        "collections_per_1000": median("collections", 1000),
        "gc_ms": median("gc", 1000),
    }
    if "instructions" in batches[0]:
        summary["instructions"] = median("instructions")
    return summary


async def _run_tool(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    if await process.wait() != 0:
        raise RuntimeError(f"{command[0]} failed")


def run(
    *,
    batch: int = 100,
    rounds: int = 5,
    resumed: bool = False,
    stacks: tuple[str, ...] = STACKS,
    pin: bool = True,
    instructions: bool = False,
) -> dict[str, Any]:
    """Server CPU ms per connection for each stack (the JSON-able result).

    Raises:
        RuntimeError: ``instructions`` without valgrind's callgrind tools on the PATH.
    """
    if instructions and not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        raise RuntimeError("--instructions needs valgrind (callgrind_control) on the PATH")
    return asyncio.run(_run(batch, rounds, resumed, stacks, pin, instructions))


def report(result: dict[str, Any]) -> str:
    c, rows = result["conditions"], result["stacks"]
    base = rows.get("aioquic", {})
    counted = bool(c.get("instructions"))
    lines = []
    for stack, r in rows.items():
        line = [stack, f"{r['median_ms']:.2f}", ratio(r["median_ms"], base.get("median_ms"))]
        if counted:
            line += [f"{r['instructions'] / 1e6:.3f}M", ratio(r["instructions"], base.get("instructions"))]
        line += [
            f"{r.get('sys_ms', 0.0):.2f}",
            f"{r.get('faults', 0.0):.1f}",
            f"{r.get('waits', 0.0):.1f}",
            f"{r.get('collections_per_1000', 0.0):.0f} / {r.get('gc_ms', 0.0) * 1000:.0f}",
            " ".join(f"{v:.2f}" for v in r["batches_ms"]),
        ]
        lines.append(line)
    kind = "resumed (PSK with ECDHE)" if c["resumed"] else "full"
    head = (
        f"server CPU per connection, asyncio servers on real UDP sockets, {kind} handshakes then close; "
        f"batches of {c['batch']}, {c['rounds']} rounds, stacks taking turns; "
        + ("servers pinned to one CPU, the client to another" if c.get("pinned") else "not pinned")
        + (" (under callgrind: CPU times are valgrind's, only the instructions count)" if counted else "")
    )
    headers = ["server", "CPU ms (median)", "vs aioquic"]
    if counted:
        headers += ["instructions", "vs aioquic"]
    headers += ["sys ms", "minor faults", "waits", "GCs per 1000 / us each conn", "CPU ms per batch"]
    return head + "\n" + table(headers, lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--server"]:
        asyncio.run(_serve(argv[1], argv[2], argv[3], float(argv[4])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--resumed", action="store_true")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place the processes")
    parser.add_argument(
        "--instructions", action="store_true", help="count each server's instructions under callgrind"
    )
    args = parser.parse_args(argv)
    result = run(
        batch=args.batch,
        rounds=args.rounds,
        resumed=args.resumed,
        pin=not args.no_pin,
        instructions=args.instructions,
    )
    print(report(result))
    print(saved(save_result("server_cpu", result)))
    print(json.dumps({s: round(r["median_ms"], 3) for s, r in result["stacks"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
