"""QUIC packet protection (RFC 9001 §5) and key derivation, on ``cryptography`` primitives."""
