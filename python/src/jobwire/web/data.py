"""What the pages and the JSON API show, gathered through jobwire.Client only.

Every function returns plain dicts and lists of JSON-able values. Untrusted strings (queue
names, classes, worker ids, payloads, errors) are returned as they are; escaping is the
templates' job (Jinja autoescape) and the browser's (textContent, encodeURIComponent).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, UTC

from ..client import Client, Failure, QueuedJob, WorkerView

PRETTY_LIMIT = 64 * 1024  # characters of a pretty-printed payload shown on a page
PREVIEW_LIMIT = 160


def redis_now_ms(client: Client) -> int:
    """Redis's clock, which leases and heartbeats are measured on (protocol.md 7.6)."""
    seconds, micros = client.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


def duration(ms) -> str:
    """A short human duration: 850ms, 12s, 3m 05s, 2h 10m, 3d 4h. '' for None."""
    if isinstance(ms, bool) or not isinstance(ms, (int, float)):
        return ""
    ms = int(ms)
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms < 1000:
        return f"{sign}{ms}ms"
    s = ms // 1000
    if s < 60:
        return f"{sign}{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{sign}{m}m {s:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{sign}{h}h {m:02d}m"
    d, h = divmod(h, 24)
    return f"{sign}{d}d {h}h"


def pretty(document, raw: bytes | None = None) -> str:
    """Indented JSON for a decoded document, or the raw text when it did not decode."""
    if document is None and raw is not None:
        text = raw.decode("utf-8", "replace")
    else:
        text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False)
    if len(text) > PRETTY_LIMIT:
        text = text[:PRETTY_LIMIT] + f"\n... ({len(text) - PRETTY_LIMIT} more characters not shown)"
    return text


def preview(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= PREVIEW_LIMIT else text[: PREVIEW_LIMIT - 1] + "…"


def _parse_time(text: str) -> int | None:
    """ms since the epoch of an ISO-8601 time ('...Z', '...+00:00'), None if unreadable."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace(" +0000", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- queues -----------------------------------------------------------------------------------


def queue_summaries(client: Client, now_ms: int) -> list[dict]:
    """Every queue with its size and the age of its head job (from enqueued_at, when set)."""
    out: list[dict] = []
    for name, size in client.queues().items():
        oldest = None
        if size:
            head = client.peek(name, 0, 1)
            if head and isinstance(head[0].document, dict):
                oldest = _int(head[0].document.get("enqueued_at"))
        out.append(
            {
                "name": name,
                "size": size,
                "oldest_enqueued_at": oldest,
                "oldest_age_ms": None if oldest is None else max(0, now_ms - oldest),
            }
        )
    biggest = max([int(q["size"]) for q in out] + [1])
    for q in out:
        q["max"] = biggest  # scale of the size bars
    return out


def queued_job(job: QueuedJob, now_ms: int) -> dict:
    doc = job.document if isinstance(job.document, dict) else None
    enqueued = _int(doc.get("enqueued_at")) if doc else None
    return {
        "key": job.key,
        "class": job.job_class,
        "id": doc.get("id") if doc else None,
        "args_preview": preview(doc.get("args", [])) if doc else "",
        "enqueued_at": enqueued,
        "age_ms": None if enqueued is None else max(0, now_ms - enqueued),
        "valid_json": job.document is not None,
        "pretty": pretty(job.document, job.raw),
    }


# -- workers ----------------------------------------------------------------------------------


def worker(view: WorkerView, now_ms: int) -> dict:
    info = view.info
    beat = _parse_time(view.heartbeat)
    started_ms = _int(info.get("started_ms")) or _parse_time(view.started)
    job = None
    record = view.working_on if isinstance(view.working_on, dict) else None
    if view.working_on is not None:
        payload = record.get("payload") if record else None
        payload = payload if isinstance(payload, dict) else {}
        run_at = _parse_time(record.get("run_at", "")) if record else None
        since = _int(view.inflight.get("reserved_ms")) or run_at
        job = {
            "queue": (record or {}).get("queue", "") or view.inflight.get("queue", ""),
            "class": payload.get("class", ""),
            "id": payload.get("id"),
            "args_preview": preview(payload.get("args", [])),
            "run_at": (record or {}).get("run_at", ""),
            "since_ms": since,
            "running_ms": None if since is None else max(0, now_ms - since),
            "pretty": pretty(payload if payload else view.working_on),
        }
    return {
        "id": view.id,
        "host": info.get("host") or view.host,
        "pid": info.get("pid") or view.pid,
        "queues": info.get("queues") or view.queues,
        "state": view.state,
        "busy": view.state == "busy" or job is not None,
        "paused": view.state == "paused",
        "impl": info.get("impl", ""),
        "impl_version": info.get("impl_version", ""),
        "spec": info.get("spec", ""),
        "mode": info.get("mode", ""),
        "started": view.started,
        "started_ms": started_ms,
        "uptime_ms": None if started_ms is None else max(0, now_ms - started_ms),
        "heartbeat": view.heartbeat,
        "heartbeat_age_ms": None if beat is None else max(0, now_ms - beat),
        "lease_ms_left": view.lease_ms_left,
        "lease_expired": view.lease_ms_left is not None and view.lease_ms_left < 0,
        "job": job,
        "token": view.inflight.get("token", ""),
        "job_text": f"{job['queue']} {job['class']}" if job else "",
    }


def workers(client: Client, now_ms: int) -> list[dict]:
    return [worker(v, now_ms) for v in client.workers()]


def worker_counts(items: list[dict]) -> dict:
    return {
        "total": len(items),
        "busy": sum(1 for w in items if w["busy"]),
        "paused": sum(1 for w in items if w["paused"] and not w["busy"]),
        "idle": sum(1 for w in items if not w["busy"] and not w["paused"]),
    }


def worker_stats(client: Client, worker_id: str) -> dict:
    """Per-worker counters (key-layout.md stat:processed:<id>); not in Client, read here."""
    k = client.keys
    processed, failed = client.redis.mget(k.stat_processed_worker(worker_id), k.stat_failed_worker(worker_id))
    return {"processed": _int(processed) or 0, "failed": _int(failed) or 0}


# -- failures ---------------------------------------------------------------------------------


def failure(item: Failure) -> dict:
    rec = item.record
    backtrace = rec.get("backtrace")
    if isinstance(backtrace, str):
        backtrace = backtrace.splitlines()
    elif not isinstance(backtrace, list):
        backtrace = []
    payload = rec.get("payload")
    runnable = isinstance(payload, dict) and isinstance(payload.get("class"), str) and bool(payload.get("class"))
    return {
        "key": item.key,
        "failed_at": str(rec.get("failed_at", "")),
        "queue": str(rec.get("queue", "") or ""),
        "class": item.job_class,
        "exception": str(rec.get("exception", "") or ""),
        "error": str(rec.get("error", "") or ""),
        "worker": str(rec.get("worker", "") or ""),
        "backtrace": [str(frame) for frame in backtrace],
        "args_preview": preview(payload.get("args", [])) if isinstance(payload, dict) else "",
        "payload_pretty": pretty(payload) if rec else pretty(None, item.raw),
        "runnable": runnable,
        "readable": bool(rec),
    }


def failures(client: Client, start: int, count: int, queue=None, job_class=None, exception=None):
    """One page of failures, filtered when any filter is given: (items, total matching)."""
    if queue is None and job_class is None and exception is None:
        return [failure(f) for f in client.failed(start, count)], client.failed_count()
    matching = client.matching_failed(queue, job_class, exception)
    return [failure(f) for f in matching[start : start + count]], len(matching)


# -- stats ------------------------------------------------------------------------------------


def minute_series(client: Client, now_ms: int, minutes: int) -> dict:
    """processed and failed per minute for the last `minutes` minutes, oldest first."""
    last = now_ms // 60000
    first = last - minutes + 1
    # Counters live in the writer's UTC day, which may differ from Redis's near midnight:
    # read every day the range touches and one either side.
    day0 = datetime.fromtimestamp(first * 60, UTC).date() - timedelta(days=1)
    day1 = datetime.fromtimestamp(last * 60, UTC).date() + timedelta(days=1)
    days = [(day0 + timedelta(days=d)).isoformat() for d in range((day1 - day0).days + 1)]
    counters = client.minute_counters(days)
    processed = [counters.get(m, {}).get("processed", 0) for m in range(first, last + 1)]
    failed = [counters.get(m, {}).get("failed", 0) for m in range(first, last + 1)]
    return {
        "first_minute": first,
        "minutes": minutes,
        "processed": processed,
        "failed": failed,
        "processed_sum": sum(processed),
        "failed_sum": sum(failed),
        "peak": max(processed + failed + [0]),
    }


def namespaces(client: Client, home_info: dict) -> list[dict]:
    """Every namespace of the home (protocol.md 15.2): name and Resque.info's figures each."""
    return [{"name": c.keys.ns, **(home_info if c is client else c.info())} for c in client.namespace_clients()]


def overview(client: Client) -> dict:
    now = redis_now_ms(client)
    info = client.info()
    queues = queue_summaries(client, now)
    all_workers = workers(client, now)
    return {
        "now_ms": now,
        "info": info,
        "queues": queues,
        "busy": [w for w in all_workers if w["busy"]],
        "workers": worker_counts(all_workers),
        "failed_count": info["failed_list"],
        "series": minute_series(client, now, 60),
        "namespaces": namespaces(client, info),
    }
