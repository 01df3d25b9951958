"""RPC with ``rudp.messages``: msgpack requests and replies over one QUIC stream.

Self-contained (it starts its own server on a free local port)::

    python examples/rpc_messages.py

The server answers ``{"method": ..., "params": [...]}`` requests with ``{"result": ...}`` or
``{"error": ...}``; the client sends a few calls, including one that fails and one oversized message
that the channel refuses before sending.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import Callable
from typing import Any

import rudp
from rudp.messages import MessageChannel, MessageTooLarge
from rudp.testing.certs import make_test_pki

METHODS: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b,
    "upper": lambda text: text.upper(),
    "sha256": lambda data: hashlib.sha256(data).hexdigest(),
}


async def serve_rpc(conn: rudp.Connection) -> None:
    async for stream in conn:
        channel = MessageChannel(stream)
        async for request in channel:
            if not isinstance(request, dict):
                await channel.send({"error": "a request is a map"})
                continue
            method = METHODS.get(str(request.get("method")))
            try:
                if method is None:
                    raise LookupError(f"no method {request.get('method')!r}")
                await channel.send({"result": method(*request.get("params", []))})
            except Exception as exc:  # report any failure of the call to the caller
                await channel.send({"error": f"{type(exc).__name__}: {exc}"})
        channel.close()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_test_pki(tmp)
        server_config = rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file)
        async with await rudp.serve("127.0.0.1", 0, serve_rpc, config=server_config) as server:
            config = rudp.Config(cafile=pki.ca_file)
            async with rudp.connect("127.0.0.1", server.port, config=config) as conn:
                channel = MessageChannel(await conn.open_stream(), max_message_bytes=64 * 1024)
                calls = [("add", [2, 40]), ("upper", ["quic"]), ("sha256", [b"rudp"]), ("divide", [1, 0])]
                for method, params in calls:
                    await channel.send({"method": method, "params": params})
                    print(f"{method}{tuple(params)} -> {await channel.receive()}")
                try:
                    await channel.send({"method": "sha256", "params": [b"x" * 100_000]})
                except MessageTooLarge as exc:
                    print(f"refused locally: {exc}")
                channel.close()
                assert [m async for m in channel] == []


if __name__ == "__main__":
    asyncio.run(main())
