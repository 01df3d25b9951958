"""Stream: one QUIC (or TCP-baseline) stream as an asyncio reader/writer pair.

Owns the application-facing stream object: reading with the ``asyncio.StreamReader`` names, writing with
the ``asyncio.StreamWriter`` names, and real back-pressure. It does not own protocol state: bytes are
pulled from and pushed into the sans-IO core through the :class:`~rudp.aio.driver.ConnectionDriver`,
and events reach it through the :class:`~rudp.aio.connection.Connection`.

Memory is bounded on both sides. Reading consumes bytes from the core, and only consumed bytes return
flow-control credit to the peer. Writing hands bytes to the core, whose per-stream send buffer is bounded
(``Config.send_buffer_bytes``); what the core does not take waits in a local queue that :meth:`drain`
empties, so a writer that awaits ``drain()`` after each ``write()`` never holds more than one write plus
the core's budget.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from rudp.aio.driver import ConnectionDriver
from rudp.errors import (
    ConnectionClosed,
    RudpError,
    StreamReset,
    StreamStateError,
    StreamStopped,
    fresh_close_error,
)
from rudp.quic.streams.ids import SERVER_INITIATED_BIT, UNIDIRECTIONAL_BIT

if TYPE_CHECKING:
    from rudp.aio.connection import Connection

DEFAULT_READUNTIL_LIMIT = 64 * 1024
"""Default ``limit`` of :meth:`Stream.readuntil` (bytes searched before giving up)."""


def _abandoned(driver: ConnectionDriver, stream_id: int, loop: asyncio.AbstractEventLoop) -> None:
    """The application dropped a stream: stop reading it (deferred, as GC may run inside the core)."""
    if not loop.is_closed():
        loop.call_soon(_stop_reading, driver, stream_id)


def _stop_reading(driver: ConnectionDriver, stream_id: int) -> None:
    core = driver.core
    try:
        if not core.is_closed and not core.stream_at_eof(stream_id):
            core.stop_sending(stream_id, 0)
            driver.after_command()
    except RudpError:
        return  # the stream or the connection is already gone


class Wakeup(list["asyncio.Future[None]"]):
    """Wakes the tasks waiting for a stream (or a connection's incoming streams) to change (what
    ``asyncio.Event.clear(); await wait()`` did), without an Event: the list of waiting futures
    itself, so that making one (three per stream) runs no Python code, and a wake-up with nobody
    waiting costs one length test. Waiters re-check their condition after waking."""

    __slots__ = ()

    async def wait(self) -> None:
        """Wait for the next :meth:`set` (one that came before this call does not count)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self:
                self.remove(waiter)

    def set(self) -> None:
        """Wake every task waiting now."""
        if self:
            for waiter in self:
                if not waiter.done():
                    waiter.set_result(None)


NOBODY_WAITS = Wakeup()
"""The Wakeup of a stream nobody waited on yet, shared (setting it does nothing): the first wait
replaces it with the stream's own, so that most streams make none (issue 13: two streams per small
request). Nothing ever waits on this one."""


class Stream:
    """A bidirectional or unidirectional stream of a :class:`~rudp.aio.connection.Connection`.

    Get one from ``Connection.open_stream()``, ``open_uni_stream()`` or ``accept_stream()``; never
    construct it directly. Reading methods may be used by one task at a time, as may writing methods;
    a reader and a writer may run concurrently. Cancelling a task blocked in a read or in
    :meth:`drain` leaves the stream and its connection usable (unread data stays readable, written data
    stays queued).

    When the connection closes, reads still return the bytes that had arrived (``asyncio.StreamReader``
    semantics): a stream whose FIN had arrived reads to its end normally, otherwise the read that finds
    nothing left raises the close error (:class:`~rudp.errors.ConnectionClosed`) instead of waiting.
    :meth:`write`, :meth:`write_eof` and :meth:`drain` raise it at once; written data not yet
    delivered is abandoned.

    A Stream is both halves of an asyncio stream pair: it has the ``asyncio.StreamReader`` reading
    methods (:meth:`read`, :meth:`readexactly`, :meth:`readuntil`, :meth:`readline`, :meth:`at_eof`) and
    the ``asyncio.StreamWriter`` writing ones (:meth:`write`, :meth:`writelines`, :meth:`write_eof`,
    :meth:`can_write_eof`, :meth:`drain`, :meth:`close`, :meth:`is_closing`, :meth:`wait_closed`,
    :meth:`get_extra_info`), with asyncio's exceptions where asyncio defines them
    (``IncompleteReadError``, ``LimitOverrunError``, and ``ValueError`` from :meth:`readline`). One
    difference: ``async for`` yields **chunks** as they arrive, not lines as ``asyncio.StreamReader``
    does; for lines, call :meth:`readline` until it returns ``b""``.
    """

    __slots__ = (
        "__weakref__",
        "_busy",
        "_close_hook",
        "_close_task",
        "_closing",
        "_conn_error",
        "_connection",
        "_driver",
        "_eof_requested",
        "_fin_queued",
        "_id",
        "_idle",
        "_local_reset",
        "_loop",
        "_peer_reset",
        "_peer_stopped",
        "_pending",
        "_pending_bytes",
        "_rbuf",
        "_read_finished",
        "_readable",
        "_readable_side",
        "_writable",
        "_writable_side",
    )

    def __init__(
        self,
        driver: ConnectionDriver,
        stream_id: int,
        *,
        is_client: bool,
        busy: set[Stream] | None = None,
        connection: Connection | None = None,
    ) -> None:
        self._driver = driver
        self._busy: set[Stream] = set() if busy is None else busy
        """Where the stream keeps itself alive while it has queued data (the connection's set)."""
        self._id = stream_id
        # can_receive / can_send (rudp.quic.streams.ids) inline: one stream object per request.
        bidi = not stream_id & UNIDIRECTIONAL_BIT
        local = (not stream_id & SERVER_INITIATED_BIT) == is_client
        self._readable_side = bidi or not local
        self._writable_side = bidi or local
        self._rbuf = bytearray()
        self._readable = NOBODY_WAITS
        self._writable = NOBODY_WAITS
        """Wakes :meth:`drain` and :meth:`wait_closed` (each re-checks what it waits for)."""
        self._pending: deque[bytes | memoryview] | None = None  # made by the first write the core
        # does not take whole (most streams never need it)
        self._pending_bytes = 0
        self._eof_requested = False
        self._fin_queued = False
        self._local_reset = False
        self._peer_reset: int | None = None
        self._peer_stopped: int | None = None
        self._conn_error: ConnectionClosed | None = None
        self._connection = connection
        self._closing = False
        self._close_hook: Callable[[], Coroutine[Any, Any, None]] | None = None
        """Run by :meth:`close` after the stream's own closing (``rudp.open_connection`` closes the
        connection with it)."""
        self._close_task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._read_finished = not self._readable_side
        """Nothing more to read from the core: the end was read, the peer reset, we stopped reading,
        or the connection closed (then dropping the stream needs no STOP_SENDING)."""
        self._idle = local and bidi
        """The core has nothing new to read for this stream: a read found nothing (or the stream is
        ours and new) and no wake-up came since. Data reaching the core makes a StreamReadable event
        (the link dispatches an input's events before any task runs), and every change that ends a
        wait wakes :attr:`_readable`, which clears this: a read then waits without asking the core
        first (issue 13: the first read of each request the client makes)."""

    # ------------------------------------------------------------------ properties

    @property
    def stream_id(self) -> int:
        """The stream's ID (RFC 9000 §2.1 numbering, for both transports)."""
        return self._id

    @property
    def readable(self) -> bool:
        """True if this side may read (False for a unidirectional stream we opened)."""
        return self._readable_side

    @property
    def writable(self) -> bool:
        """True if this side may write (False for a unidirectional stream the peer opened)."""
        return self._writable_side

    @property
    def buffered_bytes(self) -> int:
        """Written bytes the core has not accepted yet (what :meth:`drain` waits for)."""
        return self._pending_bytes

    def at_eof(self) -> bool:
        """True when nothing more can be read: the FIN was read, the peer reset, or we stopped reading."""
        if self._rbuf:
            return False
        if not self._readable_side or self._peer_reset is not None:
            return True
        return self._driver.core.stream_at_eof(self._id)

    # ------------------------------------------------------------------ reading

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes; with ``n < 0`` read until the end of the stream.

        Returns b"" only at the end of the stream (or for ``n == 0``). Waits until at least one byte
        is available.

        Raises:
            StreamReset: the peer reset the stream (``code`` is its error code).
            ConnectionClosed: the connection ended before the end of the stream and no byte is left to
                read (with ``n < 0``: before the end; what was gathered stays buffered for later reads).
            StreamStateError: the stream is send-only.
        """
        if n == 0:
            return b""
        if n > 0:
            if self._rbuf:
                return await self._read_some(n)
            return await self._read_core(n)  # (_read_some with nothing buffered: one coroutine less)
        if not self._rbuf:
            # Often the whole stream is in (a small request): once the core has its end, the one
            # chunk is all of it, as the loop below would find with one read more.
            chunk = await self._read_core(-1)
            if not chunk or (self._peer_reset is None and self._driver.core.stream_at_eof(self._id)):
                if chunk:
                    self._read_finished = True
                return chunk
            self._rbuf += chunk
        # Gather in the stream's own buffer: if the read fails or is cancelled, nothing is lost.
        while chunk := await self._read_core(-1):
            self._rbuf += chunk
        data = bytes(self._rbuf)
        self._rbuf.clear()
        return data

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Raises:
            asyncio.IncompleteReadError: the stream ended first (``partial`` holds what was read).
            StreamReset, ConnectionClosed, StreamStateError: as :meth:`read`.
        """
        if n < 0:
            raise ValueError("readexactly() needs a non-negative size")
        # Collect in the stream's own buffer, so a cancelled readexactly() loses nothing: the bytes
        # stay readable, as asyncio.StreamReader promises.
        while len(self._rbuf) < n:
            chunk = await self._read_core(n - len(self._rbuf))
            if not chunk:
                partial = bytes(self._rbuf)
                self._rbuf.clear()
                raise asyncio.IncompleteReadError(partial, n)
            self._rbuf += chunk
        data = bytes(self._rbuf[:n])
        del self._rbuf[:n]
        return data

    async def readuntil(self, separator: bytes = b"\n", *, limit: int = DEFAULT_READUNTIL_LIMIT) -> bytes:
        """Read up to and including ``separator``; bytes after it stay buffered for the next read.

        Raises:
            asyncio.IncompleteReadError: the stream ended before the separator (``partial`` holds the
                data, which is consumed).
            asyncio.LimitOverrunError: ``limit`` bytes were buffered without a separator (the data stays
                buffered).
            StreamReset, ConnectionClosed, StreamStateError: as :meth:`read`.
        """
        if not separator:
            raise ValueError("separator must not be empty")
        start = 0
        while True:
            index = self._rbuf.find(separator, start)
            if index >= 0:
                end = index + len(separator)
                line = bytes(self._rbuf[:end])
                del self._rbuf[:end]
                return line
            if len(self._rbuf) > limit:
                raise asyncio.LimitOverrunError("separator not found within the limit", len(self._rbuf))
            start = max(0, len(self._rbuf) - len(separator) + 1)
            chunk = await self._read_core(-1)
            if not chunk:
                partial = bytes(self._rbuf)
                self._rbuf.clear()
                raise asyncio.IncompleteReadError(partial, None)
            self._rbuf += chunk

    async def readline(self, *, limit: int = DEFAULT_READUNTIL_LIMIT) -> bytes:
        """Read one line, up to and including ``b"\\n"``, as ``asyncio.StreamReader.readline()`` does.

        At the end of the stream it returns what is left (a last line without ``b"\\n"``), then b"".

        Raises:
            ValueError: the line is longer than ``limit`` bytes (as asyncio: the line is dropped up to
                its newline if that arrived, else every buffered byte is dropped).
            StreamReset, ConnectionClosed, StreamStateError: as :meth:`read`.
        """
        try:
            line = await self.readuntil(b"\n", limit=limit)
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError as exc:
            self._rbuf.clear()
            raise ValueError(exc.args[0]) from None
        if len(line) - 1 > limit:
            raise ValueError("separator found, but the line is longer than the limit")
        return line

    def __aiter__(self) -> Stream:
        """Iterate over **chunks** (not lines) as they arrive, until the end of the stream.

        ``asyncio.StreamReader`` iterates over lines; a rudp Stream yields each chunk as it arrives
        (its size depends on the network), which is what file transfers and framed protocols want and
        what rudp has always done. For lines, call :meth:`readline` until it returns b"".
        """
        return self

    async def __anext__(self) -> bytes:
        """The next chunk (any size); StopAsyncIteration at the end of the stream."""
        chunk = await self._read_some(-1)
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def _read_some(self, max_bytes: int) -> bytes:
        if self._rbuf:
            size = len(self._rbuf) if max_bytes < 0 else min(max_bytes, len(self._rbuf))
            data = bytes(self._rbuf[:size])
            del self._rbuf[:size]
            return data
        return await self._read_core(max_bytes)

    async def _read_core(self, max_bytes: int) -> bytes:
        """Bytes from the core (b"" only at the end of the stream), waiting for them if needed."""
        if not self._readable_side:
            raise StreamStateError(self._id, f"stream {self._id} is send-only")
        core = self._driver.core
        while True:
            if self._peer_reset is not None:
                raise StreamReset(self._id, self._peer_reset)
            if not self._idle:
                data = core.read_stream(self._id, max_bytes)
                if data:
                    self._driver.after_read()  # consumed bytes may return credit: let it go out
                    return data
                if core.stream_at_eof(self._id):
                    if self._peer_reset is not None:
                        raise StreamReset(self._id, self._peer_reset)
                    self._read_finished = True
                    return b""
            if self._conn_error is not None:
                raise fresh_close_error(self._conn_error)
            self._idle = True
            readable = self._readable
            if readable is NOBODY_WAITS:
                readable = self._readable = Wakeup()
            await readable.wait()

    # ------------------------------------------------------------------ writing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` for sending; follow with ``await drain()`` to apply back-pressure.

        Raises:
            StreamStopped: the peer sent STOP_SENDING.
            StreamStateError: after :meth:`write_eof` or :meth:`reset`, or on a receive-only stream.
            ConnectionClosed: the connection is closed.
        """
        if (
            self._local_reset or self._peer_stopped is not None or self._conn_error is not None
        ) or not self._writable_side:
            self._check_can_write()  # raises (the test inline: one write per small request)
        if self._eof_requested:
            raise StreamStateError(self._id, f"stream {self._id}: write() after write_eof()")
        if not data:
            return
        pending = self._pending
        if not pending:
            # (The core copies what it keeps, but keeps bytes as they are: immutable.)
            accepted = self._send(data if type(data) is bytes else memoryview(data), fin=False)
            if accepted == len(data):
                return
            view = memoryview(data)[accepted:]
            if pending is None:
                pending = self._pending = deque()
        else:
            view = memoryview(data)
        pending.append(bytes(view))  # a copy: the caller may reuse its buffer
        self._pending_bytes += len(view)
        self._busy.add(self)

    def writelines(self, chunks: list[bytes]) -> None:
        """Write each chunk in order (see :meth:`write`)."""
        for chunk in chunks:
            self.write(chunk)

    def write_eof(self) -> None:
        """Finish the stream (FIN after the queued data); idempotent.

        Raises:
            StreamStopped, StreamStateError, ConnectionClosed: as :meth:`write`.
        """
        if self._eof_requested:
            return
        if (
            self._local_reset or self._peer_stopped is not None or self._conn_error is not None
        ) or not self._writable_side:
            self._check_can_write()  # raises
        self._eof_requested = True
        if self._pending:
            self._push()
        elif not self._fin_queued:
            self._send(b"", fin=True)  # (_push with nothing queued: not kept alive, just the FIN)

    def can_write_eof(self) -> bool:
        """Always True for a sending stream (the StreamWriter name)."""
        return self._writable_side

    async def drain(self) -> None:
        """Wait until the core has accepted everything written so far.

        Returns at once when nothing is queued locally. The core accepts bytes as acknowledgements free
        its bounded send buffer, so a fast writer to a slow reader waits here.

        Raises:
            StreamStopped: the peer sent STOP_SENDING (queued data is dropped).
            StreamStateError: the stream was reset locally.
            ConnectionClosed: the connection is closed (at once, even with nothing queued: what the core
                had not delivered is abandoned).
        """
        while self._pending or (self._eof_requested and not self._fin_queued):
            self._check_can_write()
            await self._writable_wakeup().wait()
        if self._peer_stopped is not None:
            raise StreamStopped(self._id, self._peer_stopped)
        if self._local_reset:
            # reset() dropped what was queued: the data was not accepted, say so.
            raise StreamStateError(self._id, f"stream {self._id} was reset locally")
        if self._conn_error is not None and self._writable_side:
            raise fresh_close_error(self._conn_error)

    def reset(self, code: int = 0) -> None:
        """Abandon sending: drop queued data and send RESET_STREAM with ``code``; idempotent.

        Raises:
            StreamStateError: on a receive-only stream.
        """
        if not self._writable_side:
            raise StreamStateError(self._id, f"stream {self._id} is receive-only")
        if self._local_reset or self._peer_stopped is not None or self._conn_error is not None:
            return
        self._local_reset = True
        self._clear_pending()
        self._driver.core.reset_stream(self._id, code)
        self._driver.after_command()
        self._writable.set()

    def stop_sending(self, code: int = 0) -> None:
        """Stop reading: drop buffered data and ask the peer to stop sending (STOP_SENDING ``code``).

        Later reads return b"" (end of stream).

        Raises:
            StreamStateError: on a send-only stream.
        """
        if not self._readable_side:
            raise StreamStateError(self._id, f"stream {self._id} is send-only")
        self._rbuf.clear()
        if self._conn_error is None:
            self._driver.core.stop_sending(self._id, code)
            self._driver.after_command()
        self._read_finished = True
        self._idle = False
        self._readable.set()

    # ------------------------------------------------------------------ closing (StreamWriter names)

    def close(self) -> None:
        """Close the stream as ``StreamWriter.close()`` closes a socket; idempotent, never raises.

        Finishes the sending side (FIN after what is queued, which is still delivered) and, unless the
        peer's data was read to its end, stops reading it (STOP_SENDING code 0; unread bytes are
        dropped). The connection stays open for its other streams, except for the stream of
        :func:`rudp.open_connection`, whose connection is then closed too (see there). Follow with
        ``await wait_closed()``.
        """
        if self._closing:
            return
        self._closing = True
        if self._writable_side:
            with contextlib.suppress(RudpError):
                self.write_eof()  # a no-op when reset, stopped or closed: the FIN cannot matter then
        if self._readable_side and not self.at_eof() and self._conn_error is None:
            with contextlib.suppress(RudpError):
                self.stop_sending(0)
        if self._close_hook is not None:
            self._close_task = asyncio.get_running_loop().create_task(self._close_hook())
        self._writable.set()  # (what wait_closed waits for)

    def is_closing(self) -> bool:
        """True once :meth:`close` was called or the connection closed (``StreamWriter.is_closing``)."""
        return self._closing or self._conn_error is not None

    async def wait_closed(self) -> None:
        """Wait until :meth:`close` took effect: what was written and the FIN are handed to the
        connection (and, for :func:`rudp.open_connection`'s stream, the connection is closed).

        As ``StreamWriter.wait_closed()`` it waits for :meth:`close` to be called; failures of the
        stream (the peer stopped it, the connection closed) are not raised here, :meth:`drain` and the
        reads report them.
        """
        while not self._closing:
            await self._writable_wakeup().wait()
        if self._writable_side:
            with contextlib.suppress(RudpError):
                await self.drain()
        task = self._close_task
        if task is not None:
            with contextlib.suppress(RudpError):
                await asyncio.shield(task)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Details of the stream and its connection, with ``asyncio.StreamWriter.get_extra_info`` names.

        The same on both transports: ``"peername"`` and ``"sockname"`` ((host, port) tuples; a QUIC
        server bound to a wildcard address reports that address), ``"cipher"`` (``(name, "TLSv1.3",
        secret bits)`` as ``ssl.SSLSocket.cipher()``), ``"peercert"`` (the peer's certificate as the
        dictionary ``ssl.SSLSocket.getpeercert()`` gives, or None if it sent none), and rudp's
        ``"stream_id"`` and ``"connection"`` (the :class:`~rudp.aio.connection.Connection`). Any other
        name gives ``default``.
        """
        if name == "stream_id":
            return self._id
        if self._connection is None:
            return default
        if name == "connection":
            return self._connection
        return self._connection.get_extra_info(name, default)

    def _writable_wakeup(self) -> Wakeup:
        """The stream's own writable Wakeup (made by the first wait)."""
        if self._writable is NOBODY_WAITS:
            self._writable = Wakeup()
        return self._writable

    def _check_can_write(self) -> None:
        if not self._writable_side:
            raise StreamStateError(self._id, f"stream {self._id} is receive-only")
        if self._local_reset:
            raise StreamStateError(self._id, f"stream {self._id} was reset")
        if self._peer_stopped is not None:
            raise StreamStopped(self._id, self._peer_stopped)
        if self._conn_error is not None:
            raise fresh_close_error(self._conn_error)

    def _send(self, data: bytes | memoryview, *, fin: bool) -> int:
        accepted = self._driver.core.send_stream(self._id, data, fin=fin)
        if fin and accepted == len(data):
            self._fin_queued = True
        self._driver.after_command()
        return accepted

    def _push(self) -> None:
        """Move queued bytes (and the FIN) into the core as far as its budget allows."""
        pending = self._pending
        while pending:  # (None: nothing was ever queued)
            chunk = pending[0]
            last = len(pending) == 1
            accepted = self._send(chunk, fin=last and self._eof_requested)
            self._pending_bytes -= accepted
            if accepted < len(chunk):
                pending[0] = chunk[accepted:]
                return
            pending.popleft()
        self._busy.discard(self)
        if self._eof_requested and not self._fin_queued:
            self._send(b"", fin=True)

    def _clear_pending(self) -> None:
        self._pending = None
        self._pending_bytes = 0
        self._busy.discard(self)

    # ------------------------------------------------------------------ events (from Connection)

    def _on_readable(self) -> None:
        self._idle = False
        self._readable.set()

    def _on_writable(self) -> None:
        if self._local_reset or self._peer_stopped is not None or self._conn_error is not None:
            return
        try:
            self._push()
        except (StreamStateError, ConnectionClosed):
            self._clear_pending()  # the core refused: the next drain() reports why
        self._writable.set()

    def _on_peer_reset(self, code: int) -> None:
        self._peer_reset = code
        self._idle = False
        self._readable.set()

    def _on_peer_stop(self, code: int) -> None:
        self._peer_stopped = code
        self._clear_pending()
        self._writable.set()

    def _on_connection_closed(self, error: ConnectionClosed) -> None:
        self._conn_error = error
        self._clear_pending()  # it can never be sent now
        self._idle = False
        self._readable.set()
        self._writable.set()

    def __del__(self) -> None:
        # A stream dropped unread would pin its bytes in the core and leak connection credit: stop
        # reading it (deferred: the last reference may go inside the core).
        try:
            if self._connection is not None:
                self._connection._forget_stream(self._id)
            finished = self._read_finished or self._peer_reset is not None or self._conn_error is not None
            if not finished:
                _abandoned(self._driver, self._id, self._loop)
        except AttributeError:  # __init__ did not finish
            return

    def __repr__(self) -> str:
        return f"<rudp.Stream id={self._id}>"


__all__ = ["DEFAULT_READUNTIL_LIMIT", "Stream"]
