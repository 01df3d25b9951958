"""The rudp ↔ ngtcp2 matrix over HTTP/3: cases, the rudp HTTP/3 ends, and running one cell.

Owns :data:`NGTCP2_CASES`, :data:`NGTCP2_DIRECTIONS`, :func:`prepare_ngtcp2` and :func:`run_ngtcp2_case`.
Each cell puts a :class:`~interop.tap.WireTap` in front of the server. Every body is compared by SHA-256
with the file served (uploads: the rudp server answers the SHA-256 of what it received; gtlsserver
answers a POST with the file its path names, so an upload to it is checked by that answer arriving
whole after the request body was sent). What a case claims is checked on rudp's own report of the
connection and on the wire; ngtcp2 reports nothing machine-readable, only its exit status.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import rudp
from interop.cases import KIB, MIB, CaseResult, Direction
from interop.peers.base import SERVER_NAME, VERSION_1, BodyHasher, Digest, EndpointReport, file_digest
from interop.peers.ngtcp2 import (
    CHACHA20_ONLY,
    Ngtcp2Server,
    Ngtcp2ServerOptions,
    run_gtlsclient,
)
from interop.peers.rudp_peer import report_of
from interop.tap import TapPath, WireTap
from rudp.crypto.suites import CipherSuite
from rudp.h3 import H3_ALPN, ASGIHandler, H3Client
from rudp.h3.client import start_client
from rudp.h3.files import StaticFiles
from rudp.testing.certs import make_test_pki
from rudp.tls.tickets import SessionTicket

RUDP: Final = "rudp"
NGTCP2: Final = "ngtcp2"
NGTCP2_DIRECTIONS: Final = (Direction(RUDP, NGTCP2), Direction(NGTCP2, RUDP))
FILES: Final = {
    "/1k.bin": 1 * KIB,
    "/64k.bin": 64 * KIB,
    "/1m.bin": 1 * MIB,
    "/4m.bin": 4 * MIB,
    "/10m.bin": 10 * MIB,
}
UPLOAD: Final = "/1m.bin"
"""The file a client uploads (POST) in the upload case."""
LOSS: Final = 0.02


@dataclass(frozen=True)
class Ngtcp2Case:
    """One cell row: what to fetch, and how each end is configured in each direction."""

    name: str
    description: str
    paths: tuple[str, ...]
    connections: int = 1
    upload: bool = False
    retry: bool = False
    chacha20: bool = False
    loss: bool = False
    resume: bool = False
    early_data: bool = False
    key_update: str | None = None
    """"client" or "server": which end initiates a 1-RTT key update."""
    move: str | None = None
    """"migrate" (the client moves to a new socket and connection ID) or "rebind" (its port changes)."""
    not_applicable: dict[str, str] = field(default_factory=dict)
    """Direction label -> why the case cannot run that way."""


NGTCP2_CASES: Final = (
    Ngtcp2Case("handshake", "one connection, 1 KiB; v1 on the wire, no Retry", ("/1k.bin",)),
    Ngtcp2Case(
        "transfer",
        "one connection, 1 KiB + 64 KiB + 1 MiB + 10 MiB at once",
        ("/1k.bin", "/64k.bin", "/1m.bin", "/10m.bin"),
    ),
    Ngtcp2Case("upload", "POST of 1 MiB", ("/1k.bin",), upload=True),
    Ngtcp2Case(
        "resumption",
        "two connections, the second resumes the session",
        ("/1k.bin", "/64k.bin"),
        connections=2,
        resume=True,
    ),
    Ngtcp2Case(
        "zerortt",
        "two connections, the second sends its request as 0-RTT",
        ("/1k.bin", "/64k.bin"),
        connections=2,
        early_data=True,
    ),
    Ngtcp2Case(
        "keyupdate-client",
        "the client initiates a 1-RTT key update; 4 MiB",
        ("/4m.bin",),
        key_update="client",
    ),
    Ngtcp2Case(
        "keyupdate-server",
        "the server initiates a 1-RTT key update; 4 MiB",
        ("/4m.bin",),
        key_update="server",
        not_applicable={"rudp→ngtcp2": "gtlsserver has no option to initiate a key update"},
    ),
    Ngtcp2Case(
        "migration",
        "the client changes its local address (new socket, path validation); 4 MiB",
        ("/4m.bin",),
        move="migrate",
    ),
    Ngtcp2Case(
        "rebind", "NAT rebinding: the client's port changes under it; 4 MiB", ("/4m.bin",), move="rebind"
    ),
    Ngtcp2Case("retry", "the server sends a Retry; exactly one on the wire", ("/64k.bin",), retry=True),
    Ngtcp2Case(
        "chacha20",
        "TLS_CHACHA20_POLY1305_SHA256 only (GnuTLS priority string on ngtcp2's side)",
        ("/1m.bin",),
        chacha20=True,
    ),
    Ngtcp2Case(
        "loss",
        "ngtcp2 drops 2% of the packets it sends and 2% of those it receives; 1 MiB + 64 KiB",
        ("/64k.bin", "/1m.bin"),
        loss=True,
    ),
    Ngtcp2Case(
        "v2",
        "QUIC version 2 (RFC 9369)",
        (),
        not_applicable={
            label: "ngtcp2 0.12.1 knows only QUIC v2 draft (0x709a50c4, 'v2draft'), not RFC 9369's 0x6b3343cf"
            for label in ("rudp→ngtcp2", "ngtcp2→rudp")
        },
    ),
)
NGTCP2_CASES_BY_NAME: Final = {case.name: case for case in NGTCP2_CASES}


@dataclass(frozen=True)
class Ngtcp2Environment:
    """Certificates and the served files."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    www: Path
    workdir: Path
    digests: dict[str, Digest]


def prepare_ngtcp2(workdir: Path) -> Ngtcp2Environment:
    """Write a throwaway PKI and the served files (random bytes) under ``workdir``."""
    pki = make_test_pki(workdir / "pki")
    www = workdir / "www-ngtcp2"
    www.mkdir(parents=True, exist_ok=True)
    digests = {}
    for path, size in FILES.items():
        target = www / path.lstrip("/")
        target.write_bytes(os.urandom(size))
        digests[path] = file_digest(target)
    return Ngtcp2Environment(pki.ca_file, pki.cert_file, pki.key_file, www, workdir, digests)


# ------------------------------------------------------------------------------ rudp's HTTP/3 ends


class _UploadApp:
    """StaticFiles for GET; a POST is answered with the SHA-256 (hex) of its body."""

    def __init__(self, root: Path) -> None:
        self.files = StaticFiles(root)
        self.uploads: list[Digest] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.files(scope, receive, send)
            return
        hasher = BodyHasher()
        while True:
            message = await receive()
            hasher.update(message.get("body", b""))
            if not message.get("more_body"):
                break
        digest = hasher.digest()
        self.uploads.append(digest)
        body = digest.sha256.encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class RudpH3Server:
    """rudp serving ``root`` over HTTP/3 (uploads hashed), recording each connection."""

    def __init__(self, env: Ngtcp2Environment, case: Ngtcp2Case) -> None:
        self.config = rudp.Config(
            alpn=[H3_ALPN], certfile=env.cert_file, keyfile=env.key_file, retry=case.retry, enable_0rtt=True
        )
        self.app = _UploadApp(env.www)
        self.handler = ASGIHandler(self.app)
        self.key_update = case.key_update == "server"
        self.connections: list[rudp.Connection] = []
        self._server: rudp.Server | None = None

    async def start(self) -> RudpH3Server:
        self._server = await rudp.serve("127.0.0.1", 0, self._handle, config=self.config)
        return self

    async def _handle(self, conn: rudp.Connection) -> None:
        self.connections.append(conn)
        if self.key_update:
            asyncio.get_running_loop().create_task(_update_keys(conn))
        await self.handler(conn)

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.port

    @property
    def cid_length(self) -> int:
        return self.config.connection_id_length

    def reports(self) -> list[EndpointReport]:
        return [report_of(conn, "server") for conn in self.connections]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


async def _update_keys(conn: rudp.Connection) -> None:
    """Initiate a key update as soon as the handshake is confirmed; a ping carries the new keys."""
    try:
        await conn.wait_established()
        for _attempt in range(50):
            if conn.request_key_update():
                await conn.ping()
                return
            await conn.ping()
    except rudp.RudpError:
        return


class _Tickets(rudp.TicketStore):
    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def add(self, ticket: SessionTicket) -> None:
        super().add(ticket)
        self.arrived.set()


async def _rudp_client(
    case: Ngtcp2Case, port: int, env: Ngtcp2Environment
) -> tuple[list[EndpointReport], dict[str, Digest]]:
    """rudp's HTTP/3 client carrying out ``case``: reports per connection, digest per path (last wins)."""
    tickets = _Tickets()
    reports: list[EndpointReport] = []
    bodies: dict[str, Digest] = {}
    for index in range(case.connections):
        paths = case.paths[index : index + 1] if case.connections > 1 else case.paths
        config = rudp.Config(
            alpn=[H3_ALPN],
            cafile=env.ca_file,
            server_name=SERVER_NAME,
            cipher_suites=[CipherSuite.CHACHA20_POLY1305_SHA256] if case.chacha20 else None,
            session_ticket_store=tickets,
            enable_0rtt=case.early_data and index > 0,
        )
        tickets.arrived.clear()
        async with rudp.connect("127.0.0.1", port, config=config) as conn:
            client = await start_client(conn, "127.0.0.1", port)
            moved: list[asyncio.Task[Any]] = []

            async def get(
                path: str, client: H3Client = client, moved: list[asyncio.Task[Any]] = moved
            ) -> None:
                hasher = BodyHasher()
                if case.upload:
                    response = await client.post(path, (env.www / UPLOAD.lstrip("/")).read_bytes())
                else:
                    response = await client.get(path)
                async for chunk in response.aiter_bytes():
                    hasher.update(chunk)
                    if case.key_update == "client" and not conn.stats.key_updates:
                        conn.request_key_update()
                    if case.move == "migrate" and not moved and hasher.size >= MIB:
                        moved.append(asyncio.get_running_loop().create_task(conn.migrate()))
                if response.status != 200:
                    raise RuntimeError(f"{path}: status {response.status}")
                bodies[path] = hasher.digest()

            await asyncio.gather(*(get(path) for path in paths))
            for task in moved:
                await task
            if (case.resume or case.early_data) and index + 1 < case.connections:
                await asyncio.wait_for(tickets.arrived.wait(), 5.0)
            await conn.wait_established()
            reports.append(report_of(conn, "client"))
            await client.aclose()
    return reports, bodies


async def _gtlsclient(case: Ngtcp2Case, port: int, env: Ngtcp2Environment, work: Path) -> dict[str, Digest]:
    """gtlsclient carrying out ``case``; digest per path of what it downloaded."""
    session, tp = work / "session.pem", work / "tp.txt"
    bodies: dict[str, Digest] = {}
    for index in range(case.connections):
        paths = list(case.paths[index : index + 1] if case.connections > 1 else case.paths)
        extra: list[str] = []
        if case.resume or case.early_data:
            extra.append(f"--session-file={session}")
        if case.early_data:
            extra.append(f"--tp-file={tp}")
        elif case.resume:
            extra.append("--disable-early-data")
        if case.chacha20:
            extra.append(f"--ciphers={CHACHA20_ONLY}")
        if case.loss:
            extra += [f"-t{LOSS}", f"-r{LOSS}"]
        if case.key_update == "client":
            extra += ["--delay-stream=300ms", "--key-update=50ms"]
        if case.move is not None:
            extra += ["--delay-stream=300ms", "--change-local-addr=50ms"]
            if case.move == "rebind":
                extra.append("--nat-rebinding")
        if case.upload:
            extra += ["-m", "POST", "-d", str(env.www / UPLOAD.lstrip("/"))]
        downloads = work / f"downloads{index}"
        run = await run_gtlsclient(port, paths, downloads, extra=extra)
        if run.returncode != 0:
            raise RuntimeError(f"gtlsclient exited with {run.returncode}: {run.stderr.strip()[-500:]}")
        for path in paths:
            target = downloads / path.lstrip("/")
            bodies[path] = file_digest(target) if target.exists() else Digest(-1, "missing")
    return bodies


# ------------------------------------------------------------------------------------------ checks


def _checks(case: Ngtcp2Case, rudp_side: list[EndpointReport], tap: WireTap) -> list[str]:
    problems = []
    for index, report in enumerate(rudp_side):
        who = f"connection {index}: rudp {report.role}"
        if not report.handshake_completed or report.alpn != H3_ALPN:
            problems.append(f"{who}: handshake {report.handshake_completed}, ALPN {report.alpn!r}")
        if (case.resume or case.early_data) and report.session_resumed != (index > 0):
            problems.append(f"{who}: session_resumed={report.session_resumed}")
        if case.early_data and index > 0 and not report.early_data_accepted:
            problems.append(f"{who}: 0-RTT not accepted")
        if case.chacha20 and report.cipher_suite != int(CipherSuite.CHACHA20_POLY1305_SHA256):
            problems.append(f"{who}: cipher suite {report.cipher_suite!r}")
        if case.key_update and report.key_updates < 1:
            problems.append(f"{who}: no key update")
        if case.move == "migrate" and report.path_changes is not None and report.path_changes < 1:
            problems.append(f"{who}: no path change")
    if len(rudp_side) != case.connections:
        problems.append(f"rudp saw {len(rudp_side)} connections, want {case.connections}")
    retries = tap.count("to_client", "retry")
    if retries != (1 if case.retry else 0):
        problems.append(f"{retries} Retry packets on the wire")
    if case.early_data and not tap.count("to_server", "0rtt"):
        problems.append("no 0-RTT packet on the wire")
    if case.name == "handshake":
        for direction in ("to_server", "to_client"):
            if tap.long_header_versions(direction) != {VERSION_1}:
                problems.append(f"{direction}: versions {tap.long_header_versions(direction)}")
    if case.move is not None:
        problems += _moved(case, tap, rudp_side)
    uploaded = sum(path.bytes["to_server"] for path in tap.paths)
    if case.upload and uploaded < MIB:
        problems.append(f"only {uploaded} bytes went to the server: the upload did not happen")
    return problems


def _moved(case: Ngtcp2Case, tap: WireTap, rudp_side: list[EndpointReport]) -> list[str]:
    """The client's packets came from a second address, and the server carried the transfer there."""
    paths: list[TapPath] = tap.paths
    if len(paths) < 2:
        return ["the client never sent from a new address"]
    new = paths[-1]
    if new.bytes["to_client"] < MIB:
        return [f"only {new.bytes['to_client']} bytes went to the client's new address"]
    server = next((r for r in rudp_side if r.role == "server"), None)
    if server is not None and (server.path_changes or 0) < 1:
        return ["the rudp server counts no path change"]
    return []


# ----------------------------------------------------------------------------------------- running


async def _exercise(
    case: Ngtcp2Case, direction: Direction, env: Ngtcp2Environment, result: CaseResult
) -> list[str]:
    work = env.workdir / f"{case.name}-{direction.slug}"
    work.mkdir(parents=True, exist_ok=True)
    server: RudpH3Server | Ngtcp2Server
    if direction.server == RUDP:
        server = await RudpH3Server(env, case).start()
    else:
        options = Ngtcp2ServerOptions(
            retry=case.retry,
            ciphers=CHACHA20_ONLY if case.chacha20 else None,
            loss=LOSS if case.loss else 0.0,
        )
        server = await Ngtcp2Server(env.www, env.cert_file, env.key_file, options).start()
    try:
        async with WireTap(
            ("127.0.0.1", server.port),
            cid_length=server.cid_length,
            rebind_after=MIB if case.move == "rebind" and direction.client == RUDP else None,
        ) as tap:
            try:
                if direction.client == RUDP:
                    reports, bodies = await _rudp_client(case, tap.port, env)
                else:
                    bodies = await _gtlsclient(case, tap.port, env, work)
                    reports = []
            finally:
                result.wire = tap.summary()
            reports += server.reports()
    finally:
        await server.close()
    result.clients = [asdict(r) for r in reports if r.role == "client"]
    result.servers = [asdict(r) for r in reports if r.role == "server"]
    problems = []
    for path in case.paths[: len(case.paths)]:
        want = env.digests[path]
        if case.upload:
            want = _upload_answer(direction, path, env)
        got = bodies.get(path)
        if got != want:
            problems.append(f"{path}: got {got}, want {want}")
    uploads = server.app.uploads if isinstance(server, RudpH3Server) else None
    if case.upload and uploads is not None and uploads != [env.digests[UPLOAD]]:
        problems.append(f"the server received {uploads}, want {env.digests[UPLOAD]}")
    return problems + _checks(case, reports, tap)


def _upload_answer(direction: Direction, path: str, env: Ngtcp2Environment) -> Digest:
    """What the answer to the upload must be: rudp answers the body's SHA-256, gtlsserver the file."""
    if direction.server == RUDP:
        text = env.digests[UPLOAD].sha256.encode()
        return Digest(len(text), hashlib.sha256(text).hexdigest())
    return env.digests[path]


def applies(case: Ngtcp2Case, direction: Direction) -> bool:
    """Whether ``case`` runs in ``direction``."""
    return direction.label not in case.not_applicable


async def run_ngtcp2_case(
    case: Ngtcp2Case, direction: Direction, env: Ngtcp2Environment, timeout: float = 40.0
) -> CaseResult:
    """Run one cell within ``timeout``; never raises."""
    result = CaseResult(case.name, direction.label, ok=False, seconds=0.0, problems=[])
    started = time.perf_counter()
    try:
        problems = await asyncio.wait_for(_exercise(case, direction, env, result), timeout)
    except TimeoutError:
        problems = [f"timed out after {timeout:g} s"]
    except Exception as exc:
        problems = [f"{type(exc).__name__}: {exc}"]
    result.seconds = time.perf_counter() - started
    result.problems = problems
    result.ok = not problems
    return result


__all__ = [
    "NGTCP2_CASES",
    "NGTCP2_CASES_BY_NAME",
    "NGTCP2_DIRECTIONS",
    "Ngtcp2Case",
    "Ngtcp2Environment",
    "applies",
    "prepare_ngtcp2",
    "run_ngtcp2_case",
]
