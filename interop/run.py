"""Run every interop case in every direction on loopback; print the matrix, write JSON, exit 1 on failure.

Usage: ``python -m interop.run [--case NAME ...] [--direction rudp-aioquic ...] [--markdown]``.
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
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from interop.cases import CASES, CASES_BY_NAME, DIRECTIONS, Case, CaseResult, Direction, prepare, run_case

RESULTS_DIR = Path(__file__).resolve().parent / "results"


async def run_matrix(
    cases: Sequence[Case], directions: Sequence[Direction], workdir: Path
) -> list[CaseResult]:
    """Run each case in each direction it applies to, one after the other, in one event loop."""
    env = prepare(workdir)
    results = []
    for case in cases:
        for direction in directions:
            if case.applies_to(direction):
                results.append(await run_case(case, direction, env))
    return results


def _cell(result: CaseResult | None, case: str, direction: Direction) -> str:
    if result is not None:
        return f"{'✓' if result.ok else '✗'} {result.seconds:.2f} s"
    known = CASES_BY_NAME.get(case)
    return "n/a" if known is not None and not known.applies_to(direction) else "-"


def render_matrix(results: Sequence[CaseResult], directions: Sequence[Direction], *, markdown: bool) -> str:
    """The results as a text (or Markdown) table: rows = cases, columns = directions."""
    by_key = {(r.case, r.direction): r for r in results}
    cases = list(dict.fromkeys(r.case for r in results))
    header = ["case", *(d.label for d in directions)]
    rows = [[case, *(_cell(by_key.get((case, d.label)), case, d) for d in directions)] for case in cases]
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
    parser.add_argument("--case", action="append", choices=sorted(CASES_BY_NAME), help="run only this case")
    parser.add_argument(
        "--direction", action="append", choices=[d.slug for d in DIRECTIONS], help="run only this direction"
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--markdown", action="store_true", help="print the matrix as a Markdown table")
    args = parser.parse_args(argv)
    cases = [CASES_BY_NAME[name] for name in args.case] if args.case else list(CASES)
    directions = [d for d in DIRECTIONS if not args.direction or d.slug in args.direction]
    with tempfile.TemporaryDirectory(prefix="rudp-interop-") as workdir:
        results = asyncio.run(run_matrix(cases, directions, Path(workdir)))
    print(render_matrix(results, directions, markdown=args.markdown))
    for case in cases:
        skipped = [d.label for d in directions if not case.applies_to(d)]
        if skipped:
            print(f"\nn/a {case.name} {', '.join(skipped)}: {case.not_applicable}")
    failures = [r for r in results if not r.ok]
    for failure in failures:
        print(f"\n✗ {failure.case} {failure.direction}:", *failure.problems, sep="\n    ")
    path = write_results(results, args.results)
    total = sum(r.seconds for r in results)
    print(f"\n{len(results) - len(failures)}/{len(results)} passed in {total:.1f} s; results in {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
