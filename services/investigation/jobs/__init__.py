"""Investigation jobs: durable in Redis Streams, taken over when a worker dies.

`JobStore` (store.py, claims.py) keeps the records, events and queue;
`Worker` (worker.py) runs claimed jobs; the Redis layout is in keys.py.
"""

from __future__ import annotations

from services.investigation.jobs.store import JobStore
from services.investigation.jobs.types import Fenced, Job
from services.investigation.jobs.worker import Worker

__all__ = ["Fenced", "Job", "JobStore", "Worker"]
