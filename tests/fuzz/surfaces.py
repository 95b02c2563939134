"""The public surfaces the fuzz tier drives, read from the descriptor set Envoy serves:
every gRPC method of the public services and every REST rule of their transcoding."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message

from services.common.identity.gate import PUBLIC_SERVICES

DESCRIPTOR_SET = Path(__file__).resolve().parents[2] / "gen" / "descriptor" / "llmgw.binpb"


@dataclass(frozen=True)
class GrpcMethod:
    service: str
    name: str
    input: Descriptor
    server_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    def request_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.input)


@dataclass(frozen=True)
class RestRule:
    method: GrpcMethod
    verb: str
    # `/v1/{name=sessions/*}:appendMessages`, variables in braces.
    template: str
    # "" (no body), "*" (the whole request) or one field's name.
    body: str


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(DESCRIPTOR_SET.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


@cache
def grpc_methods() -> tuple[GrpcMethod, ...]:
    """Every method of every public service, in a stable order."""
    pool = _pool()
    found = []
    for service_name in sorted(PUBLIC_SERVICES):
        service = pool.FindServiceByName(service_name)
        for method in service.methods:
            found.append(
                GrpcMethod(
                    service_name,
                    method.name,
                    method.input_type,
                    _server_streaming(method),
                )
            )
    return tuple(found)


def _server_streaming(method: MethodDescriptor) -> bool:
    proto = descriptor_pb2.MethodDescriptorProto()
    method.CopyToProto(proto)
    return proto.server_streaming


@cache
def rest_rules() -> tuple[RestRule, ...]:
    """Every HTTP rule (and additional binding) of the public methods."""
    rules = []
    for method in grpc_methods():
        descriptor = _pool().FindMethodByName(f"{method.service}.{method.name}")
        proto = descriptor_pb2.MethodDescriptorProto()
        descriptor.CopyToProto(proto)
        if not proto.options.HasExtension(annotations_pb2.http):
            continue
        rule: http_pb2.HttpRule = proto.options.Extensions[annotations_pb2.http]
        for one in (rule, *rule.additional_bindings):
            verb = one.WhichOneof("pattern")
            if verb is None or verb == "custom":
                continue
            rules.append(RestRule(method, verb.upper(), getattr(one, verb), one.body))
    return tuple(rules)


VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")
