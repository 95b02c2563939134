"""Wiring of the investigation service.

Alert investigations arrive with their own issue; until then every
InvestigationService RPC answers UNIMPLEMENTED (health and reflection are served).
"""

from __future__ import annotations

from llmgw.investigation.v1 import investigation_service_pb2, investigation_service_pb2_grpc
from services.common.server import ServiceDefinition
from services.common.settings import ServiceSettings
from services.common.unimplemented import unimplemented_service


async def build(settings: ServiceSettings) -> ServiceDefinition:
    return unimplemented_service(
        investigation_service_pb2_grpc.InvestigationServiceServicer,
        investigation_service_pb2_grpc.add_InvestigationServiceServicer_to_server,
        investigation_service_pb2.DESCRIPTOR.services_by_name["InvestigationService"],
        "alert investigations arrive with the investigation service",
    )
