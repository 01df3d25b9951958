"""Echo server: every stream a client opens is sent back to it, byte for byte.

Run it, then the client in another terminal::

    python examples/echo_server.py --port 4433
    python examples/echo_client.py --port 4433 hello world

A throwaway certificate is written to ``--certs`` (default: a ``rudp-example-pki`` directory in the
system temporary directory); the client reads the CA from the same place. ``--transport both`` serves
QUIC and the TCP+TLS baseline on the same port. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
from pathlib import Path

import rudp
from rudp.testing.certs import make_test_pki

DEFAULT_CERTS = Path(tempfile.gettempdir()) / "rudp-example-pki"


async def echo_stream(stream: rudp.Stream) -> None:
    async for chunk in stream:
        stream.write(chunk)
        await stream.drain()
    stream.write_eof()
    await stream.drain()


async def handle(conn: rudp.Connection) -> None:
    print(f"connection from {conn.peer_address} ({conn.alpn_protocol})", flush=True)
    async with asyncio.TaskGroup() as tasks:
        async for stream in conn:
            tasks.create_task(echo_stream(stream))
    print(f"connection from {conn.peer_address} closed: {conn.close_error}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4433)
    parser.add_argument("--certs", type=Path, default=DEFAULT_CERTS)
    parser.add_argument("--transport", choices=["quic", "tcp", "both"], default="both")
    args = parser.parse_args()
    if not (args.certs / "cert.pem").exists():
        make_test_pki(args.certs)
    config = rudp.Config(certfile=args.certs / "cert.pem", keyfile=args.certs / "key.pem")
    server = await rudp.serve(args.host, args.port, handle, config=config, transport=args.transport)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.close)
    print(f"echo server listening on {args.host} port {server.port} ({args.transport})", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
