"""Fixtures for the interop tests: one certificate set and file tree shared by every case."""

from __future__ import annotations

import os

import pytest

from interop.cases import Environment, prepare

TEST_SEED = int(os.environ.get("RUDP_INTEROP_SEED", "15"))
"""Seed of the loss and corruption cases in the tests: fixed, so CI sees the same loss pattern every run
(as far as timing leaves the order of datagrams alike); ``RUDP_INTEROP_SEED`` replays another."""


@pytest.fixture(scope="session")
def interop_env(tmp_path_factory: pytest.TempPathFactory) -> Environment:
    """The PKI and the files every case serves, written once per session."""
    return prepare(tmp_path_factory.mktemp("interop"))
