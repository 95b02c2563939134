"""NetworkPolicies as the kubernetes tools show them: one line per rule, and whether
egress to DNS is allowed.

A policy applies to the pods of its namespace its `podSelector` selects (an empty
selector: all of them). It restricts the directions of its `policyTypes` (when not
given: Ingress, and Egress when it has egress rules); a direction it restricts with no
rule denies everything. A pod that some policy restricts in a direction may send (or
receive) only what one of the rules of those policies allows: the rules add up, they
never subtract. A rule allows its peers (none: anywhere) on its ports (none: every
port).

"DNS egress blocked" is the incident this exists for: a pod whose egress some policy
restricts resolves names only if a rule allows port 53, over UDP (and TCP, which
resolvers fall back to for long answers). Port 53 is allowed by a rule without ports, a
port without a number (every port of its protocol), 53 itself, a range over it, or the
names CoreDNS gives it on its pods (`dns` for UDP, `dns-tcp` for TCP). Which peers the
rule names is shown, not judged: whether they include the cluster's DNS service
depends on labels of other namespaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lightkube.models.meta_v1 import LabelSelector
from lightkube.models.networking_v1 import (
    NetworkPolicyEgressRule,
    NetworkPolicyIngressRule,
    NetworkPolicyPeer,
    NetworkPolicyPort,
    NetworkPolicySpec,
)
from lightkube.resources.networking_v1 import NetworkPolicy

from services.tool.toolsets.kubernetes_pods import JsonObject, timestamp

DNS_PORT = 53
# The names CoreDNS' pods give port 53 (the kube-dns Service targets them).
DNS_PORT_NAMES = {"dns": "UDP", "dns-tcp": "TCP"}
DNS_PROTOCOLS = ("UDP", "TCP")
# Rule lines shown per direction of one policy (the DNS verdict reads them all).
MAX_RULES_SHOWN = 20

Rule = NetworkPolicyIngressRule | NetworkPolicyEgressRule


# --- Selectors --------------------------------------------------------------------------


def selector_text(selector: LabelSelector | None) -> str:
    """A label selector as kubectl writes it (`app=web,tier in (a,b),!legacy`); "" when
    it is empty (it selects everything)."""
    if selector is None:
        return ""
    terms = [f"{key}={value}" for key, value in sorted((selector.matchLabels or {}).items())]
    for expression in selector.matchExpressions or []:
        values = ",".join(expression.values or [])
        terms.append(
            {
                "In": f"{expression.key} in ({values})",
                "NotIn": f"{expression.key} notin ({values})",
                "Exists": expression.key,
                "DoesNotExist": f"!{expression.key}",
            }.get(expression.operator, f"{expression.key} {expression.operator} ({values})")
        )
    return ",".join(terms)


def selects(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Whether `selector` selects an object with `labels` (an empty one selects all; an
    operator the API does not define selects nothing, as the API server would refuse
    it)."""
    if selector is None:
        return True
    if any(labels.get(key) != value for key, value in (selector.matchLabels or {}).items()):
        return False
    for expression in selector.matchExpressions or []:
        present = expression.key in labels
        value = labels.get(expression.key)
        wanted = expression.values or []
        matched = {
            "In": present and value in wanted,
            "NotIn": not present or value not in wanted,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(expression.operator, False)
        if not matched:
            return False
    return True


# --- Rules ------------------------------------------------------------------------------


def _port_text(port: NetworkPolicyPort) -> str:
    protocol = port.protocol or "TCP"
    if port.port is None:
        return f"*/{protocol}"
    if port.endPort is not None:
        return f"{port.port}-{port.endPort}/{protocol}"
    return f"{port.port}/{protocol}"


def _peer_text(peer: NetworkPolicyPeer, namespace: str) -> str:
    if peer.ipBlock is not None:
        excluded = peer.ipBlock.except_ or []
        return f"ipBlock {peer.ipBlock.cidr}" + (
            f" except {', '.join(excluded)}" if excluded else ""
        )
    pods = selector_text(peer.podSelector)
    pods_text = f"pods {pods}" if pods else "all pods"
    if peer.namespaceSelector is None:
        return f"{pods_text} in namespace {namespace}"
    namespaces = selector_text(peer.namespaceSelector)
    return f"{pods_text} in " + (f"namespaces {namespaces}" if namespaces else "all namespaces")


def _peers(rule: Rule) -> list[NetworkPolicyPeer]:
    if isinstance(rule, NetworkPolicyIngressRule):
        return list(rule.from_ or [])
    return list(rule.to or [])


def rule_text(rule: Rule, namespace: str) -> str:
    """`to <peer> or <peer>; ports 53/UDP, 53/TCP` (`from` for ingress)."""
    word = "from" if isinstance(rule, NetworkPolicyIngressRule) else "to"
    peers = _peers(rule)
    who = " or ".join(_peer_text(peer, namespace) for peer in peers) if peers else "anywhere"
    ports = rule.ports or []
    where = "ports " + ", ".join(_port_text(p) for p in ports) if ports else "all ports"
    return f"{word} {who}; {where}"


def _dns_protocols(rule: NetworkPolicyEgressRule) -> set[str]:
    """The protocols over which `rule` allows port 53."""
    if not rule.ports:
        return set(DNS_PROTOCOLS)
    allowed = set()
    for port in rule.ports:
        protocol, number = port.protocol or "TCP", port.port
        if isinstance(number, str):
            covers = DNS_PORT_NAMES.get(number) == protocol
        elif number is None or port.endPort is None:
            covers = number in (None, DNS_PORT)
        else:
            covers = number <= DNS_PORT <= port.endPort
        if covers:
            allowed.add(protocol)
    return allowed & set(DNS_PROTOCOLS)


def _dns_words(protocols: set[str]) -> str:
    if protocols == set(DNS_PROTOCOLS):
        return "allowed (53/UDP, 53/TCP)"
    if protocols:
        (only,) = protocols
        other = next(p for p in DNS_PROTOCOLS if p != only)
        return f"partly blocked: 53/{only} allowed, 53/{other} blocked"
    return "blocked: no egress rule allows port 53 (UDP or TCP)"


# --- Policies ---------------------------------------------------------------------------


def policy_types(spec: NetworkPolicySpec | None) -> list[str]:
    """The directions a policy restricts (the API's default when it names none)."""
    if spec is None:
        return ["Ingress"]
    if spec.policyTypes:
        return list(spec.policyTypes)
    return ["Ingress", "Egress"] if spec.egress else ["Ingress"]


def _lines(rules: Sequence[Rule], restricted: bool, namespace: str) -> list[str]:
    if not restricted:
        return []
    if not rules:
        return ["deny all"]
    shown = [rule_text(rule, namespace) for rule in rules[:MAX_RULES_SHOWN]]
    if len(rules) > MAX_RULES_SHOWN:
        shown.append(f"and {len(rules) - MAX_RULES_SHOWN} more rules")
    return shown


def egress_dns(policy: NetworkPolicy) -> set[str] | None:
    """The protocols over which the policy allows egress to port 53; None when it does
    not restrict egress."""
    spec = policy.spec
    if "Egress" not in policy_types(spec):
        return None
    allowed: set[str] = set()
    for rule in (spec.egress if spec is not None else None) or []:
        allowed |= _dns_protocols(rule)
    return allowed


def policy_summary(policy: NetworkPolicy) -> JsonObject:
    """`{name, created, pod_selector, policy_types, ingress, egress, dns_egress}`: each
    rule a line; a restricted direction without rules `deny all`."""
    meta, spec = policy.metadata, policy.spec
    namespace = (meta.namespace if meta is not None else None) or ""
    types = policy_types(spec)
    dns = egress_dns(policy)
    return {
        "name": (meta.name if meta is not None else None) or "",
        "created": timestamp(meta.creationTimestamp if meta is not None else None),
        "pod_selector": selector_text(spec.podSelector if spec is not None else None)
        or "(all pods)",
        "policy_types": types,
        "ingress": _lines(
            (spec.ingress if spec is not None else None) or [], "Ingress" in types, namespace
        ),
        "egress": _lines(
            (spec.egress if spec is not None else None) or [], "Egress" in types, namespace
        ),
        "dns_egress": "not restricted by this policy" if dns is None else _dns_words(dns),
    }


def _name(policy: NetworkPolicy) -> str:
    return (policy.metadata.name if policy.metadata is not None else None) or ""


def pod_verdict(policies: Sequence[NetworkPolicy]) -> JsonObject:
    """What the policies selecting one pod add up to: `{ingress_restricted,
    egress_restricted, dns_egress}`, the DNS verdict naming the policies it rests on."""
    ingress = [p for p in policies if "Ingress" in policy_types(p.spec)]
    egress = [(p, dns) for p in policies if (dns := egress_dns(p)) is not None]
    if not egress:
        dns_egress = "allowed: no NetworkPolicy restricts this pod's egress"
    else:
        allowed = set().union(*(dns for _, dns in egress))
        names = ", ".join(_name(p) for p, _ in egress)
        words = _dns_words(allowed)
        if allowed:
            givers = ", ".join(_name(p) for p, dns in egress if dns)
            dns_egress = f"{words} by {givers}"
        else:
            dns_egress = f"{words}; egress is restricted by {names}"
    return {
        "ingress_restricted": bool(ingress),
        "egress_restricted": bool(egress),
        "dns_egress": dns_egress,
    }
