"""Read-only toolsets built into the tool service (`kubernetes`, `prometheus`).

Each toolset is a set of native tools that run inside the tool service against a real
API (the Kubernetes REST API, Prometheus' HTTP API), enabled when its backend is
configured. They are registered like every other tool, so the tool service's schema
validation, timeouts, circuit breakers, ACLs and result caps apply to them; the
investigation service and chat callers (through `allowed_tools`) call them the same way.

`FACTORIES` lists the toolsets this build has: adding one is one entry there (and its
switch in `tools.toolsets`, services/common/tool_config.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from services.common.settings import SettingsError
from services.common.tool_config import TOOLSET_NAMES, ToolsetsConfig
from services.tool.toolsets import kubernetes, kubernetes_config, prometheus
from services.tool.toolsets.base import Toolset


class ToolsetConfigError(SettingsError):
    """A toolset is switched on without its environment, or its environment is unusable
    (a SettingsError: the service exits with one clear line)."""


@dataclass(frozen=True)
class ToolsetFactory:
    # The variables that configure it, as named in error messages and the launcher.
    variables: tuple[str, ...]
    # Whether the environment configures it (the `auto` switch).
    configured: Callable[[Mapping[str, str]], bool]
    # The toolset over that environment (None when it configures none).
    build: Callable[[Mapping[str, str]], Toolset | None]


FACTORIES: dict[str, ToolsetFactory] = {
    "kubernetes": ToolsetFactory(
        (kubernetes_config.KUBECONFIG_ENV, kubernetes_config.SERVICE_HOST_ENV),
        kubernetes_config.configured,
        kubernetes.from_env,
    ),
    "prometheus": ToolsetFactory(
        (prometheus.URL_VARIABLE,),
        lambda environ: bool(environ.get(prometheus.URL_VARIABLE)),
        prometheus.from_env,
    ),
}


def enabled_toolsets(config: ToolsetsConfig, environ: Mapping[str, str]) -> list[str]:
    """The toolsets that run with this configuration and environment; ToolsetConfigError
    for one switched on without its environment."""
    enabled = []
    for name in TOOLSET_NAMES:
        switch = config.switch(name).enabled
        factory = FACTORIES.get(name)
        if switch == "off":
            continue
        if factory is None:
            if switch == "on":
                raise ToolsetConfigError(
                    f"tools.toolsets.{name}.enabled is on, but this tool service has no "
                    f"{name} toolset"
                )
            continue
        if factory.configured(environ):
            enabled.append(name)
        elif switch == "on":
            raise ToolsetConfigError(
                f"tools.toolsets.{name}.enabled is on, but {' or '.join(factory.variables)} "
                "is not set"
            )
    return enabled


def build_toolsets(config: ToolsetsConfig, environ: Mapping[str, str]) -> list[Toolset]:
    """The enabled toolsets, each with its client; ToolsetConfigError when one cannot be
    configured (the tool service then refuses to start)."""
    built: list[Toolset] = []
    for name in enabled_toolsets(config, environ):
        try:
            toolset = FACTORIES[name].build(environ)
        except ValueError as error:
            raise ToolsetConfigError(f"toolset {name}: {error}") from None
        if toolset is not None:
            built.append(toolset)
    return built
