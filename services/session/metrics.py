"""Prometheus metrics of the session service (RPC counts and latencies are shared ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SESSIONS_CREATED = Counter("llmgw_session_sessions_created_total", "Sessions created.")
SESSIONS_DELETED = Counter(
    "llmgw_session_sessions_deleted_total", "Sessions deleted by DeleteSession (not expired)."
)
MESSAGES_APPENDED = Counter(
    "llmgw_session_messages_appended_total", "Messages appended to session histories."
)
ACTIVE_SESSIONS = Gauge(
    "llmgw_session_active_sessions",
    "Unexpired sessions in Redis (all replicas), as of this replica's last sweep.",
)
APPEND_LATENCY = Histogram(
    "llmgw_session_append_duration_seconds",
    "Time of the atomic append in Redis (successful appends), round trip included.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
