"""Plain-text rendering of the gateway's resources for `llmgw models|sessions|usage|keys`:
aligned columns a person reads and `awk` splits (no box drawing, no colour)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Longest cell shown; longer text is cut with an ellipsis (a table is not a dump).
MAX_CELL = 60


def _cell(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Rows under headers, each column as wide as its widest cell."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [list(headers), *cells]
    ]
    return "\n".join(lines) + "\n"


def timestamp(value: Any) -> str:
    """A protobuf Timestamp as `YYYY-MM-DD HH:MM:SSZ`, or `-` when unset."""
    if not value.seconds and not value.nanos:
        return "-"
    return str(value.ToDatetime().strftime("%Y-%m-%d %H:%M:%SZ"))


def models_table(reply: Any) -> str:
    rows = [
        (
            model.id,
            model.owned_by or "-",
            model.context_window or "-",
            ", ".join(model.aliases) or "-",
        )
        for model in reply.data
    ]
    return table(("MODEL", "OWNED BY", "CONTEXT", "ALIASES"), rows)


def sessions_table(reply: Any) -> str:
    rows = [
        (s.name, s.message_count, timestamp(s.update_time), timestamp(s.expire_time))
        for s in reply.sessions
    ]
    return table(("SESSION", "MESSAGES", "UPDATED", "EXPIRES"), rows)


ROLES = {1: "system", 2: "user", 3: "assistant", 4: "tool", 5: "developer"}


def message_text(message: Any) -> str:
    parts = [part.text for part in message.content if part.WhichOneof("part") == "text"]
    calls = [f"-> {call.name}({call.arguments})" for call in message.tool_calls]
    return "\n".join([*parts, *calls])


def session_detail(session: Any) -> str:
    """A session's header lines, then its messages as `role: text`."""
    lines = [
        f"session:  {session.name}",
        f"messages: {session.message_count}",
        f"updated:  {timestamp(session.update_time)}",
        f"expires:  {timestamp(session.expire_time)}",
    ]
    if session.system_prompt:
        lines.append(f"system:   {session.system_prompt}")
    if session.messages:
        lines.append("")
    for stored in session.messages:
        role = ROLES.get(stored.message.role, "?")
        lines.append(f"{role}: {message_text(stored.message)}")
    return "\n".join(lines) + "\n"


def _money(totals: Any) -> str:
    return f"{totals.cost:.4f} {totals.currency}".strip()


def usage_table(reply: Any, group_by: str) -> str:
    """Usage per day or per model, then the period's total and the budget's spend."""
    if group_by == "day":
        groups = [(day.date, day.totals) for day in reply.daily]
        first = "DAY"
    else:
        groups = [(model.model, model.totals) for model in reply.by_model]
        first = "MODEL"
    rows: list[Sequence[object]] = [
        (
            key,
            t.requests,
            t.input_tokens,
            t.output_tokens,
            t.cached_input_tokens,
            t.cache_hits,
            _money(t),
        )
        for key, t in [*groups, ("TOTAL", reply.totals)]
    ]
    text = table((first, "REQUESTS", "INPUT", "OUTPUT", "CACHED IN", "CACHE HITS", "COST"), rows)
    return (
        text + f"\nspent today {reply.spent_today:.4f}, this month {reply.spent_this_month:.4f}\n"
    )


def keys_table(reply: Any) -> str:
    rows = [
        (
            key.name,
            key.prefix,
            "active" if key.active else ("revoked" if key.revoke_time.seconds else "expired"),
            timestamp(key.create_time),
            timestamp(key.expire_time),
        )
        for key in reply.api_keys
    ]
    return table(("KEY", "PREFIX", "STATE", "CREATED", "EXPIRES"), rows)
