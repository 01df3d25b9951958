"""The checks of the stream conformance suite (:mod:`rudp.testing.stream_suite`), one per contract.

Each ``check_*`` coroutine gets a fresh :class:`~rudp.testing.stream_suite.StreamPair` and raises
:class:`~rudp.testing.stream_suite.ConformanceError` when the stream breaks the contract its docstring
states. Importing this module registers the checks in :data:`~rudp.testing.stream_suite.CHECKS`
(the suite module imports it for that).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial

from rudp.errors import ConnectionClosed, StreamReset, StreamStateError, StreamStopped
from rudp.testing.stream_suite import (
    ROUND_TRIP_SIZES,
    ConformanceError,
    E,
    StreamPair,
    SuiteStream,
    T,
    _check,
)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


async def _expect_raises(exc_type: type[E], action: Awaitable[object] | Callable[[], object], what: str) -> E:
    """Await ``action`` (or call it, if it is a plain callable) and return the ``exc_type`` it raised."""
    try:
        result = await action if isinstance(action, Awaitable) else action()
    except exc_type as exc:
        return exc
    except Exception as exc:
        raise ConformanceError(f"{what}: expected {exc_type.__name__}, got {exc!r}") from exc
    raise ConformanceError(f"{what}: expected {exc_type.__name__}, returned {result!r:.80}")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


async def _send_all(stream: SuiteStream, data: bytes, *, chunk: int = 65536, eof: bool = True) -> None:
    view = memoryview(data)
    for offset in range(0, len(view), chunk):
        stream.write(view[offset : offset + chunk])
        await stream.drain()
    if eof:
        stream.write_eof()
        await stream.drain()


async def _read_all(stream: SuiteStream) -> bytes:
    chunks = []
    while chunk := await stream.read(65536):
        chunks.append(chunk)
    return b"".join(chunks)


async def _waiting(action: Coroutine[object, object, T], pair: StreamPair, what: str) -> asyncio.Task[T]:
    """Start ``action`` in a task and fail unless it is still waiting after two round trips."""
    task = asyncio.create_task(action)
    await pair.round_trip()
    await pair.round_trip()
    _expect(not task.done(), f"{what}: finished instead of waiting ({task!r:.120})")
    return task


async def _cancel(task: asyncio.Task[T], what: str) -> None:
    task.cancel()
    await _expect_raises(asyncio.CancelledError, task, f"the cancelled {what}")


async def _stalled_drain(pair: StreamPair) -> tuple[bytes, asyncio.Task[None]]:
    """Write more than the flow-control bound with nobody reading; return the data and a waiting drain()."""
    data = os.urandom(3 * pair.max_unconsumed_bytes)
    pair.client.write(data)
    return data, await _waiting(pair.client.drain(), pair, "drain() with a stalled reader")


async def _other_direction_works(pair: StreamPair, after: str) -> None:
    reply = os.urandom(50_000)
    async with asyncio.TaskGroup() as group:
        group.create_task(_send_all(pair.server, reply))
        got = await pair.client.read()
    _expect(got == reply, f"the other direction broke after {after}")


# ---------------------------------------------------------------------- data transfer


@_check
async def check_round_trip_sizes(pair: StreamPair) -> None:
    """Bytes arrive intact and in order, whatever the write size, in both directions.

    The client writes one payload of each size in :data:`ROUND_TRIP_SIZES` (as bytes, bytearray and
    memoryview), the server reads each with ``readexactly`` and compares sha256, then sends them all back
    the same way.
    """
    payloads = [os.urandom(size) for size in ROUND_TRIP_SIZES]
    await _sizes_one_way(pair.client, pair.server, payloads, "c->s")
    await _sizes_one_way(pair.server, pair.client, payloads, "s->c")


async def _sizes_one_way(
    sender: SuiteStream, receiver: SuiteStream, payloads: list[bytes], direction: str
) -> None:
    kinds: tuple[Callable[[bytes], bytes | bytearray | memoryview], ...] = (bytes, bytearray, memoryview)

    async def send() -> None:
        for index, payload in enumerate(payloads):
            sender.write(kinds[index % 3](payload))
            await sender.drain()

    async with asyncio.TaskGroup() as group:
        group.create_task(send())
        for payload in payloads:
            got = await receiver.readexactly(len(payload))
            _expect(got == payload, f"{direction}: a {len(payload)}-byte payload arrived as {_digest(got)}")


@_check
async def check_write_copies_buffer(pair: StreamPair) -> None:
    """``write()`` takes a copy: changing the caller's buffer afterwards does not change what is sent.

    A write larger than any send budget is made from a bytearray that is then overwritten before
    ``drain()``; the peer must receive the original bytes.
    """
    original = os.urandom(4 * pair.max_unconsumed_bytes)
    buffer = bytearray(original)
    pair.client.write(buffer)
    buffer[:] = bytes(len(buffer))
    async with asyncio.TaskGroup() as group:
        reader = group.create_task(pair.server.readexactly(len(original)))
        await pair.client.drain()
    got = reader.result()
    _expect(got == original, "the peer got the buffer as changed after write(), not as written")


@_check
async def check_many_small_writes(pair: StreamPair) -> None:
    """Thousands of tiny writes without ``drain()`` in between keep their order and all arrive.

    Empty writes among them are accepted and send nothing.
    """
    pieces = [index.to_bytes(2, "big") for index in range(5000)]
    for piece in pieces:
        pair.client.write(piece)
        if piece[1] == 0:
            pair.client.write(b"")
    pair.client.write_eof()
    await pair.client.drain()
    got = await pair.server.read()
    _expect(got == b"".join(pieces), f"small writes arrived reordered or short ({len(got)} bytes)")


@_check
async def check_read_n_bounds(pair: StreamPair) -> None:
    """``read(n)`` returns between 1 and ``n`` bytes until the end, then b"" (repeatedly); read(0) is b"".

    ``read(0)`` returns b"" at once, even with nothing buffered.
    """
    _expect(await asyncio.wait_for(pair.server.read(0), 5.0) == b"", "read(0) did not return b''")
    data = os.urandom(100_000)
    received = bytearray()
    async with asyncio.TaskGroup() as group:
        group.create_task(_send_all(pair.client, data, chunk=30_000))
        for n in (1, 7, 1000, 70_000):
            chunk = await pair.server.read(n)
            _expect(1 <= len(chunk) <= n, f"read({n}) returned {len(chunk)} bytes before the end")
            received += chunk
        while chunk := await pair.server.read(5000):
            _expect(len(chunk) <= 5000, f"read(5000) returned {len(chunk)} bytes")
            received += chunk
    _expect(bytes(received) == data, f"read(n) lost or reordered bytes ({len(received)} of {len(data)})")
    for _ in range(3):
        _expect(await pair.server.read(10) == b"", "read(n) at the end of the stream did not return b''")


@_check
async def check_read_to_eof(pair: StreamPair) -> None:
    """``read()`` returns everything up to the FIN in one call, then b""."""
    data = os.urandom(300_000)
    async with asyncio.TaskGroup() as group:
        group.create_task(_send_all(pair.client, data))
        got = await pair.server.read()
    _expect(got == data, f"read() returned {len(got)} of {len(data)} bytes (sha256 {_digest(got)})")
    _expect(await pair.server.read() == b"", "a second read() at the end did not return b''")


@_check
async def check_empty_stream(pair: StreamPair) -> None:
    """A stream finished without data reads as b"" right away, and then reports ``at_eof()``."""
    pair.client.write_eof()
    await pair.client.drain()
    _expect(await pair.server.read() == b"", "read() of an empty finished stream did not return b''")
    _expect(pair.server.at_eof(), "at_eof() is False after reading the end of an empty stream")


@_check
async def check_readexactly(pair: StreamPair) -> None:
    """``readexactly(n)`` returns exactly n bytes; at an early end it raises IncompleteReadError.

    The error's ``partial`` holds the bytes read and ``expected`` is n; afterwards reads return b"".
    ``readexactly(0)`` returns b"".
    """
    data = os.urandom(10_000)
    async with asyncio.TaskGroup() as group:
        group.create_task(_send_all(pair.client, data, chunk=3000))
        _expect(await pair.server.readexactly(0) == b"", "readexactly(0) did not return b''")
        first = await pair.server.readexactly(4000)
        _expect(first == data[:4000], "readexactly(4000) returned the wrong bytes")
        second = await pair.server.readexactly(5999)
        _expect(second == data[4000:9999], "readexactly(5999) returned the wrong bytes")
        error = await _expect_raises(
            asyncio.IncompleteReadError, pair.server.readexactly(100), "readexactly past the end"
        )
    _expect(error.partial == data[9999:], f"IncompleteReadError.partial is {error.partial!r:.40}")
    _expect(error.expected == 100, f"IncompleteReadError.expected is {error.expected}, not 100")
    _expect(await pair.server.read() == b"", "read() after IncompleteReadError did not return b''")


@_check
async def check_readuntil(pair: StreamPair) -> None:
    """``readuntil(sep)`` returns up to and including ``sep``; what follows stays buffered.

    A separator split across two writes (a round trip apart) is found. More than ``limit`` bytes without
    the separator raise LimitOverrunError and stay readable. At the end without a separator it raises
    IncompleteReadError whose ``partial`` holds the rest. An empty separator raises ValueError.
    """
    client, server = pair.client, pair.server
    await _send_all(client, b"alpha\r\nbeta\r", eof=False)
    _expect(await server.readuntil(b"\r\n") == b"alpha\r\n", "readuntil did not return the first line")
    read_beta = await _waiting(server.readuntil(b"\r\n"), pair, "readuntil with half a separator buffered")
    await _send_all(client, b"\ngamma", eof=False)
    _expect(await read_beta == b"beta\r\n", "readuntil missed a separator split across two writes")
    _expect(await server.readexactly(5) == b"gamma", "the bytes after a separator were not kept")
    await _expect_raises(ValueError, server.readuntil(b""), "readuntil(b'')")

    blob = b"x" * 3000
    await _send_all(client, blob, eof=False)
    await _expect_raises(asyncio.LimitOverrunError, server.readuntil(b"\n", limit=1000), "over the limit")
    _expect(await server.readexactly(len(blob)) == blob, "bytes were lost by LimitOverrunError")

    await _send_all(client, b"no separator here")
    error = await _expect_raises(asyncio.IncompleteReadError, server.readuntil(b"\n"), "readuntil at the end")
    _expect(error.partial == b"no separator here", f"IncompleteReadError.partial is {error.partial!r}")
    _expect(await server.read() == b"", "read() after readuntil's IncompleteReadError did not return b''")


@_check
async def check_async_iteration(pair: StreamPair) -> None:
    """``async for chunk in stream`` yields every byte, in order, then stops at the end of the stream."""
    data = os.urandom(500_000)
    async with asyncio.TaskGroup() as group:
        group.create_task(_send_all(pair.client, data, chunk=40_000))
        chunks = [chunk async for chunk in pair.server]
    _expect(all(chunks), "async iteration yielded an empty chunk")
    got = b"".join(chunks)
    _expect(got == data, f"async iteration yielded {len(got)} of {len(data)} bytes")
    _expect([chunk async for chunk in pair.server] == [], "iterating a finished stream again yielded data")


@_check
async def check_at_eof(pair: StreamPair) -> None:
    """``at_eof()`` is False while bytes may still be read, True once the end has been read.

    False before anything arrives, False with unread bytes after the FIN arrived, True after the read
    that returned the last bytes is followed by one returning b"".
    """
    _expect(not pair.server.at_eof(), "at_eof() is True on a fresh stream")
    await _send_all(pair.client, b"ab")
    _expect(await pair.server.readexactly(1) == b"a", "readexactly(1) returned the wrong byte")
    await pair.round_trip()
    _expect(not pair.server.at_eof(), "at_eof() is True with a byte still unread")
    _expect(await pair.server.read() == b"b", "read() did not return the last byte")
    _expect(await pair.server.read() == b"", "read() at the end did not return b''")
    _expect(pair.server.at_eof(), "at_eof() is False after the end was read")
    _expect(not pair.client.at_eof(), "the writer's at_eof() is True though its peer did not finish")


# ---------------------------------------------------------------------- closing the sending side


@_check
async def check_half_close(pair: StreamPair) -> None:
    """After ``write_eof()`` the peer reads to the end and can still write back (half-close)."""
    await _send_all(pair.client, b"request")
    _expect(await pair.server.read() == b"request", "the peer did not read the request up to the end")
    _expect(pair.server.at_eof(), "the peer's at_eof() is False after reading the FIN")
    reply = os.urandom(200_000)
    async with asyncio.TaskGroup() as group:
        group.create_task(_send_all(pair.server, reply))
        got = await pair.client.read()
    _expect(got == reply, f"the reply after a half-close arrived as {len(got)} of {len(reply)} bytes")


@_check
async def check_write_after_eof(pair: StreamPair) -> None:
    """``write_eof()`` is idempotent; ``write()`` after it raises StreamStateError and sends nothing."""
    pair.client.write(b"last")
    pair.client.write_eof()
    pair.client.write_eof()
    await _expect_raises(StreamStateError, partial(pair.client.write, b"late"), "write() after write_eof()")
    await pair.client.drain()
    _expect(await pair.server.read() == b"last", "the peer saw bytes written after write_eof()")


# ---------------------------------------------------------------------- flow control and concurrency


@_check
async def check_drain_bounds_memory(pair: StreamPair) -> None:
    """``drain()`` applies back-pressure: a writer never gets far ahead of a slow reader.

    In each direction a writer writes many times :attr:`StreamPair.max_unconsumed_bytes` while the reader
    reads small pieces a round trip apart. Whenever ``drain()`` returns, nothing is left buffered
    locally and the bytes accepted minus the bytes the reader got stay within the bound.
    """
    await _bounded_direction(pair, pair.client, pair.server, "c->s")
    await _bounded_direction(pair, pair.server, pair.client, "s->c")


async def _bounded_direction(
    pair: StreamPair, sender: SuiteStream, receiver: SuiteStream, direction: str
) -> None:
    bound = pair.max_unconsumed_bytes
    total, write_size, read_size = 4 * bound, 32 * 1024, 48 * 1024
    data = os.urandom(total)
    consumed = worst = 0

    async def write_all() -> None:
        nonlocal worst
        for offset in range(0, total, write_size):
            sender.write(data[offset : offset + write_size])
            await sender.drain()
            _expect(
                not sender.buffered_bytes, f"{direction}: {sender.buffered_bytes} bytes left after drain()"
            )
            worst = max(worst, min(total, offset + write_size) - consumed)
        sender.write_eof()
        await sender.drain()

    hasher = hashlib.sha256()
    async with asyncio.TaskGroup() as group:
        group.create_task(write_all())
        while chunk := await receiver.read(read_size):
            hasher.update(chunk)
            consumed += len(chunk)
            await pair.round_trip()  # a slow reader: one small read per round trip
    _expect(consumed == total, f"{direction}: the reader got {consumed} of {total} bytes")
    _expect(hasher.digest() == hashlib.sha256(data).digest(), f"{direction}: sha256 mismatch")
    _expect(worst <= bound, f"{direction}: the writer got {worst} bytes ahead of the reader (bound {bound})")


@_check
async def check_full_duplex(pair: StreamPair) -> None:
    """Both ends write and read at once in separate tasks, each sending more than the flow-control bound.

    Neither writer may wait for its own side's reader: each direction progresses on its own.
    """
    size = 4 * pair.max_unconsumed_bytes
    up, down = os.urandom(size), os.urandom(size)
    async with asyncio.TaskGroup() as group:
        group.create_task(_send_all(pair.client, up))
        group.create_task(_send_all(pair.server, down))
        got_up = group.create_task(_read_all(pair.server))
        got_down = group.create_task(_read_all(pair.client))
    for got, sent, direction in ((got_up.result(), up, "c->s"), (got_down.result(), down, "s->c")):
        _expect(got == sent, f"{direction}: {len(got)} of {size} bytes, sha256 {_digest(got)}")


# ---------------------------------------------------------------------- aborting


async def _reset_seen(pair: StreamPair, code: int) -> None:
    await _send_all(pair.client, b"doomed", eof=False)
    _expect(await pair.server.readexactly(6) == b"doomed", "data written before reset() was not delivered")
    pending = await _waiting(pair.server.read(), pair, "read() with nothing more sent")
    pair.client.reset(code)
    pair.client.reset(code + 1 if code < 2**62 - 1 else 0)  # idempotent: the first code wins
    error = await _expect_raises(StreamReset, pending, "a pending read() when the peer resets")
    _expect(error.code == code, f"StreamReset.code is {error.code:#x}, not {code:#x}")
    await _expect_raises(StreamReset, pair.server.read(10), "a second read() after the peer's reset()")
    _expect(pair.server.at_eof(), "at_eof() is False after the peer reset the stream")
    await _expect_raises(StreamStateError, partial(pair.client.write, b"x"), "write() after reset()")


@_check
async def check_reset(pair: StreamPair) -> None:
    """``reset(code)`` makes the peer's pending and later reads raise StreamReset with that code.

    ``reset()`` is idempotent, the peer's ``at_eof()`` becomes True, a local ``write()`` afterwards raises
    StreamStateError, and the other direction keeps working.
    """
    await _reset_seen(pair, 0x1A2B)
    await _other_direction_works(pair, "reset()")


@_check
async def check_reset_max_code(pair: StreamPair) -> None:
    """The largest application error code (2**62 - 1) survives a reset unchanged."""
    await _reset_seen(pair, 2**62 - 1)


async def _stop_seen(pair: StreamPair, code: int) -> None:
    await _send_all(pair.client, b"hello", eof=False)
    _expect(await pair.server.readexactly(5) == b"hello", "data sent before stop_sending() was lost")
    pair.server.stop_sending(code)
    _expect(await pair.server.read() == b"", "read() after stop_sending() did not return b'' (end of stream)")
    for _ in range(100):  # until STOP_SENDING has arrived: a round trip per attempt
        try:
            await _send_all(pair.client, b"more", eof=False)
        except StreamStopped as exc:
            _expect(exc.code == code, f"StreamStopped.code is {exc.code:#x}, not {code:#x}")
            break
        await pair.round_trip()
    else:
        raise ConformanceError("write()/drain() never raised StreamStopped after the peer's stop_sending()")
    await _expect_raises(StreamStopped, _send_all(pair.client, b"again", eof=False), "a later write()")


@_check
async def check_stop_sending(pair: StreamPair) -> None:
    """``stop_sending(code)`` makes the peer's ``write()``/``drain()`` raise StreamStopped with that code.

    Locally, reads then return b"" (the end). The peer's error is sticky, and the other direction
    (the stopping side writing) keeps working.
    """
    await _stop_seen(pair, 0x2B3C)
    await _other_direction_works(pair, "stop_sending()")


@_check
async def check_stop_sending_max_code(pair: StreamPair) -> None:
    """The largest application error code (2**62 - 1) survives STOP_SENDING unchanged."""
    await _stop_seen(pair, 2**62 - 1)


@_check
async def check_stop_sending_wakes_drain(pair: StreamPair) -> None:
    """A ``drain()`` blocked by a stalled reader raises StreamStopped when that reader stops sending."""
    _, drain = await _stalled_drain(pair)
    pair.server.stop_sending(0x3D4E)
    error = await _expect_raises(StreamStopped, drain, "a pending drain() when the peer stops sending")
    _expect(error.code == 0x3D4E, f"StreamStopped.code is {error.code:#x}, not 0x3d4e")
    _expect(pair.client.buffered_bytes == 0, "queued bytes were kept after the peer stopped sending")


@_check
async def check_reset_wakes_own_drain(pair: StreamPair) -> None:
    """``reset()`` while our ``drain()`` waits makes the drain raise StreamStateError; the peer sees it.

    Queued bytes are dropped (``buffered_bytes`` becomes 0).
    """
    _, drain = await _stalled_drain(pair)
    pair.client.reset(0x4E5F)
    await _expect_raises(StreamStateError, drain, "a pending drain() when its own stream is reset")
    _expect(pair.client.buffered_bytes == 0, "queued bytes were kept after reset()")
    error = await _expect_raises(StreamReset, _read_all(pair.server), "reading a stream the peer reset")
    _expect(error.code == 0x4E5F, f"StreamReset.code is {error.code:#x}, not 0x4e5f")


# ---------------------------------------------------------------------- cancellation


@_check
async def check_cancel_read(pair: StreamPair) -> None:
    """Cancelling a blocked ``read()`` leaves the stream usable: later data is read intact."""
    reader = await _waiting(pair.server.read(10), pair, "read() with nothing sent")
    await _cancel(reader, "read()")
    await _send_all(pair.client, b"after cancel")
    _expect(await pair.server.read() == b"after cancel", "data sent after a cancelled read() was lost")


@_check
async def check_cancel_readexactly_keeps_data(pair: StreamPair) -> None:
    """Cancelling a ``readexactly(n)`` that got only part of n loses nothing: the part is read later."""
    await _send_all(pair.client, b"01234", eof=False)
    reader = await _waiting(pair.server.readexactly(10), pair, "readexactly(10) with 5 bytes sent")
    await _cancel(reader, "readexactly()")
    await _send_all(pair.client, b"56789")
    got = await pair.server.read()
    _expect(got == b"0123456789", f"after a cancelled readexactly() the stream read {got!r}")


@_check
async def check_cancel_readuntil_keeps_data(pair: StreamPair) -> None:
    """Cancelling a ``readuntil()`` still waiting for its separator loses nothing."""
    await _send_all(pair.client, b"no newline yet", eof=False)
    reader = await _waiting(pair.server.readuntil(b"\n"), pair, "readuntil() without a separator sent")
    await _cancel(reader, "readuntil()")
    await _send_all(pair.client, b", now\n", eof=False)
    got = await pair.server.readuntil(b"\n")
    _expect(got == b"no newline yet, now\n", f"after a cancelled readuntil() the line read {got!r}")


@_check
async def check_cancel_drain(pair: StreamPair) -> None:
    """Cancelling a blocked ``drain()`` drops nothing: every written byte still arrives, in order."""
    data, drain = await _stalled_drain(pair)
    await _cancel(drain, "drain()")
    pair.client.write(b"tail")
    pair.client.write_eof()
    async with asyncio.TaskGroup() as group:
        reader = group.create_task(_read_all(pair.server))
        await pair.client.drain()
    got = reader.result()
    _expect(got == data + b"tail", f"after a cancelled drain() the peer got {len(got)} bytes, not as sent")


# ---------------------------------------------------------------------- the connection ending


async def _close_wakes_readers(
    pair: StreamPair, *, by_client: bool, reason: str = "conformance close"
) -> None:
    code = 0x5EED
    closer, observer = (pair.client, pair.server) if by_client else (pair.server, pair.client)
    closer_read = asyncio.create_task(closer.read())
    observer_read = await _waiting(observer.read(), pair, "read() with nothing sent")
    _expect(not closer_read.done(), "read() with nothing sent: finished instead of waiting")
    (pair.close_client if by_client else pair.close_server)(code, reason)
    for task, who, by_peer in ((observer_read, "peer", True), (closer_read, "closer", False)):
        error = await _expect_raises(ConnectionClosed, task, f"the {who}'s pending read() on close")
        _expect(error.code == code, f"{who}: ConnectionClosed.code is {error.code:#x}, not {code:#x}")
        _expect(error.reason == reason, f"{who}: ConnectionClosed.reason is {error.reason!r}")
        _expect(error.by_peer is by_peer, f"{who}: ConnectionClosed.by_peer is {error.by_peer}")
    for stream, who in ((observer, "peer"), (closer, "closer")):
        await _expect_raises(ConnectionClosed, partial(stream.write, b"x"), f"{who}: write() after close")
        await _expect_raises(ConnectionClosed, stream.read(), f"{who}: read() after close")


@_check
async def check_close_by_server(pair: StreamPair) -> None:
    """Closing the connection (server side) ends pending reads on both ends with ConnectionClosed.

    The client's error carries the code and reason with ``by_peer`` True; the server's own carries them
    with ``by_peer`` False. Later reads and writes on either end raise ConnectionClosed too.
    """
    await _close_wakes_readers(pair, by_client=False)


@_check
async def check_close_by_client(pair: StreamPair) -> None:
    """As ``close_by_server``, with the client closing the connection and a non-ASCII reason."""
    await _close_wakes_readers(pair, by_client=True, reason="fermé ✓")


@_check
async def check_close_during_drain(pair: StreamPair) -> None:
    """A ``drain()`` blocked by a stalled reader raises ConnectionClosed when the peer closes."""
    code, reason = 0x5EED, "closed while draining"
    _, drain = await _stalled_drain(pair)
    pair.close_server(code, reason)
    error = await _expect_raises(ConnectionClosed, drain, "the pending drain() when the peer closes")
    _expect(error.code == code and error.by_peer, f"drain() raised {error!r}, not the peer's close")


# ---------------------------------------------------------------------- running
