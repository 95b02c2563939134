"""Every overlay builds with kustomize; every built-in object passes kubernetes-validate
(strict, a pinned Kubernetes version) and every custom resource its schema under
deploy/k8s/schemas/ (derived from the CRDs' OpenAPI schemas)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.unit.deploy.k8s_build import (
    K8S,
    KUBERNETES_VERSION,
    NAMESPACE,
    OVERLAYS,
    Obj,
    build,
)

# kind -> the schema file checking it (the CRDs the manifests use).
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.json",
}
SHARED = {
    "Namespace": 1,
    "ConfigMap": 3,
    "StatefulSet": 1,
}
# Objects per kind in each overlay (deploy/k8s/README.md lists them too).
EXPECTED_KINDS = {
    "dev": {
        **SHARED,
        "Deployment": 7,
        "Service": 9,
        "PodDisruptionBudget": 8,
        "NetworkPolicy": 11,
    },
    "staging": {
        **SHARED,
        "Deployment": 6,
        "Service": 8,
        "PodDisruptionBudget": 7,
        "NetworkPolicy": 9,
        "HorizontalPodAutoscaler": 6,
        "ServiceMonitor": 6,
        "PrometheusRule": 1,
    },
    "prod": {
        **SHARED,
        "Deployment": 6,
        "Service": 8,
        "PodDisruptionBudget": 7,
        "NetworkPolicy": 9,
        "HorizontalPodAutoscaler": 5,
        "ScaledObject": 1,
        "ServiceMonitor": 6,
        "PrometheusRule": 1,
    },
}


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((K8S / "schemas" / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _custom(obj: Obj) -> bool:
    return (obj["apiVersion"], obj["kind"]) in CRD_SCHEMAS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_with_the_expected_objects(overlay: str) -> None:
    objects = build(overlay)
    counts = Counter(o["kind"] for o in objects)
    assert dict(counts) == EXPECTED_KINDS[overlay]
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), "two objects of one kind share a name"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_built_in_object_passes_strict_validation(overlay: str) -> None:
    for obj in build(overlay):
        if _custom(obj):
            continue
        # Raises with the offending field; a kind it has no schema for fails too.
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_custom_resource_matches_its_schema(overlay: str) -> None:
    for obj in build(overlay):
        if _custom(obj):
            jsonschema.validate(obj, _schema(CRD_SCHEMAS[obj["apiVersion"], obj["kind"]]))
        else:
            assert "." not in obj["apiVersion"].split("/")[0] or obj["apiVersion"].split("/")[
                0
            ].endswith(".k8s.io"), f"{obj['kind']}: a custom resource without a schema"


def test_strict_validation_refuses_an_unknown_field() -> None:
    deployment = next(o for o in build("staging") if o["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("ServiceMonitor", ("spec", "endpoints", 0, "intervall"), "15s"),
        ("ServiceMonitor", ("spec", "endpoints", 0, "interval"), "fifteen seconds"),
        ("ServiceMonitor", ("spec", "endpoints", 0, "scheme"), "grpc"),
        ("ScaledObject", ("spec", "triggers", 0, "metadata", "threshold"), 400),
        ("ScaledObject", ("spec", "triggers", 1, "metricType"), "Percent"),
        ("ScaledObject", ("spec", "scaleTargetRef", "nam"), "router"),
    ],
)
def test_crd_schemas_refuse_what_the_api_server_would(
    kind: str, path: tuple[str | int, ...], value: object
) -> None:
    obj = copy.deepcopy(next(o for o in build("prod") if o["kind"] == kind))
    target: Any = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, _schema(CRD_SCHEMAS[obj["apiVersion"], kind]))


def test_prometheus_rule_schema_refuses_a_rule_without_expr() -> None:
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "r"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "for": "5m"}]}]},
    }
    schema = _schema("prometheusrule.json")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rule, schema)
    rule["spec"]["groups"][0]["rules"][0]["expr"] = "up == 0"
    jsonschema.validate(rule, schema)
