"""Protocol 1.1 tests (protocol.md section 14): delayed jobs, retries, recurring schedules.

Every test here belongs to an optional feature (delayed, retries, schedules) and runs only for an
implementation whose manifest claims it. Delayed items are stored the way a jobwire client stores
them (delay.lua) or the way resque-scheduler and node-resque do (plain RPUSH, SADD, ZADD);
schedules are written with the calls of protocol.md 14.5. Expected delays, fire ids and next fire
times come from the suite's own implementation of the formulas (vectors_1_1), never from the
worker under test.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
import time
import uuid

from . import schemas
from .checks import raw_member
from .core import MUST, Test, group
from .redisutil import redis_time_ms, scripts_for
from .vectors_1_1 import next_ms as next_fire_ms, retry_outcome

P142 = "protocol.md#142-delayed-jobs"
P143 = "protocol.md#143-promotion"
P144 = "protocol.md#144-retries"
P145 = "protocol.md#145-recurring-schedules"
D, R, S = "delayed", "retries", "schedules"
# Long beats, so that a worker that only promotes when it beats is visibly late (protocol.md 14.3).
SLOW_BEAT = {"heartbeat_ms": 3000, "lease_ms": 9000, "block_timeout_ms": 6000}


# -- helpers ---------------------------------------------------------------------------------


def item(job_class: str, args, queue: str, job_id: str | None = None, **extra) -> tuple[str, bytes]:
    """A delayed item as a jobwire client writes it: class, args, queue, id, then the rest."""
    job_id = job_id or uuid.uuid4().hex
    doc = {
        "class": job_class,
        "args": args,
        "queue": queue,
        "id": job_id,
        "enqueued_at": int(time.time() * 1000),
        **extra,
    }
    return job_id, json.dumps(doc, separators=(",", ":")).encode()


def delay(ctx, ts: int, raw: bytes) -> None:
    """delay.lua, exactly as protocol.md 14.2 shows."""
    k = ctx.k
    scripts_for(ctx.r).call(
        "delay",
        [k.delayed_schedule(), k.delayed_bucket(str(ts)), k.delayed_timestamps(raw.decode()), k.wake_schedule()],
        [ts, raw],
    )


def delay_like_a_peer(ctx, ts: int, raw: bytes) -> None:
    """resque-scheduler's three separate commands: no wake marker."""
    ctx.r.rpush(ctx.k.delayed_bucket(str(ts)), raw)
    ctx.r.sadd(ctx.k.delayed_timestamps(raw.decode("utf-8", "replace")), f"delayed:{ts}")
    ctx.r.zadd(ctx.k.delayed_schedule(), {str(ts): ts})


def reserved_at(ctx, w, job_id: str, timeout: float) -> int | None:
    """When the worker reserved the job: its in-flight hash's reserved_ms (Redis time, written by
    work.lua), so the runner's own polling delay does not count. The job must run a while
    (jobwire.Sleep) for the runner to see the hash. None when it was not seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = ctx.held(w)
        if job_id.encode() in held.get("payload", b""):
            return int(held["reserved_ms"])
        time.sleep(0.01)
    return None


def next_second(ctx, ahead_ms: int) -> int:
    """The first whole Redis second at least ahead_ms from now."""
    return -(-(redis_time_ms(ctx.r) + ahead_ms) // 1000)


def retry_members(ctx) -> list[tuple[bytes, float]]:
    return ctx.r.zrange(ctx.k.retry_set(), 0, -1, withscores=True)


def attempts_of(member: bytes) -> list:
    _, _, payload = member.partition(b" ")
    doc = json.loads(payload)
    return doc.get("attempts", [])


def set_schedule(ctx, name: str, definition: dict, next_ms: int) -> bytes:
    """protocol.md 14.5's MULTI, with a chosen next fire time."""
    raw = json.dumps(definition, separators=(",", ":")).encode()
    pipe = ctx.r.pipeline(transaction=True)
    pipe.hset(ctx.k.schedule(name), "definition", raw)
    pipe.zadd(ctx.k.schedules(), {name: next_ms})
    pipe.lpush(ctx.k.wake_schedule(), "1")
    pipe.ltrim(ctx.k.wake_schedule(), 0, 0)
    pipe.execute()
    return raw


def schedule_state(ctx, name: str) -> dict:
    return {k.decode(): v.decode("utf-8", "replace") for k, v in ctx.r.hgetall(ctx.k.schedule(name)).items()}


def fire_id(name: str, fire_ms: int) -> str:
    return hashlib.sha256(f"jobwire-schedule\0{name}\0{fire_ms}".encode()).hexdigest()[:32]


# -- delayed jobs ----------------------------------------------------------------------------


@group(
    Test(
        "delayed.promote.on-time",
        P143,
        MUST,
        "a delayed job stored before the worker started is reserved at its bucket second, not before, within 700 ms",
        feature=D,
    ),
    Test(
        "delayed.promote.wake-earlier",
        P143,
        MUST,
        "an idle worker learns of a new, earlier delayed job at once: 5 of 6 are reserved within 700 ms of their time",
        feature=D,
    ),
    Test(
        "delayed.promote.cleans-up",
        P142,
        MUST,
        "a promoted item leaves its bucket, <ns>:delayed_queue_schedule and its timestamps: set",
        feature=D,
    ),
    weight=2.0,
)
def delayed_timing(ctx):
    lateness = []
    # stored before the worker exists: the worker must block only until the due time
    ts_a = next_second(ctx, 3500)
    a_id, a_raw = item("jobwire.Sleep", [800], "dq")
    delay(ctx, ts_a, a_raw)
    w = ctx.start_worker("dq", **SLOW_BEAT)
    got = reserved_at(ctx, w, a_id, ts_a - redis_time_ms(ctx.r) / 1000 + 4)
    ok = got is not None and ts_a * 1000 <= got <= ts_a * 1000 + 700
    if got is not None:
        lateness.append(got - ts_a * 1000)
    ctx.check("delayed.promote.on-time", ok, f"due at {ts_a * 1000} ms (Redis time); reserved at {got}: {w.describe()}")
    ctx.check(
        "delayed.promote.cleans-up",
        not ctx.r.exists(ctx.k.delayed_bucket(str(ts_a)), ctx.k.delayed_timestamps(a_raw.decode()))
        and ctx.r.zscore(ctx.k.delayed_schedule(), str(ts_a)) is None,
        "the bucket, its zset member or the timestamps set is still there after promotion",
    )
    ctx.wait_echo(a_id, 3)
    # stored while the worker is blocked for up to 3 s, at random moments: six independent
    # samples, of which one may be late (a loaded machine); a worker that only looks when it
    # beats passes five of six by luck about 0.3 % of the time
    late = []
    rng = random.Random()
    for n in range(6):
        time.sleep(0.3 + rng.uniform(0, 2.0))
        ts = next_second(ctx, 1300)
        job_id, raw = item("jobwire.Sleep", [600, f"b{n}"], "dq")
        delay(ctx, ts, raw)
        got = reserved_at(ctx, w, job_id, 5)
        late.append(None if got is None else got - ts * 1000)
        ctx.wait_echo(job_id, 3)
    ok = all(x is None or x >= 0 for x in late) and sum(1 for x in late if x is not None and x <= 700) >= 5
    lateness += [x for x in late if x is not None]
    ctx.check(
        "delayed.promote.wake-earlier",
        ok,
        f"reserved {late} ms after the due second (heartbeat 3000 ms, block timeout 6000 ms): {w.describe()}",
    )
    if lateness:
        ctx.figures["promotion_lateness_ms_median"] = round(statistics.median(lateness), 1)
        ctx.figures["promotion_lateness_ms_max"] = round(max(lateness), 1)


@group(
    Test(
        "delayed.promote.peer-items",
        P142,
        MUST,
        "items resque-scheduler and node-resque store (no id, no wake marker) are promoted with their bytes kept",
        feature=D,
    ),
    Test(
        "delayed.promote.malformed",
        P143,
        MUST,
        "a malformed delayed item is failed as jobwire.InvalidDelayedItem with its bytes kept; items behind it run",
        feature=D,
    ),
)
def delayed_items(ctx):
    ctx.start_worker("dp")
    now = redis_time_ms(ctx.r) // 1000
    node = b'{"class":"jobwire.Echo","queue":"dp","args":["node-resque"]}'
    ruby = b'{"class":"jobwire.Fail","args":["ruby item"],"queue":"dp"}'
    delay_like_a_peer(ctx, now - 2, node)
    delay_like_a_peer(ctx, now - 1, ruby)
    found = ctx.wait_for(lambda: [e for e in ctx.echoes() if e.get("args") == ["node-resque"]], 4)
    rec = ctx.wait_for(lambda: [json.loads(x) for x in ctx.failures() if b"ruby item" in x], 4)
    raw_rec = [x for x in ctx.failures() if b"ruby item" in x]
    ctx.check(
        "delayed.promote.peer-items",
        bool(found) and found[0].get("id") is None and bool(rec) and raw_member(raw_rec[0], "payload") == ruby,
        f"node item echoed: {bool(found)}; ruby item's failure record: {raw_rec[:1]}",
    )
    bad = [
        b"{not json",
        b'["an","array"]',
        b'{"args":[],"queue":"dp"}',
        b'{"class":"X","args":[],"queue":"bad queue"}',
        b'{"class":"X","args":[]}',
    ]
    ts = now - 1
    for raw in bad:
        ctx.r.rpush(ctx.k.delayed_bucket(str(ts)), raw)
    good_id, good = item("jobwire.Echo", ["behind the bad ones"], "dp")
    ctx.r.rpush(ctx.k.delayed_bucket(str(ts)), good)
    ctx.r.zadd(ctx.k.delayed_schedule(), {str(ts): ts})
    ran = ctx.wait_echo(good_id, 4) is not None
    records = (
        ctx.wait_for(
            lambda: (
                [json.loads(x) for x in ctx.failures() if b"jobwire.InvalidDelayedItem" in x]
                if len([x for x in ctx.failures() if b"jobwire.InvalidDelayedItem" in x]) == len(bad)
                else None
            ),
            4,
        )
        or []
    )
    kept = [r.get("payload") for r in records]
    want = [
        "{not json",
        ["an", "array"],
        {"args": [], "queue": "dp"},
        {"class": "X", "args": [], "queue": "bad queue"},
        {"class": "X", "args": []},
    ]
    kept_ok = all(
        k == w or (isinstance(k, str) and json.loads(json.dumps(w)) == _maybe_json(k))
        for k, w in zip(kept, want, strict=False)
    ) and len(kept) == len(bad)
    schema_ok = all(schemas.validator("failure").is_valid(r) for r in records)
    ctx.check(
        "delayed.promote.malformed",
        ran and kept_ok and schema_ok and not ctx.r.exists(ctx.k.delayed_bucket(str(ts))),
        f"good item ran: {ran}; records: {records}",
    )


def _maybe_json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


@group(
    Test(
        "delayed.promote.exactly-once",
        P143,
        MUST,
        "three workers promoting the same 60 due items run each exactly once",
        feature=D,
    ),
    Test(
        "delayed.promote.while-busy",
        P143,
        MUST,
        "a worker busy with a long job still promotes a due item within 1500 ms",
        feature=D,
    ),
    weight=2.0,
)
def delayed_concurrency(ctx):
    workers = [ctx.start_worker("dc") for _ in range(3)]  # all three idle before anything falls due
    ts = next_second(ctx, 1500)
    ids = []
    for n in range(60):
        job_id, raw = item("jobwire.Echo", [n], "dc")
        delay(ctx, ts + (n % 2), raw)
        ids.append(job_id)
    ctx.wait_for(lambda: all(ctx.echo_for(i) for i in ids), 15)
    time.sleep(0.5)
    counts = {i: len(ctx.echo_for(i)) for i in ids}
    ctx.check(
        "delayed.promote.exactly-once",
        all(c == 1 for c in counts.values()),
        f"runs per job: {sorted(set(counts.values()))}; missing {sum(1 for c in counts.values() if c == 0)}: "
        f"{workers[0].describe()}",
    )
    for w in workers[1:]:
        w.kill_all()
    sleeper = ctx.enqueue("dc", "jobwire.Sleep", [4000])
    ctx.wait_holding(workers[0], sleeper, 5)
    ts = next_second(ctx, 600)
    _, raw = item("jobwire.Echo", ["queued while busy"], "dc-other")
    delay(ctx, ts, raw)
    moved = ctx.wait_for(lambda: ctx.r.llen(ctx.k.queue("dc-other")) == 1 and redis_time_ms(ctx.r), 3, 0.01)
    busy = not ctx.echo_for(sleeper)
    ctx.check(
        "delayed.promote.while-busy",
        bool(moved) and busy and moved - ts * 1000 <= 1500,
        f"moved at {moved} for due {ts * 1000} (still busy: {busy}): {workers[0].describe()}",
    )


# -- retries ---------------------------------------------------------------------------------


@group(
    Test(
        "retry.attempts.exhausted",
        P144,
        MUST,
        "a job failing every time runs max_attempts times, keeps its id, then one failure record holds its history",
        feature=R,
    ),
    Test(
        "retry.history.entries",
        P144,
        MUST,
        "each attempt entry has the members of $defs/attempt in order, with the attempt's error and delay",
        feature=R,
    ),
    Test(
        "retry.delay.observed",
        P144,
        MUST,
        "with a fixed 400 ms delay, each next attempt starts no earlier than 400 ms after the last",
        feature=R,
    ),
    Test(
        "retry.success-after-retry",
        P144,
        MUST,
        "a job that fails once then succeeds runs twice and leaves no failure record",
        feature=R,
    ),
)
def retry_basics(ctx):
    policy = {"max_attempts": 3, "backoff": "fixed", "delay_ms": 400, "jitter": 0}
    w = ctx.start_worker("rq")
    job_id = ctx.enqueue("rq", "jobwire.Flaky", [10], retry=policy)
    ok_id = ctx.enqueue("rq", "jobwire.Flaky", [1], retry=policy)
    # Each attempt's echo appeared after the last look that did not show it (`before`) and by
    # the look that did (`seen`), both in Redis time. The suite's thread can stall (its GIL is
    # shared by the groups running beside it), so a gap is judged by its bounds only: too short
    # only if it must be, too long only if it must be; never by one stalled look.
    seen: dict[int, int] = {}
    before: dict[int, int] = {}
    last_look = [redis_time_ms(ctx.r)]

    def watch():
        now = redis_time_ms(ctx.r)
        for e in ctx.echo_for(job_id):
            if e.get("attempt") not in seen:
                seen[e.get("attempt")] = now
                before[e.get("attempt")] = last_look[0]
        last_look[0] = now
        return len(seen) >= 3 and ctx.failure_for(job_id)

    ctx.wait_for(watch, 10, 0.005)
    raw, record = ctx.wait_failure(job_id, 3)
    runs = [e.get("attempt") for e in ctx.echo_for(job_id)]
    payload = (record or {}).get("payload") or {}
    history = payload.get("attempts") if isinstance(payload, dict) else None
    ctx.check(
        "retry.attempts.exhausted",
        runs == [1, 2, 3]
        and record is not None
        and payload.get("id") == job_id
        and record.get("error") == "flaky attempt 3"
        and isinstance(history, list)
        and len(history) == 2
        and len(ctx.failure_for(job_id)) == 1
        and not retry_members(ctx),
        f"attempts run {runs}; record {raw!r}",
    )
    order = ["attempt", "failed_at_ms", "exception", "error", "worker", "queue", "delay_ms"]
    entries_ok = (
        isinstance(history, list)
        and len(history) == 2
        and all(
            list(h)[:7] == order
            and h["attempt"] == n
            and h["error"] == f"flaky attempt {n}"
            and h["worker"] == w.worker_id
            and h["queue"] == "rq"
            and h["delay_ms"] == 400
            and isinstance(h["exception"], str)
            and h["exception"]
            for n, h in enumerate(history, 1)
        )
    )
    entries_ok = entries_ok and schemas.validator("job").is_valid(payload)
    ctx.check("retry.history.entries", entries_ok, f"attempts {history}")
    # (at least, at most) ms between attempt n's echo and attempt n + 1's
    gaps = [(before[n + 1] - seen[n], seen[n + 1] - before[n]) for n in (1, 2) if n in seen and n + 1 in seen]
    ctx.check(
        "retry.delay.observed",
        len(gaps) == 2 and all(most >= 380 and least <= 2500 for least, most in gaps),
        f"gaps between attempts (at least, at most) {gaps} ms for a 400 ms delay",
    )
    ctx.wait_for(lambda: len(ctx.echo_for(ok_id)) >= 2, 5)
    time.sleep(0.3)
    ctx.check(
        "retry.success-after-retry",
        [e.get("attempt") for e in ctx.echo_for(ok_id)] == [1, 2] and not ctx.failure_for(ok_id),
        f"runs {[e.get('attempt') for e in ctx.echo_for(ok_id)]}, failure records {len(ctx.failure_for(ok_id))}",
    )


@group(
    Test(
        "retry.delay.formula",
        P144,
        MUST,
        "the chosen delays and the retry set's due times follow protocol.md 14.4's formula exactly",
        feature=R,
    ),
    Test(
        "retry.payload.bytes-kept",
        P144,
        MUST,
        "a retried payload differs from the original only by the appended attempts member",
        feature=R,
    ),
)
def retry_formula(ctx):
    long_policy = {"max_attempts": 2, "delay_ms": 30000, "jitter": 0.5}
    grow_policy = {"max_attempts": 3, "delay_ms": 150, "factor": 3, "jitter": 0.5}
    t0 = redis_time_ms(ctx.r)
    ids = [ctx.enqueue("rf", "jobwire.Flaky", [9], retry=long_policy, job_id=None) for _ in range(3)]
    grow = ctx.enqueue("rf", "jobwire.Flaky", [9], retry=grow_policy)
    original = (
        b'{"class":"jobwire.Flaky", "args":[9],"id":"bytes-kept-1","big":123456789012345678901234567890,'
        b'"f":1.0,"retry":{"max_attempts":2,"delay_ms":30000} }'
    )
    ctx.push_raw("rf", original)
    ctx.start_worker("rf")
    ctx.wait_for(lambda: len(retry_members(ctx)) == 4 and ctx.failure_for(grow), 10)
    t1 = redis_time_ms(ctx.r)
    problems = []
    by_id = {}
    for member, score in retry_members(ctx):
        doc = json.loads(member.partition(b" ")[2])
        by_id[doc.get("id")] = (member, score, doc)
    for job_id in ids:
        if job_id not in by_id:
            problems.append(f"{job_id} not waiting for a retry")
            continue
        _, score, doc = by_id[job_id]
        _, want = retry_outcome(long_policy, job_id, 1)
        got = doc["attempts"][0].get("delay_ms")
        if got != want or not t0 + want <= score <= t1 + want:
            problems.append(f"{job_id}: delay_ms {got}, formula {want}; due {score} not in [{t0 + want}, {t1 + want}]")
    _, record = ctx.wait_failure(grow, 1)
    grow_history = ((record or {}).get("payload") or {}).get("attempts") or []
    want_grow = [retry_outcome(grow_policy, grow, n)[1] for n in (1, 2)]
    if [h.get("delay_ms") for h in grow_history] != want_grow:
        problems.append(f"exponential delays {[h.get('delay_ms') for h in grow_history]}, formula {want_grow}")
    ctx.check("retry.delay.formula", not problems, "; ".join(problems))
    member = by_id.get("bytes-kept-1", (b"",))[0]
    cut = original.rindex(b"}")
    prefix, suffix = b"rf " + original[:cut] + b',"attempts":[', b"]" + original[cut:]
    middle = (
        member[len(prefix) : len(member) - len(suffix)]
        if member.startswith(prefix) and member.endswith(suffix)
        else b""
    )
    try:
        entry_ok = isinstance(json.loads(middle), dict)
    except ValueError:
        entry_ok = False
    ctx.check("retry.payload.bytes-kept", entry_ok, f"original {original!r}; retry member {member!r}")


@group(
    Test(
        "retry.policy.opt-out",
        P144,
        MUST,
        "retry false and max_attempts 1 are never retried, even under a worker default policy",
        feature=R,
    ),
    Test(
        "retry.policy.default",
        P144,
        MUST,
        "a job without a retry member gets the worker's --default-retry (JOBWIRE_DEFAULT_RETRY)",
        feature=R,
    ),
    Test(
        "retry.policy.not-for-protocol-failures",
        P144,
        MUST,
        "an unknown class is failed at once, not retried (no attempts member), under a default policy",
        feature=R,
    ),
)
def retry_policies(ctx):
    default = '{"max_attempts":3,"backoff":"fixed","delay_ms":100,"jitter":0}'
    never = ctx.enqueue("rp", "jobwire.Flaky", [5], retry=False)
    one = ctx.enqueue("rp", "jobwire.Flaky", [5], retry={"max_attempts": 1})
    plain = ctx.enqueue("rp", "jobwire.Flaky", [1])
    unknown = ctx.enqueue("rp", "jobwire.NoSuchClass", [1])
    ctx.start_worker("rp", env={"JOBWIRE_DEFAULT_RETRY": default})
    ctx.wait_for(
        lambda: (
            len(ctx.echo_for(plain)) >= 2
            and ctx.failure_for(never)
            and ctx.failure_for(one)
            and ctx.failure_for(unknown)
        ),
        8,
    )
    time.sleep(0.5)
    runs = {name: [e.get("attempt") for e in ctx.echo_for(i)] for name, i in (("never", never), ("one", one))}
    ctx.check(
        "retry.policy.opt-out",
        runs == {"never": [1], "one": [1]} and len(ctx.failure_for(never)) == 1 and len(ctx.failure_for(one)) == 1,
        f"runs {runs}",
    )
    ctx.check(
        "retry.policy.default",
        [e.get("attempt") for e in ctx.echo_for(plain)] == [1, 2] and not ctx.failure_for(plain),
        f"runs of a job without a policy: {[e.get('attempt') for e in ctx.echo_for(plain)]}",
    )
    _, rec = ctx.wait_failure(unknown, 1)
    ctx.check(
        "retry.policy.not-for-protocol-failures",
        rec is not None
        and rec.get("exception") == "jobwire.UnknownClass"
        and not retry_members(ctx)
        and "attempts" not in (rec.get("payload") or {}),
        f"record {rec}; retry set {retry_members(ctx)}",
    )


# -- recurring schedules ---------------------------------------------------------------------


@group(
    Test(
        "schedule.fire.exactly-once",
        P145,
        MUST,
        "an every-1000-ms schedule with two workers enqueues each fire time once, with the id of protocol.md 14.5",
        feature=S,
    ),
    Test(
        "schedule.fire.payload",
        P145,
        MUST,
        "a fire's payload has class, args, id, enqueued_at, schedule, scheduled_for_ms in that order",
        feature=S,
    ),
    Test(
        "schedule.fire.counters",
        P145,
        MUST,
        "the schedule hash counts fired and records last_fire_ms and last_job_id",
        feature=S,
    ),
    weight=2.0,
)
def schedule_interval(ctx):
    ctx.start_worker("sq")
    ctx.start_worker("sq")
    first = (redis_time_ms(ctx.r) // 1000 + 1) * 1000
    set_schedule(ctx, "tick", {"every_ms": 1000, "queue": "sq", "class": "jobwire.Echo", "args": ["tick"]}, first)
    set_schedule(
        ctx,
        "failing",
        {"every_ms": 3600000, "queue": "sq", "class": "jobwire.Fail", "args": ["from a schedule"]},
        first,
    )
    time.sleep(max(0.0, (first - redis_time_ms(ctx.r)) / 1000) + 4.3)
    for w in ctx.workers:
        w.kill_all()  # stop firing, so that the counters below and what ran can be compared
    echoes = [e for e in ctx.echoes() if e.get("args") == ["tick"]]
    ids = [e.get("id") for e in echoes]
    expected = {fire_id("tick", first + n * 1000): n for n in range(12)}
    ok = len(ids) >= 3 and len(set(ids)) == len(ids) and all(i in expected for i in ids)
    ctx.check(
        "schedule.fire.exactly-once",
        ok,
        f"{len(ids)} fires, {len(set(ids))} distinct; ids known: {[i in expected for i in ids]}",
    )
    raw_records = [x for x in ctx.failures() if b"from a schedule" in x]
    order_ok = False
    if len(raw_records) == 1:
        payload = raw_member(raw_records[0], "payload") or b""
        try:
            doc = json.loads(payload)
            order_ok = (
                list(doc)[:6] == ["class", "args", "id", "enqueued_at", "schedule", "scheduled_for_ms"]
                and doc["schedule"] == "failing"
                and doc["scheduled_for_ms"] == first
                and doc["id"] == fire_id("failing", first)
                and doc["args"] == ["from a schedule"]
            )
        except (ValueError, KeyError):
            order_ok = False
    ctx.check("schedule.fire.payload", order_ok, f"failure records of the failing schedule: {raw_records}")
    state = schedule_state(ctx, "tick")
    last = int(state.get("last_fire_ms", "0") or 0)
    enqueued = set(ids)  # fires that ran, wait in the queue, or were held when the workers died
    for raw in ctx.r.lrange(ctx.k.queue("sq"), 0, -1) + [
        ctx.r.hget(ctx.k.inflight(w.worker_id), "payload") or b"" for w in ctx.workers
    ]:
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("schedule") == "tick":
            enqueued.add(doc.get("id"))
    ctx.check(
        "schedule.fire.counters",
        state.get("fired") == str(len(enqueued))
        and state.get("last_job_id") == fire_id("tick", last)
        and last in [first + n * 1000 for n in range(12)],
        f"state {state}; {len(enqueued)} fires enqueued, {len(ids)} ran",
    )


@group(
    Test(
        "schedule.cron.next",
        P145,
        MUST,
        "after firing a cron schedule the next fire time is the one protocol.md 14.5's dialect gives",
        feature=S,
    ),
    Test(
        "schedule.missed.counted",
        P145,
        MUST,
        "fire times past their grace are counted as missed and not enqueued; the next is in the future",
        feature=S,
    ),
    Test(
        "schedule.broken.reported",
        P145,
        MUST,
        "a broken schedule gets an error and next fire time +inf; other schedules still fire",
        feature=S,
    ),
)
def schedule_rules(ctx):
    now = redis_time_ms(ctx.r)
    if now % 60000 > 40000:
        # Not in a minute's last 20 s: a worker still starting when the next minute begins would
        # fire that minute too (or count `minute` as missed), and the expected state is gone.
        time.sleep((60000 - now % 60000 + 500) / 1000)
        now = redis_time_ms(ctx.r)
    minute = now // 60000 * 60000
    crons = {"c1": "17 3 * * 2", "c2": "*/7 9-17 1,15 * *", "c3": "0 0 13 * 5"}
    for name, expr in crons.items():
        set_schedule(ctx, name, {"cron": expr, "queue": "sr", "class": "jobwire.Echo", "args": [name]}, minute)
    start = now - 3 * 60000 - 30000
    set_schedule(
        ctx,
        "slow",
        {
            "every_ms": 60000,
            "start_ms": start,
            "queue": "sr",
            "class": "jobwire.Echo",
            "args": ["slow"],
            "misfire_grace_ms": 1000,
        },
        start,
    )
    set_schedule(ctx, "bad-cron", {"cron": "61 * * * *", "queue": "sr", "class": "X"}, 1)
    ctx.r.hset(ctx.k.schedule("not-json"), "definition", b"{nope")
    ctx.r.zadd(ctx.k.schedules(), {"not-json": 2, "orphan": 3})
    set_schedule(ctx, "good", {"every_ms": 1000, "queue": "sr", "class": "jobwire.Echo", "args": ["good"]}, now)
    ctx.start_worker("sr")
    ctx.wait_for(
        lambda: (
            all(ctx.r.zscore(ctx.k.schedules(), n) not in (None, float(minute)) for n in crons)
            and all([e for e in ctx.echoes() if e.get("args") == [n]] for n in crons)
            and schedule_state(ctx, "slow").get("missed")
        ),
        6,
    )
    problems = []
    for name, expr in crons.items():
        want = next_fire_ms({"cron": expr}, minute)
        got = ctx.r.zscore(ctx.k.schedules(), name)
        fired = [e for e in ctx.echoes() if e.get("args") == [name]]
        if got != want or len(fired) != 1 or fired[0].get("id") != fire_id(name, minute):
            problems.append(f"{name} ({expr}): next {got}, want {want}; fired {len(fired)}")
    ctx.check("schedule.cron.next", not problems, "; ".join(problems))
    state = schedule_state(ctx, "slow")
    score = ctx.r.zscore(ctx.k.schedules(), "slow")
    ctx.check(
        "schedule.missed.counted",
        state.get("missed") == "4"
        and state.get("last_missed_ms") == str(start + 3 * 60000)
        and not state.get("fired")
        and score == start + 4 * 60000
        and not [e for e in ctx.echoes() if e.get("args") == ["slow"]],
        f"state {state}, next {score}",
    )
    ctx.wait_for(
        lambda: all(ctx.r.zscore(ctx.k.schedules(), n) == float("inf") for n in ("bad-cron", "not-json", "orphan")), 4
    )
    broken = {
        n: (ctx.r.zscore(ctx.k.schedules(), n), schedule_state(ctx, n).get("error"))
        for n in ("bad-cron", "not-json", "orphan")
    }
    good = ctx.wait_for(lambda: [e for e in ctx.echoes() if e.get("args") == ["good"]], 3)
    ctx.check(
        "schedule.broken.reported",
        all(score == float("inf") and error for score, error in broken.values())
        and bool(good)
        and ctx.r.hget(ctx.k.schedule("not-json"), "definition") == b"{nope",
        f"broken schedules {broken}; the good one fired: {bool(good)}",
    )
