"""One emulated host: a network namespace with an address, and ways to run things inside it.

A :class:`Host` runs shell commands (`run`, `popen` through `ip netns exec`), creates sockets inside its
namespace from the calling process (`socket`, `entered`), and runs Python callables in a forked child
that joined the namespace (`call`, `spawn`). It does not own the namespace's lifetime: the
:class:`rudp.netem.Network` that made it does.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rudp.netem import namespaces
from rudp.netem.namespaces import NetemError

T = TypeVar("T")


class TaskFailed(NetemError):
    """A callable run inside a namespace raised; the message carries the child's exception."""


class NamespaceTask(Generic[T]):
    """A Python callable running in a forked child inside a namespace.

    :meth:`join` waits for it and returns its (pickled) result or raises :class:`TaskFailed`.
    """

    def __init__(self, pid: int, result_fd: int) -> None:
        self.pid = pid
        self._fd = result_fd
        self._data = bytearray()
        self._done = False
        self._status: int | None = None

    def _reap(self, block: bool) -> bool:
        if self._status is None:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            if pid == 0:
                return False
            self._status = status
        return True

    def join(self, timeout: float | None = None) -> T:
        """Wait for the callable to finish and return its result.

        Raises:
            TimeoutError: it did not finish in `timeout` seconds (it keeps running; see :meth:`kill`).
            TaskFailed: it raised, or the child died without a result.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._fd], [], [], left)
            if not ready:
                raise TimeoutError(f"namespace task {self.pid} still running after {timeout} s")
            chunk = os.read(self._fd, 1 << 16)
            if not chunk:
                self._done = True
                os.close(self._fd)
            self._data += chunk
        self._reap(block=True)
        if not self._data:
            raise TaskFailed(f"namespace task {self.pid} died without a result (status {self._status})")
        ok, value = pickle.loads(bytes(self._data))
        if not ok:
            raise TaskFailed(f"namespace task {self.pid} raised: {value}")
        result: T = value
        return result

    def kill(self) -> None:
        """Kill the child (SIGKILL) and reap it; harmless if it already ended."""
        if self._status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._reap(block=True)
        if not self._done:
            self._done = True
            os.close(self._fd)


def _child(
    netns: str, fd: int, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Body of the forked child: join the namespace, run, send the pickled outcome, exit."""
    try:
        target = os.open(namespaces.netns_path(netns), os.O_RDONLY)
        namespaces.setns(target)
        os.close(target)
        payload = pickle.dumps((True, fn(*args, **kwargs)))
    except BaseException as exc:
        try:
            payload = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
        except Exception:
            payload = pickle.dumps((False, repr(exc)))
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]
    os._exit(0)


@dataclass
class Host:
    """A host on the emulated link: its namespace name, TUN device and addresses."""

    name: str
    ifname: str
    address: str
    address6: str | None

    def exec_prefix(self) -> list[str]:
        """The argv prefix that runs a command inside this host's namespace."""
        return namespaces.exec_prefix(self.name)

    def run(
        self, cmd: Sequence[str], *, check: bool = False, timeout: float | None = None, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run `cmd` inside the namespace, capturing text output (extra kwargs go to subprocess.run)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run([*self.exec_prefix(), *cmd], check=check, timeout=timeout, **kwargs)

    def popen(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start `cmd` inside the namespace (kwargs go to subprocess.Popen)."""
        return subprocess.Popen([*self.exec_prefix(), *cmd], **kwargs)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the body with the calling thread inside this namespace (sockets made there stay there)."""
        with namespaces.entered(self.name):
            yield

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_DGRAM, proto: int = 0
    ) -> socket.socket:
        """A new socket that lives in this host's namespace, usable from any thread."""
        with namespaces.entered(self.name):
            return socket.socket(family, type, proto)

    def spawn(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> NamespaceTask[T]:
        """Run `fn(*args, **kwargs)` in a forked child inside the namespace; the result must pickle.

        The child is a fork of the caller: avoid calling this while other threads hold locks the
        callable needs.
        """
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(r)
            _child(self.name, w, fn, args, kwargs)
        os.close(w)
        return NamespaceTask(pid, r)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = 60.0, **kwargs: Any) -> T:
        """Run `fn` inside the namespace (see :meth:`spawn`), wait, and return its result.

        Raises:
            TaskFailed: the callable raised.
            TimeoutError: it ran longer than `timeout` (the child is killed).
        """
        task = self.spawn(fn, *args, **kwargs)
        try:
            return task.join(timeout)
        except TimeoutError:
            task.kill()
            raise
