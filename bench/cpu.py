"""Where the time and memory go: CPU and resident memory of processes, and the cost of
bare gRPC here."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads included."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class CpuMeter:
    """CPU seconds spent by named groups of processes between `start` and `stop`."""

    def __init__(self, groups: Mapping[str, Sequence[int]]) -> None:
        self._groups = {name: list(pids) for name, pids in groups.items()}
        self._before: dict[str, float] = {}
        self.spent: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(p) for p in pids) for name, pids in self._groups.items()}

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> None:
        after = self._read()
        self.spent = {name: after[name] - self._before[name] for name in after}


def stack_pids(stack: Any, services: Sequence[str] | None = None) -> dict[str, list[int]]:
    """Envoy's process and each service's replicas (every service when None), by name."""
    pids = {"envoy": [stack.envoy.pid] if stack.envoy and stack.envoy.pid else []}
    for name in stack.replicas if services is None else services:
        pids[name] = [r.process.pid for r in stack.replicas[name] if r.process.pid]
    return pids


def gateway_meter(stack: Any) -> CpuMeter:
    """Envoy, the routers and the providers as one group, `gateway`: the request path."""
    groups = stack_pids(stack, ("router", "provider"))
    return CpuMeter({"gateway": [pid for pids in groups.values() for pid in pids]})


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PeakSampler:
    """Samples a figure (`now`) on a thread, keeping the peak; `start` is the figure when
    it was entered."""

    def __init__(self, interval: float = 0.2) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.start = 0.0
        self.peak = 0.0

    def now(self) -> float:
        raise NotImplementedError

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> Self:
        self.start = self.peak = self.now()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class RssPeak(PeakSampler):
    """The summed RSS (MiB) of some processes at its peak."""

    def __init__(self, pids: Sequence[int], interval: float = 0.2) -> None:
        super().__init__(interval)
        self._pids = list(pids)

    def now(self) -> float:
        return sum(rss_mib(p) for p in self._pids)


class _HealthServer:
    """A grpc.aio server with a health servicer on a free loopback port, and a channel
    to it."""

    def __init__(self, servicer: HealthServicer) -> None:
        self._server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, self._server)
        self._port = self._server.add_insecure_port("127.0.0.1:0")
        self._channel: grpc.aio.Channel | None = None

    async def __aenter__(self) -> health_pb2_grpc.HealthStub:
        await self._server.start()
        self._channel = grpc.aio.insecure_channel(f"127.0.0.1:{self._port}")
        return health_pb2_grpc.HealthStub(self._channel)

    async def __aexit__(self, *exc: object) -> None:
        if self._channel is not None:
            await self._channel.close()
        await self._server.stop(0)


async def bare_grpc_call_cpu(calls: int = 2000) -> float:
    """CPU microseconds of one grpc.aio unary call, client and server in this process."""
    async with _HealthServer(HealthServicer()) as stub:
        for _ in range(200):
            await stub.Check(health_pb2.HealthCheckRequest())
        started = time.process_time()
        for _ in range(calls):
            await stub.Check(health_pb2.HealthCheckRequest())
        return (time.process_time() - started) / calls * 1e6


async def bare_grpc_stream_message_cpu(streams: int = 200, messages: int = 50) -> float:
    """CPU microseconds of one grpc.aio server-streamed message, written by the server and
    read by the client in this process: what relaying a chunk costs a Python service in
    gRPC alone (the router reads one such message and writes one per chunk)."""
    request = health_pb2.HealthCheckRequest()
    reply = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    class _Streaming(HealthServicer):
        async def Watch(self, request: Any, context: Any) -> Any:
            for _ in range(messages):
                await asyncio.sleep(0)
                yield reply

    async with _HealthServer(_Streaming()) as stub:

        async def one() -> int:
            return len([m async for m in stub.Watch(request)])

        await one()
        started = time.process_time()
        received = sum(await asyncio.gather(*(one() for _ in range(streams))))
        return (time.process_time() - started) / received * 1e6
