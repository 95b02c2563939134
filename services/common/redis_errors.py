"""Redis failures as UNAVAILABLE: the caller may retry, and learns nothing of our internals."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis import exceptions

from services.common.errors import Unavailable

log = logging.getLogger("llmgw.redis")

# Connection refused or lost, timeouts, pool exhausted, Redis loading its data set.
_TRANSPORT_ERRORS = (exceptions.ConnectionError, exceptions.TimeoutError, TimeoutError, OSError)
# Replies of a Redis that is up but cannot serve: read-only replica, out of memory,
# failed persistence (MISCONF), a long-running script (BUSY), a failover in progress.
_STATE_ERRORS = (exceptions.ReadOnlyError, exceptions.OutOfMemoryError)
_STATE_PREFIXES = ("MISCONF", "BUSY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")

RETRY_AFTER_SECONDS = 1.0


def _unavailable(error: Exception, what: str) -> Unavailable:
    log.warning("%s unavailable: %s: %s", what, type(error).__name__, error)
    return Unavailable(f"{what} is unavailable; retry later", retry_after=RETRY_AFTER_SECONDS)


@asynccontextmanager
async def redis_errors_as_unavailable(what: str = "the session store") -> AsyncIterator[None]:
    """Raise `Unavailable` (naming `what`) for any failure of Redis itself; other errors
    pass unchanged."""
    try:
        yield
    except (*_TRANSPORT_ERRORS, *_STATE_ERRORS) as error:
        raise _unavailable(error, what) from None
    except exceptions.ResponseError as error:
        if str(error).startswith(_STATE_PREFIXES):
            raise _unavailable(error, what) from None
        raise
