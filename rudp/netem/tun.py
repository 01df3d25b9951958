"""TUN devices: open one inside a namespace and give it addresses and routes.

The device is created while the calling thread sits in the target namespace, so it lives there; the file
descriptor keeps working from any namespace and any process it is passed to. The device is not
persistent: it vanishes when the last descriptor closes. Packets are raw IP (IFF_NO_PI).
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
from dataclasses import dataclass
from typing import Final

from rudp.netem import namespaces
from rudp.netem.namespaces import NetemError

TUNSETIFF: Final = 0x400454CA
IFF_TUN: Final = 0x0001
IFF_NO_PI: Final = 0x1000
TUN_PATH: Final = "/dev/net/tun"


@dataclass(frozen=True, slots=True)
class TunSpec:
    """How to configure one side's TUN device.

    `route4`/`route6` are the emulated subnets routed through the device, so that addresses the NAT
    invents (rebinding) route back through the emulator too.
    """

    ifname: str
    address: str
    address6: str | None
    route4: str
    route6: str | None
    mtu: int = 1500
    txqueuelen: int = 10000


def open_tun(netns: str, ifname: str) -> int:
    """Create a TUN device named `ifname` inside `netns` and return its non-blocking fd.

    Raises:
        NetemError: /dev/net/tun cannot be opened or the device cannot be created.
    """
    with namespaces.entered(netns):
        try:
            fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise NetemError(f"cannot open {TUN_PATH}: {exc}") from exc
        try:
            ifr = struct.pack("16sH22x", ifname.encode(), IFF_TUN | IFF_NO_PI)
            fcntl.ioctl(fd, TUNSETIFF, ifr)
        except OSError as exc:
            os.close(fd)
            raise NetemError(f"TUNSETIFF {ifname} in {netns}: {exc}") from exc
    return fd


def configure(netns: str, spec: TunSpec) -> None:
    """Give the device its addresses, MTU and routes, and bring it up.

    The IPv4 address is a /32 with the emulated subnet routed through the device. Reverse-path filtering
    is set loose, since a rebinding NAT makes sources appear that the host never saw. IPv6 gets a /128
    without duplicate address detection and no link-local address (nothing but our traffic crosses the
    link), or is disabled on the device when `address6` is None.
    """
    dev = spec.ifname
    for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"):
        namespaces.sysctl(netns, key, "2")
    namespaces.sysctl(netns, f"net.ipv4.conf.{dev}.rp_filter", "2")
    if spec.address6 is None:
        namespaces.sysctl(netns, f"net.ipv6.conf.{dev}.disable_ipv6", "1")
    else:
        namespaces.sysctl(netns, f"net.ipv6.conf.{dev}.addr_gen_mode", "1")
        namespaces.sysctl(netns, f"net.ipv6.conf.{dev}.accept_ra", "0")
    namespaces.ip("link", "set", dev, "mtu", str(spec.mtu), "txqueuelen", str(spec.txqueuelen), netns=netns)
    namespaces.ip("addr", "add", f"{spec.address}/32", "dev", dev, netns=netns)
    if spec.address6 is not None:
        namespaces.ip("-6", "addr", "add", f"{spec.address6}/128", "dev", dev, "nodad", netns=netns)
    namespaces.ip("link", "set", dev, "up", netns=netns)
    namespaces.ip("route", "add", spec.route4, "dev", dev, netns=netns)
    if spec.address6 is not None and spec.route6 is not None:
        namespaces.ip("-6", "route", "add", spec.route6, "dev", dev, netns=netns)


def tx_dropped(netns: str, ifname: str) -> int:
    """The device's tx_dropped counter: packets the kernel dropped because the forwarder fell behind.

    Returns 0 when the counter cannot be read.
    """
    proc = namespaces.ip("-j", "-s", "link", "show", "dev", ifname, netns=netns, check=False)
    try:
        data = json.loads(proc.stdout)
        return int(data[0]["stats64"]["tx"]["dropped"])
    except (ValueError, LookupError, TypeError):
        return 0


__all__ = ["NetemError", "TunSpec", "configure", "open_tun", "tx_dropped"]
