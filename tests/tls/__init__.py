"""Tests of the TLS 1.3 engine (rudp.tls)."""
