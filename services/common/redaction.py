"""What of a configured connection string may be shown: never its password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

HIDDEN = "***"
# redis-py also reads a password from the query (`?password=...`).
_QUERY_PASSWORD = re.compile(r"(?i)((?:^|&)password=)[^&]*")


def url_without_password(url: str) -> str:
    """`url` with the password of its user info and of its query replaced
    (`redis://:***@host:6379/0`); anything that does not parse is hidden whole."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
        password = parts.password
    except ValueError:
        return HIDDEN
    if not host and "@" in url:
        return HIDDEN
    netloc = parts.netloc
    if password is not None:
        user = parts.username or ""
        address = f"[{host}]" if host and ":" in host else host or ""
        netloc = f"{user}:{HIDDEN}@{address}" + (f":{port}" if port is not None else "")
    query = _QUERY_PASSWORD.sub(lambda m: m.group(1) + HIDDEN, parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return shown + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
