"""Run every check of :mod:`rudp.testing.stream_suite` over QUIC and the TCP baseline.

Each check gets its own server, connection and stream on 127.0.0.1; a few also run on ::1. A check that
fails because of a known library bug is marked ``xfail(strict=True)`` with the bug described, so the
fix turns it into a failure that asks for the mark to go.
"""

from __future__ import annotations

import socket
from contextlib import AbstractAsyncContextManager
from typing import Literal

import pytest

import rudp
from rudp.testing.stream_suite import (
    CHECKS,
    ConformanceError,
    PairFactory,
    StreamPair,
    check_stream_pair,
    connected_stream_pair,
    run_check,
)

TRANSPORTS = ("quic", "tcp")
IPV6_CHECKS = ("round_trip_sizes", "half_close", "reset", "close_by_server")

KNOWN_BUGS: dict[tuple[str, str], str] = {}
"""(check, transport) -> description of a library bug that makes the check fail (marked strict xfail).

Empty now: readexactly() losing data on cancellation and drain() returning after a local reset, both
found by this suite, are fixed."""


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def _cases(names: tuple[str, ...] | list[str]) -> list[object]:
    cases: list[object] = []
    for name in names:
        for transport in TRANSPORTS:
            bug = KNOWN_BUGS.get((name, transport))
            marks = [pytest.mark.xfail(strict=True, raises=ConformanceError, reason=bug)] if bug else []
            cases.append(pytest.param(name, transport, marks=marks, id=f"{name}-{transport}"))
    return cases


def _factory(
    transport: str,
    host: str,
    configs: tuple[rudp.Config, rudp.Config],
    opened_by: Literal["client", "server"] = "client",
) -> PairFactory:
    client_config, server_config = configs
    kind: Literal["quic", "tcp"] = "tcp" if transport == "tcp" else "quic"

    def make() -> AbstractAsyncContextManager[StreamPair]:
        return connected_stream_pair(kind, host, client_config, server_config, opened_by=opened_by)

    return make


@pytest.mark.parametrize(("name", "transport"), _cases(list(CHECKS)))
async def test_check_ipv4(name: str, transport: str, configs: tuple[rudp.Config, rudp.Config]) -> None:
    await run_check(name, _factory(transport, "127.0.0.1", configs))


@pytest.mark.parametrize(("name", "transport"), _cases(list(CHECKS)))
async def test_check_server_opened(
    name: str, transport: str, configs: tuple[rudp.Config, rudp.Config]
) -> None:
    """The same contract holds for a stream the server opened."""
    await run_check(name, _factory(transport, "127.0.0.1", configs, opened_by="server"))


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
@pytest.mark.parametrize(("name", "transport"), _cases(IPV6_CHECKS))
async def test_check_ipv6(name: str, transport: str, configs: tuple[rudp.Config, rudp.Config]) -> None:
    await run_check(name, _factory(transport, "::1", configs))


async def test_check_stream_pair_runs_a_selection(configs: tuple[rudp.Config, rudp.Config]) -> None:
    """The all-in-one runner: passing checks pass, an unknown name is refused before anything runs."""
    await check_stream_pair(_factory("quic", "127.0.0.1", configs), checks=["empty_stream", "at_eof"])
    with pytest.raises(rudp.ConfigError):
        await check_stream_pair(_factory("quic", "127.0.0.1", configs), checks=["no_such_check"])


def test_every_check_documents_its_contract() -> None:
    for name, check in CHECKS.items():
        assert check.__doc__ and check.__doc__.strip(), f"check {name} has no docstring"
