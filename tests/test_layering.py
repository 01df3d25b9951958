"""The sans-IO layers import no I/O, clock or global randomness (ARCHITECTURE §2.1 principle 1).

rudp/codec, crypto, tls, quic and tcp take time as an argument and randomness from an injected source;
only rudp/aio (and the CLI, demo, netem and testing tools) may touch asyncio, sockets or clocks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "rudp"
SANS_IO_PACKAGES = ["codec", "crypto", "tls", "quic", "tcp"]
FORBIDDEN = {"asyncio", "socket", "time", "random", "selectors", "threading", "aioquic"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", SANS_IO_PACKAGES)
def test_sans_io_packages_import_no_io(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"rudp/{package} has no modules"
    offenders = {str(f.relative_to(ROOT)): sorted(_imported_modules(f) & FORBIDDEN) for f in files}
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_library_code_has_no_asserts() -> None:
    # `assert` vanishes under -O: misuse must raise a typed rudp error instead.
    offenders = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Assert):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_aioquic_is_never_imported_by_rudp() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if "aioquic" in _imported_modules(p)]
    assert offenders == []
