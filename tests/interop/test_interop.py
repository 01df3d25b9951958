"""Every interop case in every direction (rudp↔aioquic both ways, rudp↔rudp), as ``interop.run`` runs them.

aioquic comes with the dev extra, so these run everywhere the suite runs: no skips.
"""

from __future__ import annotations

import pytest

from interop.cases import CASES, DIRECTIONS, Case, Direction, Environment, run_case


@pytest.mark.parametrize("direction", DIRECTIONS, ids=lambda d: d.slug)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_case(case: Case, direction: Direction, interop_env: Environment) -> None:
    result = await run_case(case, direction, interop_env)
    assert result.ok, f"{case.name} {direction.label}: " + "; ".join(result.problems)
