"""Process settings: sources in order, and clear failures instead of tracebacks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.server import EXIT_PORT_UNAVAILABLE
from services.common.settings import SettingsError, load_settings
from tests.support.trust import TEST_INTERNAL_SECRET


def test_flags_override_environment_override_defaults() -> None:
    env = {"LLMGW_PORT": "7000", "LLMGW_LOG_LEVEL": "debug", "LLMGW_REDIS_URL": "redis://r"}
    settings = load_settings("session", ["--port", "7001"], env)
    assert settings.port == 7001
    assert settings.metrics_port == 9103
    assert settings.log_level == "DEBUG"
    assert settings.redis_url == "redis://r"


def test_bad_values_name_the_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings("router", [], {"LLMGW_PORT": "eighty", "LLMGW_LOG_LEVEL": "loud"})
    message = str(caught.value)
    assert "LLMGW_PORT" in message and "LLMGW_LOG_LEVEL" in message


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such file"):
        load_settings("router", ["--config", str(tmp_path / "absent.yaml")], {})


@pytest.mark.parametrize("flag", ["--port", "--metrics-port"])
def test_port_in_use_is_one_line_and_its_own_status(flag: str, repo_root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = "--metrics-port" if flag == "--port" else "--port"
        result = subprocess.run(
            [sys.executable, "-m", "services.tool", flag, str(port), other, "0"],
            cwd=repo_root,
            env={**os.environ, "LLMGW_INTERNAL_SECRET": TEST_INTERNAL_SECRET},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == EXIT_PORT_UNAVAILABLE
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("llmgw-tool: cannot ") and str(port) in lines[-1]
    assert "Traceback" not in result.stderr
