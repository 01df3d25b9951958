"""The ASGI lifespan protocol in rudp.h3's server: startup before serving, shutdown after the last
request, the lifespan state in request scopes, failures reported, applications without lifespan."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import rudp
import rudp.h3
from rudp.h3 import LifespanError


class LifespanApp:
    """Records the order of lifespan events and requests; fails startup or shutdown on request."""

    def __init__(self, *, fail_startup: str | None = None, fail_shutdown: str | None = None) -> None:
        self.events: list[str] = []
        self.fail_startup = fail_startup
        self.fail_shutdown = fail_shutdown
        self.release = asyncio.Event()
        self.slow_started = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.events.append("startup")
                    if self.fail_startup is not None:
                        await send({"type": "lifespan.startup.failed", "message": self.fail_startup})
                        return
                    scope["state"]["resource"] = "opened at startup"
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.events.append("shutdown")
                    if self.fail_shutdown is not None:
                        await send({"type": "lifespan.shutdown.failed", "message": self.fail_shutdown})
                    else:
                        await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http"
        self.events.append(f"request {scope['path']}")
        if scope["path"] == "/slow":
            self.slow_started.set()
            await self.release.wait()
        body = scope["state"].get("resource", "no state").encode()
        scope["state"]["per-request"] = True  # a copy: never seen by the next request
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        self.events.append(f"response {scope['path']}")


async def test_startup_before_serving_shutdown_after_the_last_request(
    server_config: rudp.Config, client_config: rudp.Config
) -> None:
    app = LifespanApp()
    server = await rudp.h3.serve_asgi(app, "127.0.0.1", 0, config=server_config)
    assert app.events == ["startup"]  # complete before serve_asgi returned (and before listening)
    assert server.lifespan is not None and server.lifespan.supported
    async with rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client:
        first = await client.get("/state")
        assert await first.read() == b"opened at startup"
        slow = asyncio.create_task(client.get("/slow"))
        await app.slow_started.wait()
        shutdown = asyncio.create_task(server.shutdown(timeout=20))
        await client.h3.goaway_event.wait()
        assert "shutdown" not in app.events  # requests in progress first
        app.release.set()
        response = await slow
        assert await response.read() == b"opened at startup"
        await shutdown
    assert app.events == [
        "startup",
        "request /state",
        "response /state",
        "request /slow",
        "response /slow",
        "shutdown",
    ]
    assert server.lifespan.shutdown_error is None
    assert server.lifespan.state == {"resource": "opened at startup"}  # requests got copies
    await server.wait_closed()  # shutdown runs once
    assert app.events.count("shutdown") == 1


async def test_failed_startup_raises_and_nothing_is_served(server_config: rudp.Config) -> None:
    app = LifespanApp(fail_startup="database unreachable")
    with pytest.raises(LifespanError) as failed:
        await rudp.h3.serve_asgi(app, "127.0.0.1", 0, config=server_config)
    assert failed.value.message == "database unreachable"
    assert "database unreachable" in str(failed.value)
    assert app.events == ["startup"]


async def test_failed_shutdown_is_reported(
    server_config: rudp.Config, caplog: pytest.LogCaptureFixture
) -> None:
    app = LifespanApp(fail_shutdown="could not flush")
    server = await rudp.h3.serve_asgi(app, "127.0.0.1", 0, config=server_config)
    with caplog.at_level(logging.ERROR, logger="rudp.h3.lifespan"):
        server.close()
        await server.wait_closed()
    assert app.events == ["startup", "shutdown"]
    assert server.lifespan is not None and server.lifespan.shutdown_error == "could not flush"
    assert any("could not flush" in record.getMessage() for record in caplog.records)


async def _no_lifespan_raises(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise RuntimeError("only http here")
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _no_lifespan_returns(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize("app", [_no_lifespan_raises, _no_lifespan_returns])
async def test_apps_without_lifespan_support_are_served(
    app: Any, server_config: rudp.Config, client_config: rudp.Config
) -> None:
    server = await rudp.h3.serve_asgi(app, "127.0.0.1", 0, config=server_config)
    async with server, rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client:
        assert server.lifespan is not None and not server.lifespan.supported
        assert (await client.get("/")).status == 204
    # ... unless lifespan is required.
    with pytest.raises(LifespanError, match="did not take part"):
        await rudp.h3.serve_asgi(app, "127.0.0.1", 0, config=server_config, lifespan="on")


async def test_lifespan_off_never_calls_the_app_with_a_lifespan_scope(
    server_config: rudp.Config, client_config: rudp.Config
) -> None:
    app = LifespanApp()
    server = await rudp.h3.serve_asgi(app, "127.0.0.1", 0, config=server_config, lifespan="off")
    async with server, rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client:
        assert await (await client.get("/x")).read() == b"no state"
    assert app.events == ["request /x", "response /x"]
