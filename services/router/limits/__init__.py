"""Exact request and token rate limits shared by every router replica: the limit model,
the Redis Lua scripts that count them atomically, the limiter, its error, response
headers and metrics."""
