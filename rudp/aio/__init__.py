"""The asyncio layer: the only part of rudp that touches sockets and the event loop.

Owns the UDP endpoint (:mod:`.endpoint`), the driver that pairs a sans-IO core with its I/O
(:mod:`.driver`), the public :class:`Connection` and :class:`Stream`, ``connect()`` and ``serve()``.
The protocol logic lives below, in :mod:`rudp.quic` and :mod:`rudp.tcp`.
"""
