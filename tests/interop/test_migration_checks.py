"""The rebind-addr and connectionmigration checks catch what they claim (issue 12): each run without its
feature must fail with exactly the problem the check names, and the wire logic is run on made-up paths.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from interop.cases import (
    CASES_BY_NAME,
    DIRECTIONS,
    MIB,
    REBIND_HOST,
    Environment,
    Observation,
    _moved_to_preferred,
    run_case,
)
from interop.peers.base import ClientConnectionResult, EndpointReport
from interop.tap import TapPath, WireTap

RUDP_AIOQUIC, AIOQUIC_RUDP, RUDP_RUDP = DIRECTIONS


async def test_rebind_addr_check_needs_a_new_address(interop_env: Environment) -> None:
    case = dataclasses.replace(CASES_BY_NAME["rebind-addr"], rebind_host=None)
    result = await run_case(case, RUDP_RUDP, interop_env)
    assert result.problems == ["the rebinding kept the client's IP address (127.0.0.1)"]


async def test_rebind_addr_moves_the_client_to_another_address(interop_env: Environment) -> None:
    result = await run_case(CASES_BY_NAME["rebind-addr"], RUDP_RUDP, interop_env)
    assert result.ok, result.problems
    (server,) = result.servers
    assert server["peer_host"] == REBIND_HOST and server["path_changes"] >= 1


async def test_connectionmigration_check_needs_a_preferred_address(interop_env: Environment) -> None:
    case = dataclasses.replace(CASES_BY_NAME["connectionmigration"], preferred=False)
    result = await run_case(case, RUDP_RUDP, interop_env)
    assert result.problems == ["no datagram reached the server's preferred address"]


def test_connectionmigration_needs_a_server_that_advertises_one(interop_env: Environment) -> None:
    case = CASES_BY_NAME["connectionmigration"]
    assert case.applies_to(AIOQUIC_RUDP) and case.applies_to(RUDP_RUDP)
    assert not case.applies_to(RUDP_AIOQUIC)
    with pytest.raises(ValueError, match="cannot advertise a preferred address"):
        asyncio.run(run_case(case, RUDP_AIOQUIC, interop_env))


def _observation(paths: list[tuple[bool, int, int]]) -> Observation:
    tap = WireTap(("127.0.0.1", 1))
    for index, (preferred, up, down) in enumerate(paths):
        path = TapPath(tap, ("127.0.0.1", 1000 + index), index)
        path.preferred = preferred
        path.bytes.update({"to_server": up, "to_client": down})
        path.datagrams.update({"to_server": 1, "to_client": 1})
        tap.paths.append(path)
    client = ClientConnectionResult(EndpointReport("rudp", "client", path_changes=1))
    return Observation([client], [EndpointReport("aioquic", "server")], tap, {})


def test_connectionmigration_check_reads_the_wire() -> None:
    assert _moved_to_preferred(_observation([(False, 5_000, 20_000), (True, 9_000, 4 * MIB)])) == []
    stayed = _observation([(False, 9_000, 4 * MIB), (True, 2_000, 3_000)])
    assert _moved_to_preferred(stayed) == [
        "the preferred address carried 3000 bytes to the client, the original one 4194304:"
        " the transfer did not move",
        "server sent only 3000 bytes over the new path against 2000 from the client:"
        " a trickle, as to an address it never validated",
    ]
