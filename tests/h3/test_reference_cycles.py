"""HTTP/3 over rudp leaves no reference cycle either: requests on a client and an ASGI server, then
both closed and dropped; only the collector could free what remains, and none of it is rudp's
(see tests/quic/test_reference_cycles.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rudp
import rudp.h3
from tests.support.cycles import collector_off, rudp_objects_in_cycles

from .conftest import TestApp, pattern


async def test_requests_and_close_leave_no_cycle(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    async def session(port: int) -> None:
        async with rudp.h3.connect("127.0.0.1", port, config=client_config) as client:
            missing = await client.get("/nothing-here")
            assert missing.status == 404 and await missing.read() == b"not found"
            body = await (await client.get("/bytes/100000")).read()
            assert body == pattern(100_000)

    app = TestApp()
    async with h3_server(app) as server:
        await session(server.port)  # first use: module-level caches fill outside the measured part
    with collector_off() as garbage:
        async with h3_server(app) as server:
            await session(server.port)
            await session(server.port)
    assert rudp_objects_in_cycles(garbage) == []
