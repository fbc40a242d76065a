"""The conformance job classes of protocol.md section 10. `--import jobwire.conformance_jobs`."""

from __future__ import annotations

import json
import os
import signal
import time

from .registry import default_registry
from .running import JobContext, current_job


class ConformanceFailure(Exception):
    """The error jobwire.Fail raises, carrying exactly the message it was given."""


def _running() -> JobContext:
    """The running job's context; these classes run only inside a worker."""
    context = current_job()
    if context is None:
        raise RuntimeError("a conformance job class ran outside a worker")
    return context


def _echo(*args) -> None:
    context = _running()
    record = {
        "id": context.job.id,
        "args": list(args),
        "worker": context.worker_id,
        "queue": context.job.queue,
        "pid": os.getpid(),
        "impl": context.impl,
    }
    context.redis.rpush(context.keys.conformance_echo, json.dumps(record, separators=(",", ":"), ensure_ascii=False))


def _flaky(fail_times=0, *_):
    """protocol.md 14.7: echo with the attempt number, then fail while attempt <= fail_times."""
    context = _running()
    attempt = 1 + len(context.job.document.get("attempts") or [])
    record = {
        "id": context.job.id,
        "args": [fail_times, *_],
        "worker": context.worker_id,
        "queue": context.job.queue,
        "pid": os.getpid(),
        "impl": context.impl,
        "attempt": attempt,
    }
    context.redis.rpush(context.keys.conformance_echo, json.dumps(record, separators=(",", ":"), ensure_ascii=False))
    if attempt <= int(fail_times):
        raise ConformanceFailure(f"flaky attempt {attempt}")


def _fail(*args):
    """protocol.md 10: the message itself, a non-string as its compact JSON, none as "jobwire.Fail"."""
    if not args:
        raise ConformanceFailure("jobwire.Fail")
    message = args[0]
    if not isinstance(message, str):
        message = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    raise ConformanceFailure(message)


def _sleep(ms=0, *args):
    """protocol.md 10: a float is allowed, a negative or missing value sleeps 0."""
    if isinstance(ms, bool) or not isinstance(ms, (int, float)):
        raise TypeError(f"jobwire.Sleep expects [milliseconds], not {ms!r}")
    time.sleep(max(0.0, float(ms)) / 1000)
    _echo(ms, *args)


def _crash(*_):
    os.kill(os.getpid(), signal.SIGKILL)


def _noop(*_):
    return None


for _name, _fn in (
    ("jobwire.Echo", _echo),
    ("jobwire.Fail", _fail),
    ("jobwire.Sleep", _sleep),
    ("jobwire.Crash", _crash),
    ("jobwire.Noop", _noop),
    ("jobwire.Flaky", _flaky),
):
    default_registry.register(_name, _fn)
