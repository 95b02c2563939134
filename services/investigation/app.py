"""Wiring of the investigation service.

Alert investigations arrive with their own issue; until then every
InvestigationService RPC answers UNIMPLEMENTED (health and reflection are served). Calls
are authenticated like every public RPC, so a caller without the `investigation`
service learns PERMISSION_DENIED, not what is built.
"""

from __future__ import annotations

import dataclasses

from llmgw.investigation.v1 import investigation_service_pb2, investigation_service_pb2_grpc
from services.common.identity.wiring import build_gate
from services.common.redis_store import create_redis
from services.common.server import ServiceDefinition
from services.common.settings import ServiceSettings
from services.common.unimplemented import unimplemented_service


async def build(settings: ServiceSettings) -> ServiceDefinition:
    definition = unimplemented_service(
        investigation_service_pb2_grpc.InvestigationServiceServicer,
        investigation_service_pb2_grpc.add_InvestigationServiceServicer_to_server,
        investigation_service_pb2.DESCRIPTOR.services_by_name["InvestigationService"],
        "alert investigations arrive with the investigation service",
    )
    # Keys are verified in Redis; without authentication the service needs none.
    redis = (
        create_redis(settings.redis_url)
        if settings.auth == "required" and settings.redis_url
        else None
    )
    gate = build_gate(settings, redis)
    if redis is None:
        return dataclasses.replace(definition, gate=gate)

    async def close() -> None:
        await redis.aclose()

    return dataclasses.replace(definition, gate=gate, on_stop=[close])
