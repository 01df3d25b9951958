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

    python -m benchmarks.server_cpu [--batch 100] [--rounds 5] [--resumed]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import ALPN, SERVER_NAME, ratio, save_result, saved, table

STACKS = ("rudp", "aioquic")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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


async def _serve(stack: str, cert: str, key: str) -> None:
    """The server process: print the port, then its CPU seconds for every line read on stdin."""
    port = await (_rudp_server if stack == "rudp" else _aioquic_server)(cert, key)
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        await asyncio.sleep(0.2)  # let the last connections' closes and timers run first
        print(repr(_cpu()), flush=True)


class _Server:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process, self.port = process, port

    @classmethod
    async def start(cls, stack: str, pki: Path) -> _Server:
        command = [sys.executable, "-m", "benchmarks.server_cpu", "--server", stack]
        command += [str(pki / "cert.pem"), str(pki / "key.pem")]
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        if process.stdout is None:
            raise RuntimeError("no pipe")
        return cls(process, int(await process.stdout.readline()))

    async def cpu(self) -> float:
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("no pipe")
        stdin.write(b"cpu\n")
        await stdin.drain()
        return float(await stdout.readline())

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


async def _run(batch: int, rounds: int, resumed: bool, stacks: tuple[str, ...]) -> dict[str, Any]:
    import rudp
    from rudp.testing.certs import make_test_pki

    with tempfile.TemporaryDirectory() as tmp:
        pki = Path(tmp)
        make_test_pki(pki)
        servers = {stack: await _Server.start(stack, pki) for stack in stacks}
        tickets = {stack: rudp.TicketStore() if resumed else None for stack in stacks}
        per_connection: dict[str, list[float]] = {stack: [] for stack in stacks}
        try:
            for stack, server in servers.items():  # warm-up (and the first ticket)
                await _connections(server.port, pki / "ca.pem", 3, tickets[stack])
            for _ in range(rounds):
                for stack, server in servers.items():
                    before = await server.cpu()
                    await _connections(server.port, pki / "ca.pem", batch, tickets[stack])
                    per_connection[stack].append((await server.cpu() - before) / batch * 1000)
        finally:
            for server in servers.values():
                await server.stop()
    rows = {
        stack: {"median_ms": statistics.median(values), "batches_ms": values}
        for stack, values in per_connection.items()
    }
    conditions = {"batch": batch, "rounds": rounds, "resumed": resumed}
    return {"conditions": conditions, "stacks": rows}


def run(
    *, batch: int = 100, rounds: int = 5, resumed: bool = False, stacks: tuple[str, ...] = STACKS
) -> dict[str, Any]:
    """Server CPU ms per connection for each stack (the JSON-able result)."""
    return asyncio.run(_run(batch, rounds, resumed, stacks))


def report(result: dict[str, Any]) -> str:
    c, rows = result["conditions"], result["stacks"]
    base = rows.get("aioquic", {}).get("median_ms")
    lines = [
        [
            stack,
            f"{r['median_ms']:.2f}",
            ratio(r["median_ms"], base) if base else "",
            " ".join(f"{v:.2f}" for v in r["batches_ms"]),
        ]
        for stack, r in rows.items()
    ]
    kind = "resumed (PSK with ECDHE)" if c["resumed"] else "full"
    head = (
        f"server CPU per connection, asyncio servers on real UDP sockets, {kind} handshakes then close; "
        f"batches of {c['batch']}, {c['rounds']} rounds, stacks taking turns"
    )
    return head + "\n" + table(["server", "CPU ms (median)", "vs aioquic", "per batch"], lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--server"]:
        asyncio.run(_serve(*argv[1:4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--resumed", action="store_true")
    args = parser.parse_args(argv)
    result = run(batch=args.batch, rounds=args.rounds, resumed=args.resumed)
    print(report(result))
    print(saved(save_result("server_cpu", result)))
    print(json.dumps({s: round(r["median_ms"], 3) for s, r in result["stacks"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
