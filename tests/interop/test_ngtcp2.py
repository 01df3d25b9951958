"""rudp ↔ ngtcp2 (Debian's gtlsserver/gtlsclient, ngtcp2 0.12.1 + GnuTLS + nghttp3) over HTTP/3, both
ways, as ``python -m interop.run --peer ngtcp2`` runs it: every body compared by SHA-256, each case's
feature checked on rudp's report and on the wire (see interop/README.md).

The binaries come from apt (``.ci/run`` installs ngtcp2-client and ngtcp2-server). Without them these
tests skip locally and fail under RUDP_REQUIRE_NETEM=1 (as CI runs), like the netem fixture.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from interop.cases import Direction
from interop.ngtcp2_cases import (
    NGTCP2_CASES,
    NGTCP2_CASES_BY_NAME,
    NGTCP2_DIRECTIONS,
    Ngtcp2Case,
    Ngtcp2Environment,
    _checks,
    applies,
    prepare_ngtcp2,
    run_ngtcp2_case,
)
from interop.peers.base import EndpointReport
from interop.peers.ngtcp2 import availability
from interop.tap import WireTap

RUNS = [
    pytest.param(case, direction, id=f"{case.name}-{direction.slug}")
    for case in NGTCP2_CASES
    for direction in NGTCP2_DIRECTIONS
    if applies(case, direction)
]
RUDP_NGTCP2, NGTCP2_RUDP = NGTCP2_DIRECTIONS


@pytest.fixture(scope="module")
def ngtcp2_env(tmp_path_factory: pytest.TempPathFactory) -> Ngtcp2Environment:
    reason = availability()
    if reason is not None:
        if os.environ.get("RUDP_REQUIRE_NETEM") == "1":
            pytest.fail(f"RUDP_REQUIRE_NETEM=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return prepare_ngtcp2(tmp_path_factory.mktemp("ngtcp2"))


@pytest.mark.parametrize(("case", "direction"), RUNS)
async def test_cell(case: Ngtcp2Case, direction: Direction, ngtcp2_env: Ngtcp2Environment) -> None:
    result = await run_ngtcp2_case(case, direction, ngtcp2_env)
    assert result.ok, f"{case.name} {direction.label}: " + "; ".join(result.problems)


def test_v2_is_not_applicable() -> None:
    v2 = NGTCP2_CASES_BY_NAME["v2"]
    assert not any(applies(v2, d) for d in NGTCP2_DIRECTIONS)
    assert "draft" in v2.not_applicable[NGTCP2_RUDP.label]


# Negative controls: the checks see a missing feature.


def test_checks_see_missing_features() -> None:
    """What each case claims is checked: rudp reports without the feature and an empty wire fail."""
    tap = WireTap(("127.0.0.1", 1))
    plain = [EndpointReport("rudp", "server", handshake_completed=True, alpn="h3") for _ in range(2)]
    expected = {
        "resumption": ["connection 1: rudp server: session_resumed=False"],
        "zerortt": [
            "connection 1: rudp server: session_resumed=False",
            "connection 1: rudp server: 0-RTT not accepted",
            "no 0-RTT packet on the wire",
        ],
        "retry": ["0 Retry packets on the wire"],
        "keyupdate-server": ["connection 0: rudp server: no key update"],
        "chacha20": ["connection 0: rudp server: cipher suite None"],
        "migration": ["the client never sent from a new address"],
        "upload": ["only 0 bytes went to the server: the upload did not happen"],
    }
    for name, problems in expected.items():
        case = NGTCP2_CASES_BY_NAME[name]
        assert _checks(case, plain[: case.connections], tap) == problems, name


async def test_bodies_are_compared(ngtcp2_env: Ngtcp2Environment, tmp_path: Path) -> None:
    (tmp_path / "www-ngtcp2").mkdir()
    tampered = dataclasses.replace(ngtcp2_env, www=tmp_path / "www-ngtcp2")
    (tampered.www / "1k.bin").write_bytes(b"not the file")
    for direction in NGTCP2_DIRECTIONS:
        result = await run_ngtcp2_case(NGTCP2_CASES_BY_NAME["handshake"], direction, tampered)
        assert not result.ok and result.problems[0].startswith("/1k.bin: got"), result.problems
