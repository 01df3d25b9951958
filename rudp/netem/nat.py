"""A rebinding NAT in front of the client, for connection-migration tests (IPv4 only).

Until the first rebinding the NAT is transparent. Each rebinding starts a new *epoch*: the client's
UDP/TCP flows get a fresh external source port (and, if asked, a fresh external address), replies to
the current mapping are translated back, and packets for a mapping of an earlier epoch are dropped, as
a real NAT drops traffic for an expired binding. IPv4 header and UDP/TCP checksums are recomputed after
every rewrite. IPv6 and IPv4 fragments pass untranslated (documented limitation).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

from rudp.netem.packet import (
    PROTO_TCP,
    PROTO_UDP,
    fix_ipv4_header_checksum,
    fix_transport_checksum,
    transport,
)


@dataclass(frozen=True, slots=True)
class NatConfig:
    """When and how the client's binding changes.

    `rebind_at` holds times (seconds after network start) at which to rebind; :meth:`Network.rebind`
    rebinds on demand. `port` rewrites the source port, `address` the source address (the new address
    is the client's plus the epoch number, inside the emulated subnet so it routes back).
    """

    rebind_at: tuple[float, ...] = ()
    port: bool = True
    address: bool = False


class Nat:
    """The translation state; sans-IO, fed with raw packets by the forwarder."""

    def __init__(self, client_address: str, config: NatConfig, rng: random.Random, started_at: float) -> None:
        self.config = config
        self.epoch = 0
        self._client = ipaddress.IPv4Address(client_address)
        self._client_bytes = self._client.packed
        self._external = self._client_bytes
        self._rng = rng
        self._pending = sorted(started_at + t for t in config.rebind_at)
        self._out: dict[tuple[int, int], int] = {}
        self._back: dict[tuple[int, int], int] = {}
        self._use_port = config.port

    @property
    def external_address(self) -> str:
        """The address the server currently sees for the client."""
        return str(ipaddress.IPv4Address(self._external))

    def rebind(self, port: bool | None = None, address: bool | None = None) -> None:
        """Start a new epoch now; `port`/`address` override the configured choice for this rebinding."""
        self.epoch += 1
        self._out.clear()
        self._back.clear()
        use_port = self.config.port if port is None else port
        use_address = self.config.address if address is None else address
        self._use_port = use_port
        if use_address:
            self._external = (self._client + self.epoch).packed

    def tick(self, now: float) -> None:
        """Apply scheduled rebindings that are due."""
        while self._pending and self._pending[0] <= now:
            self._pending.pop(0)
            self.rebind()

    def _map_port(self, proto: int, sport: int) -> int:
        key = (proto, sport)
        mapped = self._out.get(key)
        if mapped is None:
            mapped = sport
            if self._use_port:
                while mapped == sport or (proto, mapped) in self._back:
                    mapped = self._rng.randrange(20000, 61000)
            self._out[key] = mapped
            self._back[(proto, mapped)] = sport
        return mapped

    def outbound(self, pkt: bytearray) -> bool:
        """Translate a client-to-server packet in place; return whether it was rewritten."""
        if self.epoch == 0 or pkt[0] >> 4 != 4 or pkt[12:16] != self._client_bytes:
            return False
        proto, offset = transport(pkt)
        if proto not in (PROTO_UDP, PROTO_TCP) or offset < 0 or len(pkt) < offset + 8:
            return False
        sport = int.from_bytes(pkt[offset : offset + 2], "big")
        mapped = self._map_port(proto, sport)
        pkt[12:16] = self._external
        pkt[offset : offset + 2] = mapped.to_bytes(2, "big")
        fix_ipv4_header_checksum(pkt)
        fix_transport_checksum(pkt, proto, offset)
        return True

    def inbound(self, pkt: bytearray) -> bool | None:
        """Translate a server-to-client packet in place.

        Returns True when rewritten, False when not NAT traffic, and None when the packet is for a stale
        or unknown binding and must be dropped.
        """
        if self.epoch == 0 or pkt[0] >> 4 != 4:
            return False
        dst = pkt[16:20]
        if dst != self._external and dst != self._client_bytes:
            return False
        proto, offset = transport(pkt)
        if proto not in (PROTO_UDP, PROTO_TCP) or offset < 0 or len(pkt) < offset + 8:
            if dst == self._external and dst != self._client_bytes:
                pkt[16:20] = self._client_bytes
                fix_ipv4_header_checksum(pkt)
                return True
            return False
        if dst != self._external:
            return None
        dport = int.from_bytes(pkt[offset + 2 : offset + 4], "big")
        original = self._back.get((proto, dport))
        if original is None:
            return None
        pkt[16:20] = self._client_bytes
        pkt[offset + 2 : offset + 4] = original.to_bytes(2, "big")
        fix_ipv4_header_checksum(pkt)
        fix_transport_checksum(pkt, proto, offset)
        return True
