"""Building blocks of the gateway's dashboards, on grafana-foundation-sdk's builders.

Every query goes to the data source the dashboard's `datasource` variable selects, and
every rate or increase spans `$__rate_interval` (tests/unit/deploy/test_grafana_dashboards.py
holds the dashboards to both).
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh, VariableSort

DATASOURCE_VARIABLE = "datasource"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${" + DATASOURCE_VARIABLE + "}")
# Chat completion RPCs of the router and their server-side error codes (the availability
# SLI of deploy/prometheus/rules/recording.yml).
CHAT_METHODS = 'service="router",method=~"CreateChatCompletion|StreamChatCompletion"'
SERVER_ERRORS = 'code=~"UNKNOWN|INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED|DATA_LOSS|UNIMPLEMENTED"'

# Panel sizes on Grafana's 24-column grid.
WIDTH = 8
HEIGHT = 8


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


def _targets(queries: list[Query]) -> list[prometheus.Dataquery]:
    return [
        prometheus.Dataquery()
        .expr(query.expr)
        .legend_format(query.legend)
        .ref_id(chr(ord("A") + index))
        .datasource(DATASOURCE)
        for index, query in enumerate(queries)
    ]


def graph(
    title: str, description: str, queries: list[Query], unit: str, width: int = WIDTH
) -> timeseries.Panel:
    """A time series panel: one line per series of each query."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(HEIGHT)
        .fill_opacity(10)
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    for target in _targets(queries):
        panel = panel.with_target(target)
    return panel


def single(title: str, description: str, query: Query, unit: str) -> stat.Panel:
    """A single figure (the last value of one query)."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(WIDTH // 2)
        .height(HEIGHT // 2)
    )
    for target in _targets([query]):
        panel = panel.with_target(target.instant())
    return panel


def row(title: str) -> dashboard_builder.Row:
    return dashboard_builder.Row(title)


def quantiles(metric: str, matchers: str, by: str, legend: str) -> list[Query]:
    """p50 and p99 of a histogram, per `by` label(s) (none: one of each)."""
    selector = f"{metric}_bucket{{{matchers}}}" if matchers else f"{metric}_bucket"
    grouping = f"{by}, le" if by else "le"
    return [
        Query(
            f"histogram_quantile({q}, sum by ({grouping}) (rate({selector}[$__rate_interval])))",
            f"p{int(q * 100)} {legend}",
        )
        for q in (0.5, 0.99)
    ]


def board(uid: str, title: str, description: str) -> dashboard_builder.Dashboard:
    """A dashboard with the data source variable every query uses."""
    return (
        dashboard_builder.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["llm-gateway"])
        .editable()
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .with_variable(
            dashboard_builder.DatasourceVariable(DATASOURCE_VARIABLE)
            .label("Data source")
            .type("prometheus")
        )
    )


def label_variable(name: str, label: str, metric: str) -> dashboard_builder.QueryVariable:
    """A multi-value variable over the values of `label` of `metric` (all by default)."""
    return (
        dashboard_builder.QueryVariable(name)
        .label(label)
        .query(f"label_values({metric}, {name})")
        .datasource(DATASOURCE)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
