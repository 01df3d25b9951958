"""``rudp selfcheck`` recomputes every RFC 9001 / RFC 9369 vector and reports one line per check."""

from __future__ import annotations

import pytest

from rudp.cli import main
from rudp.selfcheck import run_selfcheck


def test_selfcheck_passes_and_reports_each_check() -> None:
    lines: list[str] = []
    assert run_selfcheck(lines.append) == 0
    checks = lines[:-1]
    assert len(checks) == 10
    assert all(line.startswith("ok ") for line in checks)
    assert "ok RFC 9001 A.2 client Initial" in checks
    assert "ok RFC 9369 A.5 ChaCha20-Poly1305 short header packet" in checks
    assert lines[-1] == "all checks passed"


def test_cli_selfcheck_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selfcheck"]) == 0
    assert "ok RFC 9001 A.1 Initial secrets and keys" in capsys.readouterr().out
