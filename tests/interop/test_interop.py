"""Every interop case in every direction it applies to (rudp↔aioquic both ways, rudp↔rudp), as
``interop.run`` runs them.

aioquic comes with the dev extra, so these run everywhere the suite runs: no skips. A case that does not
apply to a direction (``Case.applies_to``) is simply not generated; see interop/README.md for why.
"""

from __future__ import annotations

import pytest

from interop.cases import CASES, DIRECTIONS, Case, Direction, Environment, run_case

MIGRATION_REUSES_CID = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="rudp bug: Connection.migrate() rotates the connection ID (and queues PATH_CHALLENGE) before"
    " its new socket exists; a flush while it awaits the socket sends one packet with the new ID from"
    " the old address, so the tap sees one ID from two addresses (RFC 9000 §9.5)",
)
"""Known rudp failure; strict, so the fix turns the test red until the mark goes."""

KNOWN_FAILURES = {
    ("migration", "rudp-aioquic"): "was sent from the old address",
    ("migration", "rudp-rudp"): "was sent from the old address",
}
"""(case, direction) -> the text of the one problem the known failure produces."""


class UnexpectedProblem(Exception):
    """A known-failing run failed for another reason too: not covered by its xfail."""


RUNS = [
    pytest.param(
        case,
        direction,
        id=f"{case.name}-{direction.slug}",
        marks=[MIGRATION_REUSES_CID] if (case.name, direction.slug) in KNOWN_FAILURES else [],
    )
    for case in CASES
    for direction in DIRECTIONS
    if case.applies_to(direction)
]


@pytest.mark.parametrize(("case", "direction"), RUNS)
async def test_case(case: Case, direction: Direction, interop_env: Environment) -> None:
    result = await run_case(case, direction, interop_env)
    known = KNOWN_FAILURES.get((case.name, direction.slug))
    if known is not None and any(known not in problem for problem in result.problems):
        raise UnexpectedProblem("; ".join(result.problems))
    assert result.ok, f"{case.name} {direction.label}: " + "; ".join(result.problems)
