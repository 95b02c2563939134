"""Consumers, groups and API keys in Redis, and who may call what.

`store` holds the records (the router's IdentityService manages them through it), `cache`
answers "who is this key?" (or "who is this vouched-for key name?") on the request path,
`acl` decides what a principal may do, `assertion` makes and checks the proofs that a
call came through the gateway, and `gate` admits every RPC with them (wired by `wiring`).
"""
