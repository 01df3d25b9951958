"""Session resumption and 0-RTT: the second connection sends its request before the handshake ends.

Self-contained (starts its own server on a free local port)::

    python examples/resume_0rtt.py

The first connection stores the server's session tickets in a ``rudp.TicketStore`` (which can be saved
to a file with ``store.save(path)`` for the next run). The second one resumes from a ticket and, with
``enable_0rtt=True`` on both sides, ``connect()`` returns at once so the first stream travels as 0-RTT
data. Only send idempotent requests as 0-RTT: early data can be replayed by an attacker.
"""

from __future__ import annotations

import asyncio
import tempfile
import time

import rudp
from rudp.testing.certs import make_test_pki


async def echo(conn: rudp.Connection) -> None:
    async for stream in conn:
        stream.write(b"echo: " + await stream.read())
        stream.write_eof()
        await stream.drain()


async def request(conn: rudp.Connection, text: bytes) -> bytes:
    stream = await conn.open_stream()
    stream.write(text)
    stream.write_eof()
    return await stream.read()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_test_pki(tmp)
        server_config = rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file, enable_0rtt=True)
        async with await rudp.serve("127.0.0.1", 0, echo, config=server_config) as server:
            tickets = rudp.TicketStore()
            config = rudp.Config(cafile=pki.ca_file, session_ticket_store=tickets, enable_0rtt=True)
            for attempt in ("first", "second"):
                started = time.perf_counter()
                async with rudp.connect("127.0.0.1", server.port, config=config) as conn:
                    reply = await request(conn, attempt.encode())
                    elapsed = (time.perf_counter() - started) * 1000
                    await conn.wait_established()
                    print(
                        f"{attempt} connection: {reply!r} after {elapsed:.1f} ms, "
                        f"resumed={conn.session_resumed}, 0-RTT accepted={conn.zero_rtt_accepted}"
                    )
                    await conn.ping()  # let the server's session tickets arrive before closing
                print(f"tickets stored: {len(tickets)}")


if __name__ == "__main__":
    asyncio.run(main())
