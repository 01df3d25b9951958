"""The ``rudp`` command line: ``demo``, ``serve``, ``get``, ``cert``, ``selfcheck`` and ``version``.

Owns argument parsing, turning options into a :class:`~rudp.config.Config`, the file server and
downloader commands (HTTP/3 in :mod:`rudp.h3`, the default, and hq-interop in :mod:`rudp.aio.hq`, the
ALPN choosing) and their progress output (plain text, or
``rich`` when installed and stderr is a terminal). The demo itself lives in :mod:`rudp.demo`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rudp._version import __version__
from rudp.config import Config
from rudp.errors import ConfigError, RudpError, StreamReset

PROGRESS_INTERVAL = 0.5
"""Seconds between plain-text progress lines."""


def _cmd_version(_: argparse.Namespace) -> int:
    print(f"rudp {__version__}")
    return 0


def _cmd_selfcheck(_: argparse.Namespace) -> int:
    from rudp.selfcheck import run_selfcheck

    return run_selfcheck(print)


def _cmd_demo(args: argparse.Namespace) -> int:
    from rudp.demo import run_demo

    return asyncio.run(run_demo(file_mb=args.size_mb, requests=args.requests, out=print))


# ---------------------------------------------------------------------------------------- config


def _common_config(args: argparse.Namespace, alpn: list[str], **fields: Any) -> Config:
    """A Config from the options shared by ``serve`` and ``get``, offering the ``alpn`` protocols.

    Raises:
        ConfigError: unknown congestion controller or other invalid values.
    """
    from rudp.quic.congestion import resolve_congestion_controller

    resolve_congestion_controller(args.cc)  # fail early, with the registry's message
    return Config(  # SSLKEYLOGFILE is honoured by Config itself when --keylog is not given
        alpn=alpn,
        congestion=args.cc,
        qlog_dir=args.qlog_dir,
        secrets_log=args.keylog or None,
        enable_0rtt=args.zero_rtt,
        **fields,
    )


def _add_common(parser: argparse.ArgumentParser, transports: list[str]) -> None:
    from rudp.quic.congestion import registered_congestion_controllers

    parser.add_argument(
        "--transport",
        choices=transports,
        default="quic",
        help="QUIC or the TCP+TLS baseline (default: %(default)s)",
    )
    parser.add_argument(
        "--cc",
        default="newreno",
        choices=registered_congestion_controllers(),
        help="congestion controller (default: %(default)s)",
    )
    parser.add_argument("--qlog-dir", metavar="DIR", help="write a qlog file per connection here")
    parser.add_argument("--keylog", metavar="FILE", help="append TLS secrets (SSLKEYLOGFILE format)")
    parser.add_argument("--0rtt", dest="zero_rtt", action="store_true", help="send/accept 0-RTT data")


# ---------------------------------------------------------------------------------------- serve


def _file_handler(www: Path) -> Callable[[Any], Any]:
    """A connection handler serving ``www`` over HTTP/3 or hq-interop, as the client's ALPN chose."""
    from rudp.aio.hq import FileServer
    from rudp.h3 import H3_ALPN, ASGIHandler
    from rudp.h3.files import StaticFiles

    hq, h3 = FileServer(www), ASGIHandler(StaticFiles(www))

    async def handler(conn: Any) -> None:
        await (h3 if conn.alpn_protocol == H3_ALPN else hq)(conn)

    return handler


async def _serve(args: argparse.Namespace) -> int:
    import rudp
    from rudp.aio.hq import HQ_ALPN
    from rudp.h3 import H3_ALPN

    www = Path(args.www)
    if not www.is_dir():
        print(f"rudp serve: {www} is not a directory", file=sys.stderr)
        return 2
    cert, key = args.cert, args.key
    if (cert is None) != (key is None):
        print("rudp serve: give both --cert and --key, or neither", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="rudp-serve-") as tmp:
        if cert is None:
            from rudp.testing.certs import make_test_pki

            pki = make_test_pki(Path(tmp))
            cert, key = pki.cert_file, pki.key_file
            print(f"using a throwaway certificate; clients need --ca {pki.ca_file} or --insecure", flush=True)
        config = _common_config(
            args,
            [H3_ALPN, HQ_ALPN],
            certfile=cert,
            keyfile=key,
            retry=args.retry,
            preferred_address=args.preferred_address,
            disable_active_migration=args.disable_active_migration,
        )
        transport = args.transport
        handler = _file_handler(www)
        server = await rudp.serve(args.host, args.port, handler, config=config, transport=transport)
        print(f"serving {www} over {transport} on {args.host or '*'} port {server.port}", flush=True)
        received = _close_on_signals(asyncio.get_running_loop(), server.close)
        async with server:
            await server.serve_forever()
    # Stopped by a signal: exit as a shell reports it (130 for Ctrl-C, 143 for SIGTERM), like `get`.
    return 128 + received[0] if received else 0


def _close_on_signals(loop: asyncio.AbstractEventLoop, close: Callable[[], object]) -> list[int]:
    """Ctrl-C / SIGTERM close the server gracefully (Unix main thread only; elsewhere the default
    KeyboardInterrupt handling applies). Returns the list the received signal numbers go to."""
    received: list[int] = []
    if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        return received

    def on_signal(signum: int) -> None:
        received.append(signum)
        close()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, int(sig))
    return received


# ---------------------------------------------------------------------------------------- get


class Progress:
    """Download progress on stderr: ``rich`` bars on a terminal when available, else plain lines."""

    def __init__(self, quiet: bool) -> None:
        self._quiet = quiet
        self._rich: Any = None
        self._tasks: dict[str, Any] = {}
        self._last: dict[str, float] = {}
        if not quiet and sys.stderr.isatty():
            try:  # the optional ``rich`` extra
                progress = importlib.import_module("rich.progress")
            except ImportError:
                pass
            else:
                self._rich = progress.Progress(
                    *progress.Progress.get_default_columns()[:1],
                    progress.DownloadColumn(),
                    progress.TransferSpeedColumn(),
                )

    def __enter__(self) -> Progress:
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._rich is not None:
            self._rich.stop()

    def callback(self, name: str) -> Callable[[int], None]:
        """A per-download callback taking the running byte count."""
        started = time.monotonic()
        if self._rich is not None:
            self._tasks[name] = self._rich.add_task(name, total=None)

        def update(done: int) -> None:
            if self._quiet:
                return
            if self._rich is not None:
                self._rich.update(self._tasks[name], completed=done)
                return
            now = time.monotonic()
            if now - self._last.get(name, started) >= PROGRESS_INTERVAL:
                self._last[name] = now
                rate = done / max(now - started, 1e-6) / 1e6
                print(f"  {name}: {done / 1e6:.1f} MB ({rate:.1f} MB/s)", file=sys.stderr, flush=True)

        return update

    def done(self, name: str, size: int, seconds: float) -> None:
        """Report a finished download (its bar, if any, goes: a summary line replaces it)."""
        if self._rich is not None and name in self._tasks:
            self._rich.remove_task(self._tasks.pop(name))
        if not self._quiet:
            rate = size / max(seconds, 1e-6) / 1e6
            self.message(f"GET {name}: {size} bytes in {seconds:.2f} s ({rate:.1f} MB/s)")

    def failed(self, name: str, message: str) -> None:
        """Report a failed download (always shown, even with --quiet)."""
        if self._rich is not None and name in self._tasks:
            self._rich.remove_task(self._tasks.pop(name))
        self.message(f"GET {name}: {message}", always=True)

    def message(self, text: str, *, always: bool = False) -> None:
        """A line on stderr, printed above the live bars (never between or below them)."""
        if self._quiet and not always:
            return
        if self._rich is not None:
            self._rich.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=sys.stderr, flush=True)


class _PartialDownload:
    """A download written under a temporary name beside its target, renamed only once complete: a
    404, a failure or Ctrl-C leaves no partial file behind."""

    def __init__(self, target: Path) -> None:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        self._file = os.fdopen(fd, "wb")
        self._temp = Path(name)
        self.target = target

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def commit(self) -> None:
        self._file.close()
        os.replace(self._temp, self.target)

    def discard(self) -> None:
        self._file.close()
        self._temp.unlink(missing_ok=True)


def _output_name(path: str) -> str:
    name = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return name or "index.html"


async def _get_from(
    host: str, port: int, paths: list[str], args: argparse.Namespace, config: Config, progress: Progress
) -> dict[str, bytes | None]:
    """Fetch ``paths`` concurrently over one connection; bodies (None on failure) by path."""
    import rudp
    from rudp.aio.hq import fetch
    from rudp.h3 import H3_ALPN, H3Client, H3Error
    from rudp.h3.client import start_client
    from rudp.h3.files import fetch as fetch_h3

    results: dict[str, bytes | None] = {}
    output = Path(args.output) if args.output else None
    client: H3Client | None = None

    async def one(conn: rudp.Connection, path: str) -> None:
        started = time.monotonic()
        body = bytearray()
        part = None if output is None else _PartialDownload(output / _output_name(path))
        sink: Callable[[bytes], object] = body.extend if part is None else part.write
        complete = False
        try:
            if client is None:
                size = await fetch(conn, path, sink, progress=progress.callback(path))
            else:
                status, size = await fetch_h3(client, path, sink, progress=progress.callback(path))
                if not 200 <= status < 300:
                    progress.failed(path, f"the server answered {status}")
                    results[path] = None
                    return
            complete = True
        except (StreamReset, H3Error) as exc:
            progress.failed(path, f"refused by the server (code {exc.code:#x})")
            results[path] = None
            return
        finally:
            if part is not None and complete:
                part.commit()
            elif part is not None:
                part.discard()
        progress.done(path, size, time.monotonic() - started)
        results[path] = bytes(body)

    async with rudp.connect(host, port, config=config, transport=args.transport) as conn:
        if H3_ALPN in config.alpn:  # not conn.alpn_protocol: unknown yet when 0-RTT returns early
            client = await start_client(conn, host, port)
        await asyncio.gather(*(one(conn, path) for path in paths))
        if args.session_file:
            await conn.ping()  # session tickets arrive after the handshake: give them a round trip
        if not args.quiet:
            details = [conn.alpn_protocol or "no ALPN"]
            if conn.session_resumed:
                details.append("resumed")
            if conn.zero_rtt_accepted:
                details.append("0-RTT accepted")
            progress.message(f"{args.transport} {host} port {port}: {', '.join(details)}")
    return results


async def _get(args: argparse.Namespace) -> int:
    import rudp
    from rudp.aio.hq import parse_url

    targets: dict[tuple[str, int], list[str]] = {}
    try:
        for url in args.urls:
            host, port, path = parse_url(url)
            targets.setdefault((host, port), []).append(path)
    except ValueError as exc:
        print(f"rudp get: {exc}", file=sys.stderr)
        return 2
    tickets = rudp.TicketStore()
    if args.session_file and Path(args.session_file).exists():
        tickets.load(args.session_file)
    if args.output:
        Path(args.output).mkdir(parents=True, exist_ok=True)
    failed = False
    with Progress(args.quiet) as progress:
        for (host, port), paths in targets.items():
            config = _common_config(
                args,
                [args.alpn],
                cafile=args.ca,
                verify=not args.insecure,
                server_name=args.server_name,
                session_ticket_store=tickets,
            )
            results = await _get_from(host, port, paths, args, config, progress)
            failed |= any(body is None for body in results.values())
            if not args.output:
                for path in paths:
                    sys.stdout.buffer.write(results.get(path) or b"")
                sys.stdout.flush()
    if args.session_file:
        tickets.save(args.session_file)
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------- cert


def _cmd_cert(args: argparse.Namespace) -> int:
    from rudp.testing.certs import DEV_NAMES, make_dev_certificates

    try:
        made = make_dev_certificates(args.dir, tuple(args.names) or DEV_NAMES, days=args.days)
    except (ConfigError, OSError) as exc:
        print(f"rudp cert: {exc}", file=sys.stderr)
        return 2

    def arg(path: Path) -> str:
        return shlex.quote(str(path))

    if made.ca_created:
        print(f"created a development CA: {made.ca_file}")
    else:
        print(f"reusing the development CA {made.ca_file}")
    print(f"keep {made.ca_key_file} private (mode 0600): whoever has it can make certificates you trust")
    until = made.not_valid_after.strftime("%Y-%m-%d")
    print(f"wrote {made.cert_file} and {made.key_file} for {', '.join(made.names)} (valid until {until})")
    host = made.names[0] if ":" not in made.names[0] else f"[{made.names[0]}]"
    print("\nserve (QUIC and TCP):")
    print(f"  rudp serve --www . --transport both --cert {arg(made.cert_file)} --key {arg(made.key_file)}")
    print("fetch (add --transport tcp for TCP):")
    print(f"  rudp get --ca {arg(made.ca_file)} https://{host}:4433/index.html")
    return 0


# ---------------------------------------------------------------------------------------- main


def _run(coro_fn: Callable[[argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            result: int = asyncio.run(coro_fn(args))
        except KeyboardInterrupt:
            return 130
        except (RudpError, OSError) as exc:
            print(f"rudp {args.command}: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, ConfigError) else 1
        return result

    return run


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``rudp`` command."""
    parser = argparse.ArgumentParser(prog="rudp", description="rudp: QUIC for asyncio")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("version", help="print the version").set_defaults(func=_cmd_version)
    sub.add_parser(
        "selfcheck", help="check the codec and packet protection against the RFC test vectors"
    ).set_defaults(func=_cmd_selfcheck)

    demo = sub.add_parser("demo", help="local QUIC vs TCP+TLS comparison (self-signed, no arguments needed)")
    demo.add_argument("--size-mb", type=float, default=4.0, help="size of the largest file (MB)")
    demo.add_argument("--requests", type=int, default=200, help="number of small requests")
    demo.set_defaults(func=_cmd_demo)

    serve = sub.add_parser("serve", help="serve a directory over HTTP/3 and hq-interop (ALPN chooses)")
    serve.add_argument("--www", required=True, metavar="DIR", help="directory to serve")
    serve.add_argument("--host", default="::", help="address to listen on (default: all, dual-stack)")
    serve.add_argument(
        "--port", type=int, default=4433, help="port, 0 picks a free one (default: %(default)s)"
    )
    serve.add_argument("--cert", metavar="PEM", help="certificate chain (default: throwaway self-signed)")
    serve.add_argument("--key", metavar="PEM", help="private key")
    serve.add_argument("--retry", action="store_true", help="validate client addresses with Retry")
    serve.add_argument(
        "--preferred-address",
        action="append",
        metavar="HOST:PORT",
        help="ask clients to move here after the handshake, and listen here too (RFC 9000 §9.6);"
        " one IPv4 and one [IPv6]:PORT at most",
    )
    serve.add_argument(
        "--disable-active-migration",
        action="store_true",
        help="tell clients not to migrate (NAT rebinding is still followed)",
    )
    _add_common(serve, ["quic", "tcp", "both"])
    serve.set_defaults(func=_run(_serve))

    get = sub.add_parser("get", help="download URLs over HTTP/3 (or hq-interop)")
    get.add_argument("urls", nargs="+", metavar="URL", help="https://host:port/path")
    get.add_argument(
        "--alpn",
        choices=["h3", "hq-interop"],
        default="h3",
        help="application protocol: HTTP/3 or hq-interop (HTTP/0.9) (default: %(default)s)",
    )
    get.add_argument("--output", "-o", metavar="DIR", help="save files here (default: stdout)")
    trust = get.add_mutually_exclusive_group()
    trust.add_argument(
        "--ca",
        metavar="PEM",
        help="CA file to verify the server with (ca.pem of `rudp cert`, or a self-signed certificate "
        "itself; default: the system CAs)",
    )
    trust.add_argument(
        "--insecure", "-k", action="store_true", help="do not verify the certificate (tests only)"
    )
    get.add_argument("--server-name", help="TLS server name (default: the URL's host)")
    get.add_argument("--session-file", metavar="FILE", help="load/save session tickets (resumption)")
    get.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    _add_common(get, ["quic", "tcp"])
    get.set_defaults(func=_run(_get))

    cert = sub.add_parser(
        "cert", help="make a development CA and a server certificate for localhost (like mkcert)"
    )
    cert.add_argument("dir", metavar="DIR", help="where to write ca.pem, ca-key.pem, cert.pem, key.pem")
    cert.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="DNS names and IP addresses (default: localhost 127.0.0.1 ::1)",
    )
    cert.add_argument("--days", type=int, default=825, help="validity of the server certificate")
    cert.set_defaults(func=_cmd_cert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rudp`` console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        args = parser.parse_args(["selfcheck"])
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
