"""Helpers for the TLS tests: config factories and an in-memory shuttle between two engines."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rudp.tls import EncryptionLevel, KeyEvent, TlsClient, TlsConfig, TlsEngine, TlsServer
from tests.tls.pki import NOW_TS, Issued, Pki

CLIENT_TP = b"\x01\x02client-transport-parameters"
SERVER_TP = b"\x03\x04server-transport-parameters"


class Clock:
    """A settable wall clock for the configs."""

    def __init__(self, now: float = NOW_TS) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def seeded(seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    return rng.randbytes


def client_config(pki: Pki, clock: Clock | None = None, **kwargs: Any) -> TlsConfig:
    kwargs.setdefault("alpn_protocols", ["hq-interop", "h3"])
    kwargs.setdefault("server_name", "localhost")
    kwargs.setdefault("cadata", pki.ca.cert_pem)
    return TlsConfig(is_client=True, wall_clock=clock or Clock(), **kwargs)


def server_config(
    pki: Pki, leaf: Issued | None = None, clock: Clock | None = None, **kwargs: Any
) -> TlsConfig:
    leaf = leaf or pki.ec256
    kwargs.setdefault("alpn_protocols", ["h3", "hq-interop"])
    return TlsConfig(
        is_client=False,
        certfile=leaf.cert_pem,
        keyfile=leaf.key_pem,
        wall_clock=clock or Clock(),
        **kwargs,
    )


@dataclass
class Side:
    engine: TlsEngine
    keys: list[KeyEvent] = field(default_factory=list)
    sent: list[tuple[EncryptionLevel, bytes]] = field(default_factory=list)

    def collect(self) -> list[tuple[EncryptionLevel, bytes]]:
        self.keys += self.engine.key_events()
        out = self.engine.data_to_send()
        self.sent += out
        return out


Tamper = Callable[[str, EncryptionLevel, bytes], bytes]


class Pair:
    """A client and a server engine joined in memory."""

    def __init__(self, client: TlsClient, server: TlsServer) -> None:
        self.client = Side(client)
        self.server = Side(server)

    def run(self, tamper: Tamper | None = None, rounds: int = 10) -> None:
        """Start the client and shuttle bytes until both are quiet (exceptions propagate)."""
        self.client.engine.start(0.0)
        for _ in range(rounds):
            moved = False
            for name, src, dst in (
                ("client", self.client, self.server),
                ("server", self.server, self.client),
            ):
                for level, data in src.collect():
                    moved = True
                    if tamper is not None:
                        data = tamper(name, level, data)
                    dst.engine.receive(level, data, 0.0)
            if not moved:
                break
        self.client.collect()
        self.server.collect()


def make_pair(client_cfg: TlsConfig, server_cfg: TlsConfig, seed: int = 1, **server_kwargs: Any) -> Pair:
    client = TlsClient(client_cfg, CLIENT_TP, randbytes=seeded(seed))
    server = TlsServer(server_cfg, SERVER_TP, randbytes=seeded(seed + 1000), **server_kwargs)
    return Pair(client, server)
