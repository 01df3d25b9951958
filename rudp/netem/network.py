"""The emulated network: two namespaces joined through TUN devices by the forwarder process.

:class:`Network` owns the lifetime of everything it creates (namespaces, TUN devices, the forwarder
process, pcap files' completeness) and always tears it down: on `close()`, on leaving the `with` block
(also through exceptions and KeyboardInterrupt), and at interpreter exit. Run-time changes go to the
forwarder over its control socket.

Addressing (emulated subnet 10.77.0.0/16 and fd77::/48, existing only inside the namespaces): client
10.77.1.1 / fd77:0:0:1::1, server 10.77.2.1 / fd77:0:0:2::1. Each TUN has a /32 (/128) and a route for
the whole subnet, so NAT-invented client addresses (10.77.1.2, ...) route back through the link.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Literal

from rudp.netem import namespaces, tun
from rudp.netem.hosts import Host
from rudp.netem.impairments import DIRECTIONS, Direction, Impairments, coerce_fields
from rudp.netem.namespaces import NetemError
from rudp.netem.nat import NatConfig
from rudp.netem.stats import DirectionStats, LinkStats

_counter = itertools.count(1)
_live: weakref.WeakSet[Network] = weakref.WeakSet()


@dataclass(frozen=True)
class NetworkConfig:
    """How to build the network. `c2s`/`s2c` are the initial impairments per direction.

    `nat` enables the rebinding NAT in front of the client (None: no NAT; :meth:`Network.rebind`
    then fails). `pcap_dir` makes the forwarder write `<name>-client.pcap` and `<name>-server.pcap`
    there. `slack` is the delivery batching window in seconds (packets due within it are sent together);
    the forwarder's timer fires `spin` seconds early and busy-waits the rest, to hide wake-up latency.
    """

    c2s: Impairments = field(default_factory=Impairments)
    s2c: Impairments = field(default_factory=Impairments)
    mtu: int = 1500
    ipv6: bool = True
    nat: NatConfig | None = None
    pcap_dir: str | None = None
    seed: int = 0
    slack: float = 0.0001
    spin: float = 0.00025
    client_address: str = "10.77.1.1"
    server_address: str = "10.77.2.1"
    client_address6: str = "fd77:0:0:1::1"
    server_address6: str = "fd77:0:0:2::1"
    subnet: str = "10.77.0.0/16"
    subnet6: str = "fd77::/48"
    ifname: str = "netem0"


class Network:
    """Two hosts, `client` and `server`, whose only path to each other is the impaired link.

    Use as a context manager: `with Network(NetworkConfig(c2s=Impairments(delay=0.02))) as net: ...`.
    """

    def __init__(self, config: NetworkConfig | None = None) -> None:
        self.config = config or NetworkConfig()
        tag = f"{namespaces.NAME_PREFIX}{os.getpid()}-{next(_counter)}-{secrets.token_hex(2)}"
        self.name = tag
        c = self.config
        self.client = Host(f"{tag}-c", c.ifname, c.client_address, c.client_address6 if c.ipv6 else None)
        self.server = Host(f"{tag}-s", c.ifname, c.server_address, c.server_address6 if c.ipv6 else None)
        self._impairments: dict[str, Impairments] = {"c2s": c.c2s, "s2c": c.s2c}
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._reply_buf = b""
        self._lock = threading.Lock()
        self._started = False
        self.started_at = 0.0
        self.pcap_paths: dict[str, str] = {}
        if c.pcap_dir is not None:
            self.pcap_paths = {
                side: os.path.join(c.pcap_dir, f"{tag}-{side}.pcap") for side in ("client", "server")
            }

    # -- lifetime ------------------------------------------------------------------------------------

    def start(self) -> Network:
        """Create the namespaces and TUNs and start the forwarder.

        Raises:
            NetemError: any step failed (everything created so far is removed first).
        """
        if self._started:
            return self
        self._started = True
        _live.add(self)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def _setup(self) -> None:
        c = self.config
        fds: list[int] = []
        try:
            for host in (self.client, self.server):
                namespaces.create(host.name)
            for host in (self.client, self.server):
                fds.append(tun.open_tun(host.name, c.ifname))
                tun.configure(
                    host.name,
                    tun.TunSpec(
                        c.ifname,
                        host.address,
                        host.address6,
                        c.subnet,
                        c.subnet6 if c.ipv6 else None,
                        c.mtu,
                    ),
                )
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self._control = parent
            try:
                self._proc = self._spawn_forwarder(fds[0], fds[1], child.fileno())
            finally:
                child.close()
        finally:
            for fd in fds:
                os.close(fd)
        self.started_at = time.monotonic()
        config: dict[str, object] = {
            "impairments": {d: self._impairments[d].to_dict() for d in DIRECTIONS},
            "seed": c.seed,
            "slack": c.slack,
            "spin": c.spin,
            "started_at": self.started_at,
            "pcap": self.pcap_paths,
        }
        if c.nat is not None:
            config["nat"] = {
                "client_address": c.client_address,
                "rebind_at": list(c.nat.rebind_at),
                "port": c.nat.port,
                "address": c.nat.address,
            }
        self._request(config)

    def _spawn_forwarder(self, client_fd: int, server_fd: int, control_fd: int) -> subprocess.Popen[bytes]:
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        return subprocess.Popen(
            [sys.executable, "-m", "rudp.netem.forwarder", str(client_fd), str(server_fd), str(control_fd)],
            pass_fds=(client_fd, server_fd, control_fd),
            env=env,
            stdin=subprocess.DEVNULL,
        )

    def close(self) -> None:
        """Stop the forwarder (flushing pcaps) and delete the namespaces. Idempotent, never raises
        for things already gone."""
        proc, self._proc = self._proc, None
        control, self._control = self._control, None
        if proc is not None:
            if control is not None and proc.poll() is None:
                with contextlib.suppress(OSError, NetemError, TimeoutError):
                    self._request_on(control, {"op": "stop"}, timeout=5.0)
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if control is not None:
            control.close()
        for host in (self.client, self.server):
            namespaces.delete(host.name)
        _live.discard(self)

    def __enter__(self) -> Network:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def forwarder_pid(self) -> int | None:
        """The forwarder process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the forwarder process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- control -------------------------------------------------------------------------------------

    def _request_on(
        self, sock: socket.socket, message: dict[str, object], timeout: float
    ) -> dict[str, object]:
        sock.settimeout(timeout)
        sock.sendall(json.dumps(message).encode() + b"\n")
        while b"\n" not in self._reply_buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise NetemError("the forwarder process exited")
            self._reply_buf += chunk
        line, self._reply_buf = self._reply_buf.split(b"\n", 1)
        reply: dict[str, object] = json.loads(line)
        if not reply.get("ok"):
            raise NetemError(f"forwarder: {reply.get('error')}")
        return reply

    def _request(self, message: dict[str, object], timeout: float = 10.0) -> dict[str, object]:
        with self._lock:
            if self._control is None:
                raise NetemError("the network is not running")
            return self._request_on(self._control, message, timeout)

    def impairments(self, direction: Direction) -> Impairments:
        """The impairments currently set for `direction`."""
        return self._impairments[direction]

    def set_impairments(
        self,
        direction: Direction | Literal["both"],
        impairments: Impairments | None = None,
        **changes: object,
    ) -> None:
        """Change a direction's impairments now (packets already in flight keep their schedule).

        With `impairments` the settings are replaced, otherwise `changes` (field=value, as in
        :class:`Impairments`) are merged into the current ones. Blackhole periods and the drop list
        restart counting from this call when given here (or when replacing the whole settings).

        Raises:
            ImpairmentError: an invalid value.
            NetemError: the forwarder is not running.
        """
        targets = list(DIRECTIONS) if direction == "both" else [direction]
        for d in targets:
            base = impairments if impairments is not None else self._impairments[d]
            new = base.replace(**coerce_fields(changes)) if changes else base
            restart = impairments is not None or "drop_list" in changes or "blackhole_periods" in changes
            self._request({"op": "set", "direction": d, "impairments": new.to_dict(), "restart": restart})
            self._impairments[d] = new

    def stats(self) -> LinkStats:
        """A snapshot of both directions' counters (pcap files are flushed too)."""
        reply = self._request({"op": "stats"})
        out = []
        for d in DIRECTIONS:
            data = reply[d]
            stats = DirectionStats.from_dict(data if isinstance(data, dict) else {})
            src = self.client if d == "c2s" else self.server
            stats.tun_tx_dropped = tun.tx_dropped(src.name, src.ifname)
            out.append(stats)
        return LinkStats(out[0], out[1])

    def rebind(self, port: bool | None = None, address: bool | None = None) -> str:
        """Rebind the client's NAT binding now; returns the address the server will see.

        Raises:
            NetemError: the network was built without `nat`.
        """
        reply = self._request({"op": "rebind", "port": port, "address": address})
        return str(reply["external"])


def _close_all() -> None:
    for net in list(_live):
        net.close()


atexit.register(_close_all)
