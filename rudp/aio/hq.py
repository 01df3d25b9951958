"""hq-interop (HTTP/0.9 over QUIC streams): a static file server handler and a client fetch.

Owns the tiny application protocol the interop runner calls ``hq-interop``: the client opens a
bidirectional stream, sends ``GET /path\\r\\n`` and finishes its side; the server answers with the file's
bytes, then FIN. A missing file or a bad request resets the stream with :data:`HQ_NOT_FOUND` or
:data:`HQ_BAD_REQUEST` (our convention; hq-interop defines no status). Used by ``rudp serve``/``rudp get``,
the demo and the examples; it works over both transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from rudp.aio.connection import Connection
from rudp.aio.stream import Stream
from rudp.errors import ConnectionClosed, StreamError

HQ_ALPN = "hq-interop"
"""The ALPN protocol name of hq-interop: set ``Config(alpn=[HQ_ALPN])`` on both ends (rudp's default
ALPN is "rudp/1", which other implementations' hq-interop peers refuse)."""
HQ_BAD_REQUEST = 0x190
"""Stream reset code for a request that is not ``GET /path``."""
HQ_NOT_FOUND = 0x194
"""Stream reset code for a path that is not a readable file under the server's root."""
CHUNK_BYTES = 64 * 1024
"""File bytes written per ``write()``/``drain()`` step."""
MAX_REQUEST_BYTES = 8192

_log = logging.getLogger("rudp.hq")


def parse_url(url: str) -> tuple[str, int, str]:
    """Split ``https://host:port/path`` into (host, port, path); the port defaults to 443.

    Raises:
        ValueError: not an https URL with a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "quic", "") or not parts.hostname:
        raise ValueError(f"not an https://host[:port]/path URL: {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname, parts.port or 443, path


class FileServer:
    """A connection handler serving the files under ``root`` (``rudp.serve(..., FileServer(root))``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.requests_served = 0

    async def __call__(self, conn: Connection) -> None:
        """Serve every stream of ``conn`` concurrently until the connection closes."""
        tasks: set[asyncio.Task[None]] = set()
        try:
            async for stream in conn:
                task = asyncio.create_task(self._serve_stream(stream))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()

    def resolve(self, request_path: str) -> Path | None:
        """The file a request path names, or None if it is missing or outside the root."""
        relative = unquote(request_path.split("?", 1)[0]).lstrip("/") or "index.html"
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    async def _serve_stream(self, stream: Stream) -> None:
        try:
            line = await stream.readuntil(b"\n", limit=MAX_REQUEST_BYTES)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, StreamError, ConnectionClosed):
            if stream.writable:
                stream.reset(HQ_BAD_REQUEST)
            return
        try:
            method, path = line.decode("ascii").strip().split(" ", 1)
        except (UnicodeDecodeError, ValueError):
            method, path = "", ""
        if method != "GET" or not path.startswith("/"):
            stream.reset(HQ_BAD_REQUEST)
            return
        target = self.resolve(path.strip())
        if target is None:
            stream.reset(HQ_NOT_FOUND)
            return
        try:
            with target.open("rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    stream.write(chunk)
                    await stream.drain()
            stream.write_eof()
            await stream.drain()
            self.requests_served += 1
        except (StreamError, ConnectionClosed) as exc:
            _log.debug("GET %s abandoned: %s", path, exc)
        except OSError as exc:  # unreadable (permissions, removed meanwhile): as if it were missing
            _log.warning("GET %s: cannot read %s: %s", path, target, exc)
            with contextlib.suppress(StreamError, ConnectionClosed):
                stream.reset(HQ_NOT_FOUND)


async def fetch(
    conn: Connection,
    path: str,
    sink: Callable[[bytes], object],
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Request ``path`` on a new stream, pass each chunk of the response to ``sink``; return its size.

    ``progress`` is called with the running byte count after each chunk.

    Raises:
        StreamReset: the server refused (code :data:`HQ_NOT_FOUND` or :data:`HQ_BAD_REQUEST`).
        ConnectionClosed: the connection closed first.
    """
    stream = await conn.open_stream()
    stream.write(f"GET {path}\r\n".encode())
    stream.write_eof()
    total = 0
    async for chunk in stream:
        sink(chunk)
        total += len(chunk)
        if progress is not None:
            progress(total)
    return total


__all__ = ["CHUNK_BYTES", "HQ_ALPN", "HQ_BAD_REQUEST", "HQ_NOT_FOUND", "FileServer", "fetch", "parse_url"]
