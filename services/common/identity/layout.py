"""Where identity records live in Redis.

    llmgw:identity:version                 counter, INCR'd by every write (caches watch it)
    llmgw:identity:consumers               hash  consumer id -> Consumer proto bytes
    llmgw:identity:consumer-ids            zset  consumer ids, all scored 0 (lex order pages)
    llmgw:identity:memberships             hash  consumer id -> its group ids, space-separated
    llmgw:identity:groups                  hash  group id -> Group proto bytes
    llmgw:identity:group-ids               zset  group ids, all scored 0
    llmgw:identity:key:{key id}            hash  consumer, salt, digest, key (ApiKey bytes)
    llmgw:identity:consumer-keys:{consumer} zset key ids of one consumer, all scored 0

Memberships duplicate `Consumer.groups` because the lookup script cannot parse a proto.
No secret is stored, only its salted digest. All keys are fixed or derived from ids, so
scripts receive every key they touch in KEYS.
"""

from __future__ import annotations

PREFIX = "llmgw:identity"
VERSION = f"{PREFIX}:version"
CONSUMERS = f"{PREFIX}:consumers"
CONSUMER_IDS = f"{PREFIX}:consumer-ids"
MEMBERSHIPS = f"{PREFIX}:memberships"
GROUPS = f"{PREFIX}:groups"
GROUP_IDS = f"{PREFIX}:group-ids"


def key_record(key_id: str) -> str:
    return f"{PREFIX}:key:{key_id}"


def consumer_keys(consumer_id: str) -> str:
    return f"{PREFIX}:consumer-keys:{consumer_id}"
