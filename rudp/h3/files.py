"""Static files over HTTP/3 for ``rudp serve`` and ``rudp get``: an ASGI app serving a directory
(the same path rules as hq-interop's :class:`~rudp.aio.hq.FileServer`) and a download helper."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from rudp.aio.hq import CHUNK_BYTES, FileServer
from rudp.h3.client import H3Client

_log = logging.getLogger("rudp.h3.files")


class StaticFiles:
    """An ASGI application answering GET and HEAD with the files under ``root`` (404 when missing or
    outside it, 405 for other methods); ``/`` is ``index.html``."""

    def __init__(self, root: str | Path) -> None:
        self._files = FileServer(root)
        self.root = self._files.root
        self.requests_served = 0

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await self._plain(send, 405, b"method not allowed\n", [(b"allow", b"GET, HEAD")])
            return
        target = self._files.resolve(scope["raw_path"].decode("latin-1"))
        if target is None:
            await self._plain(send, 404, b"not found\n")
            return
        try:
            handle = target.open("rb")
        except OSError as exc:
            _log.warning("%s: cannot read %s: %s", scope["path"], target, exc)
            await self._plain(send, 404, b"not found\n")
            return
        with handle:
            size = target.stat().st_size
            kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            headers = [(b"content-length", str(size).encode()), (b"content-type", kind.encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            if method == "GET":
                while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        self.requests_served += 1

    @staticmethod
    async def _plain(
        send: Any, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        headers = [
            (b"content-type", b"text/plain"),
            (b"content-length", str(len(body)).encode()),
            *(extra or []),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def fetch(
    client: H3Client,
    path: str,
    sink: Callable[[bytes], object],
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """GET ``path``; pass each chunk of a 2xx body to ``sink``. Returns (status, body size); the body
    of any other status is not passed on.

    Raises:
        H3Error: the stream was aborted or the response malformed.
        ConnectionClosed: the connection closed first.
    """
    response = await client.get(path)
    total = 0
    async for chunk in response.aiter_bytes():
        if not 200 <= response.status < 300:
            continue
        sink(chunk)
        total += len(chunk)
        if progress is not None:
            progress(total)
    return response.status, total


__all__ = ["StaticFiles", "fetch"]
