"""NetworkPolicies rendered one line per rule, and the DNS egress verdict: on policies
built as the API returns them (lightkube models from their JSON)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from lightkube.models.meta_v1 import LabelSelector
from lightkube.resources.networking_v1 import NetworkPolicy

from services.tool.toolsets.kubernetes_network import (
    pod_verdict,
    policy_summary,
    selector_text,
    selects,
)


def _policy(name: str, spec: dict[str, Any]) -> NetworkPolicy:
    # As lightkube decodes an API answer (from_dict is typed as returning its base).
    return cast(
        NetworkPolicy,
        NetworkPolicy.from_dict(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": spec,
            }
        ),
    )


def _egress(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"podSelector": {}, "policyTypes": ["Egress"], "egress": list(rules)}


def test_rules_are_one_line_each_naming_peers_and_ports() -> None:
    policy = _policy(
        "mixed",
        {
            "podSelector": {
                "matchLabels": {"app": "api"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
            },
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]},
                {},
            ],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                            },
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        },
                        {"namespaceSelector": {}},
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"port": "http"}],
                },
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                    "ports": [{"port": 8000, "endPort": 9000}, {"protocol": "UDP"}],
                },
            ],
        },
    )
    shown = policy_summary(policy)
    assert shown["pod_selector"] == "app=api,tier in (a,b)"
    assert shown["policy_types"] == ["Ingress", "Egress"]
    assert shown["ingress"] == [
        "from pods app=web in namespace shop; all ports",
        "from anywhere; all ports",
    ]
    assert shown["egress"] == [
        "to pods k8s-app=kube-dns in namespaces kubernetes.io/metadata.name=kube-system"
        " or all pods in all namespaces; ports 53/UDP, http/TCP",
        "to ipBlock 0.0.0.0/0 except 10.0.0.0/8; ports 8000-9000/TCP, */UDP",
    ]
    # 53/UDP explicitly, TCP 8000-9000 does not cover 53, every UDP port does.
    assert shown["dns_egress"] == "partly blocked: 53/UDP allowed, 53/TCP blocked"


def test_a_restricted_direction_without_rules_denies_all() -> None:
    shown = policy_summary(_policy("lockdown", {"podSelector": {}, "policyTypes": ["Egress"]}))
    assert shown["pod_selector"] == "(all pods)"
    assert (shown["ingress"], shown["egress"]) == ([], ["deny all"])
    assert shown["dns_egress"] == "blocked: no egress rule allows port 53 (UDP or TCP)"


def test_policy_types_default_to_ingress_and_egress_when_it_has_egress_rules() -> None:
    ingress_only = policy_summary(_policy("in", {"podSelector": {}, "ingress": [{}]}))
    assert ingress_only["policy_types"] == ["Ingress"]
    assert ingress_only["dns_egress"] == "not restricted by this policy"
    both = policy_summary(_policy("both", {"podSelector": {}, "egress": [{"ports": []}]}))
    assert both["policy_types"] == ["Ingress", "Egress"]
    assert both["ingress"] == ["deny all"]
    assert both["dns_egress"] == "allowed (53/UDP, 53/TCP)"  # a rule without ports


@pytest.mark.parametrize(
    ("ports", "verdict"),
    [
        ([{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}], "allowed"),
        ([{"protocol": "UDP", "port": 1, "endPort": 100}, {"port": 53}], "allowed"),
        ([{"protocol": "UDP", "port": "dns"}, {"port": "dns-tcp"}], "allowed"),
        ([{"protocol": "UDP"}, {"protocol": "TCP"}], "allowed"),
        ([{"port": 53}], "partly blocked: 53/TCP allowed"),
        ([{"protocol": "UDP", "port": "dns-tcp"}], "blocked"),
        ([{"protocol": "UDP", "port": 54, "endPort": 60}], "blocked"),
        ([{"protocol": "SCTP", "port": 53}], "blocked"),
    ],
)
def test_which_ports_allow_dns(ports: list[dict[str, Any]], verdict: str) -> None:
    shown = policy_summary(_policy("p", _egress({"ports": ports})))
    assert shown["dns_egress"].startswith(verdict)


def test_the_pod_verdict_adds_up_the_policies_selecting_it() -> None:
    lockdown = _policy(
        "lockdown", _egress({"to": [{"podSelector": {}}], "ports": [{"port": 5432}]})
    )
    dns = _policy(
        "allow-dns",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"protocol": "UDP", "port": 53}, {"port": 53}]}],
        },
    )
    ingress = _policy("ingress", {"podSelector": {}, "ingress": [{}]})
    assert pod_verdict([lockdown, ingress]) == {
        "ingress_restricted": True,
        "egress_restricted": True,
        "dns_egress": "blocked: no egress rule allows port 53 (UDP or TCP); "
        "egress is restricted by lockdown",
    }
    assert pod_verdict([lockdown, dns])["dns_egress"] == ("allowed (53/UDP, 53/TCP) by allow-dns")
    assert pod_verdict([ingress]) == {
        "ingress_restricted": True,
        "egress_restricted": False,
        "dns_egress": "allowed: no NetworkPolicy restricts this pod's egress",
    }


def test_selectors_select_as_the_api_server_does() -> None:
    selector = cast(
        LabelSelector,
        LabelSelector.from_dict(
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "tier", "operator": "NotIn", "values": ["db"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "team", "operator": "Exists"},
                ],
            }
        ),
    )
    assert selector_text(selector) == "app=web,tier notin (db),!canary,team"
    assert selects(selector, {"app": "web", "team": "a"})  # NotIn holds for a missing key
    assert not selects(selector, {"app": "web", "team": "a", "tier": "db"})
    assert not selects(selector, {"app": "web", "team": "a", "canary": "1"})
    assert not selects(selector, {"app": "web"})
    assert selects(LabelSelector(), {}) and selects(None, {"any": "thing"})
    assert selector_text(LabelSelector()) == ""
