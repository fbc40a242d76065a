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
from .client import connect, is_cluster_url
from .keys import Keys
from .registry import DontPerform

__all__ = [
    "JobContext",
    "current_job",
    "perform",
    "Interrupt",
    "REDIS_ERRORS",
    "Settle",
    "make_for_children",
    "job_client_used",
]

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
        global _job_client_used
        _job_client_used = True
        key = (os.getpid(), self.redis_url)
        client = _job_clients.get(key)
        if client is None:
            _job_clients.clear()  # entries inherited from the master belong to its process
            client = _for_children.get(self.redis_url) or connect(self.redis_url)
            _job_clients[key] = client
        return client


_current: JobContext | None = None
_job_clients: dict[tuple[int, str | None], redis_lib.Redis] = {}
# Job clients a fork master made for its children (make_for_children), by URL; None: none made.
_for_children: dict[str | None, redis_lib.Redis | None] = {}
_job_client_used = False  # whether a job of this process asked for current_job().redis


def job_client_used() -> bool:
    """Whether a job run in this process used its job client (a forked child reports it, so
    that the master's next standby connects ahead only for jobs that talk to Redis)."""
    return _job_client_used


def make_for_children(redis_url: str | None) -> None:
    """A fork master makes its children's job client once, before its first fork, so that no
    child pays for making one (about 270 copied pages and 0.5-1 ms of CPU per child, measured
    with getrusage in a standby child): each child inherits the object, and its first command
    connects a socket of its own (redis-py's pool sees the new pid and starts empty). The master
    never sends on it, so no child inherits a socket from it. A Redis Cluster client reads the
    slot map, i.e. connects, when made: for a cluster URL each child still makes its own."""
    if redis_url not in _for_children:
        _for_children[redis_url] = None if is_cluster_url(redis_url) else connect(redis_url)


def connect_ahead(redis_url: str | None) -> None:
    """A standby child (forked.py) opens its job client's connection before its job arrives, so
    that neither making a client nor connecting (a socket, redis-py's handshake: CLIENT SETINFO
    twice, AUTH and SELECT when the URL asks) lies between the reserve and the job's first
    command: 3-4 ms of a probe job's enqueue-to-start, measured. A plain URL's client is the one
    the master made (make_for_children); a cluster client reads the slot map when made, so the
    standby makes its own. A connection that goes stale while the standby waits (Redis restarted,
    CLIENT KILL, a server timeout) does no harm: redis-py's pool checks each connection when it
    hands it out (ConnectionPool.get_connection: a socket closed by the server reads as ready,
    so it reconnects before sending; test_worker.py runs a job after killing this connection).
    Not reaching Redis here is no error: the job connects on first use, as it did before."""
    _job_clients.clear()  # entries inherited from the master belong to its process
    try:
        client = _for_children.get(redis_url) or connect(redis_url)
        _job_clients[(os.getpid(), redis_url)] = client
        if not is_cluster_url(redis_url):
            pool = client.connection_pool
            pool.release(pool.get_connection())
    except Exception as exc:  # Redis away or slow to start: the job's first command connects
        log.debug("standby %s could not connect ahead: %s", os.getpid(), exc)


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
