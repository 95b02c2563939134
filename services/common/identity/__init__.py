"""Consumers, groups and API keys in Redis, and the in-process check built on them.

`store` holds the records (the router's IdentityService manages them through it), `cache`
answers "who is this key?" on the request path, `acl` decides what a principal may do.
`cache` and `acl` are not wired into the services yet: authentication comes next.
"""
