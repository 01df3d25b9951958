"""SSLKEYLOGFILE-format secrets log, so Wireshark can decrypt captures (NSS key log format).

Owns: the line format and a file-appending writer. The engines call a ``Callable[[str], None]`` with
one line per secret (without newline); :func:`keylog_file` builds such a callable for a path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Final

KeyLog = Callable[[str], None]

CLIENT_EARLY_TRAFFIC_SECRET: Final = "CLIENT_EARLY_TRAFFIC_SECRET"
CLIENT_HANDSHAKE_TRAFFIC_SECRET: Final = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
SERVER_HANDSHAKE_TRAFFIC_SECRET: Final = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
CLIENT_TRAFFIC_SECRET_0: Final = "CLIENT_TRAFFIC_SECRET_0"
SERVER_TRAFFIC_SECRET_0: Final = "SERVER_TRAFFIC_SECRET_0"


def keylog_line(label: str, client_random: bytes, secret: bytes) -> str:
    """``<label> <client_random hex> <secret hex>``."""
    return f"{label} {client_random.hex()} {secret.hex()}"


def keylog_file(path: str | os.PathLike[str]) -> KeyLog:
    """A key log callback appending each line to ``path`` (opened per line, so it never goes stale)."""

    def write(line: str) -> None:
        with open(path, "a", encoding="ascii") as f:
            f.write(line + "\n")

    return write


def keylog_from_environment(environ: Mapping[str, str]) -> KeyLog | None:
    """The writer for ``environ["SSLKEYLOGFILE"]``, or None when it is unset or empty."""
    path = environ.get("SSLKEYLOGFILE")
    return keylog_file(path) if path else None
