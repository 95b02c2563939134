"""Wiring of the tool service.

The registry, validated execution and the built-in HTTP executors arrive with the tool
issue; until then every ToolService RPC answers UNIMPLEMENTED (health and reflection
are served, so the process is a real member of the mesh).
"""

from __future__ import annotations

from llmgw.tool.v1 import tool_service_pb2, tool_service_pb2_grpc
from services.common.server import ServiceDefinition
from services.common.settings import ServiceSettings
from services.common.unimplemented import unimplemented_service


async def build(settings: ServiceSettings) -> ServiceDefinition:
    return unimplemented_service(
        tool_service_pb2_grpc.ToolServiceServicer,
        tool_service_pb2_grpc.add_ToolServiceServicer_to_server,
        tool_service_pb2.DESCRIPTOR.services_by_name["ToolService"],
        "the tool registry and execution arrive with the tool system",
    )
