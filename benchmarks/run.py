"""One entry point for every benchmark: runs all (or the selected ones), prints tables, saves JSON and plots.

Run as root (the emulated-network benchmarks build network namespaces)::

    python -m benchmarks.run                      # everything, default sizes (about 3.5 minutes)
    python -m benchmarks.run --quick              # everything, small sizes (about 1 minute)
    python -m benchmarks.run handshake hol_blocking

Each benchmark's result goes to ``benchmarks/results/<name>-<time>.json``, with its plot beside it as
``<name>-<time>.png`` when matplotlib is installed (``pip install -e '.[plot]'``); the whole run also
to ``benchmarks/results/run-<time>.json``. See ``benchmarks/README.md`` for what each one shows.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from benchmarks import (
    bbr_trace,
    bulk,
    ecn_bottleneck,
    fairness,
    handshake,
    hol_blocking,
    loss_sweep,
    many_small,
    many_streams,
    migration,
)
from benchmarks.common import save_result, saved

BENCHMARKS: dict[str, ModuleType] = {
    "handshake": handshake,
    "hol_blocking": hol_blocking,
    "migration": migration,
    "loss_sweep": loss_sweep,
    "many_small": many_small,
    "bulk": bulk,
    "many_streams": many_streams,
    "ecn_bottleneck": ecn_bottleneck,
    "fairness": fairness,
    "bbr_trace": bbr_trace,
}

QUICK: dict[str, dict[str, Any]] = {
    "handshake": {"count": 5},
    "hol_blocking": {"losses": (0.0, 0.02, 0.05), "rounds": 8},
    "migration": {"mbytes": 2.0},
    "loss_sweep": {"losses": (0.0, 0.01, 0.05), "seconds": 3.0},
    "many_small": {"sequential": 50, "requests": 500},
    "bulk": {"mbytes": 5.0, "repeat": 1},
    "many_streams": {"streams": 10, "kib": 16.0, "repeat": 1},
    "ecn_bottleneck": {"aqms": ("droptail", "step"), "seconds": 5.0},
    "fairness": {"seconds": 8.0, "skip": 2.0, "repeat": 1},
    "bbr_trace": {"seconds": 4.0},
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # No argparse `choices`: with nargs="*" argparse checks an empty selection against them too (which
    # once made `[]` a listed choice); names are checked below instead.
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run, any of: {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a fast look")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    if unknown := [n for n in names if n not in BENCHMARKS]:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    combined: dict[str, Any] = {"quick": args.quick, "results": {}}
    for name in names:
        module = BENCHMARKS[name]
        run: Callable[..., dict[str, Any]] = module.run
        started = time.perf_counter()
        result = run(**(QUICK[name] if args.quick else {}))
        result["wall_s"] = round(time.perf_counter() - started, 1)
        print(module.report(result), flush=True)
        print(f"  ({result['wall_s']} s, {saved(save_result(name, result))})\n", flush=True)
        combined["results"][name] = result
    print(saved(save_result("run", combined)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
