"""Interoperability runs of rudp against aioquic (and itself) over loopback UDP.

Owns the named cases (:mod:`interop.cases`), the hq-interop peers built on each implementation's public
API (:mod:`interop.peers`), a wire observer that sits between client and server (:mod:`interop.tap`)
and the matrix runner (:mod:`interop.run`). It is not part of the installed ``rudp`` package.
"""
