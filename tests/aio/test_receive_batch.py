"""UdpEndpoint._on_datagrams: a socket wake-up's batch goes to the core in one call, each datagram with
its peer address normalized to (host, port) once per distinct address, and counted by ECN mark."""

from __future__ import annotations

from typing import Any

import rudp
from rudp.aio.endpoint import UdpEndpoint
from rudp.quic.connection import QuicConnection


class _Core:
    """Stands for the QuicEndpoint: records what each batch call receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Any], float, Any]] = []

    def receive_datagrams(self, batch: Any, now: float, *, local: Any = None) -> list[QuicConnection]:
        self.calls.append((list(batch), now, local))
        return []

    @property
    def changed(self) -> list[QuicConnection]:
        return []

    stateless_pending = False
    handshakes_in_progress = 0


async def test_a_batch_is_one_core_call_with_normalized_addresses() -> None:
    endpoint = UdpEndpoint(rudp.Config())
    core = _Core()
    endpoint.quic = core  # type: ignore[assignment]
    endpoint.flush = lambda: 0  # type: ignore[method-assign]
    v4 = ("10.0.0.1", 5000)
    v6 = ("2001:db8::1", 443, 0, 7)  # flowinfo and scope id, as an IPv6 socket reports them
    batch = [
        (b"a", v4, 2),
        (b"b", v4, 2),  # the same address object (a GRO buffer's segments share it)
        (b"c", ("10.0.0.1", 5000), 0),  # an equal address, another object
        (b"d", v6, 3),
        (b"e", ("10.0.0.9", 5000), 1),
        (b"f", v4, 2),
    ]
    endpoint._on_datagrams(batch, local=("10.0.0.2", 4433))
    assert len(core.calls) == 1
    routed, _, local = core.calls[0]
    assert local == ("10.0.0.2", 4433)
    assert [(data, addr, ecn) for data, addr, ecn in routed] == [
        (b"a", ("10.0.0.1", 5000), 2),
        (b"b", ("10.0.0.1", 5000), 2),
        (b"c", ("10.0.0.1", 5000), 0),
        (b"d", ("2001:db8::1", 443), 3),
        (b"e", ("10.0.0.9", 5000), 1),
        (b"f", ("10.0.0.1", 5000), 2),
    ]
    assert endpoint.ecn_counts == [1, 1, 3, 1]


async def test_an_ipv4_batch_goes_to_the_core_as_it_is() -> None:
    """Addresses an IPv4 socket reports are (host, port) already: the batch is handed over without a
    copy (one tuple per datagram less), the marks still counted; one address that is not normalized
    anywhere in the batch (here the last) makes the whole batch normalized."""
    endpoint = UdpEndpoint(rudp.Config())
    core = _Core()
    endpoint.quic = core  # type: ignore[assignment]
    endpoint.flush = lambda: 0  # type: ignore[method-assign]
    v4 = ("10.0.0.1", 5000)
    batch: list[tuple[bytes, Any, int]] = [(b"a", v4, 2), (b"b", v4, 2), (b"c", ("10.0.0.1", 5000), 3)]
    received: list[Any] = []
    core.receive_datagrams = lambda batch, now, *, local=None: received.append(batch) or []  # type: ignore[method-assign]
    endpoint._on_datagrams(batch)
    assert received == [batch] and received[0] is batch
    assert endpoint.ecn_counts == [0, 0, 2, 1]
    mixed = [*batch, (b"d", ("2001:db8::1", 443, 0, 0), 0)]
    endpoint._on_datagrams(mixed)
    assert received[1] is not mixed
    assert [addr for _, addr, _ in received[1]] == [v4, v4, v4, ("2001:db8::1", 443)]
