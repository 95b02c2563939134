"""Consumers, groups and API keys in Redis, and the in-process check built on them.

`store` holds the records, `cache` answers "who is this key?" on the request path,
`acl` decides what a principal may do. Nothing here is wired into a service yet.
"""
