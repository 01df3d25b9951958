"""The ``rudp`` command line: ``rudp selfcheck`` (RFC vector self-test) and ``rudp version``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rudp._version import __version__


def _cmd_version(_: argparse.Namespace) -> int:
    print(f"rudp {__version__}")
    return 0


def _cmd_selfcheck(_: argparse.Namespace) -> int:
    from rudp.selfcheck import run_selfcheck

    return run_selfcheck(print)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rudp`` console script; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="rudp", description="rudp: QUIC for asyncio")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("version", help="print the version").set_defaults(func=_cmd_version)
    sub.add_parser(
        "selfcheck", help="check the codec and packet protection against the RFC test vectors"
    ).set_defaults(func=_cmd_selfcheck)
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        args = parser.parse_args(["selfcheck"])
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
