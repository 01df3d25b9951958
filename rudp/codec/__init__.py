"""Wire codecs for QUIC v1: varints, buffers, packet headers, frames and transport parameters.

Pure functions and small value types only: no I/O, no clocks, no randomness.
"""
