"""The test registry, the per-test context, and result records."""

from __future__ import annotations

import json
import secrets
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass

from . import rawjson
from .impl import Implementation, WorkerProc
from .redisutil import Keys, RedisServer, as_bytes, client, enqueue as lua_enqueue, is_cluster_url, text

MUST, SHOULD, MAY = "MUST", "SHOULD", "MAY"  # RFC 2119 levels; only MUST changes the exit status

# Short timings so the suite is fast; every worker gets them as flags (protocol.md 7.2).
TIMINGS = {
    "heartbeat_ms": 200,
    "lease_ms": 1500,
    "block_timeout_ms": 500,
    "max_deaths": 3,
    "job_timeout_ms": 0,
    "max_payload_bytes": 16777216,
}


@dataclass(frozen=True)
class Test:
    id: str
    section: str
    level: str  # MUST, SHOULD, MAY: the word of the requirement, as --list and the reports give it
    description: str
    feature: str | None = None  # an optional feature the implementation must claim

    @property
    def level_name(self) -> str:
        return self.feature if self.feature else self.level


@dataclass
class Group:
    name: str
    tests: list[Test]
    fn: Callable[[Context], None] | None  # None: a group of tests run by another (the matrix)
    needs_private_redis: bool = False
    weight: float = 1.0

    def run(self, ctx: Context) -> None:
        """Run the group's tests in `ctx` (the matrix's scratch group has no function of its own)."""
        if self.fn is None:
            raise RuntimeError(f"test group {self.name} has nothing to run")
        self.fn(ctx)


GROUPS: list[Group] = []


def group(*tests: Test, private_redis: bool = False, weight: float = 1.0):
    def wrap(fn):
        GROUPS.append(Group(fn.__name__, list(tests), fn, private_redis, weight))
        return fn

    return wrap


def all_tests() -> list[Test]:
    return [t for g in GROUPS for t in g.tests]


@dataclass
class Result:
    id: str
    status: str  # pass, fail, skip, error, na (not applicable: never a pass, never a failure)
    message: str = ""
    duration_s: float = 0.0
    test: Test | None = None

    def to_json(self) -> dict:
        t = self.test
        return {
            "id": self.id,
            "status": self.status,
            "level": t.level if t else None,
            "feature": t.feature if t else None,
            "section": t.section if t else None,
            "description": t.description if t else None,
            "message": self.message,
            "duration_s": round(self.duration_s, 3),
        }


class Failed(Exception):
    """Raised by ctx.require: the current test fails with this message."""


class Context:
    """What one group of tests gets: a fresh namespace, Redis, and worker helpers."""

    def __init__(
        self, impl: Implementation, redis_url: str, log_dir: str, group: Group, private: RedisServer | None = None
    ) -> None:
        self.impl = impl
        self.redis_url = redis_url
        self.private = private
        self.log_dir = log_dir
        self.group = group
        # On a cluster the namespace is a hash tag: every key of the group lives in one slot
        self.cluster = is_cluster_url(redis_url)
        self.ns = f"{{jwc{secrets.token_hex(4)}}}" if self.cluster else f"jwc{secrets.token_hex(4)}"
        self.k = Keys(self.ns)
        self.r = client(redis_url)
        self.workers: list[WorkerProc] = []
        self.results: dict[str, Result] = {}
        self.figures: dict[str, float | str] = {}  # numbers; a figure run that failed says why
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self.wanted: set[str] = {t.id for t in group.tests}

    # -- results ------------------------------------------------------------------------------

    def wants(self, test_id: str) -> bool:
        return test_id in self.wanted

    def has(self, feature: str) -> bool:
        return self.impl.has(feature)

    def _set(self, test_id: str, status: str, message: str = "") -> None:
        with self._lock:
            if test_id in self.results and self.results[test_id].status in ("fail", "error"):
                return  # the first failure of a test is the one reported
            self.results[test_id] = Result(test_id, status, message, time.monotonic() - self.started)

    def ok(self, test_id: str) -> None:
        self._set(test_id, "pass")

    def fail(self, test_id: str, message: str) -> None:
        self._set(test_id, "fail", message)

    def skip(self, test_id: str, message: str) -> None:
        self._set(test_id, "skip", message)

    def na(self, test_id: str, reason: str) -> None:
        """The test cannot apply to this implementation (e.g. a fork check on an in-process
        worker): reported as not applicable, so that nothing passes vacuously."""
        self._set(test_id, "na", reason)

    def check(self, test_id: str, condition: bool, message: str) -> bool:
        if condition:
            if test_id not in self.results:
                self._set(test_id, "pass")
        else:
            self.fail(test_id, message)
        return bool(condition)

    def require(self, condition: bool, message: str) -> None:
        if not condition:
            raise Failed(message)

    # -- Redis --------------------------------------------------------------------------------

    def payload(
        self, job_class: str, args=None, extra: dict | None = None, job_id: str | None = None
    ) -> tuple[str, bytes]:
        """A compact payload (class first, args second) and its id."""
        job_id = job_id or uuid.uuid4().hex
        doc: dict[str, Any] = {"class": job_class}
        if args is not None:
            doc["args"] = args
        doc["id"] = job_id
        doc["enqueued_at"] = int(time.time() * 1000)
        doc.update(extra or {})
        return job_id, json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    def enqueue(self, queue: str, job_class: str, args=None, **extra) -> str:
        job_id, raw = self.payload(job_class, args, extra)
        lua_enqueue(self.r, self.k, queue, raw)
        return job_id

    def push_raw(self, queue: str, raw: bytes | str, wake: bool = True) -> None:
        if wake:
            lua_enqueue(self.r, self.k, queue, raw)
        else:  # as a plain Resque client does: SADD + RPUSH, no wake marker
            pipe = self.r.pipeline(transaction=True)
            pipe.sadd(self.k.queues(), queue)
            pipe.rpush(self.k.queue(queue), raw)
            pipe.execute()

    def echoes(self) -> list[dict]:
        out = []
        for raw in self.r.lrange(self.k.conformance_echo(), 0, -1):
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = {"_invalid": raw[:200]}
            if isinstance(doc, dict):
                doc["_raw"] = raw
            out.append(doc)
        return out

    def echo_for(self, job_id: str) -> list[dict]:
        return [e for e in self.echoes() if isinstance(e, dict) and e.get("id") == job_id]

    def failures(self) -> list[bytes]:
        return [as_bytes(x) for x in self.r.lrange(self.k.failed(), 0, -1)]

    def failure_for(self, job_id: str) -> list[tuple[bytes, dict]]:
        out = []
        for raw in self.failures():
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            payload = doc.get("payload") if isinstance(doc, dict) else None
            if isinstance(payload, str):
                try:
                    payload = json.loads(payload)
                except ValueError:
                    payload = None
            if isinstance(payload, dict) and payload.get("id") == job_id:
                out.append((raw, doc))
        return out

    def wait_for(self, predicate, timeout: float, interval: float = 0.03):
        """Poll predicate until it returns something truthy; returns it, or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                return None
            time.sleep(interval)

    def wait_echo(self, job_id: str, timeout: float = 5.0) -> dict | None:
        found = self.wait_for(lambda: self.echo_for(job_id), timeout, 0.01)
        return found[0] if found else None

    def wait_failure(self, job_id: str, timeout: float = 5.0):
        found = self.wait_for(lambda: self.failure_for(job_id), timeout)
        return found[0] if found else (None, None)

    # -- workers -------------------------------------------------------------------------------

    def start_worker(
        self, queues: str, register: bool = True, timeout: float = 15.0, env: dict | None = None, **overrides
    ) -> WorkerProc:
        values: dict[str, Any] = dict(TIMINGS)
        values.update(overrides)
        values.update(queues=queues, redis_url=overrides.get("redis_url", self.redis_url), namespace=self.ns)
        w = self.impl.spawn(values, self.log_dir, env)
        self.workers.append(w)
        if register:
            self.wait_registered(w, timeout)
        return w

    def wait_registered(self, w: WorkerProc, timeout: float = 15.0) -> str:
        def find():
            alive = w.alive()
            taken = {x.worker_id for x in self.workers if x.worker_id}
            for member in self.r.smembers(self.k.workers()):
                wid = member.decode("utf-8", "replace")
                parts = wid.split(":")
                if wid not in taken and len(parts) >= 3 and parts[1].split("+")[0] == str(w.pid):
                    return wid
            if not alive:
                raise Failed(f"the worker exited before registering: {w.describe()}")
            return None

        wid = self.wait_for(find, timeout, 0.02)
        if not wid:
            raise Failed(
                f"no worker id with pid {w.pid} appeared in {self.k.workers()} within {timeout} s: {w.describe()}"
            )
        w.worker_id = wid
        return wid

    def held(self, w: WorkerProc) -> dict:
        """The worker's in-flight hash (empty when it holds nothing)."""
        return {text(k): v for k, v in self.r.hgetall(self.k.inflight(w.worker_id)).items()}

    def wait_holding(self, w: WorkerProc, job_id: str, timeout: float = 5.0) -> dict:
        def holding():
            h = self.held(w)
            payload = h.get("payload", b"")
            return h if job_id.encode() in payload else None

        h = self.wait_for(holding, timeout, 0.02)
        if not h:
            raise Failed(f"the worker did not reserve job {job_id} within {timeout} s: {w.describe()}")
        return h

    def cleanup(self) -> None:
        for w in self.workers:
            try:
                w.kill_all()
            except Exception:
                pass
        try:
            self.r.close()
        except Exception:
            pass


def run_group(
    g: Group, impl: Implementation, redis_url: str, log_dir: str, only=None, skip=None, ids=None
) -> tuple[list[Result], dict]:
    """Run one group against one implementation; every selected test of the group gets a result.
    `ids` (a set of exact test ids), when given, narrows the selection further."""
    tests = [t for t in g.tests if _selected(t.id, only, skip) and (not ids or t.id in ids)]
    results: list[Result] = []
    runnable = []
    for t in tests:
        reason = impl.not_applicable_reason(t)
        if not reason and g.needs_private_redis and is_cluster_url(redis_url):
            reason = (
                "needs a private single redis-server (it counts that server's connections or restarts "
                "it): not run on a cluster"
            )
        if reason:
            results.append(Result(t.id, "na", reason, 0, t))
        else:
            runnable.append(t)
    if not runnable:
        return results, {}
    private = None
    ctx = None
    try:
        url = redis_url
        if g.needs_private_redis:
            private = RedisServer().start()
            url = private.url
        ctx = Context(impl, url, log_dir, g, private)
        ctx.wanted = {t.id for t in runnable}
        try:
            g.run(ctx)
        except Failed as exc:
            for t in runnable:
                if t.id not in ctx.results:
                    ctx.fail(t.id, str(exc))
        except Exception as exc:
            tb = traceback.format_exc(limit=4)
            for t in runnable:
                if t.id not in ctx.results:
                    ctx._set(t.id, "error", f"{type(exc).__name__}: {exc}\n{tb}")
    finally:
        if ctx:
            ctx.cleanup()
        if private:
            private.close()
    for t in runnable:
        r = ctx.results.get(t.id) if ctx else None
        if r is None:
            r = Result(t.id, "error", "the test group reported no result for this test")
        r.test = t
        results.append(r)
    return results, (ctx.figures if ctx else {})


def _selected(test_id: str, only, skip) -> bool:
    if only and not any(test_id.startswith(p) for p in only):
        return False
    if skip and any(test_id.startswith(p) for p in skip):
        return False
    return True


def members_or_none(raw: bytes):
    try:
        return rawjson.members(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
