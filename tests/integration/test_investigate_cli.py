"""`llmgw investigate` as a user runs it, against the real stack: a gateway that requires
keys, the Kubernetes toolset over the fake API (a crash-looping pod) and a scripted model
(the setup of tests/integration/test_investigations.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.launcher.stack import REPO_ROOT
from tests.fakes import Behaviour
from tests.integration.test_investigations import (
    NS,
    POD,
    SLOW_MODEL,
    SLOW_UPSTREAM,
    UPSTREAM_MODEL,
    _configure,
    _group,
    _script,
    kube,
)
from tests.support.gateway import DEFAULT_ADMIN_KEY, Gateway, running_gateway
from tests.support.identity import Identity, create_identity

pytestmark = pytest.mark.integration

__all__ = ["kube"]  # the module's fixture: the fake Kubernetes API and its kubeconfig


@pytest.fixture(scope="module")
def cgw(tmp_path_factory: pytest.TempPathFactory, kube: Path) -> Iterator[Gateway]:
    with running_gateway(
        tmp_path_factory.mktemp("investigate-cli"),
        configure=_configure,
        env=lambda fakes: {"LLMGW_AUTH": "required", "KUBECONFIG": str(kube)},
    ) as gateway:
        yield gateway


@pytest.fixture
def gw(cgw: Gateway) -> Gateway:
    cgw.reset_fakes()
    return cgw


@pytest.fixture
async def alice(gw: Gateway) -> Identity:
    return await create_identity(gw.grpc_target, DEFAULT_ADMIN_KEY, group=_group(), prefix="cli")


@dataclass
class Done:
    code: int
    out: str
    err: str


def llmgw(gw: Gateway, who: Identity | None, *argv: str) -> Done:
    """`llmgw investigate ARGV` in a process of its own, as a shell would run it."""
    env = {k: v for k, v in os.environ.items() if k != "LLMGW_API_KEY"}
    env["LLMGW_URL"] = gw.public_url
    if who is not None:
        env["LLMGW_API_KEY"] = who.key
    result = subprocess.run(
        [sys.executable, "-m", "services.launcher.cli", "investigate", *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Done(result.returncode, result.stdout, result.stderr)


ALERT = ("--alert-name", "KubePodCrashLooping", "--namespace", NS, "--label", f"pod={POD}")


def test_a_run_prints_progress_and_an_evidence_backed_result(gw: Gateway, alice: Identity) -> None:
    _script(gw)
    done = llmgw(gw, alice, *ALERT, "--label", "container=api", "--annotation", "summary=down")
    assert done.code == 0, done.err
    assert "[c1] kubernetes_describe_pod name=payments-5c8d7f9b6-x2x7q namespace=shop ok" in (
        done.err
    )
    assert "kubernetes_pod_logs container=api name=payments-5c8d7f9b6-x2x7q namespace=shop" in (
        done.err
    )
    assert "kubernetes_list_deployments namespace=shop ok" in done.err
    assert "finding: " in done.err and "(analyzer:crash_loop)" in done.err
    assert "-- state: succeeded" in done.err
    name = done.out.split(":", 1)[0]
    assert name.startswith("investigations/")
    assert "Completeness: complete" in done.out
    assert "Root cause:\n  PAYMENT_API_KEY is not set, so the api exits at start." in done.out
    assert '"required key PAYMENT_API_KEY is not set"' in done.out
    assert "Rejected claims" in done.out and "the node's disk is full" in done.out
    assert "Confidence: 0.72" in done.out

    got = llmgw(gw, alice, "get", name, "--json")
    stored = json.loads(got.out)
    assert (got.code, stored["state"]) == (0, "INVESTIGATION_STATE_SUCCEEDED")
    assert stored["alert"]["annotations"] == {"summary": "down"}
    listed = llmgw(gw, alice, "list", "--state", "succeeded")
    assert name in listed.out and "KubePodCrashLooping (shop)" in listed.out

    gw.fakes["openai"].control().set_conversation(
        UPSTREAM_MODEL, [Behaviour(text="Because PAYMENT_API_KEY is missing.")]
    )
    asked = llmgw(gw, alice, "ask", name, "why?")
    assert (asked.code, asked.out) == (0, "Because PAYMENT_API_KEY is missing.\n"), asked.err
    assert "(session sessions/" in asked.err


def test_a_limit_gives_a_partial_result_and_exit_status_3(gw: Gateway, alice: Identity) -> None:
    _script(gw)
    done = llmgw(gw, alice, *ALERT, "--max-tokens", "1", "--json")
    assert done.code == 3, done.err
    result = json.loads(done.out)["result"]
    assert result["completeness"] == "COMPLETENESS_PARTIAL"
    assert result["partial_reason"] == "PARTIAL_REASON_TOKEN_BUDGET"


def test_refusals_exit_2_with_the_gateways_message(gw: Gateway, alice: Identity) -> None:
    anonymous = llmgw(gw, None, *ALERT)
    assert anonymous.code == 2
    assert anonymous.err.startswith("!! HTTP 401: ") and "API key" in anonymous.err
    too_many = llmgw(gw, alice, *ALERT, "--max-steps", "1000")
    assert too_many.code == 2
    assert "HTTP 400" in too_many.err and "investigation.limits.max_steps" in too_many.err
    unknown = llmgw(gw, alice, "get", "no-such-investigation")
    assert unknown.code == 2 and "HTTP 404" in unknown.err


def test_cancel_then_follow_to_the_end_exits_1(gw: Gateway, alice: Identity) -> None:
    _script(gw, SLOW_UPSTREAM, delay=30)
    started = llmgw(gw, alice, *ALERT, "--model", SLOW_MODEL, "--no-wait")
    assert started.code == 0, started.err
    name = started.out.strip()
    cancelled = llmgw(gw, alice, "cancel", name)
    assert cancelled.code == 0, cancelled.err
    followed = llmgw(gw, alice, "get", name, "--follow")
    assert followed.code == 1, followed.err
    assert f"{name}: cancelled" in followed.out
    assert "-- state: cancelled" in followed.err
