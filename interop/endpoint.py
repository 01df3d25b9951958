"""rudp as a QUIC Interop Runner endpoint (called by ``interop/run_endpoint.sh``).

Follows the runner's conventions (https://github.com/quic-interop/quic-interop-runner): ``ROLE``
(client|server), ``TESTCASE``, ``REQUESTS`` (space-separated URLs), ``SSLKEYLOGFILE``, ``QLOGDIR``; files
served from ``WWW`` (default /www), downloads to ``DOWNLOADS`` (/downloads), certificate and key
``CERTS``/cert.pem and ``CERTS``/priv.key (/certs); the server listens on ``HOST``:``PORT`` (default
``::`` and 443; port 0 picks a free one, printed as ``listening on port N``). Exit status 0 on success,
1 on failure, 127 for a case rudp does not support (see :data:`UNSUPPORTED`).

Beyond the runner: ``RUDP_ENDPOINT_REPORT`` names a JSON file where the client writes what each of its
connections negotiated (the tests read it). The client also fails (exit 1) when the case's feature did
not happen by its own account: a resumption not resumed, 0-RTT not accepted, another cipher suite, no
key update, no migration, not h3, ECN not validated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import rudp
from rudp.aio.hq import HQ_ALPN, FileServer, parse_url
from rudp.aio.hq import fetch as fetch_hq
from rudp.codec.codes import Version
from rudp.crypto.suites import CipherSuite
from rudp.h3 import H3_ALPN, ASGIHandler, H3Client
from rudp.h3.client import start_client
from rudp.h3.files import StaticFiles
from rudp.h3.files import fetch as fetch_h3
from rudp.quic.preferred import MigrationState
from rudp.tls.tickets import SessionTicket

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_UNSUPPORTED: Final = 127

PLAIN: Final = frozenset(
    {
        "handshake",
        "transfer",
        "retry",
        "keyupdate",
        "chacha20",
        "rebind-port",
        "rebind-addr",
        "transferloss",
        "blackhole",
        "transfercorruption",
        "amplificationlimit",
        "ipv6",
        "goodput",
        "crosstraffic",
        "http3",
        "connectionmigration",
        "ecn",
        "v2",
    }
)
"""Cases whose client fetches every URL over one connection (with the case's twist, if any)."""
ONE_CONNECTION_PER_REQUEST: Final = frozenset({"multiconnect", "handshakeloss", "handshakecorruption"})
"""The runner's cases that want a new connection (a new handshake) for every URL."""
TWO_CONNECTIONS: Final = frozenset({"resumption", "zerortt"})
"""First URL on one connection, the rest on a second one resuming the session (with 0-RTT for zerortt)."""
SUPPORTED: Final = PLAIN | ONE_CONNECTION_PER_REQUEST | TWO_CONNECTIONS
UNSUPPORTED: Final[dict[str, str]] = {}
"""Runner cases answered with 127, and why (repeated in interop/README.md): none since rudp does
compatible version negotiation (``v2``)."""
PREFER_V2: Final = (Version.V2, Version.V1)
"""``Config.versions`` of both roles in the runner's ``v2`` case: the client starts in v1 and offers v2
first (RFC 9368 §3: some servers follow the client's order), the server switches to v2 (RFC 9369 §4)."""

TICKET_TIMEOUT: Final = 5.0
CLIENT_HANDSHAKE_TIMEOUT: Final = 60.0
"""The client's ``Config.handshake_timeout``: the runner bounds each test as a whole (60 s, 300 s for
handshakeloss and handshakecorruption), not each handshake, and 50 handshakes make a case. Kept after
the client's deadline came to follow the server's progress, on a measurement in virtual time: 10,000
seeded handshakes at 30 % loss each way (``benchmarks/handshake_deadline.py``) against a server that
does not coalesce its PTO probes and backs off without a cap, as another stack may (rudp's server of
a2b3345 with a 1000 s handshake_timeout). The default 10 s gives up on 19 (17 would have completed);
20 s on 3, 3 more incomplete at 90 s; 60 s on none, 8 incomplete at 90 s, p99 16 s (the timeout also
spaces the client's probes before confirmation, ``HANDSHAKE_PROBES``). Against rudp's server, whose
probes are coalesced (RFC 9002 §6.2.4), 10 s gives up on none of 10,000."""


@dataclass
class ConnectionReport:
    """What one client connection negotiated (written to ``RUDP_ENDPOINT_REPORT``)."""

    alpn: str | None
    version: int | None
    cipher_suite: str | None
    session_resumed: bool
    zero_rtt_accepted: bool
    key_updates: int
    path_changes: int
    paths: list[str]
    ecn_state: str


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class EndpointSettings:
    """Where the endpoint reads and writes, from the runner's variables (``SSLKEYLOGFILE`` is read by
    :class:`rudp.Config` itself)."""

    www: Path
    downloads: Path
    certs: Path
    host: str
    port: int
    qlog_dir: str | None


def endpoint_settings() -> EndpointSettings:
    """The runner's defaults (/www, /downloads, /certs, ``::`` port 443), each overridden by its
    variable (``WWW``, ``DOWNLOADS``, ``CERTS``, ``HOST``, ``PORT``); ``QLOGDIR`` unset: no qlog."""
    return EndpointSettings(
        www=Path(_env("WWW", "/www")),
        downloads=Path(_env("DOWNLOADS", "/downloads")),
        certs=Path(_env("CERTS", "/certs")),
        host=_env("HOST", "::"),
        port=int(_env("PORT", "443")),
        qlog_dir=os.environ.get("QLOGDIR") or None,
    )


def _qlog_dir() -> str | None:
    qlog = endpoint_settings().qlog_dir
    if qlog:
        Path(qlog).mkdir(parents=True, exist_ok=True)
    return qlog


# ------------------------------------------------------------------------------------------- server


def _file_handler(www: Path) -> Callable[[rudp.Connection], Any]:
    hq, h3 = FileServer(www), ASGIHandler(StaticFiles(www))

    async def handle(conn: rudp.Connection) -> None:
        await (h3 if conn.alpn_protocol == H3_ALPN else hq)(conn)

    return handle


async def run_server(testcase: str) -> int:
    """Serve ``WWW`` over HTTP/3 and hq-interop (ALPN chooses) until SIGTERM/SIGINT."""
    settings = endpoint_settings()
    certs, www, host, port = settings.certs, settings.www, settings.host, settings.port
    config = rudp.Config(
        alpn=[H3_ALPN, HQ_ALPN],
        certfile=certs / "cert.pem",
        keyfile=certs / "priv.key",
        retry=testcase == "retry",
        versions=PREFER_V2 if testcase == "v2" else None,
        enable_0rtt=True,
        qlog_dir=_qlog_dir(),
        preferred_address=_preferred_addresses(host, port) if testcase == "connectionmigration" else None,
    )
    server = await rudp.serve(host, port, _file_handler(www), config=config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening on port {server.port}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()
    return EXIT_OK


# -- connectionmigration: the server's preferred address (RFC 9000 §9.6; issue 12) ------------------


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _own_addresses(host: str) -> list[str]:
    """The addresses to advertise when ``host`` is a wildcard: this host's own (the runner's server
    container resolves its name to 193.167.100.100 and fd00:cafe:cafe:100::100)."""
    if host not in ("::", "0.0.0.0", ""):
        return [host]
    found: list[str] = []
    families = set()
    with contextlib.suppress(OSError):
        infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_DGRAM)
        for family, _t, _p, _c, sockaddr in infos:
            address = str(sockaddr[0])
            if family not in families and not address.startswith("fe80") and address != "::1":
                families.add(family)
                found.append(address)
    return found or ["127.0.0.1"]


def _preferred_addresses(host: str, port: int) -> list[str]:
    """Where the connectionmigration server asks clients to move: ``PREFERRED_ADDRESS`` (space-separated
    ``host``, ``host:port`` or ``[v6]:port``), else this host's addresses; a missing port is ``PORT``+1
    (a free one when ``PORT`` is 0)."""
    specs = os.environ.get("PREFERRED_ADDRESS", "").split() or _own_addresses(host)
    result = []
    for spec in specs:
        if spec.startswith("[") or spec.count(":") == 1:
            result.append(spec)
            continue
        number = port + 1 if port else _free_port(spec)
        result.append(f"[{spec}]:{number}" if ":" in spec else f"{spec}:{number}")
    return result


async def _follow_preferred(conn: rudp.Connection) -> None:
    """Wait (in round trips) until the client moved to the server's preferred address, or found it does
    not answer: rudp's client moves by itself once the handshake is confirmed (RFC 9000 §9.6.1)."""
    await conn.wait_established()
    migration = conn._driver.core.migration  # type: ignore[attr-defined]
    for _attempt in range(50):
        if migration.state in (MigrationState.MIGRATED, MigrationState.FAILED, MigrationState.DECLINED):
            return
        await conn.ping()
    raise RuntimeError(f"no move to a preferred address ({migration.state.value})")


# ------------------------------------------------------------------------------------------- client


class _Tickets(rudp.TicketStore):
    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def add(self, ticket: SessionTicket) -> None:
        super().add(ticket)
        self.arrived.set()


def _groups(testcase: str, urls: list[str]) -> list[list[str]]:
    if testcase in ONE_CONNECTION_PER_REQUEST:
        return [[url] for url in urls]
    if testcase in TWO_CONNECTIONS:
        return [urls[:1], urls[1:]] if len(urls) > 1 else [urls[:1], urls[:1]]
    return [urls]


def _client_config(testcase: str, index: int, tickets: _Tickets) -> rudp.Config:
    return rudp.Config(
        alpn=[H3_ALPN if testcase == "http3" else HQ_ALPN],
        verify=False,  # the runner's certificates are self-signed for names the client cannot check
        version=Version.V1,
        versions=PREFER_V2 if testcase == "v2" else None,
        cipher_suites=[CipherSuite.CHACHA20_POLY1305_SHA256] if testcase == "chacha20" else None,
        session_ticket_store=tickets,
        enable_0rtt=testcase == "zerortt" and index > 0,
        qlog_dir=_qlog_dir(),
        handshake_timeout=CLIENT_HANDSHAKE_TIMEOUT,
    )


class _Download:
    """A file under DOWNLOADS written under a temporary name and renamed once complete."""

    def __init__(self, directory: Path, path: str) -> None:
        name = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "index.html"
        self.target = directory / name
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
        self.file = os.fdopen(fd, "wb")
        self.temp = Path(temp)

    def finish(self, ok: bool) -> None:
        self.file.close()
        if ok:
            os.replace(self.temp, self.target)
        else:
            self.temp.unlink(missing_ok=True)


async def _fetch(
    conn: rudp.Connection, h3: H3Client | None, path: str, downloads: Path, key_update: bool
) -> None:
    download = _Download(downloads, path)
    ok = False

    def sink(chunk: bytes) -> None:
        download.file.write(chunk)
        if key_update and chunk and not conn.stats.key_updates:
            conn.request_key_update()  # False until the handshake is confirmed: the next chunk retries

    try:
        if h3 is None:
            await fetch_hq(conn, path, sink)
        else:
            status, _size = await fetch_h3(h3, path, sink)
            if not 200 <= status < 300:
                raise RuntimeError(f"{path}: HTTP status {status}")
        ok = True
    finally:
        download.finish(ok)


def _problems(testcase: str, index: int, report: ConnectionReport) -> list[str]:
    """Whether the case's feature happened, by the client's own account."""
    wants = {
        "resumption": (index > 0 and not report.session_resumed, "the session was not resumed"),
        "zerortt": (index > 0 and not report.zero_rtt_accepted, "0-RTT was not accepted"),
        "chacha20": (report.cipher_suite != "TLS_CHACHA20_POLY1305_SHA256", f"suite {report.cipher_suite}"),
        "keyupdate": (report.key_updates < 1, "no key update"),
        "connectionmigration": (report.path_changes < 1, "the client did not migrate"),
        "http3": (report.alpn != H3_ALPN, f"ALPN {report.alpn!r}"),
        "ecn": (report.ecn_state != "capable", f"ECN state {report.ecn_state} (the peer's ACK_ECN?)"),
        "v2": (report.version != Version.V2, f"version {report.version or 0:#x}: the server did not switch"),
    }
    failed, message = wants.get(testcase, (False, ""))
    return [f"connection {index}: {message}"] if failed else []


async def run_client(testcase: str) -> int:
    """Fetch ``REQUESTS`` into ``DOWNLOADS`` as ``testcase`` wants; 0 when every file arrived."""
    urls = _env("REQUESTS", "").split()
    if not urls:
        print("endpoint: REQUESTS is empty", file=sys.stderr)
        return EXIT_FAILED
    downloads = endpoint_settings().downloads
    downloads.mkdir(parents=True, exist_ok=True)
    tickets = _Tickets()
    reports: list[ConnectionReport] = []
    problems: list[str] = []
    groups = _groups(testcase, urls)
    for index, group in enumerate(groups):
        targets = [parse_url(url) for url in group]
        host, port = targets[0][0], targets[0][1]
        config = _client_config(testcase, index, tickets)
        tickets.arrived.clear()
        async with rudp.connect(host, port, config=config) as conn:
            h3 = await start_client(conn, host, port) if testcase == "http3" else None
            if testcase == "connectionmigration":
                await _follow_preferred(conn)
            await asyncio.gather(
                *(_fetch(conn, h3, path, downloads, testcase == "keyupdate") for _h, _p, path in targets)
            )
            await conn.wait_established()
            if testcase in TWO_CONNECTIONS and index + 1 < len(groups):
                await asyncio.wait_for(tickets.arrived.wait(), TICKET_TIMEOUT)
            suite = conn.cipher_suite
            report = ConnectionReport(
                alpn=conn.alpn_protocol,
                version=conn.version,
                cipher_suite=None if suite is None else str(suite),
                session_resumed=conn.session_resumed,
                zero_rtt_accepted=conn.zero_rtt_accepted,
                key_updates=conn.stats.key_updates,
                path_changes=conn.stats.path_changes,
                paths=[path for _h, _p, path in targets],
                ecn_state=conn.stats.ecn_state,
            )
            reports.append(report)
            problems += _problems(testcase, index, report)
    report_file = os.environ.get("RUDP_ENDPOINT_REPORT")
    if report_file:
        Path(report_file).write_text(json.dumps([asdict(r) for r in reports], indent=1))
    for problem in problems:
        print(f"endpoint: {testcase}: {problem}", file=sys.stderr)
    return EXIT_FAILED if problems else EXIT_OK


def main() -> int:
    """Dispatch on ``ROLE`` and ``TESTCASE``; return the exit status."""
    role, testcase = os.environ.get("ROLE", ""), os.environ.get("TESTCASE", "")
    if testcase not in SUPPORTED:
        reason = UNSUPPORTED.get(testcase, "not a test case rudp knows")
        print(f"endpoint: test case {testcase!r} unsupported: {reason}", file=sys.stderr)
        return EXIT_UNSUPPORTED
    if role not in ("client", "server"):
        print(f"endpoint: ROLE must be client or server, not {role!r}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return asyncio.run(run_server(testcase) if role == "server" else run_client(testcase))
    except Exception as exc:  # any failure of the case is exit status 1, with the reason
        print(f"endpoint: {role} {testcase}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
