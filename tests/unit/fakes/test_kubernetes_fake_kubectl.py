"""The fake Kubernetes API checked with the real `kubectl`: discovery, JSON and Table
lists, describe (pod and its events by uid), logs of the previous instance, events,
rollout history and Status errors.

kubectl sends no bearer token to an http:// server, so it talks to a fake without one
here; the fake's 401 is checked by kubectl's reading of it (a fake that wants a token
kubectl does not send). lightkube, which does send it, is checked with a token in
tests/unit/tool/test_kubernetes_toolset.py.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from tests.fakes.kube_scenario import SCENARIOS
from tests.fakes.kubernetes_fake import FakeKubernetes
from tests.support.kube import write_kubeconfig

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


class Kubectl:
    def __init__(self, config: Path) -> None:
        self.config = config

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        assert KUBECTL is not None
        process = await asyncio.create_subprocess_exec(
            KUBECTL,
            "--kubeconfig",
            str(self.config),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"HOME": str(self.config.parent), "PATH": "/usr/bin:/bin"},
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubernetes]:
    async with FakeKubernetes("bad_rollout") as running:
        yield running


@pytest.fixture
def kubectl(fake: FakeKubernetes, tmp_path: Path) -> Kubectl:
    return Kubectl(write_kubeconfig(tmp_path / "kubeconfig", fake.url))


async def test_get_pods_json(kubectl: Kubectl) -> None:
    code, out, err = await kubectl("get", "pods", "-n", "shop", "-o", "json")
    assert code == 0, err
    listing = json.loads(out)
    assert listing["kind"] == "List"
    names = [item["metadata"]["name"] for item in listing["items"]]
    assert "api-7f6b9c5d4-zzzzz" in names and len(names) == 4


async def test_get_pods_table(kubectl: Kubectl, fake: FakeKubernetes) -> None:
    code, out, err = await kubectl("get", "pods", "-n", "shop")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    crashing = next(row.split() for row in rows if row.startswith("api-7f6b9c5d4-zzzzz"))
    assert crashing[1:4] == ["0/1", "CrashLoopBackOff", "6"]
    assert any("as=Table" in seen.accept for seen in fake.requests)


async def test_describe_pod_shows_its_events(kubectl: Kubectl) -> None:
    code, out, err = await kubectl("describe", "pod", "api-7f6b9c5d4-zzzzz", "-n", "shop")
    assert code == 0, err
    assert "registry.example.com/api:2.4.0" in out
    assert "CrashLoopBackOff" in out
    events = out.split("Events:", 1)[1]
    assert "BackOff" in events and "Back-off restarting failed container api" in events


async def test_logs_previous(kubectl: Kubectl) -> None:
    code, out, err = await kubectl("logs", "--previous", "api-7f6b9c5d4-zzzzz", "-n", "shop")
    assert code == 0, err
    assert out.splitlines()[-1] == 'panic: pricing rules table "price_rules_v2" does not exist'
    code, out, err = await kubectl("logs", "--previous", "api-6c7d8e9f0-aaaaa", "-n", "shop")
    assert code != 0
    assert 'previous terminated container "api" in pod "api-6c7d8e9f0-aaaaa" not found' in err


async def test_get_events(kubectl: Kubectl) -> None:
    code, out, err = await kubectl("get", "events", "-n", "shop")
    assert code == 0, err
    assert "Scaled up replica set api-7f6b9c5d4 to 1" in out
    assert "pod/api-7f6b9c5d4-zzzzz" in out


async def test_rollout_history(kubectl: Kubectl) -> None:
    code, out, err = await kubectl("rollout", "history", "deployment/api", "-n", "shop")
    assert code == 0, err
    rows = [line.split(None, 1) for line in out.splitlines()[2:] if line.strip()]
    assert rows == [
        ["1", "initial release"],
        ["2", "bump to 2.3.1"],
        ["3", "release 2.4.0 with new pricing"],
    ]
    code, out, err = await kubectl(
        "rollout", "history", "deployment/api", "-n", "shop", "--revision", "2"
    )
    assert code == 0, err
    assert "registry.example.com/api:2.3.1" in out


async def test_errors_are_status_objects(kubectl: Kubectl, fake: FakeKubernetes) -> None:
    code, _, err = await kubectl("get", "pod", "ghost", "-n", "shop")
    assert code != 0 and 'Error from server (NotFound): pods "ghost" not found' in err
    fake.forbidden.add("nodes")
    code, _, err = await kubectl("get", "nodes")
    assert code != 0 and "Error from server (Forbidden)" in err
    fake.token = "a-token-kubectl-does-not-have"
    code, _, err = await kubectl("get", "pods", "-n", "shop")
    assert code != 0 and "You must be logged in to the server" in err


async def test_events_k8s_io_and_refused_field_selectors(kubectl: Kubectl) -> None:
    code, out, err = await kubectl("get", "events.v1.events.k8s.io", "-n", "shop", "-o", "json")
    assert code == 0, err
    backoff = next(e for e in json.loads(out)["items"] if e["reason"] == "BackOff")
    assert backoff["eventTime"] is None and backoff["deprecatedCount"] == 14
    code, out, err = await kubectl("get", "events.events.k8s.io", "-n", "shop")
    assert code == 0, err
    assert "Scaled up replica set api-7f6b9c5d4 to 1" in out
    code, _, err = await kubectl("get", "pods", "-n", "shop", "--field-selector", "spec.image=x")
    assert code != 0
    assert "field label not supported: spec.image" in err
    code, out, err = await kubectl("get", "pods", "-A", "--field-selector", "spec.nodeName=node-a")
    assert code == 0 and "api-7f6b9c5d4-zzzzz" in out, err


async def test_scheduler_events_in_both_views(tmp_path: Path) -> None:
    """The scheduler's event (recorded through events.k8s.io) as kubectl reads it from
    either API: the same event, `eventTime` and `series` in both, no count or
    timestamps in core v1, no `deprecated*` fields in events.k8s.io/v1."""
    async with FakeKubernetes("unschedulable") as running:
        kubectl = Kubectl(write_kubeconfig(tmp_path / "kubeconfig", running.url))
        code, out, err = await kubectl("get", "events.v1.events.k8s.io", "-n", "ml", "-o", "json")
        assert code == 0, err
        (v1,) = json.loads(out)["items"]
        code, out, err = await kubectl("get", "events", "-n", "ml", "-o", "json")
        assert code == 0, err
        (core,) = json.loads(out)["items"]
        assert v1["metadata"]["uid"] == core["metadata"]["uid"]
        assert v1["reason"] == core["reason"] == "FailedScheduling"
        assert v1["note"] == core["message"] and v1["regarding"] == core["involvedObject"]
        assert v1["eventTime"] == core["eventTime"] is not None
        assert v1["series"] == core["series"] and core["series"]["count"] == 12
        assert v1["reportingController"] == core["reportingComponent"] == "default-scheduler"
        assert not [key for key in v1 if key.startswith("deprecated")]
        assert "count" not in core and core["lastTimestamp"] is None
        code, out, err = await kubectl("get", "events.events.k8s.io", "-n", "ml")
        assert code == 0, err
        assert "FailedScheduling" in out and "pod/ml-trainer-0" in out


async def test_get_network_policies(tmp_path: Path) -> None:
    async with FakeKubernetes("dns_egress_blocked") as running:
        kubectl = Kubectl(write_kubeconfig(tmp_path / "kubeconfig", running.url))
        code, out, err = await kubectl("get", "networkpolicy", "-n", "shop", "-o", "yaml")
        assert code == 0, err
        listing = yaml.safe_load(out)
        policies = {item["metadata"]["name"]: item for item in listing["items"]}
        assert list(policies) == ["shop-egress-lockdown", "frontend-egress", "frontend-ingress"]
        lockdown = policies["shop-egress-lockdown"]
        assert lockdown["apiVersion"] == "networking.k8s.io/v1"
        assert lockdown["spec"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 5432}]
        ingress = policies["frontend-ingress"]["spec"]["ingress"][0]
        assert ingress["from"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "ingress-nginx"
        }
        code, out, err = await kubectl("get", "netpol", "-n", "shop")
        assert code == 0, err
        header, *rows = out.splitlines()
        assert header.split() == ["NAME", "POD-SELECTOR", "AGE"]
        assert rows[0].split()[:2] == ["shop-egress-lockdown", "<none>"]
        assert rows[1].split()[:2] == ["frontend-egress", "app=shop-frontend"]
        code, out, err = await kubectl(
            "get", "networkpolicies.networking.k8s.io", "shop-egress-lockdown", "-n", "shop"
        )
        assert code == 0 and "shop-egress-lockdown" in out, err
        code, _, err = await kubectl("get", "netpol", "ghost", "-n", "shop")
        assert code != 0
        assert 'networkpolicies.networking.k8s.io "ghost" not found' in err


@pytest.mark.parametrize("scenario", sorted(p.stem for p in SCENARIOS.glob("*.yaml")))
async def test_kubectl_reads_every_scenario(scenario: str, tmp_path: Path) -> None:
    async with FakeKubernetes(scenario) as running:
        kubectl = Kubectl(write_kubeconfig(tmp_path / "kubeconfig", running.url))
        kinds = ("pods", "events", "deployments", "nodes", "events.events.k8s.io", "netpol")
        for kind in kinds:
            code, out, err = await kubectl("get", kind, "-A", "-o", "json")
            assert code == 0, (kind, err)
            assert json.loads(out)["kind"] == "List"
        code, _, err = await kubectl("get", "pods", "-A")
        assert code == 0, err
