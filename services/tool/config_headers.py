"""Header values of the file's tools as written in the file, `${NAME}` references kept.

The configuration loader expands `${NAME}` in every value of the file when it loads it;
for tool headers (credentials, mostly) the service wants the references instead, to
expand them at call time and to show them, not their values, in ListTools and GetTool.
The file has passed the loader's validation by then; anything unexpected here only
means the loaded (expanded) values are used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def _mapping(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def file_header_templates(path: Path | None) -> dict[str, dict[str, str]]:
    """Tool id -> header name -> value as written, for every tool of the file."""
    if path is None:
        return {}
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    definitions = _mapping(_mapping(document, "tools"), "definitions")
    templates: dict[str, dict[str, str]] = {}
    for definition in definitions if isinstance(definitions, list) else []:
        name = _mapping(definition, "name")
        headers = _mapping(_mapping(definition, "http"), "headers")
        if isinstance(name, str) and isinstance(headers, dict):
            templates[name] = {str(k): str(v) for k, v in headers.items()}
    return templates
