"""Investigation jobs: durable in Redis Streams, taken over when a worker dies.

`JobStore` (jobs_store.py, jobs_claims.py) keeps the records, events and queue;
`Worker` (jobs_worker.py) runs claimed jobs; the Redis layout is in jobs_keys.py.
"""

from __future__ import annotations

from services.investigation.jobs_store import JobStore
from services.investigation.jobs_types import Fenced, Job
from services.investigation.jobs_worker import Worker

__all__ = ["Fenced", "Job", "JobStore", "Worker"]
