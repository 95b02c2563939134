"""`llmgw`: run the gateway on this machine.

  llmgw up [--replicas router=2,provider=2] [--detach] [--config FILE] [--host ADDR]
           [--observability [--prometheus-port N] [--alertmanager-port N]]
  llmgw down
  llmgw status
  llmgw reload
  llmgw investigate --alert-name NAME [...] | get NAME | list | cancel NAME | ask NAME Q
  llmgw chat [MESSAGE] | models | sessions list|get|delete | usage | keys list|create|revoke

`up` installs nothing itself beyond what the stack needs at run time (the Makefile
creates the virtualenv); it starts Redis, the local model when no provider is
configured, the five services and Envoy, prints what runs where, and stops everything
on Ctrl-C or SIGTERM. `--observability` adds a real Prometheus and Alertmanager beside
it (services/launcher/observability.py). With `--detach` it keeps running in the background until
`llmgw down`. `reload` sends SIGHUP to the running stack's supervisor, which forwards
it to every service replica: routers reload the catalogue, providers their instances.
`investigate` is a client of a running gateway (services/launcher/investigate_cli.py);
so are chat, models, sessions, usage and keys, over gRPC (services/cli/).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import uvloop

from services.cli import args as client_args
from services.cli.connection import target_of_url
from services.common.gateway_config import ConfigError, load_config
from services.common.redaction import url_without_password
from services.launcher import investigate_args, investigate_cli
from services.launcher.envoy_process import EnvoyError
from services.launcher.localmodel import (
    LocalModelError,
    cache_dir,
    ensure_llama_server,
    ensure_model,
)
from services.launcher.observability import Observability, ObservabilityOptions
from services.launcher.processes import ProcessError
from services.launcher.prometheus_config import SCRAPE_INTERVAL
from services.launcher.stack import REPO_ROOT, SERVICES, Stack, StackOptions

STATE_FILE = "stack.json"


def _replicas(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, number = item.partition("=")
        if name not in SERVICES or not number.isdigit() or int(number) < 1:
            raise argparse.ArgumentTypeError(
                f"'{item}': use SERVICE=N with N >= 1, SERVICE one of {', '.join(SERVICES)}"
            )
        counts[name] = int(number)
    return counts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmgw", description="Run llm-gateway locally.")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=Path(os.environ.get("LLMGW_RUN_DIR", REPO_ROOT / ".run")),
        help="logs, rendered Envoy config, Redis data and the stack state (default .run/)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the whole stack")
    up.add_argument("--replicas", type=_replicas, default={}, help="e.g. router=2,provider=2")
    up.add_argument("--detach", action="store_true", help="keep running in the background")
    up.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ["LLMGW_CONFIG"]) if os.environ.get("LLMGW_CONFIG") else None,
        help="gateway configuration file (default: derived from provider variables)",
    )
    up.add_argument("--host", default=os.environ.get("LLMGW_PUBLIC_HOST", "127.0.0.1"))
    up.add_argument("--public-port", type=int, default=None)
    up.add_argument("--internal-port", type=int, default=None)
    up.add_argument("--ops-port", type=int, default=None)
    up.add_argument("--admin-port", type=int, default=None)
    up.add_argument("--log-level", default=os.environ.get("LLMGW_LOG_LEVEL", "INFO"))
    up.add_argument(
        "--dynamic-ports",
        action="store_true",
        help="free ports for everything instead of the defaults (side-by-side stacks, tests)",
    )
    up.add_argument(
        "--observability",
        action="store_true",
        help="also run Prometheus (scraping the stack, evaluating deploy/prometheus/rules) "
        "and Alertmanager (notifying the gateway's own webhook)",
    )
    up.add_argument("--prometheus-port", type=int, default=None, help="default 9090")
    up.add_argument("--alertmanager-port", type=int, default=None, help="default 9093")
    up.add_argument(
        "--scrape-interval",
        default=SCRAPE_INTERVAL,
        help="Prometheus' scrape and rule evaluation interval",
    )
    commands.add_parser("down", help="stop a stack started with `up --detach`")
    commands.add_parser(
        "prepare-model",
        help="build llama-server and fetch the embedded model now (cached; `up` does it too)",
    )
    commands.add_parser("status", help="show whether a stack runs, and where")
    commands.add_parser(
        "reload", help="re-read the configuration file in every service replica (SIGHUP)"
    )
    investigate_args.add_parser(commands)
    client_args.add_parsers(commands)
    return parser


def _state_path(run_dir: Path) -> Path:
    return run_dir / STATE_FILE


def _read_state(run_dir: Path) -> dict[str, object] | None:
    try:
        state = json.loads(_state_path(run_dir).read_text())
    except (OSError, ValueError):
        return None
    pid = state.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        _state_path(run_dir).unlink(missing_ok=True)
        return None
    return dict(state)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _run_foreground(args: argparse.Namespace) -> int:
    observability = (
        Observability(
            ObservabilityOptions(
                prometheus_port=args.prometheus_port,
                alertmanager_port=args.alertmanager_port,
                interval=args.scrape_interval,
            )
        )
        if args.observability
        else None
    )
    options = StackOptions(
        run_dir=args.run_dir,
        host=args.host,
        public_port=args.public_port,
        internal_port=args.internal_port,
        ops_port=args.ops_port,
        admin_port=args.admin_port,
        replicas=args.replicas,
        config_path=args.config,
        redis_url=os.environ.get("LLMGW_REDIS_URL") or None,
        log_level=args.log_level,
        dynamic_ports=args.dynamic_ports,
        companions=[observability] if observability else [],
    )
    stack = Stack(options, progress=lambda line: print(line, flush=True))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Left to its default, SIGHUP would end the supervisor and with it the whole stack.
    loop.add_signal_handler(signal.SIGHUP, lambda: _forward_reload(stack))
    state = _state_path(args.run_dir)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"pid": os.getpid(), "state": "starting"}))
    try:
        starting = asyncio.create_task(stack.start())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            await stack.stop()
            print("==> interrupted; everything started was stopped", flush=True)
            return 130
        starting.result()
        summary = stack.summary()
        state.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "state": "up",
                    "public_url": stack.public_url,
                    "grpc_target": stack.grpc_target,
                    "ops_url": stack.ops_url,
                    "admin_url": stack.admin_url,
                    "redis_url": url_without_password(stack.redis_url),
                    "prometheus_url": observability.prometheus_url if observability else None,
                    "alertmanager_url": (observability.alertmanager_url if observability else None),
                    "summary": summary,
                }
            )
        )
        print(summary, flush=True)
        print("(Ctrl-C stops everything)", flush=True)
        supervising = asyncio.create_task(stack.supervise(stop))
        await asyncio.wait({supervising, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if supervising.done() and supervising.exception() is not None:
            print(f"!! {supervising.exception()}", flush=True)
        supervising.cancel()
        print("==> stopping", flush=True)
        await stack.stop()
        print("==> stopped", flush=True)
        return 0
    finally:
        state.unlink(missing_ok=True)


def _forward_reload(stack: Stack) -> None:
    names = stack.reload_services()
    if names:
        print(f"==> SIGHUP: reloading the configuration in {', '.join(names)}", flush=True)
    else:
        print("==> SIGHUP: no service replica runs yet; nothing to reload", flush=True)


def _up_detached(args: argparse.Namespace, argv: Sequence[str]) -> int:
    log_path = args.run_dir / "launcher.log"
    args.run_dir.mkdir(parents=True, exist_ok=True)
    child_argv = [a for a in argv if a != "--detach"]
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "services.launcher.cli", *child_argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO_ROOT,
        )
    shown = 0
    while True:
        text = log_path.read_text(errors="replace")
        lines = text.splitlines()
        for line in lines[shown:]:
            if not line.startswith("(Ctrl-C"):
                print(line, flush=True)
        shown = len(lines)
        state = _read_state(args.run_dir)
        if state is not None and state.get("state") == "up":
            print(f"(running in the background as pid {child.pid}; `make down` stops it)")
            return 0
        if child.poll() is not None:
            print(f"!! the stack did not start (see {log_path})", file=sys.stderr)
            return 1
        time.sleep(0.2)


def _down(run_dir: Path) -> int:
    state = _read_state(run_dir)
    if state is None:
        print("no stack is running")
        return 0
    pid = int(str(state["pid"]))
    print(f"==> stopping the stack (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        print("!! the stack did not stop in 60s and was killed")
        return 1
    print("==> stopped")
    return 0


def _status(run_dir: Path) -> int:
    state = _read_state(run_dir)
    if state is None:
        print("no stack is running")
        return 3
    print(state.get("summary") or f"starting (pid {state['pid']})")
    return 0


def _reload(run_dir: Path) -> int:
    state = _read_state(run_dir)
    if state is None:
        print(f"!! no stack is running (no live supervisor in {run_dir})", file=sys.stderr)
        return 1
    pid = int(str(state["pid"]))
    os.kill(pid, signal.SIGHUP)
    print(
        f"==> sent SIGHUP to the stack (pid {pid}); it forwards it to every service replica: "
        "routers reload the catalogue and routing settings, providers their provider "
        "instances. An invalid file is refused and the old configuration stays; the "
        f"replicas' logs (under {run_dir / 'logs'}) say which."
    )
    return 0


def _prepare_model() -> int:
    def progress(line: str) -> None:
        print(line, flush=True)

    try:
        install = ensure_llama_server(progress)
        model = ensure_model(progress)
    except LocalModelError as error:
        print(f"!! {error}", file=sys.stderr)
        return 1
    print(f"==> local model ready: {install.binary.name}, {model.name} (cache: {cache_dir()})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(raw)
    if args.command == "down":
        return _down(args.run_dir)
    if args.command == "status":
        return _status(args.run_dir)
    if args.command == "reload":
        return _reload(args.run_dir)
    if args.command == "prepare-model":
        return _prepare_model()
    if args.command == "investigate":
        stack = _read_state(args.run_dir)
        public_url = stack.get("public_url") if stack else None
        return investigate_cli.main(
            args, running_url=public_url if isinstance(public_url, str) else None
        )
    if args.command in client_args.COMMANDS:
        stack = _read_state(args.run_dir)
        public_url = stack.get("public_url") if stack else None
        return client_args.main(
            args, running_target=target_of_url(public_url if isinstance(public_url, str) else None)
        )
    running = _read_state(args.run_dir)
    if running is not None:
        print(f"a stack is already running (pid {running['pid']}); `make down` stops it")
        return 1
    try:
        if args.config is not None:
            load_config(args.config)
        if args.detach:
            return _up_detached(args, raw)
        return uvloop.run(_run_foreground(args))
    except (ConfigError, ProcessError, LocalModelError, EnvoyError) as error:
        print(f"!! {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
