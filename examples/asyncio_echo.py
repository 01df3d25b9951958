"""An asyncio streams echo service moved to rudp: the handler and the client are plain asyncio
``StreamReader``/``StreamWriter`` code; only the two calls that open the server and the connection
change (``asyncio.start_server`` -> ``rudp.start_server``, ``asyncio.open_connection`` ->
``rudp.open_connection``), plus the TLS configuration every rudp connection needs.

Self-contained (a local server on a free port, over QUIC and then the TCP+TLS baseline)::

    python examples/asyncio_echo.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import rudp
from rudp.testing.certs import make_test_pki


async def handle_client(reader: rudp.Stream, writer: rudp.Stream) -> None:
    """Unchanged asyncio handler: answer each line, then hang up."""
    peer = writer.get_extra_info("peername")
    while request := await reader.readline():
        writer.write(b"echo: " + request)
        await writer.drain()
    print(f"server: {peer[0]} finished", flush=True)
    writer.close()
    await writer.wait_closed()


async def ask(port: int, config: rudp.Config, transport: str, lines: list[str]) -> None:
    """Unchanged asyncio client, apart from the open_connection call."""
    reader, writer = await rudp.open_connection("127.0.0.1", port, config=config, transport=transport)  # type: ignore[arg-type]
    for line in lines:
        writer.write(line.encode() + b"\n")
        await writer.drain()
        answer = await reader.readline()
        print(f"{transport}: sent {line!r}, got {answer.decode().rstrip()!r}", flush=True)
    writer.write_eof()  # no more lines: the server's loop ends, and it closes its side
    await reader.read()  # b"": everything was answered
    cipher = writer.get_extra_info("cipher")
    writer.close()  # also closes the connection, as closing an asyncio writer closes its socket
    await writer.wait_closed()
    print(f"{transport}: closed ({cipher[0]})", flush=True)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_test_pki(Path(tmp))
        server_config = rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file)
        client_config = rudp.Config(cafile=pki.ca_file, server_name="localhost")
        server = await rudp.start_server(
            handle_client, "127.0.0.1", 0, config=server_config, transport="both"
        )
        async with server:
            for transport in ("quic", "tcp"):
                await ask(server.port, client_config, transport, ["hello", "world"])


if __name__ == "__main__":
    asyncio.run(main())
