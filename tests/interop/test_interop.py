"""Every interop case in every direction it applies to (rudp↔aioquic both ways, rudp↔rudp), as
``interop.run`` runs them.

aioquic comes with the dev extra, so these run everywhere the suite runs: no skips. A case that does not
apply to a direction (``Case.applies_to``) is simply not generated; see interop/README.md for why.
"""

from __future__ import annotations

import pytest

from interop.cases import CASES, DIRECTIONS, Case, Direction, Environment, run_case
from tests.interop.conftest import TEST_SEED

RUNS = [
    pytest.param(
        case,
        direction,
        id=f"{case.name}-{direction.slug}",
        marks=[
            pytest.mark.xfail(reason=bug, strict=False)
            for slug, bug in case.known_bugs
            if slug == direction.slug
        ],
    )
    for case in CASES
    for direction in DIRECTIONS
    if case.applies_to(direction)
]


@pytest.mark.parametrize(("case", "direction"), RUNS)
async def test_case(case: Case, direction: Direction, interop_env: Environment) -> None:
    # The network cases run with a fixed seed here (see conftest) and with fewer handshakes than the
    # runner's 50 (Case.for_tests); interop.run runs them whole with a random seed.
    result = await run_case(case.for_tests(), direction, interop_env, seed=TEST_SEED)
    assert result.ok, f"{case.name} {direction.label}: " + "; ".join(result.problems)
