"""Fixtures of the TLS tests: a generated PKI (CA, EC P-256/P-384, RSA and Ed25519 leaves)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tests.tls.pki import Pki, make_pki


@pytest.fixture(scope="session")
def pki() -> Pki:
    return make_pki()
