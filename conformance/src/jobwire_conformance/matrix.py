"""The cross-language matrix: every enqueuer x every worker, Resque compatibility included."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

from . import schemas
from .core import MUST, Context, Result, Test
from .redisutil import Keys
from .impl import Implementation
from .rawjson import same_value

P13 = "protocol.md#13-resque-compatibility"
P5 = "protocol.md#5-the-job-payload"
P152 = "protocol.md#152-namespace-groups-past-one-slot"
ENQUEUERS = ["python", "node", "c", "node-resque"]
WORKERS = ["python", "python-inline", "node", "c", "node-resque"]
ARGS = ["matrix", 42, {"k": [1.5, True, None]}, "ü😀", -7]


def _enqueue(ctx: Context, enq: Implementation, queue: str, marker: str) -> tuple[bool, str]:
    args = [json.dumps(a, ensure_ascii=False) for a in ARGS + [marker]]
    argv, cwd = enq.enqueue_argv(
        {"redis_url": ctx.redis_url, "namespace": ctx.ns, "queue": queue, "class": "jobwire.Echo", "args": args}
    )
    env = {"REDIS_URL": ctx.redis_url, "JOBWIRE_NAMESPACE": ctx.ns}
    env = {**os.environ, **env}
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{argv}: {exc}"
    if done.returncode != 0:
        return False, f"{' '.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout)[-400:]}"
    return True, done.stdout.strip()


def enqueuer_tests(names) -> list[Test]:
    return [
        Test(
            f"enqueue.{n}.payload",
            P5,
            MUST,
            f"the {n} enqueuer pushes a schema-valid payload (jobwire: class first, args second, 32-hex id, enqueued_at)",
        )
        for n in names
    ] + [
        Test(
            f"enqueue.{n}.routed",
            P152,
            MUST,
            f"the {n} enqueuer puts a job for a queue routed to group g into namespace {{<ns>:g}}, not <ns>",
        )
        for n in names
    ]


def group_namespace(ns: str, group: str) -> str:
    """protocol.md 15.2: the home's name without braces, one new hash tag."""
    return "{" + ns.replace("{", "").replace("}", "") + ":" + group + "}"


def check_routed(ctx: Context, name: str, enq: Implementation) -> Result:
    """A route in <ns>:jobwire:routes sends the enqueuer's job to the group's namespace."""
    test_id = f"enqueue.{name}.routed"
    if name == "node-resque":
        return Result(
            test_id,
            "na",
            "node-resque is a Resque client: it reads no routing table (protocol.md 15.2 binds jobwire producers)",
        )
    queue = f"rt{name}"
    group = Keys(group_namespace(ctx.ns, "grp"))
    ctx.r.hset(ctx.k.routes(), queue, "grp")
    ok, out = _enqueue(ctx, enq, queue, f"routed-{name}")
    if not ok:
        return Result(test_id, "fail", out)
    home, routed = ctx.r.llen(ctx.k.queue(queue)), ctx.r.llen(group.queue(queue))
    if home or routed != 1 or not ctx.r.sismember(group.queues(), queue):
        return Result(
            test_id,
            "fail",
            f"after one enqueue to {queue!r} routed to group grp: {home} job(s) in "
            f"{ctx.k.queue(queue)}, {routed} in {group.queue(queue)} (expected 0 and 1)",
        )
    return Result(test_id, "pass")


def check_enqueuer(ctx: Context, name: str, enq: Implementation) -> Result:
    test_id = f"enqueue.{name}.payload"
    queue = f"pf{name.replace('-', '')}"
    ok, out = _enqueue(ctx, enq, queue, f"payload-{name}")
    if not ok:
        return Result(test_id, "fail", out)
    raws = ctx.r.lrange(ctx.k.queue(queue), 0, -1)
    if len(raws) != 1:
        return Result(test_id, "fail", f"{len(raws)} payloads in {ctx.k.queue(queue)} after one enqueue")
    raw = raws[0]
    problems = []
    try:
        doc = json.loads(raw)
    except ValueError:
        return Result(test_id, "fail", f"payload is not JSON: {raw[:200]!r}")
    why = schemas.errors("job", doc)
    if why:
        problems.append(why)
    if not ctx.r.sismember(ctx.k.queues(), queue):
        problems.append("the queue was not added to <ns>:queues")
    if name != "node-resque":
        keys = list(doc)
        if keys[:2] != ["class", "args"]:
            problems.append(f"keys {keys}: class first, args second")
        if not re.fullmatch(r"[0-9a-f]{32}", str(doc.get("id"))):
            problems.append(f"id {doc.get('id')!r} is not 32 lowercase hex characters")
        if not isinstance(doc.get("enqueued_at"), int) or abs(doc["enqueued_at"] - time.time() * 1000) > 600000:
            problems.append(f"enqueued_at {doc.get('enqueued_at')!r} is not the current time in ms")
        if out and doc.get("id") and doc["id"] not in out:
            problems.append(f"printed {out!r}, not the job id")
    why = same_value(ARGS + [f"payload-{name}"], doc.get("args"))
    if why:
        problems.append(why)
    if problems:
        return Result(test_id, "fail", ("; ".join(problems) + f"; payload {raw[:300]!r}")[:800])
    return Result(test_id, "pass")


def run_column(ctx: Context, worker: Implementation, enqueuers: dict[str, Implementation | None]) -> dict[str, Result]:
    """One worker, every enqueuer: each enqueues a jobwire.Echo; the echo must come back intact."""
    out: dict[str, Result] = {}
    wname = worker.name
    try:
        w = ctx.start_worker("mx")
    except Exception as exc:  # noqa: BLE001 - reported per cell
        for e in enqueuers:
            out[e] = Result(f"matrix.{e}.{wname}", "fail", f"the worker did not start: {exc}")
        return out
    pending = {}
    for ename, enq in enqueuers.items():
        test_id = f"matrix.{ename}.{wname}"
        if enq is None:
            out[ename] = Result(test_id, "skip", f"enqueuer {ename} not available")
            continue
        marker = f"cell-{ename}-{wname}"
        ok, msg = _enqueue(ctx, enq, "mx", marker)
        if not ok:
            out[ename] = Result(test_id, "fail", f"enqueue failed: {msg}")
        else:
            pending[ename] = marker
    deadline = time.monotonic() + 10
    for ename, marker in pending.items():
        test_id = f"matrix.{ename}.{wname}"

        def find(marker=marker):
            return [e for e in ctx.echoes() if isinstance(e.get("args"), list) and e["args"][-1:] == [marker]]

        found = ctx.wait_for(find, max(0.1, deadline - time.monotonic()))
        if not found:
            fails = [f[:300] for f in ctx.failures() if marker.encode() in f]
            out[ename] = Result(test_id, "fail", f"no echo record within 10 s; failures {fails}; {w.describe()}"[:900])
            continue
        echo = found[0]
        why = same_value(ARGS + [marker], echo.get("args"))
        if not why and echo.get("queue") != "mx":
            why = f"queue {echo.get('queue')!r}"
        out[ename] = Result(test_id, "pass" if not why else "fail", why or "")
    return out


def render_table(cells: dict[tuple[str, str], str], enqueuers, workers) -> str:
    width = max(len(e) for e in enqueuers) + 2
    cols = [max(len(w), 4) + 2 for w in workers]
    lines = [
        "enqueuer \\ worker".ljust(max(width, 18)) + "".join(w.ljust(c) for w, c in zip(workers, cols, strict=True))
    ]
    for e in enqueuers:
        row = e.ljust(max(width, 18))
        for w, c in zip(workers, cols, strict=True):
            row += cells.get((e, w), "-").ljust(c)
        lines.append(row)
    return "\n".join(lines)
