"""The gateway's four dashboards: overview; providers and breakers; cost and budgets;
investigations. `generate.py` writes them as JSON into dashboards/."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard
from panels import (
    CHAT_METHODS,
    SERVER_ERRORS,
    Query,
    board,
    graph,
    label_variable,
    quantiles,
    row,
    single,
)

RATE = "[$__rate_interval]"


def overview() -> Dashboard:
    model = 'model=~"$model"'
    gen_ai_model = 'gen_ai_request_model=~"$model"'
    chat = f"llmgw_rpc_requests_total{{{CHAT_METHODS}}}"
    chat_errors = f"llmgw_rpc_requests_total{{{CHAT_METHODS},{SERVER_ERRORS}}}"
    return (
        board(
            "llmgw-overview", "LLM gateway: overview", "Traffic, errors, latency, overhead, TTFT."
        )
        .with_variable(label_variable("model", "Model", "llmgw_chat_completions_total"))
        .with_row(row("Service level"))
        .with_panel(
            single(
                "Availability (1 h)",
                "Chat completions without a server-side error over the last hour (SLO 99.9 %).",
                Query("1 - llmgw:slo_availability:error_ratio_rate1h", "availability"),
                "percentunit",
            )
        )
        .with_panel(
            single(
                "Within 10 s (1 h)",
                "Non-streamed chat completions within 10 s over the last hour (SLO 99 %).",
                Query("1 - llmgw:slo_latency:slow_ratio_rate1h", "within 10 s"),
                "percentunit",
            )
        )
        .with_panel(
            graph(
                "Error budget burn rate",
                "How many times faster than the SLO allows each budget is spent (1 h window); "
                "14.4 pages when the 5 m window agrees.",
                [
                    Query("llmgw:slo_availability:error_ratio_rate1h / 0.001", "availability"),
                    Query("llmgw:slo_latency:slow_ratio_rate1h / 0.01", "latency"),
                ],
                "x",
                width=16,
            )
        )
        .with_row(row("Traffic"))
        .with_panel(
            graph(
                "Chat completions",
                "Completions per second by model and streaming.",
                [
                    Query(
                        "sum by (model, stream) "
                        f"(rate(llmgw_chat_completions_total{{{model}}}{RATE}))",
                        "{{model}} stream={{stream}}",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            graph(
                "RPCs by service",
                "Every RPC each service handled, per second.",
                [Query(f"sum by (service) (rate(llmgw_rpc_requests_total{RATE}))", "{{service}}")],
                "reqps",
            )
        )
        .with_panel(
            graph(
                "In flight and open streams",
                "RPCs being handled now per service, and streaming completions open.",
                [
                    Query("sum by (service) (llmgw_rpc_in_flight)", "{{service}}"),
                    Query("sum(llmgw_chat_active_streams)", "open streams"),
                ],
                "short",
            )
        )
        .with_panel(
            graph(
                "Public listener responses (Envoy)",
                "What callers received from Envoy's public listener, by HTTP status class.",
                [
                    Query(
                        "sum by (envoy_response_code_class) (rate(envoy_http_downstream_rq_xx"
                        f'{{envoy_http_conn_manager_prefix="public"}}{RATE}))',
                        "{{envoy_response_code_class}}xx",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            graph(
                "Cache hit ratio",
                "Hits among the completions the response cache looked up (hit or miss).",
                [
                    Query(
                        "sum by (model) (rate(llmgw_cache_requests_total"
                        f'{{{model},status="hit"}}{RATE})) / sum by (model) '
                        f'(rate(llmgw_cache_requests_total{{{model},status=~"hit|miss"}}{RATE}))',
                        "{{model}}",
                    )
                ],
                "percentunit",
            )
        )
        .with_panel(
            graph(
                "Rate-limit refusals",
                "Requests refused by a limit, by scope, unit and window.",
                [
                    Query(
                        "sum by (scope, unit, window) "
                        f"(rate(llmgw_rate_limit_rejections_total{RATE}))",
                        "{{scope}} {{unit}}/{{window}}",
                    )
                ],
                "reqps",
            )
        )
        .with_row(row("Errors"))
        .with_panel(
            graph(
                "Server-side error ratio",
                "Chat completions ending with a server-side error (the availability SLI).",
                [
                    Query(
                        f"sum(rate({chat_errors}{RATE})) / sum(rate({chat}{RATE}))",
                        "error ratio",
                    )
                ],
                "percentunit",
            )
        )
        .with_panel(
            graph(
                "Failed completions by code",
                "Chat completions that did not end OK, by model and status code.",
                [
                    Query(
                        "sum by (model, code) (rate(llmgw_chat_completions_total"
                        f'{{{model},code!="OK"}}{RATE}))',
                        "{{model}} {{code}}",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            graph(
                "Dependencies down",
                "Replicas whose last readiness probe of a dependency failed.",
                [
                    Query(
                        "sum by (service, dependency) (1 - llmgw_dependency_up)",
                        "{{service}} → {{dependency}}",
                    )
                ],
                "short",
            )
        )
        .with_row(row("Latency and overhead"))
        .with_panel(
            graph(
                "Chat completion latency",
                "Time to the final status at the router (whole stream for streams).",
                quantiles("llmgw_rpc_duration_seconds", CHAT_METHODS, "method", "{{method}}"),
                "s",
            )
        )
        .with_panel(
            graph(
                "Model call duration",
                "Whole completion as the gateway saw it, by model (GenAI convention).",
                quantiles(
                    "gen_ai_client_operation_duration_seconds",
                    gen_ai_model,
                    "gen_ai_request_model",
                    "{{gen_ai_request_model}}",
                ),
                "s",
            )
        )
        .with_panel(
            graph(
                "Gateway overhead",
                "Time a request spent in the gateway, the upstream model call excluded.",
                quantiles("llmgw_gateway_overhead_seconds", "", "operation", "{{operation}}"),
                "s",
            )
        )
        .with_row(row("Time to first token"))
        .with_panel(
            graph(
                "Time to first token",
                "What streaming callers wait for the first token, measured at the router.",
                quantiles(
                    "gen_ai_server_time_to_first_token_seconds",
                    gen_ai_model,
                    "gen_ai_request_model",
                    "{{gen_ai_request_model}}",
                ),
                "s",
            )
        )
        .with_panel(
            graph(
                "Time per output token",
                "Time between output tokens after the first, by model.",
                quantiles(
                    "gen_ai_server_time_per_output_token_seconds",
                    gen_ai_model,
                    "gen_ai_request_model",
                    "{{gen_ai_request_model}}",
                ),
                "s",
            )
        )
        .with_panel(
            graph(
                "Redis command latency",
                "p99 of Redis commands per service and operation.",
                [
                    Query(
                        "histogram_quantile(0.99, sum by (service, operation, le) "
                        f"(rate(llmgw_redis_command_duration_seconds_bucket{RATE})))",
                        "{{service}} {{operation}}",
                    ),
                    Query(
                        f"sum by (service, operation) (rate(llmgw_redis_errors_total{RATE}))",
                        "errors/s {{service}} {{operation}}",
                    ),
                ],
                "s",
            )
        )
    )


def providers() -> Dashboard:
    provider = 'provider=~"$provider"'
    return (
        board(
            "llmgw-providers",
            "LLM gateway: providers and breakers",
            "Upstream calls, their errors and latency; circuit breakers, routing, Envoy clusters.",
        )
        .with_variable(label_variable("provider", "Provider", "llmgw_provider_requests_total"))
        .with_row(row("Providers"))
        .with_panel(
            graph(
                "Calls by outcome",
                "Completions sent to each provider, by outcome (ok or the error reason).",
                [
                    Query(
                        "sum by (provider, outcome) "
                        f"(rate(llmgw_provider_requests_total{{{provider}}}{RATE}))",
                        "{{provider}} {{outcome}}",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            graph(
                "Upstream latency",
                "Time from sending a completion to its last byte.",
                quantiles(
                    "llmgw_provider_upstream_duration_seconds", provider, "provider", "{{provider}}"
                ),
                "s",
            )
        )
        .with_panel(
            graph(
                "Upstream time to first token",
                "Time from sending a streamed completion to its first content event.",
                quantiles(
                    "llmgw_provider_time_to_first_token_seconds",
                    provider,
                    "provider",
                    "{{provider}}",
                ),
                "s",
            )
        )
        .with_panel(
            graph(
                "Health checks",
                "1 when the provider's last health check succeeded (per router replica: min).",
                [
                    Query(
                        f"min by (provider) (llmgw_provider_healthy{{{provider}}})", "{{provider}}"
                    )
                ],
                "short",
            )
        )
        .with_panel(
            graph(
                "Tokens",
                "Input and output tokens per second, by provider (GenAI convention).",
                [
                    Query(
                        "sum by (gen_ai_provider_name, gen_ai_token_type) "
                        f"(rate(gen_ai_client_token_usage_sum{RATE}))",
                        "{{gen_ai_provider_name}} {{gen_ai_token_type}}",
                    )
                ],
                "short",
            )
        )
        .with_row(row("Breakers and routing"))
        .with_panel(
            graph(
                "Breaker state",
                "Per deployment, the worst state any router replica sees: 0 closed, 1 open, "
                "2 half-open.",
                [Query("max by (deployment) (llmgw_breaker_state)", "{{deployment}}")],
                "short",
            )
        )
        .with_panel(
            graph(
                "Breaker transitions",
                "State changes, by deployment and the state entered.",
                [
                    Query(
                        "sum by (deployment, state) "
                        f"(increase(llmgw_breaker_transitions_total{RATE}))",
                        "{{deployment}} → {{state}}",
                    )
                ],
                "short",
            )
        )
        .with_panel(
            graph(
                "Deployments skipped",
                "Deployments passed over without a call, by model and reason.",
                [
                    Query(
                        f"sum by (model, reason) (rate(llmgw_routing_skips_total{RATE}))",
                        "{{model}} {{reason}}",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            graph(
                "Calls in flight per deployment",
                "Upstream calls in progress (streams until they end).",
                [Query("sum by (deployment) (llmgw_deployment_in_flight)", "{{deployment}}")],
                "short",
            )
        )
        .with_row(row("Envoy clusters"))
        .with_panel(
            graph(
                "Healthy replicas",
                "Hosts Envoy considers healthy, and all hosts, per service cluster.",
                [
                    Query(
                        "sum by (envoy_cluster_name) (envoy_cluster_membership_healthy)",
                        "{{envoy_cluster_name}} healthy",
                    ),
                    Query(
                        "sum by (envoy_cluster_name) (envoy_cluster_membership_total)",
                        "{{envoy_cluster_name}} total",
                    ),
                ],
                "short",
            )
        )
        .with_panel(
            graph(
                "Retries, overflows and ejections",
                "Envoy's retries, requests its circuit breakers refused, hosts ejected.",
                [
                    Query(
                        "sum by (envoy_cluster_name) "
                        f"(rate(envoy_cluster_upstream_rq_retry{RATE}))",
                        "{{envoy_cluster_name}} retries",
                    ),
                    Query(
                        "sum by (envoy_cluster_name) "
                        f"(rate(envoy_cluster_upstream_rq_pending_overflow{RATE}))",
                        "{{envoy_cluster_name}} overflow",
                    ),
                    Query(
                        "sum by (envoy_cluster_name) "
                        "(envoy_cluster_outlier_detection_ejections_active)",
                        "{{envoy_cluster_name}} ejected",
                    ),
                ],
                "short",
            )
        )
        .with_panel(
            graph(
                "Public listener latency (Envoy)",
                "Envoy's downstream request time on the public listener, in milliseconds.",
                [
                    Query(
                        f"histogram_quantile({q}, sum by (le) (rate("
                        'envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix="public"}'
                        f"{RATE})))",
                        f"p{int(q * 100)}",
                    )
                    for q in (0.5, 0.99)
                ]
                + [
                    Query(
                        "sum(envoy_http_downstream_rq_active"
                        '{envoy_http_conn_manager_prefix="public"})',
                        "active requests",
                    )
                ],
                "ms",
            )
        )
    )


def cost() -> Dashboard:
    group = 'group=~"$group"'
    return (
        board(
            "llmgw-cost",
            "LLM gateway: cost and budgets",
            "Spend by model, budgets left and their forecast, refusals by limits.",
        )
        .with_variable(label_variable("group", "Group", "llmgw_budget_remaining"))
        .with_row(row("Spend"))
        .with_panel(
            graph(
                "Cost per hour",
                "Cost of model calls per hour, by model, in the price table's currency.",
                [
                    Query(
                        f"sum by (model) (rate(llmgw_chat_cost_total{RATE})) * 3600",
                        "{{model}}",
                    )
                ],
                "short",
            )
        )
        .with_panel(
            graph(
                "Tokens by model",
                "Input and output tokens per second (GenAI convention).",
                [
                    Query(
                        "sum by (gen_ai_request_model, gen_ai_token_type) "
                        f"(rate(gen_ai_client_token_usage_sum{RATE}))",
                        "{{gen_ai_request_model}} {{gen_ai_token_type}}",
                    )
                ],
                "short",
            )
        )
        .with_panel(
            graph(
                "Investigation cost per hour",
                "Model cost spent by investigations.",
                [Query(f"sum(rate(llmgw_investigation_cost_total{RATE})) * 3600", "cost")],
                "short",
            )
        )
        .with_row(row("Budgets"))
        .with_panel(
            graph(
                "Budget remaining",
                "Remaining cost budget per group and window; consumer_min: the lowest of the "
                "group's consumers.",
                [
                    Query(
                        f"min by (scope, group, window) (llmgw_budget_remaining{{{group}}})",
                        "{{group}} {{scope}}/{{window}}",
                    )
                ],
                "short",
            )
        )
        .with_panel(
            graph(
                "Budget used",
                "Share of each budget spent in its current window.",
                [
                    Query(
                        f"1 - min by (scope, group, window) (llmgw_budget_remaining{{{group}}}) "
                        f"/ max by (scope, group, window) (llmgw_budget_limit{{{group}}})",
                        "{{group}} {{scope}}/{{window}}",
                    )
                ],
                "percentunit",
            )
        )
        .with_panel(
            graph(
                "Daily budget forecast (6 h)",
                "The remaining daily budget 6 hours from now at the last hour's pace "
                "(below 0: it runs out; LLMGWBudgetExhaustionForecast).",
                [
                    Query(
                        "min by (scope, group, window) (predict_linear("
                        f'llmgw_budget_remaining{{{group},window="day"}}[1h], 6 * 3600))',
                        "{{group}} {{scope}}",
                    )
                ],
                "short",
            )
        )
        .with_row(row("Limits"))
        .with_panel(
            graph(
                "Refusals by limit",
                "Requests refused by rate limits and budgets, by scope, unit and window.",
                [
                    Query(
                        "sum by (scope, unit, window) "
                        f"(rate(llmgw_rate_limit_rejections_total{RATE}))",
                        "{{scope}} {{unit}}/{{window}}",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            graph(
                "Soft thresholds crossed",
                "Requests that took a budget past its soft threshold.",
                [
                    Query(
                        "sum by (scope, window) "
                        f"(increase(llmgw_budget_soft_threshold_crossed_total{RATE}))",
                        "{{scope}}/{{window}}",
                    )
                ],
                "short",
            )
        )
    )


def investigations() -> Dashboard:
    return (
        board(
            "llmgw-investigations",
            "LLM gateway: investigations",
            "The shared queue, outcomes, duration, tool calls and spend of investigations.",
        )
        .with_row(row("Queue"))
        .with_panel(
            graph(
                "Queue depth",
                "Investigations waiting for a worker and running (shared queue).",
                [Query("max by (state) (llmgw_investigation_queue_depth)", "{{state}}")],
                "short",
            )
        )
        .with_panel(
            graph(
                "Oldest waiting",
                "Age of the oldest investigation waiting for a worker.",
                [Query("max(llmgw_investigation_queue_oldest_age_seconds)", "oldest")],
                "s",
            )
        )
        .with_panel(
            graph(
                "Webhook alerts",
                "Alerts received on the Alertmanager webhook, by what was done with them.",
                [
                    Query(
                        "sum by (outcome) "
                        f"(increase(llmgw_investigation_webhook_alerts_total{RATE}))",
                        "{{outcome}}",
                    )
                ],
                "short",
            )
        )
        .with_row(row("Outcomes"))
        .with_panel(
            graph(
                "Finished",
                "Investigations finished, by state and completeness.",
                [
                    Query(
                        "sum by (state, completeness) "
                        f"(increase(llmgw_investigations_total{RATE}))",
                        "{{state}} {{completeness}}",
                    )
                ],
                "short",
            )
        )
        .with_panel(
            graph(
                "Duration",
                "Wall time from the first claim to the end of the last attempt.",
                quantiles("llmgw_investigation_duration_seconds", "", "", "duration"),
                "s",
            )
        )
        .with_panel(
            graph(
                "Tool calls",
                "Tool calls made by investigations, by outcome.",
                [
                    Query(
                        f"sum by (outcome) (rate(llmgw_investigation_tool_calls_total{RATE}))",
                        "{{outcome}}",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            graph(
                "Model tokens",
                "Model tokens spent by investigations, by direction.",
                [
                    Query(
                        f"sum by (direction) (rate(llmgw_investigation_tokens_total{RATE}))",
                        "{{direction}}",
                    )
                ],
                "short",
            )
        )
        .with_panel(
            graph(
                "Rejected claims",
                "Claims of the model dropped because their evidence did not check out.",
                [
                    Query(
                        f"sum(increase(llmgw_investigation_rejected_claims_total{RATE}))",
                        "rejected",
                    )
                ],
                "short",
            )
        )
    )


BOARDS = {
    "overview.json": overview,
    "providers.json": providers,
    "cost.json": cost,
    "investigations.json": investigations,
}
