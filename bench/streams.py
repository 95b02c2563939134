"""Many concurrent streams through the default stack: does every one reach its end?

Each stream is a REST `POST /v1/chat/completions` with `"stream": true` whose answer the
fake OpenAI upstream paces: the first piece after `FIRST_CHUNK_S`, then one every
`CHUNK_INTERVAL_S`, `CHUNKS` content pieces in all (5 s per stream). All streams of a
run are opened at once, so they are in flight together; the gateway is the default
stack (one router, one provider) started by `tests.support.gateway.running_gateway`.

The load client must not be what fails or saturates: raw HTTP/1.1 over asyncio streams,
one connection per stream, spread over worker processes of `STREAMS_PER_WORKER` streams
each (`python -m bench.streams worker`), and no client-side timeout short enough to
end a stream (one that outlives `STREAM_DEADLINE_S` counts as `client timeout`, so it
can never pass for a gateway failure unseen). Time to first token runs from sending the
request to reading the first SSE event that carries content.

Outcomes: `completed` (HTTP 200, every piece of the text in order, a finish reason, a
clean end of the chunked body; pieces the provider got together may come as one chunk);
otherwise one failure label: `HTTP <status>` (an answer other than 200), `error event`
(a 200 stream that ended with an error event), `truncated` (a 200 stream that ended early
without one), `connection <error>`, `client timeout`.

    python -m bench.streams [--streams 200,1000,2000] [--provider-pool N]  # the table
    make bench                                          # also writes it to RESULTS.md

`--provider-pool N` sets the upstream connection pool of the fake OpenAI provider
(`providers.openai.max_connections`) instead of the default, to see what it governs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.cpu import CpuMeter, PeakSampler, RssPeak, stack_pids
from bench.ttft import percentile
from tests.fakes import Behaviour
from tests.support.gateway import Gateway, running_gateway

MODEL = "gpt-paced"
CHUNKS = 10
FIRST_CHUNK_S = 0.5
CHUNK_INTERVAL_S = 0.5
STREAM_COUNTS = (200, 1000, 2000)
# Far beyond a stream's 5 s: only a stream the gateway holds up this long hits it.
STREAM_DEADLINE_S = 300.0
# Streams per worker process: its event loop reads about CHUNKS * this / 5 events a second.
STREAMS_PER_WORKER = 500
# Between runs: every stream of the previous run has ended and its connections closed.
SETTLE_S = 3.0
SECTION = "## Concurrent streams"


def _words(chunks: int) -> list[str]:
    return [f"w{i} " for i in range(chunks)]


def paced_text(chunks: int) -> str:
    """The whole text of a paced answer of `chunks` pieces."""
    return "".join(_words(chunks))


def pace(gateway: Gateway, chunks: int = CHUNKS, interval_s: float = CHUNK_INTERVAL_S) -> None:
    """From now on the fake OpenAI upstream paces every answer for MODEL: `chunks`
    content pieces, the first after FIRST_CHUNK_S, then one every `interval_s`."""
    words = _words(chunks)
    with gateway.fakes["openai"].control() as control:
        control.set_default(
            Behaviour(chunks=words, delay=FIRST_CHUNK_S, chunk_delay=interval_s),
            model=MODEL,
        )


def request_body() -> bytes:
    message = {"role": "user", "content": "Hello"}
    return json.dumps({"model": MODEL, "messages": [message], "stream": True}).encode()


@dataclass
class Outcome:
    """One stream's end: `failure` is None when it completed."""

    failure: str | None
    ttft_s: float | None = None
    chunks: int = 0
    # The start of a failed answer's body, to tell failures of one status apart.
    detail: str = ""


async def _read_events(
    reader: asyncio.StreamReader, started: float, outcome: Outcome, text: list[str]
) -> tuple[bool, bool]:
    """Reads SSE events until the chunked body ends: (finish reason seen, error seen);
    `text` gets each chunk's content."""
    buffer = b""
    finished = error = False
    while True:
        size = int((await reader.readline()).strip() or b"0", 16)
        if size == 0:
            await reader.readline()
            return finished, error
        buffer += (await reader.readexactly(size + 2))[:-2]
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            data = json.loads(event.removeprefix(b"data: "))
            if "error" in data or "code" in data:
                error = True
                continue
            for choice in data.get("choices", []):
                content = choice.get("delta", {}).get("content")
                if content:
                    if outcome.ttft_s is None:
                        outcome.ttft_s = time.perf_counter() - started
                    outcome.chunks += 1
                    text.append(content)
                if choice.get("finish_reason"):
                    finished = True


async def one_stream(host: str, port: int, path: str, body: bytes, chunks: int = CHUNKS) -> Outcome:
    outcome = Outcome(failure=None)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer unused\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(STREAM_DEADLINE_S):
            reader, writer = await asyncio.open_connection(host, port)
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            status = int(status_line.split()[1]) if status_line else 0
            headers = []
            while (line := await reader.readline()) not in (b"\r\n", b""):
                headers.append(line.lower())
            if status != 200:
                outcome.failure = f"HTTP {status}"
                outcome.detail = (await reader.read(300)).decode(errors="replace")
                return outcome
            if not any(h.startswith(b"transfer-encoding:") and b"chunked" in h for h in headers):
                outcome.failure = "truncated"
                return outcome
            text: list[str] = []
            finished, error = await _read_events(reader, started, outcome, text)
            if error:
                outcome.failure = "error event"
            elif not finished or "".join(text) != paced_text(chunks):
                # Every piece, in order; pieces the provider received together may come
                # coalesced, so the chunks can be fewer than the pieces.
                outcome.failure = "truncated"
    except TimeoutError:
        outcome.failure = "client timeout"
    except (OSError, asyncio.IncompleteReadError, ValueError) as err:
        outcome.failure = f"connection {type(err).__name__}"
    finally:
        if writer is not None:
            writer.close()
    return outcome


async def _worker(url: str, count: int, start_at: float, chunks: int) -> list[Outcome]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = request_body()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    return await asyncio.gather(
        *(one_stream(host, port, parts.path, body, chunks) for _ in range(count))
    )


@dataclass
class StreamsResult:
    streams: int
    completed: int
    failures: Counter[str] = field(default_factory=Counter)
    ttft_p50_s: float = float("nan")
    ttft_p99_s: float = float("nan")
    # From the common start until the last stream ended.
    wall_s: float = 0.0
    # CPU the load client's worker processes used, as a share of the cores they had.
    client_cpu_share: float = 0.0
    # Most streams the upstream served at once (sampled): fewer than `streams` means
    # the rest waited somewhere in the gateway before reaching it.
    peak_upstream: int = 0
    # A few bodies of failed answers, for the report.
    samples: list[str] = field(default_factory=list)
    # Content chunks the clients received, and what the suite (Envoy and every service
    # replica) spent meanwhile: CPU seconds, resident MiB before the run and at its peak.
    chunks: int = 0
    suite_cpu_s: float = 0.0
    rss_start_mib: float = 0.0
    rss_peak_mib: float = 0.0

    @property
    def cpu_per_chunk_ms(self) -> float:
        return self.suite_cpu_s / self.chunks * 1000 if self.chunks else float("nan")

    @property
    def rss_per_stream_kib(self) -> float:
        return (self.rss_peak_mib - self.rss_start_mib) * 1024 / self.streams

    def failures_text(self) -> str:
        if not self.failures:
            return "none"
        return ", ".join(f"{label}: {n:,}" for label, n in sorted(self.failures.items()))


def summarize(outcomes: Sequence[Outcome], wall_s: float, client_cpu_share: float) -> StreamsResult:
    ttfts = [o.ttft_s for o in outcomes if o.ttft_s is not None and o.failure is None]
    result = StreamsResult(
        streams=len(outcomes),
        completed=sum(o.failure is None for o in outcomes),
        failures=Counter(o.failure for o in outcomes if o.failure is not None),
        wall_s=wall_s,
        client_cpu_share=client_cpu_share,
        samples=sorted({o.detail for o in outcomes if o.detail})[:3],
        chunks=sum(o.chunks for o in outcomes),
    )
    if ttfts:
        result.ttft_p50_s = percentile(ttfts, 0.5)
        result.ttft_p99_s = percentile(ttfts, 0.99)
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_streams(url: str, streams: int, chunks: int = CHUNKS) -> StreamsResult:
    """`streams` concurrent streams against `url`, from worker processes started together;
    each must carry `chunks` content chunks (what `pace` set) to complete."""
    workers = max(1, -(-streams // STREAMS_PER_WORKER))
    counts = [streams // workers + (i < streams % workers) for i in range(workers)]
    # Time for every worker to import and connect nothing yet: they all start at once.
    start_at = time.time() + 1.0 + 0.3 * workers
    cpu_before = _children_cpu()
    processes = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "bench.streams", "worker"),
                *(url, str(n), repr(start_at), str(chunks)),
            ],
            stdout=subprocess.PIPE,
        )
        for n in counts
    ]
    outcomes: list[Outcome] = []
    for process in processes:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"stream worker failed with status {process.returncode}")
        outcomes += [Outcome(**item) for item in json.loads(out)]
    wall_s = time.time() - start_at
    share = (_children_cpu() - cpu_before) / (wall_s * workers) if wall_s > 0 else 0.0
    return summarize(outcomes, wall_s, share)


class UpstreamPeak(PeakSampler):
    """The fake upstream's requests in flight at their peak, read over one control
    connection for the whole run."""

    def __init__(self, gateway: Gateway, interval: float = 0.2) -> None:
        super().__init__(interval)
        self._control = gateway.fakes["openai"].control()

    def now(self) -> float:
        return float(self._control.stats().in_flight)

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._control.close()


def run_scenario(
    work: Path, counts: Sequence[int] = STREAM_COUNTS, provider_pool: int | None = None
) -> dict[int, StreamsResult]:
    """The default stack over the fakes, then each run of `counts` concurrent streams."""

    def configure(document: dict[str, Any]) -> None:
        if provider_pool is not None:
            document["providers"]["openai"]["max_connections"] = provider_pool

    results: dict[int, StreamsResult] = {}
    with running_gateway(work, record=False, configure=configure) as gateway:
        pace(gateway)
        url = gateway.public_url + "/v1/chat/completions"
        run_streams(url, 20)  # warm-up: connections, pools, the catalogue
        # Envoy and every replica of every service: what the gateway itself runs.
        suite = [pid for pids in stack_pids(gateway.stack).values() for pid in pids]
        cpu = CpuMeter({"suite": suite})
        for count in counts:
            time.sleep(SETTLE_S)
            cpu.start()
            with UpstreamPeak(gateway) as upstream, RssPeak(suite) as rss:
                result = run_streams(url, count)
            cpu.stop()
            result.peak_upstream = round(upstream.peak)
            result.suite_cpu_s = cpu.spent["suite"]
            result.rss_start_mib, result.rss_peak_mib = rss.start, rss.peak
            results[count] = result
            print(f"streams={count}: {results[count]}", flush=True)
    return results


def section(results: dict[int, StreamsResult], measured: str, command: str) -> list[str]:
    """The RESULTS.md section: one row per run; `command` is Markdown."""
    rows = [
        f"| {count:,} | {r.completed:,} | {r.failures_text()} |"
        f" {r.ttft_p50_s * 1000:,.0f} / {r.ttft_p99_s * 1000:,.0f} | {r.peak_upstream:,} |"
        f" {r.wall_s:.1f} | {r.cpu_per_chunk_ms:.3f} | {r.rss_per_stream_kib:,.0f} |"
        f" {r.client_cpu_share:.0%} |"
        for count, r in results.items()
    ]
    samples = sorted({s for r in results.values() for s in r.samples})
    lines = [
        SECTION,
        "",
        f"Measured {measured}.",
        f"Command: {command}.",
        f'Each stream: REST `POST /v1/chat/completions` with `"stream": true` for `{MODEL}`;'
        f" the fake OpenAI upstream sends {CHUNKS} chunks, the first after {FIRST_CHUNK_S:g} s"
        f" and then one every {CHUNK_INTERVAL_S:g} s (5 s per stream). All streams of a run"
        " are opened at once through the default stack (one router, one provider), from"
        f" worker processes of up to {STREAMS_PER_WORKER} streams each, one HTTP/1.1"
        f" connection per stream, with no client timeout below {STREAM_DEADLINE_S:.0f} s.",
        "",
        "| concurrent streams | completed | failures by status | TTFT p50 / p99 ms |"
        " most streams at the upstream at once | last stream ended after s |"
        " suite CPU per relayed chunk ms | suite RSS per open stream KiB | load client CPU |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "A stream completes when it answers 200 and carries every piece of the text in"
        " order, a finish reason and a clean end. Time to first token counts from sending"
        " the request; on these 2 cores Envoy, the router, the provider, the fake upstream"
        " and the load client share the CPU, so with thousands of streams it measures the"
        " queue for CPU more than the gateway's own path (see the TTFT section above for"
        " that), and streams last longer than the upstream's 5 s."
        " Most streams at the upstream at once: the fake"
        " upstream's requests in flight, sampled every 0.2 s; all of a run's streams reach"
        " it together unless something in the gateway holds some back. Load client CPU:"
        " its workers' CPU time over their wall time, per worker (one core each at most);"
        " far below 100%, it is not what limits the figures. Suite: Envoy and every"
        " service replica (router, provider, session, tool, investigation), from /proc."
        " CPU per relayed chunk: the suite's CPU over the run divided by the content"
        " chunks the clients received; it carries each stream's setup too (the request,"
        " routing, the provider call, the usage record), so it is an upper bound of the"
        f" per-chunk work ({CHUNKS} chunks per stream). RSS per open stream: the suite's"
        " summed RSS at its peak during the run (sampled every 0.2 s) less before it,"
        " over the run's streams; the processes keep the memory an earlier run grew them"
        " to, so a run after a smaller one shows only what it added (each process's figure"
        ' from a first run: the section "Where a stream\'s CPU and memory go").',
        "",
    ]
    if samples:
        lines += ["Failed answers looked like:", "", *(f"    {s}" for s in samples), ""]
    return lines


def _worker_main(argv: Sequence[str]) -> int:
    url, count, start_at, chunks = argv[0], int(argv[1]), float(argv[2]), int(argv[3])
    outcomes = asyncio.run(_worker(url, count, start_at, chunks))
    json.dump([asdict(o) for o in outcomes], sys.stdout)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["worker"]:
        return _worker_main(args[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--streams",
        default=",".join(str(c) for c in STREAM_COUNTS),
        help="comma-separated numbers of concurrent streams, one run each",
    )
    parser.add_argument("--provider-pool", type=int, default=None, metavar="N")
    parsed = parser.parse_args(args)
    counts = [int(c) for c in parsed.streams.split(",") if c]
    with tempfile.TemporaryDirectory(prefix="llmgw-streams-") as tmp:
        results = run_scenario(Path(tmp), counts, parsed.provider_pool)
    command = f"python -m bench.streams --streams {parsed.streams}"
    if parsed.provider_pool is not None:
        command += f" --provider-pool {parsed.provider_pool}"
    print("\n".join(section(results, time.strftime("%Y-%m-%d"), f"`{command}`")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
