"""Shared pytest fixtures and the suite's leak check.

`netem` skips a test when the namespace network emulator cannot run here (no root, no TUN, no `ip`), with
the one-line reason; with RUDP_REQUIRE_NETEM=1 (CI sets it) the skip becomes a failure instead.

Leaks: pyproject turns a ResourceWarning during a test (an unclosed socket, transport or file collected
then) into a failure, and :func:`pytest_sessionfinish` collects what is still unreachable at the end and
fails the run if any of it was left open, so a test or library path that forgets to close its socket
cannot pass unnoticed. ``PYTHONTRACEMALLOC=20`` shows where the leaked object was made.
"""

from __future__ import annotations

import gc
import os
import warnings

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if objects left unreachable by the tests were never closed (ResourceWarning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    if not leaks:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("=", f"{len(leaks)} resources never closed (run with PYTHONTRACEMALLOC=20)")
        for leak in leaks:
            reporter.write_line(leak)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def netem() -> None:
    """Require the rudp.netem emulator (skip locally, fail under RUDP_REQUIRE_NETEM=1)."""
    from rudp.netem import availability

    reason = availability()
    if reason is None:
        return
    if os.environ.get("RUDP_REQUIRE_NETEM") == "1":
        pytest.fail(f"RUDP_REQUIRE_NETEM=1 but {reason}", pytrace=False)
    pytest.skip(reason)
