"""The router's exact-match response cache: request keys, stored answers, the Redis
store, the per-request policy and the cache metrics."""
