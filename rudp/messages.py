"""Message channels: msgpack-encoded objects over any rudp Stream, with length framing and a size limit.

Owns the framing (a 4-byte big-endian length, then that many bytes of msgpack), the size limit checked
before anything is buffered, and the errors for malformed, oversized and truncated messages. It does
not own the transport: any object with the Stream reading/writing methods works (QUIC or TCP streams,
or a test double).

Example (an RPC over one stream)::

    channel = MessageChannel(await conn.open_stream())
    await channel.send({"op": "add", "args": [1, 2]})
    reply = await channel.receive()
"""

from __future__ import annotations

import asyncio
import struct
from typing import Protocol

import msgpack

from rudp.errors import RudpError

DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
"""Default largest encoded message accepted or sent (1 MiB)."""
MAX_FRAME_BYTES = (1 << 32) - 1
"""The framing's hard limit (the length field is 32 bits)."""

_LENGTH = struct.Struct(">I")


class MessageError(RudpError):
    """Base of message-channel errors."""


class MessageTooLarge(MessageError):
    """A message exceeds the channel's size limit (sending: nothing was written; receiving: the
    stream is left mid-message and should be abandoned)."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"message of {size} bytes exceeds the limit of {limit} bytes")


class MalformedMessage(MessageError):
    """The bytes received are not one valid msgpack object, or the stream ended mid-message."""


class UnencodableMessage(MessageError, TypeError):
    """The object cannot be encoded with msgpack (only None, bool, int, float, str, bytes, lists and
    dicts of those are supported)."""


class ChannelClosed(MessageError, EOFError):
    """The peer finished the stream cleanly between two messages: no more messages will come."""


class MessageStream(Protocol):
    """What a channel needs from a stream (satisfied by :class:`rudp.Stream`)."""

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes or raise asyncio.IncompleteReadError."""

    def write(self, data: bytes) -> None:
        """Queue bytes for sending."""

    async def drain(self) -> None:
        """Wait for back-pressure to clear."""

    def write_eof(self) -> None:
        """Finish the sending direction."""


def encode_message(obj: object, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes:
    """Frame ``obj``: 4-byte big-endian length, then its msgpack encoding.

    Raises:
        UnencodableMessage: ``obj`` has a type msgpack cannot encode.
        MessageTooLarge: the encoding exceeds ``max_bytes``.
    """
    try:
        payload: bytes = msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise UnencodableMessage(f"cannot encode message: {exc}") from exc
    limit = min(max_bytes, MAX_FRAME_BYTES)
    if len(payload) > limit:
        raise MessageTooLarge(len(payload), limit)
    return _LENGTH.pack(len(payload)) + payload


def decode_payload(payload: bytes) -> object:
    """Decode one msgpack object that must span all of ``payload``.

    Raises:
        MalformedMessage: invalid msgpack, trailing bytes, or an unsupported extension type.
    """
    try:
        obj: object = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except msgpack.ExtraData as exc:
        raise MalformedMessage("trailing bytes after the message") from exc
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise MalformedMessage(f"invalid msgpack message: {exc}") from exc
    return obj


async def send_message(
    stream: MessageStream, obj: object, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> None:
    """Write one framed message and wait for back-pressure (``drain``).

    Raises:
        UnencodableMessage, MessageTooLarge: as :func:`encode_message` (nothing is written).
        StreamStopped, StreamStateError, ConnectionClosed: from the stream.
    """
    stream.write(encode_message(obj, max_bytes=max_bytes))
    await stream.drain()


async def receive_message(stream: MessageStream, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> object:
    """Read one framed message.

    Raises:
        ChannelClosed: the stream ended cleanly before a new message.
        MessageTooLarge: the announced length exceeds ``max_bytes`` (checked before reading the body).
        MalformedMessage: the body is not valid msgpack, or the stream ended mid-message.
        StreamReset, ConnectionClosed: from the stream.
    """
    try:
        header = await stream.readexactly(_LENGTH.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise ChannelClosed("the peer finished the message stream") from None
        raise MalformedMessage("stream ended inside a message header") from None
    (size,) = _LENGTH.unpack(header)
    if size > max_bytes:
        raise MessageTooLarge(size, max_bytes)
    try:
        payload = await stream.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise MalformedMessage(f"stream ended after {len(exc.partial)} of {size} message bytes") from None
    return decode_payload(payload)


class MessageChannel:
    """Send and receive msgpack objects over one stream (both directions for a bidirectional stream).

    ``async for message in channel`` receives until the peer finishes the stream. Sending and receiving
    may run in different tasks; concurrent senders must be serialised by the caller.
    """

    def __init__(self, stream: MessageStream, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if not 0 < max_message_bytes <= MAX_FRAME_BYTES:
            raise ValueError(f"max_message_bytes must be 1..{MAX_FRAME_BYTES}")
        self.stream = stream
        self.max_message_bytes = max_message_bytes

    async def send(self, obj: object) -> None:
        """Send one message (see :func:`send_message`).

        Raises:
            UnencodableMessage, MessageTooLarge: nothing was written.
            StreamStopped, StreamStateError, ConnectionClosed: from the stream.
        """
        await send_message(self.stream, obj, max_bytes=self.max_message_bytes)

    async def receive(self) -> object:
        """Receive one message (see :func:`receive_message`).

        Raises:
            ChannelClosed: no more messages.
            MessageTooLarge, MalformedMessage: the peer sent a bad frame.
            StreamReset, ConnectionClosed: from the stream.
        """
        return await receive_message(self.stream, max_bytes=self.max_message_bytes)

    def close(self) -> None:
        """Finish our direction (the peer's ``receive`` then raises ChannelClosed)."""
        self.stream.write_eof()

    def __aiter__(self) -> MessageChannel:
        """Iterate over received messages until the peer finishes the stream."""
        return self

    async def __anext__(self) -> object:
        """The next message; StopAsyncIteration when the peer finished the stream."""
        try:
            return await self.receive()
        except ChannelClosed:
            raise StopAsyncIteration from None


__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ChannelClosed",
    "MalformedMessage",
    "MessageChannel",
    "MessageError",
    "MessageStream",
    "MessageTooLarge",
    "UnencodableMessage",
    "decode_payload",
    "encode_message",
    "receive_message",
    "send_message",
]
