"""What a PromQL expression reads: its series selectors (metric name and the label names
of their matchers) and the label names of its grouping clauses.

promtool (Debian's 2.42) has no command that prints a parsed expression, so this is a
tokenizer that knows PromQL's lexical shapes: strings, comments, ranges and durations,
numbers, identifiers, and which identifiers are keywords, functions or label lists. It
reads rule files and dashboard queries; `promtool check rules` is what says they parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
        (?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^=<>(){},@$])
    """,
    re.VERBOSE,
)
# Keywords that are never metric names (`inf` and `nan` are numbers), and aggregation
# operators, which may be followed by `by (...)` before their parenthesis.
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"}
    | {"sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk"}
    | {"quantile", "count_values"}
)
# Keywords followed by a parenthesised list of label names.
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


@dataclass
class Selector:
    name: str
    labels: set[str] = field(default_factory=set)


@dataclass
class Reads:
    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)

    @property
    def names(self) -> set[str]:
        return {selector.name for selector in self.selectors}


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match is None:
            raise ValueError(f"cannot read PromQL at {expr[position : position + 30]!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind not in ("space", "comment"):
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


def _label_names(tokens: list[tuple[str, str]], start: int, close: str) -> tuple[set[str], int]:
    """Label names from `start` (just past the opening bracket) to `close`; returns them
    and the index past the closing bracket. In a matcher list a name precedes its
    operator; in a grouping list every identifier is a name."""
    names = set()
    index = start
    while index < len(tokens) and tokens[index][1] != close:
        kind, text = tokens[index]
        if kind in ("ident", "string") and close == ")":
            names.add(text.strip("\"'`"))
        elif (
            kind == "ident"
            and index + 1 < len(tokens)
            and tokens[index + 1][1]
            in (
                "=",
                "!=",
                "=~",
                "!~",
            )
        ):
            names.add(text)
        index += 1
    if index >= len(tokens):
        raise ValueError(f"unclosed {close!r}")
    return names, index + 1


def reads(expr: str) -> Reads:
    """The selectors and grouping labels of one expression."""
    tokens = _tokens(expr)
    result = Reads()
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if kind == "ident" and text in _LABEL_LISTS:
            if following == "(":
                names, index = _label_names(tokens, index + 2, ")")
                result.grouping |= names
                continue
        elif kind == "ident" and text not in _KEYWORDS and following != "(":
            selector = Selector(text)
            index += 1
            if following == "{":
                selector.labels, index = _label_names(tokens, index + 1, "}")
            result.selectors.append(selector)
            continue
        elif kind == "op" and text == "{":
            # A selector without a name: `{__name__="..."}`.
            labels, end = _label_names(tokens, index + 1, "}")
            metric = [
                value.strip("\"'`")
                for (k, t), (_, op), (_, value) in zip(
                    tokens[index + 1 : end],
                    tokens[index + 2 : end],
                    tokens[index + 3 : end],
                    strict=False,
                )
                if k == "ident" and t == "__name__" and op == "="
            ]
            if len(metric) != 1:
                raise ValueError(f"a selector without one metric name in {expr!r}")
            result.selectors.append(Selector(metric[0], labels - {"__name__"}))
            index = end
            continue
        index += 1
    return result
