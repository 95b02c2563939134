"""URL templates, the host allow-list and filling a URL from arguments (SSRF guards)."""

from __future__ import annotations

import re

import pytest

from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.tool_config import HostAllowList, parse_host_rule, parse_url_template
from services.tool.url_guard import check_call_url, fill

ALLOW = HostAllowList(["127.0.0.1", "search.internal:9000", "*.agents.internal", "[::1]:8080"])


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("ftp://files.internal/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("//search.internal/x", "http:// or https://"),
        ("http://{host}/x", "an argument may never choose the host"),
        ("http://search.internal:{port}/x", "an argument may never choose the host"),
        ("http://api.{zone}.internal/x", "an argument may never choose the host"),
        ("http://user@search.internal/x", "user information"),
        ("http://search.internal/a/../admin", "'..' path segments"),
        ("http://search.internal/a/%2e%2e/admin", "'..' path segments"),
        ("http://search.internal/x#frag", "fragment"),
        ("http://search.internal/{bad-name}", "placeholders are {name}"),
        ("http://search.internal:99999/x", "invalid host or port"),
        ("http:///x", "must name a host"),
        ("http://search.internal/a b", "whitespace"),
    ],
)
def test_templates_are_refused(template: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_url_template(template)


def test_template_parts() -> None:
    parsed = parse_url_template("HTTPS://Search.Internal/v1/{index}/items?q={query}&n={query}")
    assert (parsed.scheme, parsed.host, parsed.port) == ("https", "search.internal", 443)
    assert parsed.placeholders == ("index", "query")
    assert parsed.downstream == "search.internal:443"
    assert parse_url_template("http://[::1]:8080/x").downstream == "[::1]:8080"


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("127.0.0.1", 80, True),
        ("127.0.0.1", 9999, True),
        ("search.internal", 9000, True),
        ("search.internal", 9001, False),
        ("SEARCH.internal.", 9000, True),
        ("a.agents.internal", 443, True),
        ("x.y.agents.internal", 80, True),
        ("agents.internal", 80, False),
        ("evilagents.internal", 80, False),
        ("::1", 8080, True),
        ("::1", 80, False),
        ("127.0.0.2", 80, False),
        ("169.254.169.254", 80, False),
        ("localhost", 80, False),
    ],
)
def test_allow_list(host: str, port: int, allowed: bool) -> None:
    assert ALLOW.allows(host, port) is allowed


def test_wildcards_never_match_ip_literals() -> None:
    assert not HostAllowList(["*.0.0.1"]).allows("127.0.0.1", 80)
    with pytest.raises(ValueError, match="not IP addresses"):
        parse_host_rule("*.1.2.3.4")
    with pytest.raises(ValueError, match="port"):
        parse_host_rule("search.internal:0")
    assert not HostAllowList([]).allows("127.0.0.1", 80)


def test_arguments_are_encoded_inside_their_placeholder() -> None:
    template = parse_url_template("http://127.0.0.1:9000/chunks/{id}?v={version}")
    url = fill(template, {"id": "a/../b?c#d@evil:1 é", "version": 2})
    assert url == "http://127.0.0.1:9000/chunks/a%2F..%2Fb%3Fc%23d%40evil%3A1%20%C3%A9?v=2"
    check_call_url(url, template, ALLOW)
    assert fill(template, {"id": True, "version": 1.5}).endswith("/chunks/true?v=1.5")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("..", "must not be '.' or '..'"),
        (".", "must not be '.' or '..'"),
        ({"a": 1}, "string, number or boolean"),
        ([1], "string, number or boolean"),
        (None, "string, number or boolean"),
    ],
)
def test_values_that_cannot_fill_a_url_are_refused(value: object, problem: str) -> None:
    template = parse_url_template("http://127.0.0.1/chunks/{id}")
    with pytest.raises(InvalidArgument) as caught:
        fill(template, {"id": value})
    assert caught.value.violations[0].field == "arguments.id"
    assert problem in caught.value.violations[0].description


def test_a_path_step_in_a_filled_url_is_refused() -> None:
    template = parse_url_template("http://127.0.0.1/x/{a}{b}/y")
    check_call_url(fill(template, {"a": "..x", "b": "y"}), template, ALLOW)
    # `fill` never produces one; the check on the final URL stands on its own.
    for stepped in ("http://127.0.0.1/x/../y", "http://127.0.0.1/x/%2E%2E/y"):
        with pytest.raises(InvalidArgument):
            check_call_url(stepped, template, ALLOW)


def test_a_filled_url_must_keep_the_templates_origin() -> None:
    template = parse_url_template("http://127.0.0.1:9000/x/{a}")
    for url in (
        "http://127.0.0.2:9000/x/a",
        "http://127.0.0.1:9001/x/a",
        "https://127.0.0.1:9000/x/a",
        "http://evil@127.0.0.1:9000/x/a",
    ):
        with pytest.raises(InvalidArgument):
            check_call_url(url, template, ALLOW)


def test_a_host_removed_from_the_allow_list_is_refused_at_call_time() -> None:
    template = parse_url_template("http://search.internal:9000/x")
    check_call_url(template.template, template, ALLOW)
    with pytest.raises(FailedPrecondition, match=r"not in tools\.allowed_hosts"):
        check_call_url(template.template, template, HostAllowList(["127.0.0.1"]))
