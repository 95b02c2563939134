"""GetUsage: a subject's stored usage over a period, as totals, days and models."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from llmgw.router.v1 import admin_service_pb2 as admin_pb2
from services.common.text_checks import MAX_MODEL_NAME_CHARS, check_text, shown
from services.common.validation import Violations
from services.router.usage.cost import to_currency
from services.router.usage.recorder import ANONYMOUS, FIELDS, UsageRecorder, day_of

CURRENCY = "USD"
DEFAULT_DAYS = 30
MAX_DAYS = 366
# A consumer, a group, or an investigation (whose model calls are recorded under it too).
_SUBJECT = re.compile(
    r"(consumers|groups)/[a-z][a-z0-9-]{0,62}|investigations/[a-z0-9][a-z0-9-]{0,62}"
)
# Dates a report may name: usage is recorded from the epoch on, and a period's default
# start (30 days before its end) must remain a date.
FIRST_DATE = dt.date(1970, 1, 1)
LAST_DATE = dt.date(9999, 12, 31)


def _totals(counters: Mapping[str, int], prefix: str = "") -> admin_pb2.UsageTotals:
    get = lambda name: counters.get(prefix + name, 0)  # noqa: E731
    return admin_pb2.UsageTotals(
        requests=get("requests"),
        input_tokens=get("input"),
        output_tokens=get("output"),
        cached_input_tokens=get("cached"),
        cost=to_currency(get("cost")),
        currency=CURRENCY,
        cache_hits=get("hits"),
    )


def _date(problems: Violations, field: str, value: str, default: dt.date) -> dt.date:
    if not value:
        return default
    try:
        date = dt.date.fromisoformat(value)
    except ValueError:
        problems.add(field, f"{shown(value)} is not a date (YYYY-MM-DD)")
        return default
    if not FIRST_DATE <= date <= LAST_DATE:
        problems.add(field, f"must be between {FIRST_DATE} and {LAST_DATE}")
        return default
    return date


def _span(start: dt.date, end: dt.date) -> list[str]:
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def _model_counters(counters: Mapping[str, int], model: str) -> dict[str, int]:
    prefix = f"m:{model}:"
    return {name: counters.get(prefix + name, 0) for name in FIELDS}


def _models(counters: Mapping[str, int]) -> set[str]:
    return {key[2:].rsplit(":", 1)[0] for key in counters if key.startswith("m:")}


async def usage_report(
    recorder: UsageRecorder, request: admin_pb2.GetUsageRequest, now: float
) -> admin_pb2.GetUsageResponse:
    problems = Violations()
    subject = request.subject or ANONYMOUS
    problems.require(
        _SUBJECT.fullmatch(subject) is not None,
        "subject",
        "must be consumers/{consumer}, groups/{group} or investigations/{investigation}",
    )
    check_text(problems, "model", request.model, MAX_MODEL_NAME_CHARS, single_line=True)
    today = dt.date.fromisoformat(day_of(now))
    end = _date(problems, "end_date", request.end_date, today)
    default_start = max(end - dt.timedelta(DEFAULT_DAYS), FIRST_DATE)
    start = _date(problems, "start_date", request.start_date, default_start)
    if start > end:
        problems.add("start_date", "must not be after end_date")
    elif (end - start).days >= MAX_DAYS:
        problems.add("start_date", f"the period may span at most {MAX_DAYS} days")
    problems.raise_if_any()

    month = _span(today.replace(day=1), today)
    stored = await recorder.days(subject, sorted({*_span(start, end), *month}))
    response = admin_pb2.GetUsageResponse()
    total: dict[str, int] = dict.fromkeys(FIELDS, 0)
    by_model: dict[str, dict[str, int]] = {}
    for day in _span(start, end):
        counters = stored.get(day)
        if not counters:
            continue
        day_counters = (
            _model_counters(counters, request.model)
            if request.model
            else {name: counters.get(name, 0) for name in FIELDS}
        )
        if not day_counters["requests"]:
            continue
        response.daily.add(date=day, totals=_totals(day_counters))
        for name, value in day_counters.items():
            total[name] += value
        for model in _models(counters):
            if request.model and model != request.model:
                continue
            into = by_model.setdefault(model, dict.fromkeys(FIELDS, 0))
            for name, value in _model_counters(counters, model).items():
                into[name] += value
    response.totals.CopyFrom(_totals(total))
    for model in sorted(by_model):
        response.by_model.add(model=model, totals=_totals(by_model[model]))
    response.spent_today = to_currency(stored.get(today.isoformat(), {}).get("cost", 0))
    response.spent_this_month = to_currency(
        sum(stored.get(day, {}).get("cost", 0) for day in month)
    )
    return response
