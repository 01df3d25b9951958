"""Echo client: sends each word on its own stream, concurrently, and prints what comes back.

Start ``examples/echo_server.py`` first, then::

    python examples/echo_client.py --port 4433 hello world
    python examples/echo_client.py --port 4433 --transport tcp hello over tcp

The CA is read from ``--certs`` (the directory the server wrote its throwaway certificate to).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import rudp

DEFAULT_CERTS = Path(tempfile.gettempdir()) / "rudp-example-pki"


async def echo(conn: rudp.Connection, text: str) -> str:
    stream = await conn.open_stream()
    stream.write(text.encode())
    stream.write_eof()
    await stream.drain()
    return (await stream.read()).decode()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("words", nargs="*", default=["hello", "rudp"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4433)
    parser.add_argument("--certs", type=Path, default=DEFAULT_CERTS)
    parser.add_argument("--transport", choices=["quic", "tcp"], default="quic")
    args = parser.parse_args()
    config = rudp.Config(cafile=args.certs / "ca.pem")
    async with rudp.connect(args.host, args.port, config=config, transport=args.transport) as conn:
        replies = await asyncio.gather(*(echo(conn, word) for word in args.words))
        for word, reply in zip(args.words, replies, strict=True):
            print(f"{word!r} -> {reply!r}")
        rtt = await conn.ping()
        print(f"round trip {rtt * 1000:.2f} ms over {args.transport}")


if __name__ == "__main__":
    asyncio.run(main())
