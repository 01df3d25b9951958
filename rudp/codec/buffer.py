"""Byte buffers for the codecs: a bounds-checked :class:`Reader` and an appending :class:`Writer`.

The reader works over a memoryview with an offset, so slicing out a block copies nothing. Every
out-of-bounds read raises :class:`rudp.errors.DecodeError` (never IndexError or struct.error), which is
what lets every decoder promise "malformed input raises only DecodeError".
"""

from __future__ import annotations

from rudp.codec.varint import VARINT_MAX, encode_varint
from rudp.errors import DecodeError, TransportErrorCode

BytesLike = bytes | bytearray | memoryview


class Reader:
    """Sequential reader over immutable bytes.

    ``error_code`` is the transport error code given to the :class:`DecodeError` raised when data runs
    out (FRAME_ENCODING_ERROR unless the caller decodes something else, e.g. transport parameters).
    """

    __slots__ = ("_data", "_end", "error_code", "position")

    def __init__(
        self,
        data: BytesLike,
        offset: int = 0,
        end: int | None = None,
        error_code: int = TransportErrorCode.FRAME_ENCODING_ERROR,
    ) -> None:
        self._data = data if isinstance(data, memoryview) else memoryview(data)
        self.position = offset
        """Offset of the next byte to read, from the start of the underlying data (an attribute, read
        once per frame; moved only by the reader's own methods and :meth:`seek`)."""
        self._end = len(self._data) if end is None else end
        self.error_code = error_code

    def _fail(self, what: str) -> DecodeError:
        return DecodeError(f"truncated {what}", self.error_code)

    @property
    def remaining(self) -> int:
        """Bytes left before the end."""
        return self._end - self.position

    def eof(self) -> bool:
        """True when every byte has been read."""
        return self.position >= self._end

    @property
    def data(self) -> memoryview:
        """The whole underlying buffer (not just the unread part)."""
        return self._data

    def seek(self, position: int) -> None:
        """Move to an absolute ``position`` (0 <= position <= end)."""
        if not 0 <= position <= self._end:
            raise self._fail("seek")
        self.position = position

    def pull_uint8(self) -> int:
        """Read one byte."""
        pos = self.position
        if pos >= self._end:
            raise self._fail("uint8")
        self.position = pos + 1
        return self._data[pos]

    def _pull_int(self, size: int, what: str) -> int:
        pos = self.position
        end = pos + size
        if end > self._end:
            raise self._fail(what)
        self.position = end
        return int.from_bytes(self._data[pos:end], "big")

    def pull_uint16(self) -> int:
        """Read a big-endian 16-bit integer."""
        pos = self.position
        if pos + 2 > self._end:
            raise self._fail("uint16")
        self.position = pos + 2
        data = self._data
        return (data[pos] << 8) | data[pos + 1]

    def pull_uint24(self) -> int:
        """Read a big-endian 24-bit integer."""
        return self._pull_int(3, "uint24")

    def pull_uint32(self) -> int:
        """Read a big-endian 32-bit integer."""
        return self._pull_int(4, "uint32")

    def pull_uint64(self) -> int:
        """Read a big-endian 64-bit integer."""
        return self._pull_int(8, "uint64")

    def pull_view(self, length: int) -> memoryview:
        """Return the next ``length`` bytes as a memoryview (no copy)."""
        pos = self.position
        end = pos + length
        if length < 0 or end > self._end:
            raise self._fail("block")
        self.position = end
        return self._data[pos:end]

    def pull_bytes(self, length: int) -> bytes:
        """Return the next ``length`` bytes as a bytes copy."""
        pos = self.position
        end = pos + length
        if length < 0 or end > self._end:
            raise self._fail("block")
        self.position = end
        return bytes(self._data[pos:end])

    def pull_rest(self) -> memoryview:
        """Return every byte up to the end (no copy)."""
        return self.pull_view(self._end - self.position)

    def pull_varint(self) -> int:
        """Read a QUIC varint (RFC 9000 §16)."""
        pos = self.position
        if pos >= self._end:
            raise self._fail("varint")
        data = self._data
        first = data[pos]
        kind = first >> 6
        if kind == 0:
            self.position = pos + 1
            return first
        length = 1 << kind
        end = pos + length
        if end > self._end:
            raise self._fail("varint")
        self.position = end
        return int.from_bytes(data[pos:end], "big") & ((1 << (length * 8 - 2)) - 1)

    def pull_block(self, length_size: int) -> memoryview:
        """Read a block prefixed by a ``length_size``-byte big-endian length (0 = varint length)."""
        if length_size == 0:
            length = self.pull_varint()
        elif length_size == 1:
            pos = self.position
            if pos >= self._end:
                raise self._fail("block")
            length = self._data[pos]
            self.position = pos + 1
        else:
            length = self._pull_int(length_size, "block")
        pos = self.position
        end = pos + length
        if end > self._end:
            raise self._fail("block")
        self.position = end
        return self._data[pos:end]

    def sub_reader(self, length: int) -> Reader:
        """Return a reader over the next ``length`` bytes and skip them here."""
        start = self.position
        self.pull_view(length)
        return Reader(self._data, start, start + length, self.error_code)


class Writer:
    """Appending writer over a growable bytearray."""

    __slots__ = ("_buf",)

    def __init__(self, initial: BytesLike = b"") -> None:
        self._buf = bytearray(initial)

    def __len__(self) -> int:
        return len(self._buf)

    @property
    def buffer(self) -> bytearray:
        """The underlying bytearray (mutable: used to patch lengths in place)."""
        return self._buf

    def getvalue(self) -> bytes:
        """Return everything written, as bytes."""
        return bytes(self._buf)

    def push_uint8(self, value: int) -> None:
        """Append one byte."""
        self._buf.append(value)

    def push_uint16(self, value: int) -> None:
        """Append a big-endian 16-bit integer."""
        self._buf += value.to_bytes(2, "big")

    def push_uint24(self, value: int) -> None:
        """Append a big-endian 24-bit integer."""
        self._buf += value.to_bytes(3, "big")

    def push_uint32(self, value: int) -> None:
        """Append a big-endian 32-bit integer."""
        self._buf += value.to_bytes(4, "big")

    def push_uint64(self, value: int) -> None:
        """Append a big-endian 64-bit integer."""
        self._buf += value.to_bytes(8, "big")

    def push_bytes(self, data: BytesLike) -> None:
        """Append raw bytes."""
        self._buf += data

    def push_varint(self, value: int, size: int = 0) -> None:
        """Append a QUIC varint (shortest form unless ``size`` is given).

        Raises:
            ValueError: if ``value`` is outside 0..2^62-1 or does not fit in ``size``.
        """
        if 0 <= value <= 0x3F and size in (0, 1):
            self._buf.append(value)
        elif size == 0 and 0 <= value <= 0x3FFF:
            self._buf += (0x4000 | value).to_bytes(2, "big")
        elif size == 0 and 0 <= value <= 0x3FFFFFFF:
            self._buf += (0x80000000 | value).to_bytes(4, "big")
        elif size == 0 and 0 <= value <= VARINT_MAX:
            self._buf += (0xC000000000000000 | value).to_bytes(8, "big")
        else:
            self._buf += encode_varint(value, size)

    def push_block(self, length_size: int, data: BytesLike) -> None:
        """Append ``data`` prefixed by its length (``length_size`` bytes, 0 = varint)."""
        if length_size == 0:
            self.push_varint(len(data))
        else:
            self._buf += len(data).to_bytes(length_size, "big")
        self._buf += data

    def block(self, length_size: int) -> _Block:
        """Write a length-prefixed block: the length is filled in when the ``with`` body ends.

        ``length_size`` is 1, 2, 3 or 4 bytes (TLS style); the body writes into this same writer.
        """
        return _Block(self, length_size)


class _Block:
    """The context manager of :meth:`Writer.block` (a plain class: a generator-based one costs a
    generator and its frame per block, and TLS messages are written with several blocks each)."""

    __slots__ = ("_length_size", "_start", "_writer")

    def __init__(self, writer: Writer, length_size: int) -> None:
        self._writer = writer
        self._length_size = length_size
        self._start = 0

    def __enter__(self) -> Writer:
        writer = self._writer
        buf = writer.buffer
        self._start = len(buf)
        buf += bytes(self._length_size)
        return writer

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is not None:
            return
        buf, start, length_size = self._writer.buffer, self._start, self._length_size
        length = len(buf) - start - length_size
        if length >= 1 << (8 * length_size):
            raise ValueError(f"block of {length} bytes too long for a {length_size}-byte length")
        buf[start : start + length_size] = length.to_bytes(length_size, "big")
