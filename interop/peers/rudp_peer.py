"""The rudp side of the interop runs: an hq-interop and HTTP/3 file server and client on rudp's asyncio API.

Owns :class:`RudpFileServer` (``rudp.serve`` with :class:`rudp.aio.hq.FileServer`, or
:class:`rudp.h3.ASGIHandler` with :class:`rudp.h3.files.StaticFiles` when the client chose h3, recording
each connection) and :func:`run_rudp_client` (carries out a :class:`~interop.peers.base.ClientPlan` with
``rudp.connect`` and :func:`rudp.aio.hq.fetch`, or ``rudp.h3``'s client), through the public API only
(``Connection.cipher_suite``, ``Connection.version``, ``Connection.request_key_update()``,
``Connection.migrate()``, ``Connection.peer_address`` and ``Connection.stats`` included).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import rudp
from interop.peers.base import (
    ALPN,
    H3_ALPN,
    SERVER_NAME,
    TICKET_TIMEOUT,
    BodyHasher,
    ClientConnectionResult,
    ClientPlan,
    Digest,
    EndpointReport,
    ServerOptions,
)
from rudp.aio.hq import FileServer, fetch
from rudp.crypto.suites import CipherSuite
from rudp.h3 import ASGIHandler, H3Client
from rudp.h3.client import start_client
from rudp.h3.files import StaticFiles
from rudp.h3.files import fetch as fetch_h3
from rudp.tls.tickets import SessionTicket


def report_of(conn: rudp.Connection, role: str) -> EndpointReport:
    """What one end of a rudp connection negotiated."""
    suite = conn.cipher_suite
    return EndpointReport(
        impl="rudp",
        role=role,
        handshake_completed=conn.is_established,
        alpn=conn.alpn_protocol,
        session_resumed=conn.session_resumed,
        early_data_accepted=conn.zero_rtt_accepted,
        cipher_suite=None if suite is None else int(CipherSuite[suite.removeprefix("TLS_")]),
        key_updates=conn.stats.key_updates,
        path_changes=conn.stats.path_changes,
        peer_port=conn.peer_address[1],
        peer_host=conn.peer_address[0],
        ecn_state=conn.stats.ecn_state,
        ecn_marked_sent=conn.stats.ecn_marked_sent,
        ecn_peer_counts=conn.stats.ecn_peer_counts,
    )


class RudpFileServer:
    """rudp serving the files under ``root`` over hq-interop; see :meth:`start`."""

    def __init__(self, root: Path, certfile: Path, keyfile: Path, options: ServerOptions) -> None:
        self.root = root.resolve()
        preferred = options.preferred_address
        self.config = rudp.Config(
            alpn=[ALPN, H3_ALPN],
            certfile=certfile,
            keyfile=keyfile,
            retry=options.retry,
            enable_0rtt=True,
            preferred_address=None if preferred is None else [f"{preferred[0]}:{preferred[1]}"],
            serve_preferred_address=False,  # the tap listens there and forwards to our own address
        )
        self.connections: list[rudp.Connection] = []
        self._files = FileServer(self.root)
        self._h3_files = ASGIHandler(StaticFiles(self.root))
        self._server: rudp.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> RudpFileServer:
        """Listen on ``host``:``port`` (0: an ephemeral port, see :attr:`port`)."""
        self._server = await rudp.serve(host, port, self._handle, config=self.config)
        return self

    async def _handle(self, conn: rudp.Connection) -> None:
        self.connections.append(conn)
        await (self._h3_files if conn.alpn_protocol == H3_ALPN else self._files)(conn)

    @property
    def port(self) -> int:
        """The UDP port listened on."""
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.port

    @property
    def cid_length(self) -> int:
        """The length of the connection IDs it issues."""
        return self.config.connection_id_length

    def reports(self) -> list[EndpointReport]:
        """One report per connection whose handshake completed, in order."""
        return [report_of(conn, "server") for conn in self.connections]

    async def close(self) -> None:
        """Close every connection and the socket."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class _SignallingTicketStore(rudp.TicketStore):
    """A ticket store that wakes a waiter when a ticket arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def add(self, ticket: SessionTicket) -> None:
        super().add(ticket)
        self.arrived.set()


class _Migrator:
    """Starts ``conn.migrate()`` once ``after`` response bytes arrived over all of a connection's streams."""

    def __init__(self, conn: rudp.Connection, after: int | None) -> None:
        self.conn = conn
        self.after = after
        self.received = 0
        self.task: asyncio.Task[tuple[str, int]] | None = None

    def on_data(self, size: int) -> None:
        self.received += size
        if self.after is not None and self.task is None and self.received >= self.after:
            self.task = asyncio.get_running_loop().create_task(self.conn.migrate())

    async def finish(self) -> None:
        """Wait for the migration (its error, if any, propagates); complain if it never started."""
        if self.after is None:
            return
        if self.task is None:
            raise RuntimeError(f"only {self.received} bytes arrived, migration was due after {self.after}")
        await self.task


async def _get(
    conn: rudp.Connection, h3: H3Client | None, path: str, key_update: bool, migrator: _Migrator
) -> Digest:
    hasher = BodyHasher()

    def sink(chunk: bytes) -> None:
        hasher.update(chunk)
        migrator.on_data(len(chunk))
        if key_update and chunk and not conn.stats.key_updates:
            # False until the handshake is confirmed (RFC 9001 §6.1): the next chunk tries again.
            conn.request_key_update()

    if h3 is None:
        await fetch(conn, path, sink)
    else:
        status, _size = await fetch_h3(h3, path, sink)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP/3 status {status}")
    return hasher.digest()


async def run_rudp_client(
    plan: ClientPlan, host: str, port: int, cafile: Path
) -> list[ClientConnectionResult]:
    """Carry out ``plan`` against ``host``:``port``; one result per connection, in order.

    Raises:
        rudp.RudpError: a request failed or a connection ended early.
        TimeoutError: no session ticket arrived when the next connection needs one.
    """
    store = _SignallingTicketStore()
    results: list[ClientConnectionResult] = []
    for index, paths in enumerate(plan.connections):
        config = rudp.Config(
            alpn=[plan.alpn],
            cafile=cafile,
            server_name=SERVER_NAME,
            version=plan.version,
            cipher_suites=None
            if plan.cipher_suites is None
            else [CipherSuite(s) for s in plan.cipher_suites],
            session_ticket_store=store if plan.resume or plan.early_data else None,
            enable_0rtt=plan.early_data and index > 0,
        )
        needs_ticket = (plan.resume or plan.early_data) and index + 1 < len(plan.connections)
        store.arrived.clear()
        async with rudp.connect(host, port, config=config) as conn:
            migrator = _Migrator(conn, plan.migrate_after)
            h3 = await start_client(conn, SERVER_NAME, port) if plan.alpn == H3_ALPN else None
            digests = await asyncio.gather(
                *(_get(conn, h3, path, plan.key_update, migrator) for path in paths)
            )
            await migrator.finish()
            await conn.wait_established()
            if needs_ticket:
                await asyncio.wait_for(store.arrived.wait(), TICKET_TIMEOUT)
            results.append(
                ClientConnectionResult(report_of(conn, "client"), dict(zip(paths, digests, strict=True)))
            )
    return results


__all__ = ["RudpFileServer", "report_of", "run_rudp_client"]
