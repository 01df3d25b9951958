"""rudp.tcp stays sans-IO: no module of it imports asyncio, socket, time or random."""

from __future__ import annotations

import ast
from pathlib import Path

import rudp.tcp

FORBIDDEN = {"asyncio", "socket", "time", "random", "ssl", "selectors"}


def test_tcp_core_imports_no_io_modules() -> None:
    package = Path(rudp.tcp.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) >= 3
    for path in modules:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
