"""Router metrics: completions, time to first token, tokens, active streams, session
appends and the gateway-side tool loop."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COMPLETIONS = Counter(
    "llmgw_chat_completions_total",
    "Chat completions by public model, provider and final status.",
    ["model", "provider", "stream", "code"],
)
TIME_TO_FIRST_TOKEN = Histogram(
    "llmgw_chat_time_to_first_token_seconds",
    "Time from request to the first streamed chunk.",
    ["model"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TOKENS = Counter(
    "llmgw_chat_tokens_total",
    "Tokens by public model, provider and kind (input, output, cached_input).",
    ["model", "provider", "kind"],
)
ACTIVE_STREAMS = Gauge("llmgw_chat_active_streams", "Streaming completions in progress.")
MODEL_LISTING_FAILURES = Counter(
    "llmgw_model_listing_failures_total",
    "Provider model listings that failed (ListModels then shows the catalogue only).",
    ["provider"],
)
SESSION_APPENDS = Counter(
    "llmgw_chat_session_appends_total",
    "Turns appended to sessions after a completion, by outcome (saved, failed).",
    ["outcome"],
)
TOOL_LOOP_ITERATIONS = Histogram(
    "llmgw_tool_loop_iterations",
    "Model calls per request of the gateway-side tool loop.",
    buckets=(1, 2, 3, 4, 5, 7, 10, 15, 20),
)
TOOL_LOOP_CALLS = Counter(
    "llmgw_tool_loop_calls_total",
    "Tool calls of the gateway-side loop by tool and state (succeeded, failed, refused).",
    ["tool", "state"],
)
COST = Counter(
    "llmgw_chat_cost_total",
    "Cost of model calls (the deployment's price table x the usage reported), in the "
    "table's currency, by public model and provider.",
    ["model", "provider"],
)
