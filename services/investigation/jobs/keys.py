"""The Redis layout of investigation jobs; the names are fixed (other tools read them).

Per investigation `{id}` (the braces are a Redis Cluster hash tag, so both keys share a slot):

- `inv:{<id>}:rec` — hash: `pb` (the Investigation as served, serialized), `owner`,
  `key_name` (the key its owner used), `fence` (the fencing token of the latest claim),
  `cancel` ("1" once a cancel was asked for), `seq` (the last event's sequence),
  `traceparent` / `tracestate` (the creating request's trace context, '' for none; the
  runs link to it), and, for the scripts, `rev` (bumped whenever `pb` changes) and
  `state` (pb's state number).
- `inv:{<id>}:events` — stream, entry ids `<seq>-1`, field `e` = an InvestigationEvent.

Both expire `retention` after the investigation finishes.

Shared:

- `inv:queue` — stream of jobs (field `id`), consumer group `workers`. An entry is
  acked and deleted when its investigation finishes, so the stream holds only work to do.
- `inv:idx:all`, `inv:idx:owner:<owner>` — sorted sets, member id, score create time
  (ms). Members outlive their record; a listing skips and removes them.
- `inv:fp:<owner>:<fingerprint>` — the id of the fingerprint's open or recent
  investigation; it expires `dedup_window` after that one finishes.

The fingerprint and index keys are named from values the caller holds, but they sit on
other slots than the record, so this layout needs one Redis (or one shard).
"""

from __future__ import annotations

QUEUE = "inv:queue"
GROUP = "workers"
ALL_INDEX = "inv:idx:all"


def record_key(investigation_id: str) -> str:
    return f"inv:{{{investigation_id}}}:rec"


def events_key(investigation_id: str) -> str:
    return f"inv:{{{investigation_id}}}:events"


def owner_index(owner: str) -> str:
    return f"inv:idx:owner:{owner}"


def fingerprint_key(owner: str, fingerprint: str) -> str:
    return f"inv:fp:{owner}:{fingerprint}"
