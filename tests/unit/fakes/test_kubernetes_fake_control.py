"""The fake Kubernetes API's scenario switch (`/_fake/scenario`): the API serves the new
scenario at once, refuses paths and unknown names, and stays outside the bearer token
and the recorded requests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.kubernetes_fake import CONTROL_PATH, FakeKubernetes

TOKEN = "control-test-token"


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubernetes]:
    async with FakeKubernetes("healthy", token=TOKEN) as running:
        yield running


@pytest.fixture
async def client(fake: FakeKubernetes) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, timeout=10) as opened:
        yield opened


async def _pod_names(client: httpx.AsyncClient, namespace: str) -> list[str]:
    answer = await client.get(
        f"/api/v1/namespaces/{namespace}/pods", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 200, answer.text
    return [item["metadata"]["name"] for item in answer.json()["items"]]


async def test_switching_serves_the_new_scenario(
    fake: FakeKubernetes, client: httpx.AsyncClient
) -> None:
    assert (await client.get(CONTROL_PATH)).json() == {"name": "healthy"}
    assert await _pod_names(client, "batch") == []
    switched = await client.post(CONTROL_PATH, json={"name": "oomkilled"})
    assert switched.status_code == 200 and switched.json() == {"name": "oomkilled"}
    assert await _pod_names(client, "batch") == ["report-worker-0"]
    assert await _pod_names(client, "shop") == []
    assert (await client.get(CONTROL_PATH)).json() == {"name": "oomkilled"}
    # Only the API requests were recorded, not the controls.
    assert [seen.path for seen in fake.requests] == [
        "/api/v1/namespaces/batch/pods",
        "/api/v1/namespaces/batch/pods",
        "/api/v1/namespaces/shop/pods",
    ]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "no_such_scenario"}, 404, "no scenario named 'no_such_scenario'"),
        ({"name": "../kube_scenarios/crashloop"}, 400, "not a path"),
        ({"name": "/etc/passwd"}, 400, "not a path"),
        ({"name": 3}, 400, '{"name": "<scenario>"}'),
        ({"name": "crashloop", "extra": 1}, 400, '{"name": "<scenario>"}'),
        (["crashloop"], 400, '{"name": "<scenario>"}'),
    ],
)
async def test_bad_switches_are_refused_and_change_nothing(
    client: httpx.AsyncClient, body: object, status: int, message: str
) -> None:
    refused = await client.post(CONTROL_PATH, json=body)
    assert refused.status_code == status, refused.text
    assert message in refused.json()["error"]
    assert (await client.get(CONTROL_PATH)).json() == {"name": "healthy"}
    assert await _pod_names(client, "shop") == ["web-6d4cf56db6-abcde", "web-6d4cf56db6-fghij"]


async def test_a_body_that_is_not_json_is_a_400(client: httpx.AsyncClient) -> None:
    refused = await client.post(CONTROL_PATH, content=b"crashloop")
    assert refused.status_code == 400
