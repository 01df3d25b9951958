"""The read fast paths of :class:`rudp.Stream` (issue 13) give what the general path gives.

- A stream we opened, or one whose last read found nothing, waits without asking the core (its
  ``_idle`` flag); every wake-up (data, FIN, peer reset, our STOP_SENDING, connection close) clears it.
- ``read()`` (to the end) of a stream whose end is in the core after one chunk returns that chunk
  without reading again.

Each scenario runs over QUIC and the TCP baseline, once as is and once with the flag cleared before
every read (the general path: ask the core first), and both must give the same bytes and errors;
the fast path must also ask the core less.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import rudp

WAIT = 10.0


async def answer_handler(conn: rudp.Connection) -> None:
    """Each stream: read the request to its end, answer ``ok:<request>`` after a loop pass, FIN."""

    async def answer(stream: rudp.Stream) -> None:
        request = await stream.read()
        await asyncio.sleep(0)
        stream.write(b"ok:" + request)
        stream.write_eof()
        await stream.drain()

    tasks = set()
    async for stream in conn:
        task = asyncio.create_task(answer(stream))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def _count_core_reads(conn: rudp.Connection, counts: dict[str, int]) -> None:
    core = conn._driver.core  # type: ignore[attr-defined]
    read_stream = core.read_stream

    def counted(stream_id: int, max_bytes: int = -1) -> bytes:
        counts["reads"] += 1
        data: bytes = read_stream(stream_id, max_bytes)
        return data

    core.read_stream = counted


async def _requests(conn: rudp.Connection, general: bool) -> list[bytes]:
    """Ten requests, each answer read as the benchmark's client does (chunks until b"")."""
    answers = []
    for i in range(10):
        stream = await conn.open_stream()
        stream.write(b"GET %d" % i)
        stream.write_eof()
        got = b""
        while True:
            if general:
                stream._idle = False  # type: ignore[attr-defined]
            chunk = await asyncio.wait_for(stream.read(1 << 16), WAIT)
            if not chunk:
                break
            got += chunk
        assert stream.at_eof()
        answers.append(got)
    return answers


@pytest.mark.parametrize("general", [False, True])
async def test_idle_first_read_same_answers_fewer_core_reads(
    transport: str, general: bool, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with (
        running_server(answer_handler, transport=transport) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport) as conn,
    ):
        counts = {"reads": 0}
        _count_core_reads(conn, counts)
        assert await _requests(conn, general) == [b"ok:GET %d" % i for i in range(10)]
        if general:
            assert counts["reads"] >= 30  # empty first read, the answer, the end
        else:
            assert counts["reads"] == 20  # the answer, the end: the stream we opened was idle


async def test_read_to_end_in_one_core_read(
    transport: str, running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    """The server's ``read()`` of a whole small request: one core read, same bytes, then at EOF."""
    seen: asyncio.Queue[tuple[bytes, int, bool, bytes]] = asyncio.Queue()

    async def handler(conn: rudp.Connection) -> None:
        counts = {"reads": 0}
        _count_core_reads(conn, counts)
        async for stream in conn:
            await asyncio.sleep(0.05)  # the request and its FIN are in by now
            counts["reads"] = 0
            request = await stream.read()
            reads = counts["reads"]
            await seen.put((request, reads, stream.at_eof(), await stream.read()))
            stream.write_eof()

    async with (
        running_server(handler, transport=transport) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport) as conn,
    ):
        stream = await conn.open_stream()
        stream.write(b"GET 100\n")
        stream.write_eof()
        request, reads, at_eof, after = await asyncio.wait_for(seen.get(), WAIT)
        assert (request, reads, at_eof, after) == (b"GET 100\n", 1, True, b"")
        # A request in several chunks whose FIN comes later is gathered whole (the general loop).
        stream = await conn.open_stream()
        stream.write(b"part one, ")
        await stream.drain()
        await conn.ping()
        await asyncio.sleep(0.1)
        stream.write(b"part two")
        stream.write_eof()
        request, reads, at_eof, after = await asyncio.wait_for(seen.get(), WAIT)
        assert (request, at_eof, after) == (b"part one, part two", True, b"")


@pytest.mark.parametrize("general", [False, True])
@pytest.mark.parametrize("ending", ["peer_reset", "stop_sending", "close"])
async def test_idle_wait_ends_like_the_general_path(
    transport: str,
    general: bool,
    ending: str,
    running_server: Any,
    client_config: Callable[..., rudp.Config],
) -> None:
    """A read waiting on an idle stream ends on each kind of wake-up, as the general path's does."""

    async def handler(conn: rudp.Connection) -> None:
        async for stream in conn:
            await stream.read()
            if ending == "peer_reset":
                stream.reset(5)
            elif ending == "close":
                await conn.close(3)

    async with (
        running_server(handler, transport=transport) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport) as conn,
    ):
        stream = await conn.open_stream()
        if general:
            stream._idle = False  # type: ignore[attr-defined]
        reader = asyncio.ensure_future(stream.read())
        await asyncio.sleep(0)
        stream.write_eof()
        if ending == "stop_sending":
            await asyncio.sleep(0.05)
            stream.stop_sending(0)
            assert await asyncio.wait_for(reader, WAIT) == b""
        elif ending == "peer_reset":
            with pytest.raises(rudp.StreamReset) as reset:
                await asyncio.wait_for(reader, WAIT)
            assert reset.value.code == 5
        else:
            with pytest.raises(rudp.ConnectionClosed):
                await asyncio.wait_for(reader, WAIT)
