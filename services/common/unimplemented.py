"""Servicers for parts of the API whose capability is not built yet.

Each RPC answers UNIMPLEMENTED with ErrorInfo reason NOT_IMPLEMENTED and a message
naming the method — an honest answer, never a fake success. Built from the service
descriptor, so a new RPC in the proto is covered without code here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from services.common.errors import Unimplemented
from services.common.server import ServiceDefinition


def _unary(full_name: str, note: str) -> Any:
    async def method(self: object, request: object, context: grpc.aio.ServicerContext) -> Any:
        raise Unimplemented(f"{full_name} is not implemented yet{note}")

    return method


def _stream(full_name: str, note: str) -> Any:
    async def method(
        self: object, request: object, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        raise Unimplemented(f"{full_name} is not implemented yet{note}")
        yield  # makes this an async generator, as streaming handlers are

    return method


def unimplemented_service(
    base: type,
    add_to_server: Callable[[Any, grpc.aio.Server], None],
    service: ServiceDescriptor,
    note: str,
) -> ServiceDefinition:
    """A whole service (health and reflection included) whose every RPC is UNIMPLEMENTED."""
    servicer = unimplemented_servicer(base, service, note)

    def register(server: grpc.aio.Server) -> None:
        add_to_server(servicer, server)

    return ServiceDefinition(register=register, service_names=[service.full_name])


def unimplemented_servicer(base: type, service: ServiceDescriptor, note: str = "") -> object:
    """An instance of `base` (a generated servicer) whose every RPC is UNIMPLEMENTED."""
    suffix = f" ({note})" if note else ""
    methods = {
        m.name: (_stream if m.server_streaming else _unary)(f"{service.name}.{m.name}", suffix)
        for m in service.methods
    }
    return type(f"Unimplemented{service.name}", (base,), methods)()
