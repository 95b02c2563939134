"""Checks on the descriptor set that Envoy 1.40's transcoder can and cannot load.

Envoy rejects `response_body` on a method whose output is not google.api.HttpBody
("Setting response_body is not supported yet for non-HttpBody fields"); a proto change
that adds one would stop Envoy from starting, so a test guards against it.
"""

from __future__ import annotations

from pathlib import Path

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from services.launcher.envoy_config import DEFAULT_DESCRIPTOR

_HTTP_BODY = ".google.api.HttpBody"


def unsupported_rules(files: descriptor_pb2.FileDescriptorSet) -> list[str]:
    """Methods whose HTTP rule sets response_body on a non-HttpBody output."""
    found = []
    for file in files.file:
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                if rule.response_body and method.output_type != _HTTP_BODY:
                    found.append(f"{file.package}.{service.name}.{method.name}")
    return found


def read_descriptor(path: Path = DEFAULT_DESCRIPTOR) -> descriptor_pb2.FileDescriptorSet:
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(path.read_bytes())
    return files
