"""`llmgw`'s gateway client commands (chat, models, sessions, usage, keys) over gRPC."""
