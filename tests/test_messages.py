"""rudp.messages: framing, limits and errors, over an in-memory stream and over a real QUIC stream."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import msgpack
import pytest

import rudp
from rudp.messages import (
    ChannelClosed,
    MalformedMessage,
    MessageChannel,
    MessageTooLarge,
    UnencodableMessage,
    encode_message,
    receive_message,
)
from rudp.testing.certs import make_test_pki


class MemoryStream:
    """A one-way in-memory stream: bytes written are what readexactly returns."""

    def __init__(self, data: bytes = b"") -> None:
        self.buffer = bytearray(data)
        self.eof = False

    async def readexactly(self, n: int) -> bytes:
        if len(self.buffer) < n:
            partial = bytes(self.buffer)
            self.buffer.clear()
            raise asyncio.IncompleteReadError(partial, n)
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def write(self, data: bytes) -> None:
        self.buffer += data

    async def drain(self) -> None:
        return None

    def write_eof(self) -> None:
        self.eof = True


async def test_round_trip_values() -> None:
    stream = MemoryStream()
    channel = MessageChannel(stream)
    values: list[object] = [None, True, 7, -1.5, "text", b"\x00bytes", [1, [2]], {"a": {"b": b"c"}, 1: 2}]
    for value in values:
        await channel.send(value)
    assert [m async for m in channel] == values


async def test_oversized_message_refused_both_ways() -> None:
    with pytest.raises(MessageTooLarge):
        encode_message(b"x" * 2000, max_bytes=1000)
    stream = MemoryStream(struct.pack(">I", 10_000_000) + b"junk")
    with pytest.raises(MessageTooLarge) as info:
        await receive_message(stream, max_bytes=1 << 20)
    assert info.value.size == 10_000_000


async def test_malformed_truncated_and_clean_eof() -> None:
    body = b"\xc1"  # never valid msgpack
    with pytest.raises(MalformedMessage):
        await receive_message(MemoryStream(struct.pack(">I", 1) + body))
    two = msgpack.packb(1) + msgpack.packb(2)
    with pytest.raises(MalformedMessage, match="trailing"):
        await receive_message(MemoryStream(struct.pack(">I", len(two)) + two))
    with pytest.raises(MalformedMessage, match="ended"):
        await receive_message(MemoryStream(struct.pack(">I", 10) + b"abc"))
    with pytest.raises(MalformedMessage, match="header"):
        await receive_message(MemoryStream(b"\x00\x00"))
    with pytest.raises(ChannelClosed):
        await receive_message(MemoryStream())


async def test_unencodable_object() -> None:
    with pytest.raises(UnencodableMessage):
        await MessageChannel(MemoryStream()).send(object())


async def test_rpc_over_quic(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path)

    async def handler(conn: rudp.Connection) -> None:
        channel = MessageChannel(await conn.accept_stream())
        async for request in channel:
            assert isinstance(request, dict)
            await channel.send({"sum": sum(request["numbers"])})
        channel.close()

    server_config = rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file)
    async with (
        await rudp.serve("127.0.0.1", 0, handler, config=server_config) as server,
        rudp.connect("127.0.0.1", server.port, config=rudp.Config(cafile=pki.ca_file)) as conn,
    ):
        channel = MessageChannel(await conn.open_stream())
        for n in range(1, 50):
            await channel.send({"numbers": list(range(n))})
            assert await asyncio.wait_for(channel.receive(), 10) == {"sum": n * (n - 1) // 2}
        big = {"numbers": [1] * 100_000}
        await channel.send(big)
        assert await asyncio.wait_for(channel.receive(), 10) == {"sum": 100_000}
        channel.close()
        with pytest.raises(ChannelClosed):
            await asyncio.wait_for(channel.receive(), 10)
