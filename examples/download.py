"""Download a file over hq-interop (HTTP/0.9 over QUIC) with a progress line.

Self-contained demo (serves a generated 8 MB file on a free local port, then downloads it)::

    python examples/download.py

It prints what it serves, the download's size, time and rate, and whether the sha256 of what arrived
matches the served file. Or download from a running ``rudp serve --www DIR`` (or any hq-interop
server); it prints the size, time and rate, and the file's sha256 like ``sha256sum``::

    python examples/download.py https://localhost:4433/big.bin --ca ca.pem -o big.bin

The progress line (on stderr) is drawn only when stderr is a terminal. Sizes are in MB (10^6 bytes).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import rudp
from rudp.aio.hq import HQ_ALPN, FileServer, fetch, parse_url
from rudp.testing.certs import make_test_pki


def _summary(path: str, size: int, seconds: float) -> str:
    rate = size / max(seconds, 1e-6) / 1e6
    return f"{path}: {size / 1e6:.2f} MB in {seconds:.2f} s ({rate:.1f} MB/s)"


async def download(url: str, config: rudp.Config, output: Path) -> tuple[str, str]:
    """Fetch ``url`` into ``output``; return (summary line, sha256 hex digest).

    While it runs, a progress line is redrawn on stderr five times a second if stderr is a terminal
    (captured or piped output gets no carriage-return redraws); it is cleared at the end.
    """
    host, port, path = parse_url(url)
    hasher = hashlib.sha256()
    started = time.monotonic()
    last = started
    live = sys.stderr.isatty()
    drawn = False

    def progress(done: int) -> None:
        nonlocal last, drawn
        now = time.monotonic()
        if not live or now - last < 0.2:  # redraw five times a second, not for every chunk
            return
        last, drawn = now, True
        print(f"\r{_summary(path, done, now - started)} ...", end="", file=sys.stderr, flush=True)

    with output.open("wb") as f:

        def sink(chunk: bytes) -> None:
            f.write(chunk)
            hasher.update(chunk)

        async with rudp.connect(host, port, config=config) as conn:
            size = await fetch(conn, path, sink, progress=progress)
    if drawn:
        print("\r\033[K", end="", file=sys.stderr, flush=True)  # erase the progress line
    return _summary(path, size, time.monotonic() - started), hasher.hexdigest()


async def self_contained() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = make_test_pki(root / "pki")
        (root / "www").mkdir()
        data = os.urandom(8_000_000)
        (root / "www" / "big.bin").write_bytes(data)
        config = rudp.Config(alpn=[HQ_ALPN], certfile=pki.cert_file, keyfile=pki.key_file)
        async with await rudp.serve("127.0.0.1", 0, FileServer(root / "www"), config=config) as server:
            url = f"https://127.0.0.1:{server.port}/big.bin"
            print(f"serving {len(data) / 1e6:.2f} MB of random bytes at {url}", flush=True)
            client_config = rudp.Config(alpn=[HQ_ALPN], cafile=pki.ca_file)
            summary, digest = await download(url, client_config, root / "big.bin")
        print(summary)
        if digest != hashlib.sha256(data).hexdigest():
            sys.exit("sha256 MISMATCH: the download differs from the served file")
        print("sha256 ok: the download matches the served file")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="https://host:port/path (none: self-contained demo)")
    parser.add_argument("--ca", help="CA bundle (default: the system trust store)")
    parser.add_argument("-o", "--output", type=Path, help="output file (default: the URL's file name)")
    args = parser.parse_args()
    if args.url is None:
        await self_contained()
        return
    output = args.output or Path(parse_url(args.url)[2].rstrip("/").rsplit("/", 1)[-1] or "index.html")
    # hq-interop, as `rudp serve` and other implementations' hq-interop servers speak it
    summary, digest = await download(args.url, rudp.Config(alpn=[HQ_ALPN], cafile=args.ca), output)
    print(f"{summary} -> {output}")
    print(f"{digest}  {output}")  # the sha256sum format: check with `sha256sum -c`


if __name__ == "__main__":
    asyncio.run(main())
