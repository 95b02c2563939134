"""The Redis layout of the session service; every key lives under `llmgw:session:`.

Per session `{id}` (the braces are a Redis Cluster hash tag, so both keys share a slot):

- `llmgw:session:{id}:meta` — hash, the session's metadata:
  `owner`, `system_prompt` (UTF-8), `context` (serialized `google.protobuf.Struct`),
  `labels` (JSON object of strings), `ttl_ms`, `count` (messages in the history),
  `create_us`, `update_us`, `expire_us` (microseconds since the epoch, Redis clock),
  `rev` (the write revision: 1 at create, +1 on every update, append and clear; the
  etag is `<create_us>.<rev>`, so a session re-created under the same id never shows
  an etag of its predecessor).
- `llmgw:session:{id}:messages` — list, the history oldest first; each element is a
  serialized `SessionMessage` (index, message, create_time). Absent while empty.

Both keys carry the same expiry, set to the session's TTL by every script that uses the
session, so they expire together.

Shared indexes (no expiry):

- `llmgw:session:index:all` — sorted set, member `id`, score `create_us`. Create makes
  scores unique, so a score alone is a listing cursor.
- `llmgw:session:index:owner:<owner>` — the same, for sessions with a non-empty owner.
- `llmgw:session:expiry` — sorted set, member `<id>:<owner>`, score `expire_us`. Gives the
  number of live sessions cheaply and lets the sweeper remove index members of expired
  sessions (the owner in the member names the owner index to clean).

Index members may outlive their session by up to one sweep interval: listing skips (and
removes) members whose metadata is gone. The Lua scripts derive the metadata key of
listed members and owner index keys from the prefix (`common.lua`), so this layout needs
one Redis (or one shard), not a cluster.
"""

from __future__ import annotations

PREFIX = "llmgw:session:"
ALL_INDEX = f"{PREFIX}index:all"
EXPIRY_INDEX = f"{PREFIX}expiry"


def meta_key(session_id: str) -> str:
    return f"{PREFIX}{{{session_id}}}:meta"


def messages_key(session_id: str) -> str:
    return f"{PREFIX}{{{session_id}}}:messages"


def owner_index(owner: str) -> str:
    return f"{PREFIX}index:owner:{owner}"


def session_keys(session_id: str) -> list[str]:
    """KEYS[1..3] of every per-session script: metadata, messages, expiry index."""
    return [meta_key(session_id), messages_key(session_id), EXPIRY_INDEX]
