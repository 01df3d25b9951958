"""Where rudp's bulk CPU goes: one transfer under cProfile on both sides, self-time split by category.

Run as root: ``python -m benchmarks.profile [--mbytes 16] [--direction download] [--loop asyncio]
[--path netns] [--top 12]``.

Runs one rudp bulk transfer exactly as :mod:`benchmarks.bulk` does (server and client in separate
processes; by default in a network namespace whose loopback has MTU 1500, with
``Config(max_datagram_size=1452, pmtu_discovery=False)``), each process under ``cProfile``, then maps every
profiled function to a category by its file path and name and prints each category's share of the
process's total self-time (``tottime``), for the sender and the receiver, plus the top functions.

cProfile adds a fixed cost per Python call, so it inflates code made of many small calls relative to C
calls (AEAD, syscalls): read the split as "where the Python work is", not as exact wall-clock shares.
"""

from __future__ import annotations

import argparse
import contextlib
import pstats
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import bulk
from benchmarks.common import table

CATEGORIES = (
    "AEAD",
    "header protection",
    "codecs",
    "recovery/CC",
    "streams/flow control",
    "packet assembly",
    "asyncio/syscalls",
    "other",
    "benchmark harness",
)
"""In report order. What each covers is in :func:`category`."""

_QUIC = "/rudp/quic/"
_RECOVERY = (
    "recovery.py",
    "sent.py",
    "rtt.py",
    "pacing.py",
    "rangeset.py",
    "timers.py",
    "liveness.py",
    "spaces.py",
)
_ASSEMBLY = ("packetizer.py", "sending.py", "control.py", "delivery.py", "receiving.py")
_STREAMS = ("flow.py", "crypto_streams.py")
_SYSCALLS = re.compile(
    r"\b(sendto|sendmsg|recvfrom|recvfrom_into|recvmsg|recvmsg_into|poll|select|epoll|send|recv|"
    r"_run_once|run_forever|call_soon|call_at|call_later)\b"
)


def category(file: str, name: str) -> str:
    """The category of one profiled function (``file`` is ``~`` for built-ins; ``name`` names their owner).

    AEAD: the AESGCM/ChaCha20Poly1305 ``encrypt``/``decrypt`` calls. Header protection: rudp/crypto
    (mask computation and the protect/unprotect glue around the AEAD) and the cryptography cipher calls
    that make the masks. Codecs: rudp/codec (frames, packet headers, varints). Recovery/CC: sent-packet
    tracking, ACK ranges, RTT, loss detection, pacing, congestion control, timers. Streams/flow control:
    rudp/quic/streams and flow.py. Packet assembly: building datagrams (sending, packetizer, frame
    sources) and the receive path's dispatch (receiving.py). Asyncio/syscalls: the event loop, uvloop,
    selectors, sockets and rudp/aio (rudp's asyncio layer). Benchmark harness: benchmarks/ (sending and
    checking the body). Other: the rest (the connection core's glue, stats, TLS, the interpreter).
    """
    path = file.replace("\\", "/")
    if path == "~":
        if re.search(r"AESGCM|ChaCha20Poly1305|AESCCM|aead", name) and re.search(r"encrypt|decrypt", name):
            return "AEAD"
        if re.search(r"Cipher|cryptography|encryptor|finalize|'update'", name):
            return "header protection"
        if _SYSCALLS.search(name) and re.search(r"socket|select|epoll|poll|uvloop|loop", name):
            return "asyncio/syscalls"
        return "other"
    if "/benchmarks/" in path:
        return "benchmark harness"
    if "/rudp/crypto/" in path or "/cryptography/" in path:
        return "header protection"
    if "/rudp/codec/" in path:
        return "codecs"
    if _QUIC in path:
        base = path.rsplit("/", 1)[-1]
        if "/congestion/" in path or base in _RECOVERY:
            return "recovery/CC"
        if "/streams/" in path or base in _STREAMS:
            return "streams/flow control"
        if base in _ASSEMBLY:
            return "packet assembly"
        return "other"
    if (
        "/rudp/aio/" in path
        or "/asyncio/" in path
        or "/uvloop/" in path
        or path.endswith(("selectors.py", "socket.py"))
    ):
        return "asyncio/syscalls"
    return "other"


def split(stats_file: Path) -> tuple[dict[str, float], float, list[tuple[float, str]]]:
    """Self-seconds per category, the total, and every function's (self-seconds, label)."""
    stats = pstats.Stats(str(stats_file))
    by_category = dict.fromkeys(CATEGORIES, 0.0)
    functions = []
    for (file, line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_category[category(file, name)] += tottime
        short = file if file == "~" else "/".join(Path(file).parts[-2:])
        functions.append((tottime, f"{short}:{line} {name} [{category(file, name)}]"))
    total = sum(by_category.values())
    functions.sort(reverse=True)
    return by_category, total, functions


def run(
    *,
    mbytes: float = 16.0,
    direction: str = "download",
    loop: str = "asyncio",
    path: str = "netns",
    config: str = "fixed",
) -> dict[str, Any]:
    """Profile one transfer; the split per side (JSON-able). ``config="default"``: ``Config()``'s
    defaults (PMTU discovery on), as :mod:`benchmarks.bulk`'s rudp-default row."""
    from rudp.testing.certs import make_test_pki

    nbytes = int(mbytes * (1 << 20))
    work = Path(tempfile.mkdtemp(prefix="rudp-profile-"))
    pki = make_test_pki(work)
    base = {
        "stack": "rudp" if config == "fixed" else "rudp-pmtud",
        "loop": loop,
        "direction": direction,
        "nbytes": nbytes,
        "cert": str(pki.cert_file),
        "key": str(pki.key_file),
        "ca": str(pki.ca_file),
        "profile_server": str(work / "server.prof"),
        "profile_client": str(work / "client.prof"),
    }
    context = bulk.netns() if path == "netns" else contextlib.nullcontext([])
    with context as prefix:
        measured = bulk.run_once(prefix, base, timeout=600)
    sides = {"server": "sender" if direction == "download" else "receiver"}
    sides["client"] = "receiver" if direction == "download" else "sender"
    out: dict[str, Any] = {
        "conditions": {
            "mbytes": mbytes,
            "direction": direction,
            "loop": loop,
            "path": path,
            "config": config,
        },
        "mbit_s_under_profiler": nbytes * 8 / measured["client"]["elapsed"] / 1e6,
        "sides": {},
    }
    for process, role in sides.items():
        by_category, total, functions = split(Path(base[f"profile_{process}"]))
        out["sides"][role] = {
            "process": process,
            "self_seconds": total,
            "datagrams": measured[process]["sent" if role == "sender" else "received"],
            "share": {k: v / total if total else 0.0 for k, v in by_category.items()},
            "top": functions[:40],
        }
    return out


def report(result: dict[str, Any], top: int = 12) -> str:
    c = result["conditions"]
    sender, receiver = result["sides"]["sender"], result["sides"]["receiver"]
    rows = [
        [name, f"{sender['share'][name] * 100:.1f} %", f"{receiver['share'][name] * 100:.1f} %"]
        for name in CATEGORIES
    ]
    rows.append(["total self-time (s)", f"{sender['self_seconds']:.2f}", f"{receiver['self_seconds']:.2f}"])
    head = (
        f"rudp bulk profile: {c['mbytes']:g} MiB {c['direction']} on {c['path']} ({c['loop']}), cProfile "
        f"on both processes ({result['mbit_s_under_profiler']:.0f} Mbit/s under the profiler)"
    )
    parts = [head, table(["category (share of self-time)", "sender", "receiver"], rows)]
    for role, side in (("sender", sender), ("receiver", receiver)):
        parts.append(f"\ntop {top} functions by self-time, {role} ({side['process']}):")
        parts += [f"  {t:6.2f} s  {label}" for t, label in side["top"][:top]]
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbytes", type=float, default=16.0)
    parser.add_argument("--direction", choices=bulk.DIRECTIONS, default="download")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--path", choices=["netns", "loopback"], default="netns")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument(
        "--config",
        choices=["fixed", "default"],
        default="fixed",
        help="fixed (default): Config(max_datagram_size=1452, pmtu_discovery=False); default: Config()'s "
        "defaults (PMTU discovery on, which finds 1452 on the netns path), bulk's rudp-default row",
    )
    args = parser.parse_args(argv)
    result = run(
        mbytes=args.mbytes, direction=args.direction, loop=args.loop, path=args.path, config=args.config
    )
    print(report(result, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
