"""The no-op and echo jobs of the Python peers (RQ, Celery, Dramatiq), defined the same way in each
so the rows compare: noop() does nothing; echo() RPUSHes one element to bench:echo (a marker of
the processing run, or a latency probe) over a connection the worker process already holds."""

from __future__ import annotations

import os

import redis

from common import ECHO_KEY

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
_conn = None


def _redis():
    """One connection per worker process, made on first use (after a prefork child is born)."""
    global _conn
    if _conn is None:
        _conn = redis.Redis.from_url(URL)
    return _conn


def noop(*_):
    return None


def rq_echo(*_):
    """RQ passes the job its worker's own connection."""
    from rq import get_current_job

    get_current_job().connection.rpush(ECHO_KEY, "1")


def echo(*_):
    _redis().rpush(ECHO_KEY, "1")


# Celery: broker is the private Redis, no result backend, results ignored (as in perf-anchors.md).
try:
    from celery import Celery
except ImportError:  # RQ-only use of this module
    Celery = None
if Celery is not None:
    celery_app = Celery("bench", broker=URL)
    celery_app.conf.update(
        task_ignore_result=True, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True
    )
    celery_noop = celery_app.task(name="noop")(noop)
    celery_echo = celery_app.task(name="echo")(echo)

# Dramatiq: its Redis broker, default middleware.
try:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker
except ImportError:
    dramatiq = None
if dramatiq is not None:
    dramatiq.set_broker(RedisBroker(url=URL))
    dramatiq_noop = dramatiq.actor(queue_name="bench", actor_name="noop")(noop)
    dramatiq_echo = dramatiq.actor(queue_name="bench", actor_name="echo")(echo)
