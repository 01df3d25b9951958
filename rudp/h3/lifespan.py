"""The ASGI lifespan protocol (ASGI spec, "Lifespan Protocol"): startup before the server listens,
shutdown after it stopped.

:class:`Lifespan` owns the application's one ``lifespan`` call: it sends ``lifespan.startup`` and
``lifespan.shutdown``, waits for the answers, raises :class:`LifespanError` when the application
reports a failed startup, and tolerates applications without lifespan support (they raise or return
at once on the ``lifespan`` scope: the server runs without it, as the ASGI spec asks). The scope's
``state`` dictionary is what the server copies into every request's scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, Literal

from rudp.errors import RudpError

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]
LifespanMode = Literal["auto", "on", "off"]

APP_EXIT_TIMEOUT: Final = 5.0
"""Seconds the application may take to return after answering ``lifespan.shutdown``."""

_log = logging.getLogger("rudp.h3.lifespan")


class LifespanError(RudpError):
    """The application reported ``lifespan.startup.failed`` (or, with ``lifespan="on"``, failed to
    run the lifespan protocol at all); the server does not start. ``message`` is the application's."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(
            f"ASGI lifespan startup failed: {message}" if message else "ASGI lifespan startup failed"
        )


class Lifespan:
    """The lifespan protocol of one ASGI application, in mode "auto" (used when the application
    supports it), "on" (required: no support is a :class:`LifespanError`) or "off" (never called)."""

    def __init__(self, app: ASGIApp, mode: LifespanMode = "auto") -> None:
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {mode!r}")
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        """The lifespan scope's ``state``: copied (shallowly) into each request scope."""
        self.supported = False
        """True once the application answered ``lifespan.startup``."""
        self.shutdown_error: str | None = None
        """The application's ``lifespan.shutdown.failed`` message (or its exception), if any."""
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._replies: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._app_error: BaseException | None = None
        self._shut_down = False

    async def startup(self) -> None:
        """Run the application's startup.

        Raises:
            LifespanError: it sent ``lifespan.startup.failed`` (or, in mode "on", did not take part).
        """
        if self.mode == "off":
            return
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        self._task = asyncio.create_task(self._run(scope))
        self._inbox.put_nowait({"type": "lifespan.startup"})
        reply = await self._reply()
        if reply is None:
            reason = f"the application raised {self._app_error!r}" if self._app_error else "it returned"
            if self.mode == "on":
                raise LifespanError(f"lifespan is required but the application did not take part ({reason})")
            _log.info("ASGI lifespan unsupported by the application (%s): running without it", reason)
            return
        if reply.get("type") == "lifespan.startup.failed":
            await self._finish()
            raise LifespanError(str(reply.get("message", "")))
        if reply.get("type") != "lifespan.startup.complete":
            await self._finish()
            raise LifespanError(f"unexpected lifespan message {reply.get('type')!r}")
        self.supported = True

    async def shutdown(self) -> None:
        """Run the application's shutdown (once; a failure is logged and kept in :attr:`shutdown_error`)."""
        if not self.supported or self._shut_down:
            return
        self._shut_down = True
        self._inbox.put_nowait({"type": "lifespan.shutdown"})
        reply = await self._reply()
        if reply is None:
            self.shutdown_error = f"the application ended without answering ({self._app_error!r})"
        elif reply.get("type") == "lifespan.shutdown.failed":
            self.shutdown_error = str(reply.get("message", ""))
        elif reply.get("type") != "lifespan.shutdown.complete":
            self.shutdown_error = f"unexpected lifespan message {reply.get('type')!r}"
        if self.shutdown_error is not None:
            _log.error("ASGI lifespan shutdown failed: %s", self.shutdown_error)
        await self._finish()

    async def _run(self, scope: MutableMapping[str, Any]) -> None:
        try:
            await self.app(scope, self._receive, self._send)
        except Exception as exc:
            self._app_error = exc
            if self.supported or self.mode == "on":
                _log.error("the ASGI application's lifespan raised", exc_info=exc)

    async def _receive(self) -> Message:
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        self._replies.put_nowait(message)

    async def _reply(self) -> Message | None:
        """The application's next lifespan message; None if it ended without one."""
        if self._task is None:
            return None
        if self._replies.empty():
            got = asyncio.ensure_future(self._replies.get())
            try:
                await asyncio.wait({got, self._task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not got.done():
                    got.cancel()
            if got.done() and not got.cancelled():
                return got.result()
        return None if self._replies.empty() else self._replies.get_nowait()

    async def _finish(self) -> None:
        """Let the application return after its last answer; cancel it if it does not."""
        task = self._task
        if task is None or task.done():
            return
        await asyncio.wait({task}, timeout=APP_EXIT_TIMEOUT)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["APP_EXIT_TIMEOUT", "Lifespan", "LifespanError", "LifespanMode"]
