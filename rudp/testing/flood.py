"""A handshake flood for testing servers: valid client Initials from many source addresses.

:func:`initial_variants` turns one real client Initial into many that decrypt correctly, each with its
own Destination Connection ID (so each looks like a new client and costs the server a full
ClientHello), by re-protecting the same payload under the Initial keys of each new DCID (RFC 9001
§5.2). :class:`InitialFlood` sends them round-robin from sockets bound to many addresses of
127.0.0.0/8 (Linux routes the whole block to loopback), as fast as one process can, never reading
the answers: a flooder with spoofed sources never sees the server's Retry.

Run by hand: ``python -m rudp.testing.flood HOST PORT --seconds 20`` prints datagrams sent per second.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from collections.abc import Iterator

from rudp.codec.packet import parse_header
from rudp.config import Config
from rudp.crypto.keys import initial_secrets
from rudp.crypto.protection import PacketProtection, UnprotectedPacket
from rudp.crypto.suites import CipherSuite

Address = tuple[str, int]

_SOCKET_BUFFER = 4 << 20


def _client_initial(server: Address) -> bytes:
    from rudp.quic.connection import QuicConnection

    config = Config(verify=False, server_name="localhost")
    conn = QuicConnection.client(config, server_address=server, now=0.0)
    datagram, _ = conn.datagrams_to_send(0.0)[0]
    return datagram


def initial_variants(count: int, server: Address = ("127.0.0.1", 4433), *, seed: bytes = b"") -> list[bytes]:
    """``count`` valid client Initial datagrams, each with a distinct 8-byte DCID (one ClientHello)."""
    datagram = _client_initial(server)
    header = parse_header(datagram)
    version = header.version if header.version is not None else 1
    client_secret, _ = initial_secrets(header.dcid, version)
    suite = CipherSuite.AES_128_GCM_SHA256
    opened = PacketProtection(suite, client_secret, version).unprotect(datagram, header.pn_offset, 0)
    if not isinstance(opened, UnprotectedPacket) or header.end != len(datagram):
        raise RuntimeError("could not open our own client Initial")
    dcid_at = 6  # first byte, 4-byte version, DCID length
    variants = []
    for i in range(count):
        dcid = (seed + i.to_bytes(8, "big"))[-8:] if seed else os.urandom(8)
        plain_header = bytearray(opened.header)
        plain_header[dcid_at : dcid_at + 8] = dcid
        secret, _ = initial_secrets(dcid, version)
        variants.append(
            PacketProtection(suite, secret, version).protect(
                bytes(plain_header), opened.payload, opened.packet_number, header.pn_offset, opened.pn_length
            )
        )
    return variants


def source_addresses(count: int) -> Iterator[str]:
    """``count`` distinct loopback addresses: 127.0.1.1, 127.0.1.2, ... (127.0.0.1 is left to real
    clients)."""
    for i in range(count):
        yield f"127.{(i >> 16) & 0xFF}.{1 + ((i >> 8) & 0xFF)}.{1 + (i & 0xFF) % 254}"


class InitialFlood:
    """Sends valid Initials to ``target`` from ``sources`` addresses, never reading replies."""

    def __init__(self, target: Address, *, sources: int = 64, variants: int = 2000) -> None:
        self.target = target
        self.datagrams = initial_variants(variants, target)
        self.sent = 0
        self._sockets: list[socket.socket] = []
        for host in source_addresses(sources):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
            sock.bind((host, 0))
            sock.setblocking(False)
            self._sockets.append(sock)

    def send(self, count: int) -> int:
        """Send ``count`` datagrams (full socket buffers drop silently, as on a real path)."""
        socks, datagrams, target = self._sockets, self.datagrams, self.target
        n_socks, n_data = len(socks), len(datagrams)
        start = self.sent
        for i in range(start, start + count):
            try:  # noqa: SIM105 (contextlib.suppress costs a context manager per datagram)
                socks[i % n_socks].sendto(datagrams[i % n_data], target)
            except (BlockingIOError, ConnectionRefusedError):
                pass
        self.sent += count
        return count

    def run(self, seconds: float, *, rate: float | None = None) -> int:
        """Flood for ``seconds``, at ``rate`` datagrams per second or as fast as possible; return the
        number sent."""
        start = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - start) < seconds:
            if rate is not None and sent >= rate * elapsed:
                time.sleep(0.001)
                continue
            sent += self.send(64)
        return sent

    def close(self) -> None:
        """Close every socket."""
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()


def main(argv: list[str] | None = None) -> int:
    """``python -m rudp.testing.flood HOST PORT [--seconds S] [--rate R] [--sources N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=None, help="datagrams per second (default: max)")
    parser.add_argument("--sources", type=int, default=64)
    parser.add_argument("--variants", type=int, default=2000)
    args = parser.parse_args(argv)
    flood = InitialFlood((args.host, args.port), sources=args.sources, variants=args.variants)
    try:
        sent = flood.run(args.seconds, rate=args.rate)
    finally:
        flood.close()
    print(f"sent {sent} Initials in {args.seconds:.1f} s ({sent / args.seconds:.0f}/s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
