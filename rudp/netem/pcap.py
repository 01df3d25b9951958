"""A minimal pcap writer and reader for raw IP packets (LINKTYPE_RAW), nanosecond timestamps.

The forwarder writes one file per side of the link: the packets as that side's host sends and receives
them (so the client file shows the client's own addresses and the server file the NAT-translated ones).
Timestamps are wall-clock (as Wireshark expects) derived from the monotonic arrival/delivery times.
The reader exists so tests can check captures without tshark.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from typing import BinaryIO, Final

MAGIC_NS: Final = 0xA1B23C4D
MAGIC_US: Final = 0xA1B2C3D4
LINKTYPE_RAW: Final = 101
_HEADER: Final = struct.Struct("<IHHiIII")
_RECORD: Final = struct.Struct("<IIII")


class PcapError(ValueError):
    """A capture file is malformed."""


class PcapWriter:
    """Append raw IP packets to a pcap file. Buffered: call :meth:`close` (or use `with`) to flush."""

    def __init__(self, path: str, snaplen: int = 65535) -> None:
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._snaplen = snaplen
        self._file.write(_HEADER.pack(MAGIC_NS, 2, 4, 0, 0, snaplen, LINKTYPE_RAW))
        # Map the monotonic clock used for scheduling onto the wall clock once.
        self._offset_ns = time.time_ns() - time.monotonic_ns()
        self.count = 0

    def write(self, packet: bytes | bytearray, monotonic_at: float) -> None:
        """Record `packet` as seen at `monotonic_at` (seconds on time.monotonic's clock)."""
        ns = int(monotonic_at * 1e9) + self._offset_ns
        data = packet[: self._snaplen]
        self._file.write(_RECORD.pack(ns // 1_000_000_000, ns % 1_000_000_000, len(data), len(packet)))
        self._file.write(data)
        self.count += 1

    def flush(self) -> None:
        """Push buffered records to the file."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_pcap(path: str) -> Iterator[tuple[float, bytes]]:
    """Yield (timestamp in seconds, packet bytes) from a pcap file (any byte order, us or ns).

    Raises:
        PcapError: bad magic number or a truncated record.
    """
    with open(path, "rb") as f:
        head = f.read(_HEADER.size)
        if len(head) < _HEADER.size:
            raise PcapError("truncated pcap header")
        magic_le = struct.unpack("<I", head[:4])[0]
        for order in ("<", ">"):
            magic = struct.unpack(order + "I", head[:4])[0]
            if magic in (MAGIC_NS, MAGIC_US):
                break
        else:
            raise PcapError(f"bad pcap magic {magic_le:#x}")
        scale = 1e-9 if magic == MAGIC_NS else 1e-6
        record = struct.Struct(order + "IIII")
        while True:
            rec = f.read(record.size)
            if not rec:
                return
            if len(rec) < record.size:
                raise PcapError("truncated pcap record header")
            sec, frac, incl, _orig = record.unpack(rec)
            data = f.read(incl)
            if len(data) < incl:
                raise PcapError("truncated pcap record")
            yield sec + frac * scale, data
