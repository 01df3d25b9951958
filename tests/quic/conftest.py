"""Fixtures of the sans-IO QUIC scenarios: a generated PKI."""

from __future__ import annotations

import pytest

from rudp.testing.certs import TestPki, make_test_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))
