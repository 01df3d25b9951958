"""hq-interop peers: a file server and a fetching client per implementation, with one shared shape.

Each client takes a :class:`~interop.peers.base.ClientPlan` and returns one
:class:`~interop.peers.base.ClientConnectionResult` per connection; each server exposes a
:class:`~interop.peers.base.ServerPeer` whose reports say what every connection negotiated.
"""
