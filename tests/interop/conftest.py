"""Fixtures for the interop tests: one certificate set and file tree shared by every case."""

from __future__ import annotations

import pytest

from interop.cases import Environment, prepare


@pytest.fixture(scope="session")
def interop_env(tmp_path_factory: pytest.TempPathFactory) -> Environment:
    """The PKI and the files every case serves, written once per session."""
    return prepare(tmp_path_factory.mktemp("interop"))
