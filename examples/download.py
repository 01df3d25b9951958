"""Download a file over hq-interop (HTTP/0.9 over QUIC) with a progress line.

Self-contained demo (serves a generated 8 MB file on a free local port, then downloads it)::

    python examples/download.py

Or download from a running ``rudp serve --www DIR`` (or any hq-interop server)::

    python examples/download.py https://localhost:4433/big.bin --ca ca.pem -o big.bin
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
from rudp.aio.hq import FileServer, fetch, parse_url
from rudp.testing.certs import make_test_pki


async def download(url: str, config: rudp.Config, output: Path) -> str:
    """Fetch ``url`` into ``output`` with a progress line on stderr; return the sha256 hex digest."""
    host, port, path = parse_url(url)
    hasher = hashlib.sha256()
    started = time.monotonic()

    last = started

    def progress(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < 0.2:  # redraw five times a second, not for every chunk
            return
        last = now
        rate = done / max(now - started, 1e-6) / 1e6
        print(f"\r{path}: {done / 1e6:6.2f} MB  {rate:6.2f} MB/s", end="", file=sys.stderr, flush=True)

    with output.open("wb") as f:

        def sink(chunk: bytes) -> None:
            f.write(chunk)
            hasher.update(chunk)

        async with rudp.connect(host, port, config=config) as conn:
            size = await fetch(conn, path, sink, progress=progress)
    print(f"\n{size} bytes in {time.monotonic() - started:.2f} s -> {output}", file=sys.stderr)
    return hasher.hexdigest()


async def self_contained() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = make_test_pki(root / "pki")
        (root / "www").mkdir()
        data = os.urandom(8_000_000)
        (root / "www" / "big.bin").write_bytes(data)
        config = rudp.Config(certfile=pki.cert_file, keyfile=pki.key_file)
        async with await rudp.serve("127.0.0.1", 0, FileServer(root / "www"), config=config) as server:
            url = f"https://127.0.0.1:{server.port}/big.bin"
            digest = await download(url, rudp.Config(cafile=pki.ca_file), root / "big.bin")
        print("sha256 ok" if digest == hashlib.sha256(data).hexdigest() else "sha256 MISMATCH")


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
    print(await download(args.url, rudp.Config(cafile=args.ca), output))


if __name__ == "__main__":
    asyncio.run(main())
