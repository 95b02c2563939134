"""One fake replica as its own process (so a test can kill -9 it).

    python -m tests.integration.envoy_support.fake_server --kind router --replica a

Binds 127.0.0.1 on a free port, prints `PORT <n>` on stdout once serving, and serves
grpc.health.v1 (overall "" and each hosted service) and reflection. SIGUSR1 sets every
health status to NOT_SERVING, SIGUSR2 back to SERVING; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from llmgw.router.v1 import router_service_pb2 as router_pb2
from llmgw.router.v1 import router_service_pb2_grpc as router_grpc
from services.common.server import SERVER_OPTIONS
from tests.integration.envoy_support.fake_services import FakeProvider, FakeRouter


async def serve(kind: str, replica: str) -> None:
    # The services' own server options: the same metadata and pending-call limits.
    server = grpc.aio.server(options=SERVER_OPTIONS)
    if kind == "router":
        router_grpc.add_RouterServiceServicer_to_server(FakeRouter(replica), server)
        names = [router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name]
    else:
        provider_grpc.add_ProviderServiceServicer_to_server(FakeProvider(replica), server)
        names = [provider_pb2.DESCRIPTOR.services_by_name["ProviderService"].full_name]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*names, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    async def set_all(status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in ["", *names]:
            await health_servicer.set(name, status)

    await set_all(health_pb2.HealthCheckResponse.SERVING)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(
        signal.SIGUSR1,
        lambda: loop.create_task(set_all(health_pb2.HealthCheckResponse.NOT_SERVING)),
    )
    loop.add_signal_handler(
        signal.SIGUSR2,
        lambda: loop.create_task(set_all(health_pb2.HealthCheckResponse.SERVING)),
    )
    print(f"PORT {port}", flush=True)
    await stop.wait()
    await server.stop(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["router", "provider"], required=True)
    parser.add_argument("--replica", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.kind, args.replica))
    sys.exit(0)


if __name__ == "__main__":
    main()
