"""Routing: strategies, per-deployment statistics, shared circuit breakers, attempts."""
