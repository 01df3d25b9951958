"""Shared pytest fixtures.

`netem` skips a test when the namespace network emulator cannot run here (no root, no TUN, no `ip`), with
the one-line reason; with RUDP_REQUIRE_NETEM=1 (CI sets it) the skip becomes a failure instead.
"""

from __future__ import annotations

import os

import pytest


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
