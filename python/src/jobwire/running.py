"""Running one job's handler, in a forked child or inline: what the job sees and what it reports.

`perform` is the same in both modes (protocol.md 7.4): the handler runs with its hooks, and any
exception becomes a small outcome dict that the worker settles. `current_job()` tells a running
job about itself.
"""

from __future__ import annotations

import logging
import os
import traceback
from dataclasses import dataclass
from typing import Any

import redis as redis_lib

from . import payload as jobmod
from .client import connect
from .keys import Keys
from .registry import DontPerform

__all__ = ["JobContext", "current_job", "perform", "Interrupt", "REDIS_ERRORS", "Settle"]

log = logging.getLogger("jobwire.worker")
# OutOfMemoryError: Redis at maxmemory with noeviction refuses writes until memory is freed; the
# worker waits like for an outage instead of exiting (issue 13, tests/test_faults.py)
# A job's outcome as the next work.lua (or retry.lua) call settles it: (op, token, arg, queue), op
# one of ok, fail, crash, retry; arg the failure record, the crash reason, or for retry the tuple
# (delay_ms, attempt entry, failure record to use if Redis refuses the retry).
Settle = tuple[str, str, Any, str]
REDIS_ERRORS = (
    redis_lib.ConnectionError,
    redis_lib.TimeoutError,
    redis_lib.BusyLoadingError,
    redis_lib.exceptions.OutOfMemoryError,
)


@dataclass
class JobContext:
    """What a running job can learn about itself: jobwire.current_job()."""

    job: jobmod.Job
    worker_id: str
    namespace: str
    redis_url: str | None
    impl: str

    @property
    def keys(self) -> Keys:
        return Keys(self.namespace)

    @property
    def redis(self) -> redis_lib.Redis:
        """A client for jobs, one per process: a forked child must not share its master's
        sockets, and an inline worker should not connect anew for every job."""
        key = (os.getpid(), self.redis_url)
        client = _job_clients.get(key)
        if client is None:
            _job_clients.clear()  # entries inherited from the master belong to its process
            client = _job_clients[key] = connect(self.redis_url)
        return client


_current: JobContext | None = None
_job_clients: dict[tuple[int, str | None], redis_lib.Redis] = {}


def connect_ahead(redis_url: str | None) -> None:
    """A standby child (forked.py) makes its job client before its job arrives, so that making it
    is not between the reserve and the job's start. The client connects when the job first uses
    it: connecting ahead too (a TCP connect and CLIENT SETINFO for every job, used or not) cost
    4 ms of CPU and twice the Redis CPU per no-op job in bench/, halving the fork worker's rate on
    2 busy cores, to save a job that uses Redis about one round trip."""
    _job_clients.clear()  # entries inherited from the master belong to its process
    _job_clients[(os.getpid(), redis_url)] = connect(redis_url)


def current_job() -> JobContext | None:
    return _current


class Interrupt(BaseException):
    """Raised inside an inline job to end it: reason is 'term', 'kill:<who>' or 'timeout'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def perform(job: jobmod.Job, handler, context: JobContext) -> dict:
    """Run the handler with its hooks; the outcome as a small dict ({"ok": True} or the error)."""
    global _current
    _current = context
    try:
        handler.perform(job.args)
        return {"ok": True}
    except DontPerform:
        return {"ok": True}
    except Interrupt:
        raise
    except BaseException as exc:  # a job may raise anything, SystemExit included
        try:
            handler.on_failure(exc, job.args)
        except Exception as hook_exc:
            log.error("on_failure hook of %s raised %r", job.job_class, hook_exc)
        return {"ok": False, "exception": exception_name(exc), "error": str(exc), "backtrace": backtrace(exc)}
    finally:
        _current = None


def exception_name(exc: BaseException) -> str:
    """The failure record's `exception` (protocol.md 6.2): builtins bare, others module-qualified."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def backtrace(exc: BaseException) -> list[str]:
    """Resque's frame format, innermost first: `file:line:in `name'`."""
    frames = traceback.extract_tb(exc.__traceback__)
    return [f"{f.filename}:{f.lineno}:in `{f.name}'" for f in reversed(frames)]
