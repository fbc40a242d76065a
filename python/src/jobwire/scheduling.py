"""The client side of protocol 1.1 (spec/protocol.md section 14): jobs at a time, the jobs
waiting to be retried, and recurring schedules. Mixed into jobwire.Client.

Delayed jobs live in resque-scheduler's keys, so these listings also show the delayed jobs
resque-scheduler and node-resque stored; every change is one script or one MULTI (section 14).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import payload as jobmod
from .errors import InvalidJob, NotFound
from .recurring import definition_bytes, validate_definition
from .replies import bytes_map, scored, text
from .cron import next_fire_ms

if TYPE_CHECKING:
    from collections.abc import Callable

    import redis as redis_lib

    from .keys import Keys
    from .registry import Registry
    from .scripts import Scripts

__all__ = ["SchedulingMixin", "ScheduledJob", "RetryingJob", "Schedule", "to_ms"]

PAGE = 100


def _loads(raw: bytes):
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _item_key(raw: bytes, document) -> str:
    """How a delayed item or retry is named: its payload id, else a hash of its bytes."""
    if isinstance(document, dict) and isinstance(document.get("id"), str) and document["id"]:
        return document["id"]
    return "sha1:" + hashlib.sha1(raw).hexdigest()


def to_ms(when) -> int:
    """A time as ms since the epoch: a datetime (naive means UTC), or Unix seconds (int/float)."""
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return int(when.timestamp() * 1000)
    if isinstance(when, (int, float)) and not isinstance(when, bool) and math.isfinite(when):
        return int(when * 1000)
    raise InvalidJob(f"a time is a datetime or Unix seconds, not {when!r}")


@dataclass
class ScheduledJob:
    """A delayed item waiting in bucket `ts` (Unix seconds). `document` is None when not JSON."""

    ts: int
    raw: bytes
    document: object
    key: str

    @property
    def queue(self) -> str:
        q = self.document.get("queue") if isinstance(self.document, dict) else None
        return q if isinstance(q, str) else ""

    @property
    def job_class(self) -> str:
        return self.document.get("class", "") if isinstance(self.document, dict) else ""


@dataclass
class RetryingJob:
    """A failed job waiting for its next attempt: due at `due_ms` (Redis time)."""

    due_ms: int
    member: bytes
    queue: str
    raw: bytes
    document: object
    key: str

    @property
    def job_class(self) -> str:
        return self.document.get("class", "") if isinstance(self.document, dict) else ""

    @property
    def attempts(self) -> list:
        a = self.document.get("attempts") if isinstance(self.document, dict) else None
        return a if isinstance(a, list) else []


@dataclass
class Schedule:
    """A recurring schedule: its definition (None when unreadable) and counters."""

    name: str
    next_ms: float | None
    raw: bytes
    definition: dict | None
    state: dict = field(default_factory=dict)

    @property
    def broken(self) -> bool:
        return self.next_ms == math.inf or bool(self.state.get("error"))


class SchedulingMixin:
    """Methods of jobwire.Client for delayed jobs, retries and schedules (needs .redis, .keys,
    .scripts, .registry and ._push of Client)."""

    if TYPE_CHECKING:  # what it uses of Client (client.py), declared for the type checker
        redis: redis_lib.Redis
        keys: Keys
        scripts: Scripts
        registry: Registry
        enqueue: Callable[..., str | None]
        for_queue: Callable[[str], Any]  # the Client of the queue's namespace (protocol.md 15.2)

    # -- jobs at a time -----------------------------------------------------------------------

    def enqueue_at(self, queue: str, at, job_class: str, *args, **extra) -> str | None:
        """Run a job at `at` (datetime or Unix seconds); now or past means enqueue at once.
        Returns its id, or None when a before_enqueue hook said no."""
        at_ms = to_ms(at)
        if at_ms <= int(time.time() * 1000):
            return self.enqueue(queue, job_class, *args, **extra)
        handler = self.registry.get(job_class)
        if handler is not None and not handler.before_enqueue(*args):
            return None
        job_id, item = jobmod.new_delayed_item(queue, job_class, args, at_ms, **extra)
        ts = -(-at_ms // 1000)  # ceil: a job never runs early (protocol.md 14.2)
        target = self.for_queue(queue)  # the queue's namespace holds its delayed jobs (15.2)
        k = target.keys
        target._write(
            "delay", [k.delayed_schedule, k.delayed_bucket(ts), k.delayed_timestamps(item), k.wake_schedule], [ts, item]
        )
        if handler is not None:
            handler.after_enqueue(*args)
        return job_id

    def enqueue_in(self, queue: str, seconds: float, job_class: str, *args, **extra) -> str | None:
        """Run a job `seconds` from now."""
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds):
            raise InvalidJob(f"a delay is a number of seconds, not {seconds!r}")
        return self.enqueue_at(queue, time.time() + seconds, job_class, *args, **extra)

    def _buckets(self):
        """Every bucket second, oldest first, read in pages."""
        start = 0
        while True:
            page = self.redis.zrange(self.keys.delayed_schedule, start, start + PAGE - 1)
            for ts in page:
                try:
                    yield int(ts)
                except ValueError:
                    continue  # not a bucket (a peer's stray member); promotion ignores it too
            if len(page) < PAGE:
                return
            start += PAGE

    def all_scheduled(self):
        """Every delayed item by due time, then in list order."""
        for ts in self._buckets():
            start = 0
            while True:
                page = self.redis.lrange(self.keys.delayed_bucket(ts), start, start + PAGE - 1)
                for raw in page:
                    doc = _loads(raw)
                    yield ScheduledJob(ts, raw, doc, _item_key(raw, doc))
                if len(page) < PAGE:
                    break
                start += PAGE

    def scheduled(self, start: int = 0, count: int = 50) -> list[ScheduledJob]:
        out = []
        for i, job in enumerate(self.all_scheduled()):
            if i >= start + count:
                break
            if i >= start:
                out.append(job)
        return out

    def scheduled_count(self) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for ts in self._buckets():
            pipe.llen(self.keys.delayed_bucket(ts))
        return sum(pipe.execute())

    def get_scheduled(self, key: str) -> ScheduledJob:
        for job in self.all_scheduled():
            if job.key == key:
                return job
        raise NotFound(f"no scheduled job {key}")

    def _unschedule_delayed(self, job: ScheduledJob, mode: str) -> bool:
        k = self.keys
        queue = job.queue
        if mode == "enqueue":
            jobmod.validate_queue_name(queue)
        keys = [
            k.delayed_schedule,
            k.delayed_bucket(job.ts),
            k.delayed_timestamps(job.raw),
            k.queues,
            k.queue(queue) if mode == "enqueue" else k.queues,
            k.wake(queue) if mode == "enqueue" else k.queues,
            k.wake_new_queue,
        ]
        return self.scripts.call("unschedule", keys, ["delayed", job.ts, job.raw, mode, queue]) == 1

    def remove_scheduled(self, key: str) -> bool:
        """Remove a delayed job by id; False when it was promoted or removed meanwhile."""
        return self._unschedule_delayed(self.get_scheduled(key), "remove")

    def enqueue_scheduled_now(self, key: str) -> bool:
        """Move a delayed job onto its queue now."""
        return self._unschedule_delayed(self.get_scheduled(key), "enqueue")

    # -- retries ------------------------------------------------------------------------------

    def all_retrying(self):
        start = 0
        while True:
            page = scored(self.redis.zrange(self.keys.retry_set, start, start + PAGE - 1, withscores=True))
            for member, score in page:
                queue, _, raw = member.partition(b" ")
                doc = _loads(raw)
                yield RetryingJob(int(score), member, queue.decode("utf-8", "replace"), raw, doc, _item_key(raw, doc))
            if len(page) < PAGE:
                return
            start += PAGE

    def retrying(self, start: int = 0, count: int = 50) -> list[RetryingJob]:
        page = scored(self.redis.zrange(self.keys.retry_set, start, start + count - 1, withscores=True))
        out = []
        for member, score in page:
            queue, _, raw = member.partition(b" ")
            doc = _loads(raw)
            out.append(RetryingJob(int(score), member, queue.decode("utf-8", "replace"), raw, doc, _item_key(raw, doc)))
        return out

    def retrying_count(self) -> int:
        return self.redis.zcard(self.keys.retry_set)

    def get_retrying(self, key: str) -> RetryingJob:
        for job in self.all_retrying():
            if job.key == key:
                return job
        raise NotFound(f"no retrying job {key}")

    def _unschedule_retry(self, job: RetryingJob, mode: str) -> bool:
        k = self.keys
        if mode == "enqueue":
            jobmod.validate_queue_name(job.queue)
        keys = [
            k.retry_set,
            k.retry_set,
            k.retry_set,
            k.queues,
            k.queue(job.queue) if mode == "enqueue" else k.queues,
            k.wake(job.queue) if mode == "enqueue" else k.queues,
            k.wake_new_queue,
        ]
        return self.scripts.call("unschedule", keys, ["retry", job.member, job.raw, mode, job.queue]) == 1

    def remove_retrying(self, key: str) -> bool:
        return self._unschedule_retry(self.get_retrying(key), "remove")

    def retry_now(self, key: str) -> bool:
        """Run a retrying job's next attempt now instead of at its due time."""
        return self._unschedule_retry(self.get_retrying(key), "enqueue")

    # -- recurring schedules ------------------------------------------------------------------

    def set_schedule(self, name: str, definition: dict) -> int:
        """Create or replace schedule `name`; returns its next fire time (ms). Counters stay."""
        jobmod.validate_queue_name(name)  # schedule names follow the queue-name rules
        definition = validate_definition(definition)
        next_ms = next_fire_ms(definition, int(time.time() * 1000))
        if next_ms is None:
            raise InvalidJob(f"schedule {name} never fires")
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(k.schedule(name), "definition", definition_bytes(definition))
        pipe.hdel(k.schedule(name), "error", "error_ms")
        pipe.zadd(k.schedules, {name: next_ms})
        pipe.lpush(k.wake_schedule, "1")
        pipe.ltrim(k.wake_schedule, 0, 0)
        pipe.execute()
        return next_ms

    def remove_schedule(self, name: str) -> bool:
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(k.schedules, name)
        pipe.delete(k.schedule(name))
        return pipe.execute()[0] == 1

    def schedules(self) -> list[Schedule]:
        """Every schedule by next fire time."""
        k = self.keys
        entries = scored(self.redis.zrange(k.schedules, 0, -1, withscores=True))
        pipe = self.redis.pipeline(transaction=False)
        for name, _ in entries:
            pipe.hgetall(k.schedule(text(name)))
        out = []
        for (name, score), reply in zip(entries, pipe.execute(), strict=True):
            fields = bytes_map(reply)
            state = {a.decode(): b.decode("utf-8", "replace") for a, b in fields.items()}
            raw = fields.get(b"definition", b"")
            doc = _loads(raw) if raw else None
            out.append(
                Schedule(
                    text(name),
                    score,
                    raw,
                    doc if isinstance(doc, dict) else None,
                    {a: b for a, b in state.items() if a != "definition"},
                )
            )
        return out

    def get_schedule(self, name: str) -> Schedule:
        for s in self.schedules():
            if s.name == name:
                return s
        raise NotFound(f"no schedule {name}")

    def run_schedule_now(self, name: str) -> str | None:
        """Enqueue a schedule's job once now; the schedule itself is unchanged."""
        s = self.get_schedule(name)
        if s.definition is None:
            raise InvalidJob(f"schedule {name} has no readable definition")
        d = validate_definition(s.definition)
        extra = {"schedule": name}
        if "retry" in d:
            extra["retry"] = d["retry"]
        return self.enqueue(d["queue"], d["class"], *d.get("args", []), **extra)
