"""Linux network namespaces: create, enter, run commands in, and delete them.

This module owns the plumbing below the emulator: `setns(2)` through ctypes (Python 3.11 has no
`os.setns`), named namespaces managed with `ip netns`, and running commands or Python callables inside a
namespace. It knows nothing about TUN devices or impairments.

Entering a namespace with :func:`entered` switches only the calling thread (that is how `setns(2)` works
for network namespaces), so a test can create a socket inside a namespace and then keep using it from
anywhere: a socket stays in the namespace it was created in.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import subprocess
from collections.abc import Iterator, Sequence
from typing import Final

CLONE_NEWNET: Final = 0x40000000
NETNS_RUN_DIR: Final = "/run/netns"
NAME_PREFIX: Final = "rudp-"


class NetemError(RuntimeError):
    """The emulator could not set up, control or tear down its network."""


_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    """The C library, loaded once with errno support."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """Move the calling thread into the namespace referred to by `fd`.

    Raises:
        OSError: the kernel refused (typically EPERM without root).
    """
    if libc().setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns failed: {os.strerror(err)}")


def netns_path(name: str) -> str:
    """The bind-mount path `ip netns` uses for the namespace `name`."""
    return os.path.join(NETNS_RUN_DIR, name)


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with the calling thread inside the network namespace `name`.

    The thread returns to its previous namespace on exit, also when the body raises.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            setns(own)
    finally:
        os.close(own)


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `ip [-n NETNS] ARGS...` and return the completed process.

    Raises:
        NetemError: the command failed and `check` is true.
    """
    cmd = ["ip"]
    if netns is not None:
        cmd += ["-n", netns]
    cmd += list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetemError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def exec_prefix(name: str) -> list[str]:
    """The argv prefix that runs a command inside the namespace `name`."""
    return ["ip", "netns", "exec", name]


def sysctl(name: str, key: str, value: str) -> None:
    """Set a per-namespace sysctl by writing /proc/sys from a thread inside the namespace.

    Raises:
        NetemError: the write failed.
    """
    path = "/proc/sys/" + key.replace(".", "/")
    with entered(name):
        try:
            fd = os.open(path, os.O_WRONLY)
        except OSError as exc:
            raise NetemError(f"sysctl {key} in {name}: {exc}") from exc
        try:
            os.write(fd, value.encode())
        except OSError as exc:
            raise NetemError(f"sysctl {key}={value} in {name}: {exc}") from exc
        finally:
            os.close(fd)


def create(name: str) -> None:
    """Create the named namespace with its loopback up.

    Raises:
        NetemError: `ip netns add` failed (exists already, or no privileges).
    """
    ip("netns", "add", name)
    try:
        ip("link", "set", "lo", "up", netns=name)
    except NetemError:
        delete(name)
        raise


def delete(name: str) -> bool:
    """Delete the named namespace if it exists; return whether it existed."""
    if not os.path.exists(netns_path(name)):
        return False
    ip("netns", "delete", name, check=False)
    return True


def exists(name: str) -> bool:
    """Whether the named namespace exists."""
    return os.path.exists(netns_path(name))


def list_ours() -> list[str]:
    """Names of the namespaces this library created (by prefix), alive or stale."""
    try:
        entries = os.listdir(NETNS_RUN_DIR)
    except FileNotFoundError:
        return []
    return sorted(e for e in entries if e.startswith(NAME_PREFIX))


def owner_pid(name: str) -> int | None:
    """The creating process id encoded in one of our namespace names, if any."""
    parts = name[len(NAME_PREFIX) :].split("-")
    if not parts or not parts[0].isdigit():
        return None
    return int(parts[0])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale(include_live: bool = False) -> list[str]:
    """Delete our namespaces whose creating process is gone; return the names deleted.

    With `include_live` every namespace with our prefix is deleted, including ones in use.
    """
    removed = []
    for name in list_ours():
        pid = owner_pid(name)
        if (include_live or pid is None or not _pid_alive(pid)) and delete(name):
            removed.append(name)
    return removed


def run_in(
    name: str, cmd: Sequence[str], *, check: bool = False, timeout: float | None = None, text: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` inside the namespace and capture its output."""
    return subprocess.run(
        [*exec_prefix(name), *cmd], capture_output=True, text=text, check=check, timeout=timeout
    )
