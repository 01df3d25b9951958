"""SSLKEYLOGFILE-format secrets log, so Wireshark can decrypt captures (NSS key log format).

Owns: the line format, a file-appending writer and the choice of the file. The engines call a
``Callable[[str], None]`` with one line per secret (without newline); :func:`keylog_file` builds such a
callable for a path. :func:`keylog_path` is the one place that decides where secrets go: the configured
file, else the ``SSLKEYLOGFILE`` environment variable, the convention ``ssl.create_default_context()``,
browsers and curl follow (and, like that function, not under ``python -E``). ``Config.tls_config``
(QUIC) and the TCP baseline's ``ssl`` contexts both ask it, so ``rudp.connect``/``rudp.serve`` honour
the variable for either transport without the CLI passing it along.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Final

from rudp.errors import ConfigError

KeyLog = Callable[[str], None]

_log = logging.getLogger("rudp.tls")

CLIENT_EARLY_TRAFFIC_SECRET: Final = "CLIENT_EARLY_TRAFFIC_SECRET"
CLIENT_HANDSHAKE_TRAFFIC_SECRET: Final = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
SERVER_HANDSHAKE_TRAFFIC_SECRET: Final = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
CLIENT_TRAFFIC_SECRET_0: Final = "CLIENT_TRAFFIC_SECRET_0"
SERVER_TRAFFIC_SECRET_0: Final = "SERVER_TRAFFIC_SECRET_0"


def keylog_line(label: str, client_random: bytes, secret: bytes) -> str:
    """``<label> <client_random hex> <secret hex>``."""
    return f"{label} {client_random.hex()} {secret.hex()}"


def keylog_file(path: str | os.PathLike[str]) -> KeyLog:
    """A key log callback appending each line to ``path`` (opened per line, so it never goes stale).

    A line that cannot be written is dropped with a warning, as ``ssl``'s ``keylog_filename`` drops
    it: the key log is a debugging aid, never a reason to fail a handshake (nor to tell the peer our
    file path in the close reason).
    """

    def write(line: str) -> None:
        try:
            with open(path, "a", encoding="ascii") as f:
                f.write(line + "\n")
        except OSError as exc:
            _log.warning("cannot write the TLS key log file %s: %s", os.fspath(path), exc.strerror or exc)

    return write


def opened_keylog_file(path: str | os.PathLike[str]) -> KeyLog:
    """:func:`keylog_file` for ``path``, after checking it can be opened for appending (as setting
    ``ssl.SSLContext.keylog_filename`` checks).

    Raises:
        ConfigError: the file cannot be opened (the message names it).
    """
    try:
        with open(path, "a", encoding="ascii"):
            pass
    except OSError as exc:
        raise keylog_config_error(os.fspath(path), exc) from exc
    return keylog_file(path)


def keylog_config_error(path: str, exc: OSError) -> ConfigError:
    """The error for a key log file that cannot be opened (the same words for both transports)."""
    return ConfigError(f"cannot open the TLS key log file {path}: {exc.strerror or exc}")


ENVIRONMENT_VARIABLE: Final = "SSLKEYLOGFILE"
"""The variable naming the key log file when the configuration names none."""


def keylog_path(
    configured: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """Where TLS secrets go: ``configured`` if set, else ``$SSLKEYLOGFILE`` (unless empty), else None.

    The environment is ignored under ``python -E`` (``sys.flags.ignore_environment``), as
    ``ssl.create_default_context()`` ignores it. ``environ`` defaults to ``os.environ``, read now.
    """
    if configured is not None:
        return os.fspath(configured)
    if sys.flags.ignore_environment:
        return None
    path = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE)
    return path or None


def keylog_from_environment(environ: Mapping[str, str]) -> KeyLog | None:
    """The writer for ``environ["SSLKEYLOGFILE"]``, or None when it is unset or empty."""
    path = keylog_path(None, environ)
    return None if path is None else keylog_file(path)
