"""rudp.tls stays sans-IO: no clock, socket, event loop or global randomness imports."""

from __future__ import annotations

import ast
from pathlib import Path

import rudp.tls

FORBIDDEN = {"time", "socket", "asyncio", "random", "selectors", "threading"}


def test_no_forbidden_imports() -> None:
    package = Path(rudp.tls.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_no_assert_in_library_code() -> None:
    package = Path(rudp.tls.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        assert not any(isinstance(node, ast.Assert) for node in ast.walk(tree)), path.name
