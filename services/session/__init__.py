"""The Session service: conversations kept in Redis across requests and replicas."""
