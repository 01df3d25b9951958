"""Fixtures for the stream conformance run: one throwaway PKI and the suite's small-window configs."""

from __future__ import annotations

import pytest

import rudp
from rudp.testing.certs import TestPki, make_test_pki
from rudp.testing.stream_suite import suite_configs


@pytest.fixture(scope="session")
def conformance_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("conformance-pki"))


@pytest.fixture
def configs(conformance_pki: TestPki) -> tuple[rudp.Config, rudp.Config]:
    """(client, server) configs for :func:`rudp.testing.stream_suite.connected_stream_pair`."""
    return suite_configs(conformance_pki.ca_file, conformance_pki.cert_file, conformance_pki.key_file)
