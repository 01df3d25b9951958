"""The interop checks catch what they claim to verify: each case run without its feature must fail.

Each test runs a case rudp→rudp with the feature turned off (or the expectation tampered with) and
asserts the problem the check reports, so a green matrix cannot come from a check that never looks.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from interop.cases import (
    CASES_BY_NAME,
    DIRECTIONS,
    MIB,
    Environment,
    Observation,
    _common,
    _migrated,
    run_case,
)
from interop.peers.base import VERSION_1, ClientConnectionResult, Digest, EndpointReport, ServerOptions
from interop.tap import VERSION_2, TapPath, WireTap, classify, short_header_dcid

RUDP_RUDP = DIRECTIONS[2]


async def _problems(env: Environment, name: str, **changes: object) -> list[str]:
    case = CASES_BY_NAME[name]
    plan_changes = {k: v for k, v in changes.items() if k != "server"}
    case = dataclasses.replace(
        case,
        plan=dataclasses.replace(case.plan, **plan_changes),  # type: ignore[arg-type]
        server=changes.get("server", case.server),  # type: ignore[arg-type]
    )
    result = await run_case(case, RUDP_RUDP, env)
    assert not result.ok
    return result.problems


async def test_retry_check_needs_a_retry(interop_env: Environment) -> None:
    problems = await _problems(interop_env, "retry", server=ServerOptions(retry=False))
    assert problems == ["server sent 0 Retry packets, want 1"]


async def test_resumption_check_needs_resumed_sessions(interop_env: Environment) -> None:
    problems = await _problems(interop_env, "resumption", resume=False)
    assert problems == [
        "connection 1: client session_resumed=False",
        "connection 1: server session_resumed=False",
    ]


async def test_zerortt_check_needs_early_data(interop_env: Environment) -> None:
    problems = await _problems(interop_env, "zerortt", early_data=False, resume=True)
    assert "no 0-RTT packet on the wire" in problems
    assert "client (rudp) reports 0-RTT not accepted" in problems


async def test_chacha20_check_needs_the_suite(interop_env: Environment) -> None:
    problems = await _problems(interop_env, "chacha20", cipher_suites=None)
    assert len(problems) == 2 and all("negotiated 0x130" in p for p in problems)


async def test_keyupdate_check_needs_an_update(interop_env: Environment) -> None:
    problems = await _problems(interop_env, "keyupdate", key_update=False)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "client (rudp) went through no key update",
        "server (rudp) went through no key update",
    ]


async def test_v2_check_needs_v2_on_the_wire(interop_env: Environment) -> None:
    problems = await _problems(interop_env, "v2", version=VERSION_1)
    assert problems == [
        "to_server long headers carried versions ['0x1']",
        "to_client long headers carried versions ['0x1']",
    ]


async def test_bodies_are_compared(interop_env: Environment) -> None:
    path = next(iter(CASES_BY_NAME["handshake"].files))
    tampered = dataclasses.replace(interop_env, digests={**interop_env.digests, path: Digest(1024, "0" * 64)})
    result = await run_case(CASES_BY_NAME["handshake"], RUDP_RUDP, tampered)
    assert len(result.problems) == 1 and result.problems[0].startswith(path)


def test_classify_walks_coalesced_long_headers() -> None:
    cids = bytes([4]) + b"dcid" + bytes([0])
    initial_v1 = bytes([0xC0]) + VERSION_1.to_bytes(4, "big") + cids + bytes([0, 3]) + b"abc"
    handshake_v1 = bytes([0xE0]) + VERSION_1.to_bytes(4, "big") + cids + bytes([2]) + b"xy"
    assert classify(initial_v1 + handshake_v1 + bytes([0x40]) + b"short") == [
        (VERSION_1, "initial"),
        (VERSION_1, "handshake"),
        (None, "1rtt"),
    ]
    retry_v2 = bytes([0xC0]) + VERSION_2.to_bytes(4, "big") + cids + b"token" + bytes(16)
    zero_rtt_v2 = bytes([0xE0]) + VERSION_2.to_bytes(4, "big") + cids + bytes([1]) + b"z"
    assert classify(retry_v2) == [(VERSION_2, "retry")]
    assert classify(zero_rtt_v2) == [(VERSION_2, "0rtt")]
    assert classify(bytes([0x80]) + bytes(4) + cids) == [(0, "version_negotiation")]


async def test_rebind_check_needs_a_rebinding(interop_env: Environment) -> None:
    case = dataclasses.replace(CASES_BY_NAME["rebind"], rebind_after=None)
    result = await run_case(case, RUDP_RUDP, interop_env)
    assert result.problems == ["the tap made 0 rebindings and 1 paths, want 1 and 2"]


async def test_migration_check_needs_a_migration(interop_env: Environment) -> None:
    problems = await _problems(interop_env, "migration", migrate_after=None)
    assert problems == ["the client never sent from a new address"]


def test_migration_does_not_apply_to_an_aioquic_client(interop_env: Environment) -> None:
    case, aioquic_rudp = CASES_BY_NAME["migration"], DIRECTIONS[1]
    assert not case.applies_to(aioquic_rudp)
    with pytest.raises(ValueError, match="does not apply"):
        asyncio.run(run_case(case, aioquic_rudp, interop_env))


def _path(tap: WireTap, client_port: int, up: int, down: int, dcids: dict[bytes, int]) -> TapPath:
    path = TapPath(tap, ("127.0.0.1", client_port), len(tap.paths))
    path.bytes.update({"to_server": up, "to_client": down})
    path.datagrams.update({"to_server": 1, "to_client": 1})
    path.dcids.update(dcids)
    tap.paths.append(path)
    return path


def _fabricated(paths: list[tuple[int, int, int, dict[bytes, int]]]) -> Observation:
    tap = WireTap(("127.0.0.1", 1))
    for client_port, up, down, dcids in paths:
        _path(tap, client_port, up, down, dcids)
    client = ClientConnectionResult(EndpointReport("rudp", "client", path_changes=1))
    return Observation([client], [EndpointReport("aioquic", "server")], tap, {})


def test_migration_check_reads_the_wire() -> None:
    old, new, spare = b"o" * 8, b"n" * 8, b"s" * 8
    healthy = _fabricated([(1000, 9_000, MIB, {old: 10}), (2000, 9_000, 2 * MIB, {new: 10})])
    assert _migrated(healthy) == []
    kept = _fabricated([(1000, 9_000, MIB, {old: 10}), (2000, 9_000, 2 * MIB, {old: 10})])
    assert _migrated(kept) == [f"the client kept connection ID {old.hex()} after migrating"]
    leaked = _fabricated([(1000, 9_000, MIB, {old: 10, spare: 1}), (2000, 9_000, 2 * MIB, {spare: 10})])
    assert _migrated(leaked) == [
        f"connection ID {spare.hex()} was sent from the old address (1 packets)"
        " as well as from the new one (10)"
    ]
    trickle = _fabricated([(1000, 9_000, MIB, {old: 10}), (2000, 9_000, 27_000, {new: 10})])
    assert _migrated(trickle) == [
        "server sent only 27000 bytes over the new path against 9000 from the client:"
        " a trickle, as to an address it never validated"
    ]


def test_short_header_dcid_follows_coalesced_long_headers() -> None:
    cids = bytes([4]) + b"dcid" + bytes([0])
    handshake = bytes([0xE0]) + VERSION_1.to_bytes(4, "big") + cids + bytes([2]) + b"xy"
    dcid = bytes(range(8))
    assert short_header_dcid(handshake + bytes([0x40]) + dcid + b"payload", 8) == dcid
    assert short_header_dcid(bytes([0x41]) + dcid + b"payload", 8) == dcid
    assert short_header_dcid(handshake, 8) is None


async def test_ipv6_check_needs_ipv6(interop_env: Environment) -> None:
    case = dataclasses.replace(CASES_BY_NAME["ipv6"], host="127.0.0.1")
    result = await run_case(case, RUDP_RUDP, interop_env)
    assert result.problems == [
        "the server is 127.0.0.1 (not IPv6)",
        "path 0's client is 127.0.0.1 (not IPv6)",
        "connection 0: server (rudp) sends to 127.0.0.1",
    ]


async def test_http3_runs_h3_and_its_check_needs_it(interop_env: Environment) -> None:
    result = await run_case(CASES_BY_NAME["http3"], RUDP_RUDP, interop_env)
    assert result.ok, result.problems
    assert [end["alpn"] for end in (*result.clients, *result.servers)] == ["h3", "h3"]
    # Ends that spoke hq-interop where the plan said h3 fail the common check.
    hq = [EndpointReport("rudp", role, handshake_completed=True, alpn="hq-interop") for role in ("c", "s")]
    tap = WireTap(("127.0.0.1", 1))
    observation = Observation([ClientConnectionResult(hq[0])], [hq[1]], tap, {}, alpn="h3")
    assert _common(observation) == ["connection 0: c ALPN 'hq-interop'", "connection 0: s ALPN 'hq-interop'"]
