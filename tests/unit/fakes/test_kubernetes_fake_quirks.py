"""The fake Kubernetes API reproduces the real server's quirks, not an idealised API:
events in both API versions with the fields each recorder leaves empty, field selectors
refused per kind, and the kubelet's refusals of logs that do not exist."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes.kube_scenario import scenario_from_document
from tests.fakes.kubernetes_fake import FakeKubernetes


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        FakeKubernetes("unschedulable") as fake,
        httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client,
    ):
        yield client


async def _items(client: httpx.AsyncClient, path: str, **params: str) -> list[dict[str, Any]]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_scheduler_events_have_event_time_and_series_not_count(
    http: httpx.AsyncClient,
) -> None:
    (core,) = await _items(http, "/api/v1/namespaces/ml/events")
    assert core["reason"] == "FailedScheduling"
    assert core["firstTimestamp"] is None and core["lastTimestamp"] is None
    assert "count" not in core and core["source"] == {}
    assert core["eventTime"].endswith(".000000Z")  # a MicroTime
    assert core["series"]["count"] == 12
    assert core["reportingComponent"] == "default-scheduler"
    (v1,) = await _items(http, "/apis/events.k8s.io/v1/namespaces/ml/events")
    assert v1["apiVersion"] == "events.k8s.io/v1" and v1["note"] == core["message"]
    assert v1["regarding"]["name"] == "ml-trainer-0"
    assert v1["eventTime"] == core["eventTime"] and v1["series"] == core["series"]
    assert v1["reportingController"] == "default-scheduler"
    assert not any(key.startswith("deprecated") for key in v1)


async def test_kubelet_events_have_a_null_event_time_in_events_k8s_io() -> None:
    async with (
        FakeKubernetes("crashloop") as fake,
        httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client,
    ):
        core = await _items(client, "/api/v1/namespaces/shop/events")
        assert {e["eventTime"] for e in core} == {None}
        assert [e["count"] for e in core] == [8, 31]
        v1 = await _items(client, "/apis/events.k8s.io/v1/namespaces/shop/events")
    backoff = next(e for e in v1 if e["reason"] == "BackOff")
    assert backoff["eventTime"] is None
    assert backoff["deprecatedCount"] == 31
    assert backoff["deprecatedLastTimestamp"] == core[1]["lastTimestamp"]
    assert backoff["deprecatedSource"] == {"component": "kubelet", "host": "node-a"}
    assert backoff["reportingController"] == "kubelet"
    assert "count" not in backoff and "lastTimestamp" not in backoff


async def test_discovery_lists_events_k8s_io(http: httpx.AsyncClient) -> None:
    groups = (await http.get("/apis")).json()["groups"]
    assert "events.k8s.io" in [g["name"] for g in groups]
    listing = (await http.get("/apis/events.k8s.io/v1")).json()
    assert [r["name"] for r in listing["resources"]] == ["events"]


async def test_field_selectors_each_kind_supports(http: httpx.AsyncClient) -> None:
    found = await _items(
        http, "/api/v1/namespaces/ml/events", fieldSelector="involvedObject.name=ml-trainer-0"
    )
    assert len(found) == 1
    found = await _items(
        http,
        "/apis/events.k8s.io/v1/namespaces/ml/events",
        fieldSelector="regarding.name=ml-trainer-0,reportingController=default-scheduler",
    )
    assert len(found) == 1
    assert await _items(http, "/api/v1/events", fieldSelector="source=kubelet") == []
    assert await _items(http, "/api/v1/pods", fieldSelector="status.phase=Pending")


@pytest.mark.parametrize(
    ("path", "selector", "message"),
    [
        ("/api/v1/pods", "spec.containers=x", "field label not supported: spec.containers"),
        (
            "/api/v1/namespaces/ml/events",
            "regarding.name=x",
            "field label not supported: regarding.name",
        ),
        (
            "/apis/events.k8s.io/v1/namespaces/ml/events",
            "involvedObject.name=x",
            "field label not supported: involvedObject.name",
        ),
        (
            "/apis/apps/v1/deployments",
            "status.replicas=1",
            '"status.replicas" is not a known field selector: only "metadata.name", '
            '"metadata.namespace"',
        ),
    ],
)
async def test_unsupported_field_selectors_are_a_400_status(
    http: httpx.AsyncClient, path: str, selector: str, message: str
) -> None:
    response = await http.get(path, params={"fieldSelector": selector})
    assert response.status_code == 400
    body = response.json()
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "BadRequest", 400)
    assert body["message"] == message


_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "shop"},
    "spec": {"nodeName": "node-a", "containers": [{"name": "web", "image": "web:1"}]},
}


def _pod(status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    pod = {**_POD, "status": {"containerStatuses": [{"name": "web", **status}]}}
    pod["spec"] = {**_POD["spec"], **spec}
    return pod


@pytest.mark.parametrize(
    ("pod", "query", "said"),
    [
        (
            _pod({"state": {"waiting": {"reason": "CreateContainerConfigError"}}}),
            "",
            'container "web" in pod "web-1" is waiting to start: CreateContainerConfigError',
        ),
        (
            _pod({"state": {"waiting": {"reason": "ErrImagePull"}}}),
            "",
            'container "web" in pod "web-1" is waiting to start: image can\'t be pulled',
        ),
        (
            _pod({"state": {"waiting": {"reason": "ImagePullBackOff"}}}),
            "",
            'container "web" in pod "web-1" is waiting to start: trying and failing to pull image',
        ),
        (
            _pod({"restartCount": 0, "state": {"running": {}}}),
            "?previous=true",
            'previous terminated container "web" in pod "web-1" not found',
        ),
    ],
)
async def test_log_refusals_are_the_kubelets(pod: dict[str, Any], query: str, said: str) -> None:
    scenario = scenario_from_document(
        {"objects": [pod], "logs": {"shop/web-1/web": {"current": ["up"], "previous": ["x"]}}}
    )
    async with (
        FakeKubernetes(scenario) as fake,
        httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client,
    ):
        response = await client.get(f"/api/v1/namespaces/shop/pods/web-1/log{query}")
    assert response.status_code == 400
    assert response.json()["message"] == said


async def test_previous_logs_of_a_crash_looping_container() -> None:
    crashing = _pod(
        {
            "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
        }
    )
    unscheduled = {
        **_POD,
        "metadata": {"name": "web-2", "namespace": "shop"},
        "spec": {"containers": [{"name": "web", "image": "web:1"}]},
        "status": {"phase": "Pending"},
    }
    scenario = scenario_from_document(
        {
            "objects": [crashing, unscheduled],
            "logs": {"shop/web-1/web": {"current": ["again"], "previous": ["boom"]}},
        }
    )
    async with (
        FakeKubernetes(scenario) as fake,
        httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client,
    ):
        base = "/api/v1/namespaces/shop/pods"
        assert (await client.get(f"{base}/web-1/log?previous=true")).text == "boom\n"
        # Between restarts the kubelet serves the last instance's log, no refusal.
        assert (await client.get(f"{base}/web-1/log")).text == "again\n"
        # A pod with no node: the API server has no kubelet to ask, and says nothing.
        empty = await client.get(f"{base}/web-2/log")
    assert (empty.status_code, empty.text) == (200, "")
