"""Run every interop case in every direction on loopback; print the matrix, write JSON, exit 1 on failure.

Usage: ``python -m interop.run [--case NAME ...] [--direction rudp-aioquic ...] [--markdown] [--seed N]``.
Rows are cases, columns are client→server directions; each cell is ✓ or ✗ with the wall time of the
case, or n/a where the case does not apply (its client cannot do what the case needs). Results
(reports from both ends and the packets seen on the wire) go to
``interop/results/interop-<UTC time>.json`` and ``interop/results/latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import platform
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from interop.cases import CASES, CASES_BY_NAME, DIRECTIONS, Case, CaseResult, Direction, prepare, run_case
from interop.ngtcp2_cases import (
    NGTCP2_CASES,
    NGTCP2_CASES_BY_NAME,
    NGTCP2_DIRECTIONS,
    Ngtcp2Case,
    applies,
    prepare_ngtcp2,
    run_ngtcp2_case,
)
from interop.peers.ngtcp2 import availability as ngtcp2_availability

RESULTS_DIR = Path(__file__).resolve().parent / "results"


async def run_matrix(
    cases: Sequence[Case], directions: Sequence[Direction], workdir: Path, seed: int | None = None
) -> list[CaseResult]:
    """Run each case in each direction it applies to, one after the other, in one event loop.

    ``seed`` seeds every impairing case (None: each picks a random seed, recorded in its result)."""
    env = prepare(workdir)
    results = []
    for case in cases:
        for direction in directions:
            if case.applies_to(direction):
                results.append(await run_case(case, direction, env, seed=seed))
    return results


def _applies(case: str, direction: Direction) -> bool:
    known = CASES_BY_NAME.get(case)
    return known is None or known.applies_to(direction)


def _cell(
    result: CaseResult | None, case: str, direction: Direction, applies: Callable[[str, Direction], bool]
) -> str:
    if result is not None:
        return f"{'✓' if result.ok else '✗'} {result.seconds:.2f} s"
    return "n/a" if not applies(case, direction) else "-"


def render_matrix(
    results: Sequence[CaseResult],
    directions: Sequence[Direction],
    *,
    markdown: bool,
    cases: Sequence[str] | None = None,
    applies: Callable[[str, Direction], bool] = _applies,
) -> str:
    """The results as a text (or Markdown) table: rows = cases, columns = directions."""
    by_key = {(r.case, r.direction): r for r in results}
    cases = list(cases) if cases is not None else list(dict.fromkeys(r.case for r in results))
    header = ["case", *(d.label for d in directions)]
    rows = [
        [case, *(_cell(by_key.get((case, d.label)), case, d, applies) for d in directions)] for case in cases
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _metadata() -> dict[str, Any]:
    return {
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "rudp": version("rudp"),
        "aioquic": version("aioquic"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_results(results: Sequence[CaseResult], directory: Path) -> Path:
    """Write the run to ``directory``/interop-<time>.json and latest.json; return the first path."""
    directory.mkdir(parents=True, exist_ok=True)
    document = {"meta": _metadata(), "results": [r.to_json() for r in results]}
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = directory / f"interop-{stamp}.json"
    text = json.dumps(document, indent=1, ensure_ascii=False)
    path.write_text(text)
    (directory / "latest.json").write_text(text)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 when any case failed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = sorted({*CASES_BY_NAME, *NGTCP2_CASES_BY_NAME})
    parser.add_argument("--case", action="append", choices=names, help="run only this case")
    slugs = [d.slug for d in (*DIRECTIONS, *NGTCP2_DIRECTIONS)]
    parser.add_argument("--direction", action="append", choices=slugs, help="run only this direction")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument(
        "--peer",
        action="append",
        choices=["aioquic", "ngtcp2"],
        help="run only this peer's matrix (default: aioquic, and ngtcp2 when gtlsserver/gtlsclient exist)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the matrix as a Markdown table")
    parser.add_argument(
        "--seed", type=int, help="seed of the loss/corruption cases (default: random, printed on failure)"
    )
    args = parser.parse_args(argv)
    missing = ngtcp2_availability()
    peers = args.peer or ["aioquic", *([] if missing else ["ngtcp2"])]
    if "ngtcp2" in peers and missing:
        print(f"ngtcp2: {missing}", file=sys.stderr)
        return 1
    results: list[CaseResult] = []
    output: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rudp-interop-") as workdir:
        if "aioquic" in peers:
            cases = [c for c in CASES if not args.case or c.name in args.case]
            directions = [d for d in DIRECTIONS if not args.direction or d.slug in args.direction]
            if cases and directions:
                found = asyncio.run(run_matrix(cases, directions, Path(workdir), args.seed))
                results += found
                output.append(render_matrix(found, directions, markdown=args.markdown))
                for case in cases:
                    skipped = [d.label for d in directions if not case.applies_to(d)]
                    if skipped:
                        output.append(f"n/a {case.name} {', '.join(skipped)}: {case.not_applicable}")
        if "ngtcp2" in peers:
            n_cases = [c for c in NGTCP2_CASES if not args.case or c.name in args.case]
            n_dirs = [d for d in NGTCP2_DIRECTIONS if not args.direction or d.slug in args.direction]
            if n_cases and n_dirs:
                found = asyncio.run(run_ngtcp2_matrix(n_cases, n_dirs, Path(workdir)))
                results += found
                output.append(
                    render_matrix(
                        found,
                        n_dirs,
                        markdown=args.markdown,
                        cases=[c.name for c in n_cases],
                        applies=lambda name, d: applies(NGTCP2_CASES_BY_NAME[name], d),
                    )
                )
                for n_case in n_cases:
                    for d in n_dirs:
                        if not applies(n_case, d):
                            output.append(f"n/a {n_case.name} {d.label}: {n_case.not_applicable[d.label]}")
    print("\n\n".join(output))
    failures = [r for r in results if not r.ok]
    for failure in failures:
        replay = "" if failure.seed is None else f" (seed {failure.seed}: replay with --seed {failure.seed})"
        print(f"\n✗ {failure.case} {failure.direction}{replay}:", *failure.problems, sep="\n    ")
    path = write_results(results, args.results)
    total = sum(r.seconds for r in results)
    print(f"\n{len(results) - len(failures)}/{len(results)} passed in {total:.1f} s; results in {path}")
    return 1 if failures else 0


async def run_ngtcp2_matrix(
    cases: Sequence[Ngtcp2Case], directions: Sequence[Direction], workdir: Path
) -> list[CaseResult]:
    """Run each rudp↔ngtcp2 case in each direction it applies to, one after the other."""
    env = prepare_ngtcp2(workdir / "ngtcp2")
    return [
        await run_ngtcp2_case(case, direction, env)
        for case in cases
        for direction in directions
        if applies(case, direction)
    ]


if __name__ == "__main__":
    sys.exit(main())
