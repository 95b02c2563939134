"""`kubernetes_network_policies` against the fake Kubernetes API, in process: the
dns_egress_blocked scenario's policies, the ones selecting a pod and the DNS verdict
they add up to, and the API's refusals as gateway errors."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.errors import GatewayError, NotFound, PermissionDenied
from tests.unit.tool.conftest import StartKube

PAYMENTS = "payments-84f6d9c7b5-6xq2v"
FRONTEND = "shop-frontend-5b9d8c7f6-qw2er"


async def _raises(kind: type[GatewayError], awaitable: Any) -> GatewayError:
    with pytest.raises(kind) as caught:
        await awaitable
    return caught.value


async def test_a_namespace_lists_every_policy_with_its_rules(start_kube: StartKube) -> None:
    kube = await start_kube("dns_egress_blocked")
    result = await kube.call("network_policies", namespace="shop")
    assert result["namespace"] == "shop" and result["truncated"] is False
    assert "pod" not in result and "dns_egress" not in result
    policies = {p["name"]: p for p in result["policies"]}
    assert list(policies) == ["shop-egress-lockdown", "frontend-egress", "frontend-ingress"]
    lockdown = policies["shop-egress-lockdown"]
    assert lockdown["pod_selector"] == "(all pods)" and lockdown["policy_types"] == ["Egress"]
    assert lockdown["egress"] == ["to pods app=payments-db in namespace shop; ports 5432/TCP"]
    assert lockdown["dns_egress"] == "blocked: no egress rule allows port 53 (UDP or TCP)"
    assert lockdown["created"].endswith("Z") and lockdown["created"] != ""
    assert policies["frontend-egress"]["egress"] == [
        "to pods k8s-app=kube-dns in namespaces kubernetes.io/metadata.name=kube-system; "
        "ports 53/UDP, 53/TCP",
        "to ipBlock 0.0.0.0/0 except 10.0.0.0/8; ports 443/TCP",
    ]
    assert policies["frontend-ingress"]["ingress"] == [
        "from all pods in namespaces kubernetes.io/metadata.name=ingress-nginx; ports 8080/TCP"
    ]
    assert policies["frontend-ingress"]["dns_egress"] == "not restricted by this policy"
    assert kube.fake.paths("/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies")


async def test_a_pod_sees_the_policies_selecting_it_and_whether_dns_is_allowed(
    start_kube: StartKube,
) -> None:
    kube = await start_kube("dns_egress_blocked")
    payments = await kube.call("network_policies", namespace="shop", pod=PAYMENTS)
    assert payments["pod"] == PAYMENTS and payments["pod_labels"]["app"] == "payments"
    assert [p["name"] for p in payments["policies"]] == ["shop-egress-lockdown"]
    assert (payments["egress_restricted"], payments["ingress_restricted"]) == (True, False)
    assert payments["dns_egress"] == (
        "blocked: no egress rule allows port 53 (UDP or TCP); "
        "egress is restricted by shop-egress-lockdown"
    )
    # The neighbour is locked down too, but its own policy allows DNS: the rules add up.
    frontend = await kube.call("network_policies", namespace="shop", pod=FRONTEND)
    assert [p["name"] for p in frontend["policies"]] == [
        "shop-egress-lockdown",
        "frontend-egress",
        "frontend-ingress",
    ]
    assert frontend["dns_egress"] == "allowed (53/UDP, 53/TCP) by frontend-egress"
    assert frontend["ingress_restricted"] is True


async def test_a_namespace_without_policies_restricts_nothing(start_kube: StartKube) -> None:
    kube = await start_kube("crashloop")
    result = await kube.call("network_policies", namespace="shop", pod="payments-5c8d7f9b6-x2x7q")
    assert result["policies"] == [] and result["egress_restricted"] is False
    assert result["dns_egress"] == "allowed: no NetworkPolicy restricts this pod's egress"


async def test_refusals_are_not_found_and_permission_denied(start_kube: StartKube) -> None:
    kube = await start_kube("dns_egress_blocked")
    error = await _raises(NotFound, kube.call("network_policies", namespace="shop", pod="ghost"))
    assert error.message == "pod 'ghost' in namespace 'shop' not found"
    assert not kube.fake.paths("networkpolicies")
    kube.fake.forbidden.add("networkpolicies")
    error = await _raises(PermissionDenied, kube.call("network_policies", namespace="shop"))
    assert "may not read the network policies of namespace 'shop'" in error.message
    assert 'cannot list resource "networkpolicies" in API group "networking.k8s.io"' in (
        error.message
    )
