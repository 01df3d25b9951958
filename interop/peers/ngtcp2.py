"""ngtcp2 (C, GnuTLS, HTTP/3 via nghttp3) as an interop peer: Debian's ``gtlsserver`` and ``gtlsclient``.

Owns :class:`Ngtcp2Server` (a ``gtlsserver`` process serving a directory, with the ServerPeer surface:
``port``, ``cid_length``, ``reports()``, ``close()``) and :func:`run_gtlsclient` (one ``gtlsclient``
process: URIs, downloads, and its options for session resumption, 0-RTT, key update, address change,
cipher suites and simulated loss). ngtcp2 prints no machine-readable report, so ``reports()`` is empty:
the rudp end's report and the wire tap are the witnesses. :func:`availability` says why the binaries
cannot run here (None when they can).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from interop.peers.base import EndpointReport

GTLSSERVER: Final = "gtlsserver"
GTLSCLIENT: Final = "gtlsclient"
CID_LENGTH: Final = 18
"""ngtcp2's examples issue 18-byte connection IDs (NGTCP2_SV_SCIDLEN)."""
CHACHA20_ONLY: Final = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305"
"""A GnuTLS priority string allowing TLS 1.3 with TLS_CHACHA20_POLY1305_SHA256 only."""
PROCESS_TIMEOUT: Final = 30.0


def binary(name: str) -> str | None:
    """Where ``name`` is: on PATH, or in /usr/sbin (Debian puts gtlsserver there, outside a user's PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")


def availability() -> str | None:
    """Why gtlsserver/gtlsclient cannot run here, or None when both are found (see :func:`binary`)."""
    missing = [name for name in (GTLSSERVER, GTLSCLIENT) if binary(name) is None]
    if missing:
        return f"{' and '.join(missing)} not found (apt-get install ngtcp2-client ngtcp2-server)"
    return None


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _udp_bound(port: int) -> bool:
    """Whether some socket is bound to UDP ``port`` on this host (read from /proc/net/udp)."""
    needle = f":{port:04X} "
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            if needle in line.split(None, 3)[1] + " ":
                return True
    return False


@dataclass(frozen=True)
class Ngtcp2ServerOptions:
    """How gtlsserver is started."""

    retry: bool = False
    """``-V``: validate addresses with a Retry."""
    ciphers: str | None = None
    """``--ciphers``: a GnuTLS priority string."""
    loss: float = 0.0
    """``-t``/``-r``: probability of dropping each outgoing and each incoming packet."""


class Ngtcp2Server:
    """A gtlsserver process serving ``root`` on 127.0.0.1; see :meth:`start`."""

    def __init__(self, root: Path, certfile: Path, keyfile: Path, options: Ngtcp2ServerOptions) -> None:
        self.root = root
        self.certfile = certfile
        self.keyfile = keyfile
        self.options = options
        self.process: asyncio.subprocess.Process | None = None
        self._port = 0
        self.output = b""

    async def start(self) -> Ngtcp2Server:
        """Start the process and wait until its socket is bound.

        Raises:
            RuntimeError: it exited or did not bind within 5 s.
        """
        self._port = _free_udp_port()
        args = ["-q", "-d", str(self.root), "--timeout=10s"]
        if self.options.retry:
            args.append("-V")
        if self.options.ciphers:
            args.append(f"--ciphers={self.options.ciphers}")
        if self.options.loss:
            args += [f"-t{self.options.loss}", f"-r{self.options.loss}"]
        self.process = await asyncio.create_subprocess_exec(
            binary(GTLSSERVER) or GTLSSERVER,
            *args,
            "127.0.0.1",
            str(self._port),
            str(self.keyfile),
            str(self.certfile),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while not _udp_bound(self._port):
            if self.process.returncode is not None or loop.time() > deadline:
                await self.close()
                raise RuntimeError(f"gtlsserver did not start: {self.output.decode(errors='replace')}")
            await asyncio.sleep(0.01)  # polling the socket table: gtlsserver says nothing when ready
        return self

    @property
    def port(self) -> int:
        """The UDP port listened on."""
        return self._port

    @property
    def cid_length(self) -> int:
        """The length of the connection IDs it issues."""
        return CID_LENGTH

    def reports(self) -> list[EndpointReport]:
        """Nothing: gtlsserver tells nothing machine-readable about its connections."""
        return []

    async def close(self) -> None:
        """Stop the process."""
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.terminate()
        _out, err = await self.process.communicate()
        self.output = err or b""
        self.process = None


@dataclass
class GtlsClientRun:
    """What one gtlsclient invocation did."""

    returncode: int
    stderr: str
    args: list[str] = field(default_factory=list)


async def run_gtlsclient(
    port: int,
    uris: list[str],
    downloads: Path,
    *,
    extra: list[str] = (),  # type: ignore[assignment]
    timeout: float = PROCESS_TIMEOUT,
) -> GtlsClientRun:
    """Run gtlsclient against 127.0.0.1:``port`` fetching ``uris`` into ``downloads``.

    ``extra`` are further options (``--session-file``, ``--key-update``, ``-m POST -d FILE``...).
    gtlsclient does not verify the server's certificate.
    """
    downloads.mkdir(parents=True, exist_ok=True)
    args = [
        "-q",
        "--exit-on-all-streams-close",
        f"--download={downloads}",
        "--timeout=10s",
        *extra,
        "127.0.0.1",
        str(port),
        *(f"https://localhost:{port}{path}" for path in uris),
    ]
    process = await asyncio.create_subprocess_exec(
        binary(GTLSCLIENT) or GTLSCLIENT,
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return GtlsClientRun(-1, f"gtlsclient timed out after {timeout:g} s", args)
    return GtlsClientRun(process.returncode or 0, (err or b"").decode(errors="replace"), args)


__all__ = [
    "CHACHA20_ONLY",
    "CID_LENGTH",
    "GtlsClientRun",
    "Ngtcp2Server",
    "Ngtcp2ServerOptions",
    "availability",
    "binary",
    "run_gtlsclient",
]
