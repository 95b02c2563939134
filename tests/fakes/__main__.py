"""Runs one fake as a process: `python -m tests.fakes openai|anthropic|ollama [options]`.

Once listening it prints the bound port on stdout and, with `--port-file`, writes it
there (atomically, so a poller never reads a partial number). SIGINT/SIGTERM stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from tests.fakes import FAKES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__)
    parser.add_argument("protocol", choices=sorted(FAKES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any)")
    parser.add_argument("--port-file", type=Path, default=None)
    parser.add_argument(
        "--no-record", action="store_true", help="keep no request log (long benchmarks)"
    )
    return parser.parse_args(argv)


def write_port_file(path: Path, port: int) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{port}\n")
    os.replace(partial, path)


async def serve(args: argparse.Namespace) -> None:
    fake = FAKES[args.protocol](
        api_key=args.api_key, host=args.host, port=args.port, record=not args.no_record
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await fake.start()
    try:
        if args.port_file is not None:
            write_port_file(args.port_file, fake.port)
        print(fake.port, flush=True)
        await stop.wait()
    finally:
        await fake.stop()


def run(main: Coroutine[Any, Any, None]) -> None:
    """Runs on uvloop when it is installed, else on the default loop."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
