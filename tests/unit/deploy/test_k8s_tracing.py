"""Tracing on Kubernetes: every Deployment names its spans as `make up` does and reads
the OTEL_* variables from optional keys of the settings ConfigMap (off while unset); the
`tracing` component opens exactly the egress to the collector's OTLP ports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.tracing_config import SERVICE_NAME_ENV, tracing_settings
from services.launcher.k8s_manifests import SETTINGS, workloads
from services.launcher.k8s_tracing import OTLP_PORTS, SETTINGS_KEYS
from services.launcher.stack import tracing_names
from services.launcher.topology import load_topology
from tests.unit.deploy.k8s_build import (
    K8S,
    Obj,
    allowed,
    build,
    by_kind,
    kustomize,
    pod_labels,
)
from tests.unit.deploy.k8s_build import workloads as built_workloads

ENDPOINT = "http://otel-collector.observability.svc.cluster.local:4317"


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item for item in container["env"]}


def test_every_deployment_names_its_spans_and_reads_the_otel_settings() -> None:
    settings = tracing_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT})
    assert settings is not None
    names = tracing_names(settings)
    deployments = [o for o in workloads(load_topology()) if o["kind"] == "Deployment"]
    assert sorted(d["metadata"]["name"] for d in deployments) == sorted(names)
    for deployment in deployments:
        env = _env(deployment)
        name = deployment["metadata"]["name"]
        assert env[SERVICE_NAME_ENV]["value"] == names[name]
        for variable, key in SETTINGS_KEYS.items():
            ref = env[variable]["valueFrom"]["configMapKeyRef"]
            assert ref == {"name": SETTINGS, "key": key, "optional": True}, (name, variable)


def test_tracing_is_off_in_the_base_settings() -> None:
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    (settings,) = [g for g in base["configMapGenerator"] if g["name"] == SETTINGS]
    keys = {literal.split("=", 1)[0] for literal in settings["literals"]}
    assert not keys & set(SETTINGS_KEYS.values())


def _traced_overlay(tmp_path: Path) -> tuple[Obj, ...]:
    """staging with the tracing component and an endpoint, as the base's comment says."""
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes relative paths only.
                "resources": [os.path.relpath(K8S / "overlays" / "staging", tmp_path)],
                "components": [os.path.relpath(K8S / "components" / "tracing", tmp_path)],
                "configMapGenerator": [
                    {
                        "name": SETTINGS,
                        "behavior": "merge",
                        "literals": [f"{SETTINGS_KEYS['OTEL_EXPORTER_OTLP_ENDPOINT']}={ENDPOINT}"],
                    }
                ],
            }
        )
    )
    return tuple(kustomize(tmp_path))


def test_the_tracing_component_opens_the_collector_and_nothing_else(tmp_path: Path) -> None:
    objects = _traced_overlay(tmp_path)
    policies = list(by_kind(objects, "NetworkPolicy").values())
    untraced = list(by_kind(build("staging"), "NetworkPolicy").values())
    for name, workload in built_workloads(objects).items():
        labels = pod_labels(workload)
        for port in OTLP_PORTS:
            assert allowed(policies, labels, "observability", port) == (name != "redis"), name
            assert not allowed(untraced, labels, "observability", port), name
        assert not allowed(policies, labels, "observability", 443), name
        assert not allowed(policies, labels, "monitoring", OTLP_PORTS[0]), name
    # Every container's endpoint resolves to the (hash-named) settings with the key set.
    (config_map,) = [
        o
        for o in by_kind(objects, "ConfigMap").values()
        if o["metadata"]["name"].startswith(SETTINGS)
    ]
    assert config_map["data"][SETTINGS_KEYS["OTEL_EXPORTER_OTLP_ENDPOINT"]] == ENDPOINT
    for deployment in by_kind(objects, "Deployment").values():
        if deployment["metadata"]["name"] == "llama":
            continue
        ref = _env(deployment)["OTEL_EXPORTER_OTLP_ENDPOINT"]["valueFrom"]["configMapKeyRef"]
        assert ref["name"] == config_map["metadata"]["name"]


@pytest.mark.parametrize("overlay", ["dev", "staging", "prod"])
def test_no_overlay_traces_by_default(overlay: str) -> None:
    for config_map in by_kind(build(overlay), "ConfigMap").values():
        assert not set(config_map.get("data", {})) & set(SETTINGS_KEYS.values())
