"""Read-only toolsets built into the tool service (`kubernetes`, `prometheus`).

Each toolset is a set of native tools that run inside the tool service against a real
API (the Kubernetes REST API, Prometheus' HTTP API), enabled when its backend is
configured. They are registered like every other tool, so the tool service's schema
validation, timeouts, circuit breakers, ACLs and result caps apply to them; the
investigation service and chat callers (through `allowed_tools`) call them the same way.
"""
