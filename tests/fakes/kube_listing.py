"""Objects as the fake Kubernetes API lists and gets them: a scenario's objects of one
resource (in a namespace or cluster-wide), filtered by `labelSelector` and
`fieldSelector` (a field label the kind does not support is the server's 400), paged by
`limit` and `continue`, as a `<Kind>List` or the `Table` kubectl asks for."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from tests.fakes import kube_wire as wire
from tests.fakes.kube_scenario import Scenario
from tests.fakes.kube_select import UnsupportedField, field_matcher, label_matcher


def resource_version(scenario: Scenario) -> str:
    return str(1000 + len(scenario.objects))


def objects(scenario: Scenario, item: wire.Resource, namespace: str | None) -> list[dict[str, Any]]:
    """`item`'s objects (as its API version serves them), of `namespace` or all; the
    namespaces are those the scenario's objects live in."""
    if item.kind == "Namespace":
        names = sorted({o["metadata"].get("namespace") for o in scenario.objects} - {None})
        return [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name},
                "status": {"phase": "Active"},
            }
            for name in names
        ]
    return [
        wire.served(item, obj)
        for obj in scenario.objects
        if obj["kind"] == item.kind
        and (namespace is None or obj["metadata"].get("namespace") == namespace)
    ]


def get(
    scenario: Scenario, item: wire.Resource, name: str, namespace: str | None
) -> dict[str, Any]:
    for obj in objects(scenario, item, namespace):
        if obj["metadata"]["name"] == name:
            return obj
    raise wire.Refused(wire.not_found(item, name))


def _selected(
    found: list[dict[str, Any]], item: wire.Resource, query: Mapping[str, str]
) -> list[dict[str, Any]]:
    try:
        if query.get("labelSelector"):
            matches = label_matcher(query["labelSelector"])
            found = [obj for obj in found if matches(obj)]
        if query.get("fieldSelector"):
            matches = field_matcher(query["fieldSelector"], item.group, item.kind)
            found = [obj for obj in found if matches(obj)]
    except UnsupportedField as error:
        raise wire.bad_request(str(error)) from None
    except ValueError as error:
        raise wire.bad_request(f"unable to parse requirement: {error}") from None
    return found


def listing(
    scenario: Scenario,
    item: wire.Resource,
    namespace: str | None,
    query: Mapping[str, str],
    accept: str,
) -> dict[str, Any]:
    """The list document the request asks for (Refused for a bad selector or token)."""
    found = _selected(objects(scenario, item, namespace), item, query)
    start = 0
    if query.get("continue"):
        try:
            start = int(base64.urlsafe_b64decode(query["continue"]).decode())
        except ValueError:
            raise wire.bad_request("continue key is not valid") from None
    limit = int(query.get("limit") or 0)
    end = start + limit if limit > 0 else len(found)
    page = found[start:end]
    version = resource_version(scenario)
    metadata: dict[str, Any] = {"resourceVersion": version}
    if end < len(found):
        metadata["continue"] = base64.urlsafe_b64encode(str(end).encode()).decode()
        metadata["remainingItemCount"] = len(found) - end
    if wire.wants_table(accept):
        document = wire.table(item.kind, page, version, query.get("includeObject", "Metadata"))
        document["metadata"].update(metadata)
        return document
    return {
        "kind": f"{item.kind}List",
        "apiVersion": item.api_version,
        "metadata": metadata,
        "items": page,
    }
