"""Command line for the emulator: `python -m rudp.netem {check,scenarios,shell,run,bench,cleanup}`.

    python -m rudp.netem check
    python -m rudp.netem shell --scenario wan --c2s loss=1%
    python -m rudp.netem run --both delay=20ms,loss=1% --pcap /tmp/cap \\
        --server 'python -m http.server --bind {server} 8000' \\
        --client 'curl -s -o /dev/null -w "%{{time_total}}\\n" http://{server}:8000/'
    python -m rudp.netem bench

In commands, `{server}`, `{server6}`, `{client}` and `{client6}` are replaced by the hosts' addresses.
This module owns argument handling and printing only.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import subprocess
import sys
import threading

from rudp.netem import availability, namespaces
from rudp.netem.impairments import ImpairmentError, Impairments, parse_time
from rudp.netem.namespaces import NetemError
from rudp.netem.nat import NatConfig
from rudp.netem.network import Network, NetworkConfig
from rudp.netem.scenario import SCENARIOS, parse_spec
from rudp.netem.traffic import tcp_bulk, udp_blast


def _config(args: argparse.Namespace) -> NetworkConfig:
    scenario = SCENARIOS[args.scenario]
    c2s, s2c, nat = scenario.c2s, scenario.s2c, scenario.nat
    both = parse_spec(args.both)
    c2s = c2s.replace(**{**both, **parse_spec(args.c2s)})
    s2c = s2c.replace(**{**both, **parse_spec(args.s2c)})
    if args.nat or args.rebind_at:
        port, address = "port" in (args.nat or "port"), "address" in (args.nat or "")
        nat = NatConfig(tuple(parse_time(t) for t in args.rebind_at), port=port, address=address)
    return NetworkConfig(c2s=c2s, s2c=s2c, nat=nat, pcap_dir=args.pcap, mtu=args.mtu, seed=args.seed)


def _placeholders(cmd: str, net: Network) -> list[str]:
    values = {
        "server": net.server.address,
        "server6": net.server.address6 or "",
        "client": net.client.address,
        "client6": net.client.address6 or "",
    }
    return shlex.split(cmd.format(**values))


def _print_network(net: Network) -> None:
    for role, host in (("client", net.client), ("server", net.server)):
        print(f"{role}: netns {host.name}  {host.address}  {host.address6 or ''}")
        print(f"    ip netns exec {host.name} bash")
    for d in ("c2s", "s2c"):
        print(f"{d}: {net.impairments(d).describe()}")
    for side, path in net.pcap_paths.items():
        print(f"pcap {side}: {path}")


def cmd_shell(args: argparse.Namespace) -> int:
    """Build the network and keep it until Ctrl-C (or --duration seconds)."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with Network(_config(args)) as net:
        _print_network(net)
        print("Ctrl-C to tear down", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            done.wait(args.duration)
        print(net.stats().summary())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run a server command in the server host and a client command in the client host."""
    with Network(_config(args)) as net:
        _print_network(net)
        server = None
        try:
            if args.server:
                server = net.server.popen(_placeholders(args.server, net))
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.wait(args.server_startup)  # give the server time to listen
            client = net.client.run(_placeholders(args.client, net), capture_output=False)
        finally:
            if server is not None and server.poll() is None:
                server.terminate()
                try:
                    server.wait(5)
                except subprocess.TimeoutExpired:
                    server.kill()
        print(net.stats().summary(), file=sys.stderr)
    return client.returncode


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure what the forwarder sustains, as Markdown table rows."""
    print("| link | traffic | offered | delivered | packets/s | TUN drops |")
    print("|---|---|---|---|---|---|")
    impaired = Impairments(delay=0.02, jitter=0.001, loss=0.001)
    for label, imp in (("clean", Impairments()), ("20 ms +- 1 ms, 0.1% loss", impaired)):
        with Network(NetworkConfig(c2s=imp, s2c=imp)) as net:
            for rate in (*args.rates, None):
                before = net.stats().c2s.tun_tx_dropped
                sent, got = udp_blast(net.client, net.server, args.seconds, rate_bps=rate)
                drops = net.stats().c2s.tun_tx_dropped - before
                offered = sent.bytes * 8 / sent.seconds / 1e6
                print(
                    f"| {label} | UDP 1500 B | {offered:.0f} Mbit/s | {got.mbit_s:.0f} Mbit/s | "
                    f"{got.packets / got.seconds:.0f} | {drops} |",
                    flush=True,
                )
            for cc in ("cubic", "bbr"):
                r = tcp_bulk(net.client, net.server, args.seconds, congestion=cc)
                print(f"| {label} | TCP {r.congestion} | bulk | {r.mbit_s:.0f} Mbit/s | - | - |", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rudp.netem", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="say whether the emulator can run here")
    sub.add_parser("scenarios", help="list the named scenarios")
    cleanup = sub.add_parser("cleanup", help="delete namespaces left by dead runs")
    cleanup.add_argument("--all", action="store_true", help="also those of live processes")
    for name, func in (("shell", cmd_shell), ("run", cmd_run)):
        p = sub.add_parser(name, help=(func.__doc__ or "").split("\n")[0])
        p.add_argument("--scenario", choices=sorted(SCENARIOS), default="clean")
        p.add_argument("--both", default="", help="impairment spec for both directions")
        p.add_argument("--c2s", default="", help="impairment spec client->server")
        p.add_argument("--s2c", default="", help="impairment spec server->client")
        p.add_argument("--nat", choices=("port", "address", "port+address"), help="enable the rebinding NAT")
        p.add_argument("--rebind-at", action="append", default=[], help="rebind at this time (repeatable)")
        p.add_argument("--pcap", help="directory for the per-side pcap files")
        p.add_argument("--mtu", type=int, default=1500)
        p.add_argument("--seed", type=int, default=0)
        p.set_defaults(func=func)
    sub.choices["shell"].add_argument("--duration", type=float, help="tear down after this many seconds")
    run = sub.choices["run"]
    run.add_argument("--server", help="command for the server host")
    run.add_argument("--server-startup", type=float, default=0.5, help="seconds to let the server start")
    run.add_argument("--client", required=True, help="command for the client host")
    bench = sub.add_parser("bench", help="measure the forwarder's capacity")
    bench.add_argument("--seconds", type=float, default=2.0)
    bench.add_argument(
        "--rates",
        type=lambda t: float(t) * 1e6,
        nargs="*",
        default=[50e6, 200e6],
        help="offered UDP rates in Mbit/s (an unpaced blast is always added)",
    )
    args = parser.parse_args(argv)

    if args.command == "scenarios":
        for name, scenario in SCENARIOS.items():
            print(f"{name:15} {scenario.description}")
        return 0
    if args.command == "cleanup":
        removed = namespaces.cleanup_stale(include_live=args.all)
        print("\n".join(removed) or "nothing to clean up")
        return 0
    reason = availability()
    if args.command == "check":
        print(reason or "rudp.netem: available")
        return 1 if reason else 0
    if reason:
        print(reason, file=sys.stderr)
        return 1
    try:
        if args.command == "bench":
            return cmd_bench(args)
        code: int = args.func(args)
        return code
    except (ImpairmentError, NetemError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
