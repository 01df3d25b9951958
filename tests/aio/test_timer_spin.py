"""A loopback transfer's endpoint timer callbacks nearly all send something (issue 13: no spin)."""

from __future__ import annotations

import asyncio

import rudp
from rudp.aio.endpoint import UdpEndpoint
from rudp.testing.certs import TestPki


async def test_loopback_transfer_has_under_one_percent_empty_timer_callbacks(pki: TestPki) -> None:
    common = {"alpn": ["t"], "max_datagram_size": 1452, "pmtu_discovery": False}
    endpoints: list[UdpEndpoint] = []
    original = UdpEndpoint.__init__

    def recording(self: UdpEndpoint, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        endpoints.append(self)

    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(conn: rudp.Connection) -> None:
        async for stream in conn:
            total = 0
            while chunk := await stream.read(1 << 20):
                total += len(chunk)
            done.set_result(total)

    UdpEndpoint.__init__ = recording  # type: ignore[method-assign]
    try:
        server_config = rudp.Config(certfile=str(pki.cert_file), keyfile=str(pki.key_file), **common)
        server = await rudp.serve("127.0.0.1", 0, handler, config=server_config)
        client_config = rudp.Config(cafile=str(pki.ca_file), server_name="localhost", **common)
        async with rudp.connect("127.0.0.1", server.port, config=client_config) as conn:
            stream = await conn.open_stream()
            for _ in range(64):
                stream.write(bytes(1 << 16))
                await stream.drain()
            stream.write_eof()
            assert await asyncio.wait_for(done, 60) == 64 << 16
            stats = [e.timer_stats for e in endpoints]
        server.close()
    finally:
        UdpEndpoint.__init__ = original  # type: ignore[method-assign]
    callbacks = sum(s["callbacks"] for s in stats)
    empty = sum(s["empty"] for s in stats)
    assert empty <= max(1, callbacks // 100), stats
