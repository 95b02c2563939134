"""What every gateway client command shares: where the gateway is, the API key, `--json`,
the exit status a failed call gives, and the progress indicator.

Exit status: the gRPC status code of the call that failed, as its number, so scripts can
tell a missing model from an overloaded gateway without parsing text:

  0 OK             1 CANCELLED        2 UNKNOWN          3 INVALID_ARGUMENT
  4 DEADLINE_EXCEEDED                 5 NOT_FOUND        6 ALREADY_EXISTS
  7 PERMISSION_DENIED                 8 RESOURCE_EXHAUSTED
  9 FAILED_PRECONDITION               10 ABORTED         11 OUT_OF_RANGE
  12 UNIMPLEMENTED   13 INTERNAL      14 UNAVAILABLE     15 DATA_LOSS
  16 UNAUTHENTICATED                  130 interrupted (Ctrl-C)

A mistake found before any call (an unreadable tools file, an empty message) exits 3,
like the gateway's own INVALID_ARGUMENT; argparse's usage errors keep their 2. Errors
print the status message (and the ErrorInfo reason, when the status carries one) on
stderr, never a stack trace.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2

from services.common.errors import STATUS_DETAILS_KEY, find_detail

DEFAULT_TARGET = "127.0.0.1:8080"
EXIT_INVALID = grpc.StatusCode.INVALID_ARGUMENT.value[0]
EXIT_INTERRUPTED = 130
# Seconds a unary call may take; streams have none (a long answer is not an error).
CALL_TIMEOUT = 30.0
# Largest gRPC message the client accepts (a full session can be large).
MAX_RECEIVE_BYTES = 64 * 1024 * 1024

_T = TypeVar("_T")


class CommandError(Exception):
    """A failure to report as one line and an exit status (no stack trace)."""

    def __init__(self, message: str, exit_code: int = EXIT_INVALID) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """`--target`, `--api-key`, `--json` on a command (SUPPRESS defaults, so they are
    accepted before or after a sub-action; `Connection.of` fills them in)."""
    parser.add_argument(
        "--target",
        default=argparse.SUPPRESS,
        help="the gateway's public gRPC address HOST:PORT (default: $LLMGW_TARGET, else "
        f"the stack `llmgw up` runs, else {DEFAULT_TARGET})",
    )
    parser.add_argument(
        "--api-key",
        default=argparse.SUPPRESS,
        help="API key (default: $LLMGW_API_KEY; not needed while authentication is off)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print JSON (the protobuf messages, field names as in the protos) for scripts",
    )


@dataclass(frozen=True)
class Connection:
    """Where to call and as whom, and how to print."""

    target: str
    api_key: str
    as_json: bool

    @classmethod
    def of(cls, args: argparse.Namespace, running_target: str | None = None) -> Connection:
        target = (
            getattr(args, "target", None)
            or os.environ.get("LLMGW_TARGET")
            or running_target
            or DEFAULT_TARGET
        )
        key = getattr(args, "api_key", None) or os.environ.get("LLMGW_API_KEY", "")
        return cls(target=target, api_key=key, as_json=bool(getattr(args, "json", False)))

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),) if self.api_key else ()

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(
            self.target, options=[("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)]
        )


def target_of_url(url: str | None) -> str | None:
    """`host:port` of the public URL a running stack records (`http://host:port`)."""
    if not url:
        return None
    return url.split("://", 1)[-1].rstrip("/") or None


def status_of(error: grpc.RpcError) -> status_pb2.Status:
    """The full status of a failed call: code, message and details when sent."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = error.details() if isinstance(error, grpc.Call) else str(error)
    trailing = error.trailing_metadata() if isinstance(error, grpc.Call) else None
    for key, value in trailing or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except ValueError:
                break
    return status_pb2.Status(code=code.value[0], message=message or "")


def describe(status: status_pb2.Status) -> str:
    """One line for a failed status: its code name, message and ErrorInfo reason."""
    name = next((c.name for c in grpc.StatusCode if c.value[0] == status.code), "UNKNOWN")
    line = f"{name}: {status.message or 'no message'}"
    info = find_detail(status, error_details_pb2.ErrorInfo)
    if info is not None and info.reason:
        line += f" [{info.reason}]"
    retry = find_detail(status, error_details_pb2.RetryInfo)
    if retry is not None:
        line += f" (retry after {retry.retry_delay.ToTimedelta().total_seconds():g}s)"
    return line


def run_reporting(body: Callable[[], int], err: TextIO) -> int:
    """Runs a command, turning a failed call, a CommandError or Ctrl-C into one stderr
    line and the exit status documented above."""
    try:
        return body()
    except grpc.RpcError as error:
        status = status_of(error)
        err.write(f"llmgw: {describe(status)}\n")
        return status.code or grpc.StatusCode.UNKNOWN.value[0]
    except CommandError as error:
        err.write(f"llmgw: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        err.write("llmgw: interrupted\n")
        return EXIT_INTERRUPTED


class Progress:
    """A spinner on stderr while something long runs (waiting for a first token), only
    when stderr is a terminal: pipes and logs never see it. `stop()` erases it."""

    FRAMES = "|/-\\"

    def __init__(self, label: str, stream: TextIO | None = None, interval: float = 0.1) -> None:
        self._stream = stream or sys.stderr
        self._label = label
        self._interval = interval
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Set once a frame is on the terminal (tests wait on it).
        self.shown = threading.Event()

    def start(self) -> Progress:
        isatty = getattr(self._stream, "isatty", None)
        if isatty is not None and isatty():
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        return self

    def _spin(self) -> None:
        for frame in itertools.cycle(self.FRAMES):
            with self._lock:
                if self._stopped.is_set():
                    return
                self._stream.write(f"\r{frame} {self._label}")
                self._stream.flush()
                self.shown.set()
            if self._stopped.wait(self._interval):
                return

    def stop(self) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
            if self.shown.is_set():
                self._stream.write("\r\033[K")
                self._stream.flush()
        if self._thread is not None:
            self._thread.join()


@contextmanager
def progress(label: str, stream: TextIO | None = None) -> Iterator[Progress]:
    indicator = Progress(label, stream).start()
    try:
        yield indicator
    finally:
        indicator.stop()


def while_waiting(label: str, call: Callable[[], _T], stream: TextIO | None = None) -> _T:
    """`call()` with the progress indicator up until it returns."""
    with progress(label, stream):
        return call()
