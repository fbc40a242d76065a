"""The client: enqueue jobs and look at or change everything a namespace holds.

Every operation is one Lua script from spec/lua or plain Redis commands listed in protocol.md
section 8; keys come from keys.Keys. The web UI and the CLI use only this class.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import cast

import redis as redis_lib
from redis.cluster import RedisCluster

from . import durable, redisurl
from . import payload as jobmod
from .durable import DEFAULT_WAIT_TIMEOUT_MS
from .errors import InvalidJob, NotFound
from .keys import Keys
from .options import DEFAULTS
from .registry import Registry, default_registry
from .replies import bytes_list
from .routing import Router
from .scheduling import SchedulingMixin
from .scripts import Scripts

__all__ = ["Client", "Failure", "QueuedJob", "WorkerView", "DEFAULT_REDIS_URL", "connect", "is_cluster_url"]

DEFAULT_REDIS_URL = DEFAULTS["redis_url"]  # spec/options.json
BULK_CHUNK = 1000  # protocol.md section 11: payloads per enqueue call
PAGE = 100


_driver_info = None


def _driver_options() -> dict:
    """redis-py >= 7 makes a DriverInfo for each new client, and each reads the package's metadata
    (importlib.metadata.version, 4-6 ms here) for CLIENT SETINFO. One made per process, before any
    fork, says the same to Redis at no cost per client (a forked job child's included). Older
    redis-py reads the version once, at import: nothing to do there."""
    global _driver_info
    try:
        from redis.driver_info import DriverInfo
    except ImportError:
        return {}
    if _driver_info is None:
        _driver_info = DriverInfo()
    return {"driver_info": _driver_info}


def connect(url: str | None = None, *, wait_for_cluster: bool = False, **options) -> redis_lib.Redis:
    """A redis-py client for `url` (default $REDIS_URL), raw bytes in and out.

    `?cluster=1` in the URL means Redis Cluster: any node's address will do. Every key of a
    namespace must then share one slot, so give the namespace a hash tag (`{resque}`).
    RedisCluster reads the slot map when it is made, so it fails at once when no node answers;
    `wait_for_cluster` (workers: protocol.md 7.7) retries that with the protocol's backoff instead.
    """
    url = url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    cluster = redisurl.parse(url).cluster  # InvalidRedisUrl (a ValueError) before anything connects
    options.setdefault("socket_connect_timeout", 5)
    if "lib_name" not in options and "lib_version" not in options:
        options.update(_driver_options())
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    if cluster:
        plain = urllib.parse.urlunsplit(
            parts._replace(query=urllib.parse.urlencode([q for q in query if q[0] != "cluster"]))
        )
        delay = 0.1
        while True:
            try:
                # A RedisCluster answers every command jobwire sends like a Redis does: typed as one.
                return cast(redis_lib.Redis, RedisCluster.from_url(plain, **options))
            except redis_lib.exceptions.RedisClusterException as exc:
                if not wait_for_cluster:
                    raise
                logging.getLogger("jobwire.client").warning(
                    "Redis Cluster unreachable (%s); retrying in %.1f s", exc, delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
    return redis_lib.Redis.from_url(url, **options)


def is_cluster_url(url: str | None) -> bool:
    """Whether `url` (default $REDIS_URL) names a Redis Cluster (redisurl.parse says how)."""
    return redisurl.parse(url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL).cluster


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _loads(raw: bytes):
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


_WS = re.compile(r"[ \t\n\r]*")
# The string scanner json's decoder uses (CPython's C one where built); typeshed does not list it.
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]


def _skip_ws(text: str, i: int) -> int:
    """The index of the first non-whitespace character (RFC 8259 whitespace) at or after i."""
    match = _WS.match(text, i)
    return match.end() if match else i


def _raw_member(raw: bytes, name: str) -> bytes | None:
    """The bytes of one member of a top-level JSON object, exactly as stored, or None.

    Retrying a failure pushes its payload's original bytes back (protocol.md 5: never re-encode),
    so big integers, float spellings and unknown fields survive the round trip.
    """
    decoder = json.JSONDecoder()
    text = raw.decode("utf-8", "surrogateescape")
    try:
        i = _skip_ws(text, 0)
        if text[i] != "{":
            return None
        i = _skip_ws(text, i + 1)
        while text[i] != "}":
            key, i = _scanstring(text, i + 1)
            i = _skip_ws(text, i) + 1  # past ':'
            i = _skip_ws(text, i)
            _, end = decoder.raw_decode(text, i)
            if key == name:
                return text[i:end].encode("utf-8", "surrogateescape")
            i = _skip_ws(text, end)
            if text[i] == ",":
                i = _skip_ws(text, i + 1)
    except (ValueError, IndexError):
        return None
    return None


def _record_key(raw: bytes, document) -> str:
    """How a queued job or failure is named: its payload id, else a hash of its bytes."""
    payload = document.get("payload") if isinstance(document, dict) and "failed_at" in document else document
    if isinstance(payload, dict) and isinstance(payload.get("id"), str) and payload["id"]:
        return payload["id"]
    return "sha1:" + hashlib.sha1(raw).hexdigest()


@dataclass
class QueuedJob:
    """A payload waiting in a queue. `document` is None when the bytes are not JSON."""

    queue: str
    raw: bytes
    document: object
    key: str

    @property
    def job_class(self) -> str:
        return self.document.get("class", "") if isinstance(self.document, dict) else ""


@dataclass
class Failure:
    """A failure record as stored (`raw`) and decoded (`record`, {} when unreadable)."""

    raw: bytes
    record: dict
    key: str

    def get(self, name, default=None):
        return self.record.get(name, default)

    @property
    def job_class(self) -> str:
        payload = self.record.get("payload")
        return payload.get("class", "") if isinstance(payload, dict) else ""


@dataclass
class WorkerView:
    """One registered worker, from the Resque keys and jobwire's extension keys."""

    id: str
    host: str
    pid: str
    queues: str
    info: dict = field(default_factory=dict)
    working_on: dict | None = None
    started: str = ""
    heartbeat: str = ""
    lease_ms_left: int | None = None
    inflight: dict = field(default_factory=dict)

    @property
    def state(self) -> str:
        if self.info.get("state") == "paused":
            return "paused"
        return "busy" if self.working_on else "idle"


class Client(SchedulingMixin):
    """Talks to one namespace of one Redis."""

    def __init__(
        self,
        redis_url: str | None = None,
        namespace: str = DEFAULTS["namespace"],
        *,
        redis: redis_lib.Redis | None = None,
        registry: Registry | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS,
    ) -> None:
        """wait_replicas > 0 makes every enqueue durable (protocol.md 15.4): acknowledged only
        once that many replicas have it, else NotReplicated after wait_timeout_ms."""
        self.redis = redis if redis is not None else connect(redis_url)
        self.keys = Keys(namespace)
        self.scripts = Scripts(self.redis)
        self.registry = registry or default_registry
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.router = Router(self.redis, namespace)
        self._groups: dict[str, Client] = {}

    # -- routing (protocol.md 15.2) ------------------------------------------------------------

    def for_queue(self, queue: str) -> Client:
        """The client of the namespace `queue` is routed to: this one, or one per group."""
        ns = self.router.namespace_for(queue)
        if ns == self.keys.ns:
            return self
        if ns not in self._groups:
            self._groups[ns] = Client(
                redis=self.redis,
                namespace=ns,
                registry=self.registry,
                wait_replicas=self.wait_replicas,
                wait_timeout_ms=self.wait_timeout_ms,
            )
        return self._groups[ns]

    def namespaces(self) -> list[str]:
        """This home namespace and every group namespace its routing table names."""
        return self.router.namespaces()

    def namespace_clients(self) -> list[Client]:
        """One client per namespace of namespaces(), this one first (for tools that show all)."""
        return [
            self if ns == self.keys.ns else Client(redis=self.redis, namespace=ns, registry=self.registry)
            for ns in self.namespaces()
        ]

    # -- enqueue ------------------------------------------------------------------------------

    def enqueue(self, queue: str, job_class: str, *args, **extra) -> str | None:
        """Push one job; returns its id, or None when a before_enqueue hook said no."""
        jobmod.validate_queue_name(queue)
        handler = self.registry.get(job_class)
        if handler is not None and not handler.before_enqueue(*args):
            return None
        job_id, payload = jobmod.new_job(job_class, args, **extra)
        self.for_queue(queue)._push(queue, [payload])
        if handler is not None:
            handler.after_enqueue(*args)
        return job_id

    def enqueue_many(self, queue: str, jobs) -> list[str]:
        """Push many (class, args) pairs to one queue, 1000 per round trip; returns their ids.

        Every payload is validated first: one bad job raises InvalidJob and pushes nothing.
        """
        jobmod.validate_queue_name(queue)
        built = jobmod.new_jobs(jobs)
        payloads = [payload for _, payload in built]
        target = self.for_queue(queue)
        for start in range(0, len(payloads), BULK_CHUNK):
            target._push(queue, payloads[start : start + BULK_CHUNK])
        return [job_id for job_id, _ in built]

    def _push(self, queue: str, payloads: list[bytes]) -> int:
        k = self.keys
        return self._write("enqueue", [k.queues, k.queue(queue), k.wake(queue), k.wake_new_queue], [queue, *payloads])

    def _write(self, name: str, keys: list, args: list):
        """Run an enqueueing script; when durable, WAIT for replicas on the same connection."""
        if not self.wait_replicas:
            return self.scripts.call(name, keys, args)
        return durable.call(
            self.redis, getattr(self.scripts, name), keys, args, self.wait_replicas, self.wait_timeout_ms
        )

    # -- queues -------------------------------------------------------------------------------

    def queue_names(self) -> list[str]:
        return sorted(_text(q) for q in self.redis.smembers(self.keys.queues))

    def queues(self) -> dict[str, int]:
        """Every known queue and its length, by name."""
        names = self.queue_names()
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.llen(self.keys.queue(name))
        return dict(zip(names, pipe.execute(), strict=True))

    def queue_size(self, queue: str) -> int:
        return self.redis.llen(self.keys.queue(queue))

    def peek(self, queue: str, start: int = 0, count: int = 20) -> list[QueuedJob]:
        raws = bytes_list(self.redis.lrange(self.keys.queue(queue), start, start + count - 1))
        return [QueuedJob(queue, raw, doc, _record_key(raw, doc)) for raw, doc in ((r, _loads(r)) for r in raws)]

    def _find(self, list_key: str, wanted: str):
        """The first element of a list whose key (id or sha1) is `wanted`, read in pages."""
        start = 0
        while True:
            page = bytes_list(self.redis.lrange(list_key, start, start + PAGE - 1))
            for raw in page:
                document = _loads(raw)
                if _record_key(raw, document) == wanted:
                    return raw, document
            if len(page) < PAGE:
                return None, None
            start += PAGE

    def remove_job(self, queue: str, key: str) -> bool:
        """Remove a queued job by id (or sha1 key). False when it is no longer there."""
        raw, _ = self._find(self.keys.queue(queue), key)
        return bool(raw) and self.redis.lrem(self.keys.queue(queue), 1, raw) == 1

    def delete_queue(self, queue: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.queue(queue))
        pipe.srem(self.keys.queues, queue)
        pipe.execute()

    # -- failures -----------------------------------------------------------------------------

    def failed_count(self) -> int:
        return self.redis.llen(self.keys.failed)

    def failed(self, start: int = 0, count: int = 50) -> list[Failure]:
        out = []
        for raw in bytes_list(self.redis.lrange(self.keys.failed, start, start + count - 1)):
            record = _loads(raw)
            if not isinstance(record, dict):
                record = {}
            out.append(Failure(raw, record, _record_key(raw, record)))
        return out

    def all_failed(self):
        start = 0
        while True:
            page = self.failed(start, PAGE)
            yield from page
            if len(page) < PAGE:
                return
            start += PAGE

    def get_failed(self, key: str) -> Failure:
        raw, record = self._find(self.keys.failed, key)
        if raw is None:
            raise NotFound(f"no failure record for job {key}")
        return Failure(raw, record if isinstance(record, dict) else {}, key)

    def retry_failed(self, key: str) -> bool:
        """Move a failure's payload back onto its queue (all fields kept) and drop the record."""
        return self._retry(self.get_failed(key))

    def _retry(self, failure: Failure) -> bool:
        payload, queue = failure.record.get("payload"), failure.record.get("queue")
        if not isinstance(payload, dict) or jobmod.schema_error(payload):
            raise InvalidJob(f"failure {failure.key} holds no runnable job (payload is not a valid job)")
        queue = jobmod.validate_queue_name(queue)
        k = self.keys
        return (
            self.scripts.call(
                "failed_retry",
                [k.failed, k.queues, k.queue(queue), k.wake(queue), k.wake_new_queue],
                [failure.raw, queue, _raw_member(failure.raw, "payload") or jobmod.dumps(payload)],
            )
            == 1
        )

    def remove_failed(self, key: str) -> bool:
        # redis-py types LREM's element as str; the bytes of the record go as they are
        return self.redis.lrem(self.keys.failed, 1, self.get_failed(key).raw) == 1  # type: ignore[arg-type]

    def matching_failed(self, queue=None, job_class=None, exception=None) -> list[Failure]:
        return [
            f
            for f in self.all_failed()
            if (queue is None or f.get("queue") == queue)
            and (job_class is None or f.job_class == job_class)
            and (exception is None or f.get("exception") == exception)
        ]

    def retry_all(self, queue=None, job_class=None, exception=None) -> int:
        """Retry every matching failure that holds a runnable job; returns how many moved."""
        moved = 0
        for failure in self.matching_failed(queue, job_class, exception):
            try:
                moved += self._retry(failure)
            except InvalidJob:
                pass
        return moved

    def remove_all(self, queue=None, job_class=None, exception=None) -> int:
        removed = 0
        for f in self.matching_failed(queue, job_class, exception):
            removed += self.redis.lrem(self.keys.failed, 1, f.raw)  # type: ignore[arg-type]  # as in remove_failed
        return removed

    def clear_failed(self) -> None:
        self.redis.delete(self.keys.failed)

    # -- workers ------------------------------------------------------------------------------

    def worker_ids(self) -> list[str]:
        return sorted(_text(w) for w in self.redis.smembers(self.keys.workers))

    def workers(self) -> list[WorkerView]:
        ids = self.worker_ids()
        k = self.keys
        pipe = self.redis.pipeline(transaction=False)
        for wid in ids:
            pipe.hgetall(k.worker_info(wid))
            pipe.get(k.worker_record(wid))
            pipe.get(k.worker_started(wid))
            pipe.hget(k.heartbeats, wid)
            pipe.zscore(k.leases, wid)
            pipe.hgetall(k.inflight(wid))
        replies = pipe.execute()
        now_s, now_us = self.redis.time()  # Redis's clock, as the leases use; not pipelined (Cluster)
        now_ms = now_s * 1000 + now_us // 1000
        views = []
        for i, wid in enumerate(ids):
            info, record, started, beat, lease, inflight = replies[i * 6 : i * 6 + 6]
            host, _, rest = wid.partition(":")
            pid, _, queues = rest.partition(":")
            views.append(
                WorkerView(
                    id=wid,
                    host=host,
                    pid=pid,
                    queues=queues,
                    info={_text(a): _text(b) for a, b in info.items()},
                    working_on=_loads(record) if record else None,
                    started=_text(started or b""),
                    heartbeat=_text(beat or b""),
                    lease_ms_left=None if lease is None else int(lease) - now_ms,
                    inflight={_text(a): _text(b) for a, b in inflight.items() if a != b"payload"},
                )
            )
        return views

    def control(self, worker_id: str, command: str) -> None:
        """Send an operator command (pause, resume, quit, kill [token]) to one worker."""
        verb = command.split()[0] if command.split() else ""
        if verb not in ("pause", "resume", "quit", "kill"):
            raise InvalidJob(f"unknown command {command!r}: use pause, resume, quit or kill")
        if not self.redis.sismember(self.keys.workers, worker_id):
            raise NotFound(f"no worker {worker_id}")
        self.redis.rpush(self.keys.control(worker_id), command)

    # -- stats --------------------------------------------------------------------------------

    def info(self) -> dict:
        """Resque.info's figures: pending, processed, failed, queues, workers, working."""
        sizes = self.queues()
        k = self.keys
        ids = self.worker_ids()
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(k.stat_processed)
        pipe.get(k.stat_failed)
        pipe.llen(k.failed)
        for wid in ids:
            pipe.exists(k.worker_record(wid))
        processed, failed_total, failed_now, *busy = pipe.execute()
        return {
            "pending": sum(sizes.values()),
            "processed": int(processed or 0),
            "failed": int(failed_total or 0),
            "failed_list": failed_now,
            "queues": len(sizes),
            "workers": len(ids),
            "working": sum(busy),
        }

    def minute_counters(self, days: list[str]) -> dict[int, dict[str, int]]:
        """Per-minute processed/failed counters for the given UTC days ("YYYY-MM-DD")."""
        pipe = self.redis.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(self.keys.minutes(day))
        out: dict[int, dict[str, int]] = {}
        for fields in pipe.execute():
            for name, value in fields.items():
                kind, _, minute = _text(name).partition(":")
                if minute.isdigit():
                    out.setdefault(int(minute), {}).setdefault(kind, 0)
                    out[int(minute)][kind] += int(value)
        return out
