"""Crash recovery, poison jobs, recovery of expired peers, Redis restarts and outages."""

from __future__ import annotations

import os
import signal
import time

from .checks import failure_write_problems, raw_member
from .core import MUST, SHOULD, Failed, Test, group
from .redisutil import Scripts, pid_alive, utc

P74 = "protocol.md#74-running-a-job"
P76 = "protocol.md#76-heartbeat-and-recovery"
P77 = "protocol.md#77-redis-unavailable"
P86 = "protocol.md#86-recover-a-dead-worker"
P9 = "protocol.md#9-delivery-guarantees"


@group(
    Test(
        "recovery.sigkill.exactly-once",
        P9,
        MUST,
        "a worker SIGKILLed during a job: a new worker recovers the job and it completes exactly once",
    ),
    Test(
        "recovery.sigkill.no-orphan",
        P74,
        MUST,
        "SIGKILL of a forking master also ends the child running the job (no orphan)",
    ),
    Test(
        "recovery.sigkill.dead-worker-removed",
        P76,
        MUST,
        "the dead worker's id and keys are removed by the worker that recovers it",
    ),
    weight=2,
)
def sigkill_recovery(ctx):
    w1 = ctx.start_worker("ck")
    job_id, raw = ctx.payload("jobwire.Sleep", [3000], {"extra": "kept"})
    ctx.push_raw("ck", raw)
    if not ctx.wait_for(lambda: ctx.r.llen(ctx.k.queue("ck")) == 0, 5, 0.01):
        raise Failed(f"the worker did not take the job within 5 s: {w1.describe()}")
    time.sleep(0.05)
    t_held = time.monotonic()
    children = []
    if ctx.impl.mode == "fork":  # wait until the child running the job exists
        children = ctx.wait_for(w1.children, 2.5, 0.01) or []
    time.sleep(0.1)
    children = children + [p for p in w1.children() if p not in children]
    w1.proc.send_signal(signal.SIGKILL)  # the master only, not its process group
    t_kill = time.monotonic() - t_held
    w1.wait(5)
    if ctx.echo_for(job_id):
        raise Failed(f"inconclusive: the 3 s job finished before the SIGKILL ({t_kill:.1f} s after it was reserved)")
    survivors = ctx.wait_for(lambda: not [p for p in children if pid_alive(p)], 1.0)
    orphans = [p for p in children if pid_alive(p)]
    if ctx.impl.mode != "fork":  # nothing to check: an empty list of children would pass vacuously
        ctx.na(
            "recovery.sigkill.no-orphan",
            f"not applicable: the worker runs jobs in its own process (mode {ctx.impl.mode}): no child to outlive it",
        )
    elif not children:
        ctx.fail("recovery.sigkill.no-orphan", "no child process was running the job in fork mode")
    else:
        ctx.check(
            "recovery.sigkill.no-orphan",
            survivors is not None,
            f"child processes {orphans} outlived their SIGKILLed master by 1 s",
        )
    w2 = ctx.start_worker("ck")
    echo = ctx.wait_echo(job_id, 10)
    gone = ctx.wait_for(
        lambda: (
            not ctx.r.sismember(ctx.k.workers(), w1.worker_id)
            and not ctx.r.exists(
                ctx.k.inflight(w1.worker_id), ctx.k.worker_info(w1.worker_id), ctx.k.worker_record(w1.worker_id)
            )
        ),
        4,
    )
    ctx.check("recovery.sigkill.dead-worker-removed", bool(gone), f"{w1.worker_id} is still registered")
    time.sleep(0.5)
    echoes = ctx.echo_for(job_id)
    ctx.check(
        "recovery.sigkill.exactly-once",
        echo is not None and len(echoes) == 1 and echoes[0].get("worker") == w2.worker_id,
        f"{len(echoes)} echo records for the job (expected 1, by {w2.worker_id}): "
        f"{[(e.get('worker'), e.get('pid')) for e in echoes]}; killed {t_kill:.2f} s after the "
        f"reservation; children of the killed master {children}; {w2.describe()}",
    )
    for p in orphans:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


@group(
    Test(
        "recovery.poison.crash",
        P74,
        MUST,
        "a jobwire.Crash job fails as jobwire.PoisonJob after --max-deaths (3) deaths, payload kept",
    ),
    Test(
        "recovery.poison.not-retried",
        "protocol.md#9-delivery-guarantees",
        MUST,
        "a poisoned job is not run again: queue, in-flight hashes and deaths entry are empty",
    ),
    Test(
        "recovery.poison.crash-reason",
        P74,
        SHOULD,
        "in fork mode the poison record names the signal that ended the child",
        feature="fork-per-job",
    ),
    weight=3,
)
def poison(ctx):
    job_id, raw = ctx.payload("jobwire.Crash", [], {"extra": [1.50]})
    ctx.push_raw("cr", raw)
    # an inline worker may die of the job before the runner sees it registered: don't wait for that
    workers = [ctx.start_worker("cr", register=False)]
    deadline = time.monotonic() + 20
    rec = None
    while time.monotonic() < deadline:
        found = ctx.failure_for(job_id)
        if found:
            rec, doc = found[0]
            break
        if not workers[-1].alive():  # an inline worker dies with the job: start another
            workers.append(ctx.start_worker("cr", register=False))
        time.sleep(0.05)
    if rec is None:
        raise Failed(
            f"no failure record for the Crash job within 20 s ({len(workers)} worker starts); "
            f"deaths {ctx.r.hgetall(ctx.k.deaths())}; {workers[-1].describe()}"
        )
    problems = failure_write_problems(rec)
    if doc.get("exception") != "jobwire.PoisonJob":
        problems.append(f"exception {doc.get('exception')!r}")
    if raw_member(rec, "payload") != raw:
        problems.append("payload not kept byte for byte")
    if doc.get("queue") != "cr":
        problems.append(f"queue {doc.get('queue')!r}")
    ctx.check("recovery.poison.crash", not problems, "; ".join(problems) + f": {rec[:400]!r}")
    if ctx.wants("recovery.poison.crash-reason"):
        ctx.check(
            "recovery.poison.crash-reason",
            "signal 9" in doc.get("error", "") or "SIGKILL" in doc.get("error", ""),
            f"error {doc.get('error')!r}",
        )
    if not workers[-1].alive():
        workers.append(ctx.start_worker("cr", register=False))
    time.sleep(1.0)
    inflight = [m.decode() for m in ctx.r.smembers(ctx.k.workers()) if ctx.r.exists(ctx.k.inflight(m.decode()))]
    problems = []
    if ctx.r.llen(ctx.k.queue("cr")):
        problems.append("the job is back in its queue")
    if inflight:
        problems.append(f"in-flight hashes {inflight}")
    if ctx.r.hlen(ctx.k.deaths()):
        problems.append(f"deaths {ctx.r.hgetall(ctx.k.deaths())}")
    if len(ctx.failure_for(job_id)) != 1:
        problems.append(f"{len(ctx.failure_for(job_id))} failure records")
    ctx.check("recovery.poison.not-retried", not problems, "; ".join(problems))


@group(
    Test(
        "recovery.child-crash.requeued",
        P74,
        MUST,
        "fork mode: the children SIGKILLed mid-job, the job is requeued with one death and runs once more; "
        "the master lives on",
    ),
    weight=2,
)
def child_crash(ctx):
    if ctx.impl.mode != "fork":
        ctx.na(
            "recovery.child-crash.requeued", f"not applicable: jobs run in the worker's own process ({ctx.impl.mode})"
        )
        return
    w = ctx.start_worker("cc")
    job_id, raw = ctx.payload("jobwire.Sleep", [2500])
    ctx.push_raw("cc", raw)
    if not ctx.wait_for(lambda: ctx.r.llen(ctx.k.queue("cc")) == 0, 5, 0.01):
        raise Failed(f"the worker did not take the job within 5 s: {w.describe()}")
    time.sleep(0.3)  # the child has the job by now; standby children die too, which a worker survives
    children = w.children()
    if not children:
        raise Failed(f"no child process while the job runs in fork mode: {w.describe()}")
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if ctx.echo_for(job_id):
        raise Failed("inconclusive: the 2.5 s job finished before its child was killed")
    echo = ctx.wait_echo(job_id, 15)
    time.sleep(0.3)
    problems = []
    if echo is None:
        problems.append(
            f"the job did not run again within 15 s; failure records {[d for _, d in ctx.failure_for(job_id)]}; "
            f"deaths {ctx.r.hgetall(ctx.k.deaths())}; queue length {ctx.r.llen(ctx.k.queue('cc'))}"
        )
    elif len(ctx.echo_for(job_id)) != 1:
        problems.append(f"{len(ctx.echo_for(job_id))} echo records")
    if ctx.failure_for(job_id):
        problems.append("a failure record for a job that died once")
    if echo is not None and ctx.r.hlen(ctx.k.deaths()):
        problems.append(f"deaths left after the job succeeded: {ctx.r.hgetall(ctx.k.deaths())}")
    if not w.alive():
        problems.append("the master exited")
    ctx.check("recovery.child-crash.requeued", not problems, "; ".join(problems) + f"; {w.describe()}")


def _fake_dead_worker(ctx, queue: str, wid: str, raw: bytes, deaths: int = 0, lapsed: bool = True) -> None:
    """Register a worker with a 1 ms lease through the spec's scripts and make it hold raw
    (lapsed=False: keep the 60 s lease, as a predecessor that died a moment ago has)."""
    k, s = ctx.k, Scripts(ctx.r)
    s.call(
        "heartbeat",
        [k.workers(), k.heartbeats(), k.leases(), k.worker_started(wid), k.worker_info(wid), k.meta()],
        [
            wid,
            60000,
            "register",
            utc("%Y-%m-%d %H:%M:%S +0000"),
            "1",
            "impl",
            "ghost",
            "impl_version",
            "0",
            "spec",
            "1.0.0",
            "host",
            "ghost",
            "pid",
            "1",
            "queues",
            queue,
            "started_ms",
            "1",
            "mode",
            "fork",
            "state",
            "idle",
        ],
    )
    ctx.r.rpush(k.queue(queue), raw)
    reply = s.call(
        "work",
        k.work_keys(wid, [queue]),
        [wid, "none", "", "", utc("%Y/%m/%d %H:%M:%S UTC"), utc("%Y-%m-%dT%H:%M:%SZ"), 3, 16777216, queue],
    )
    if reply[1] != b"job":
        raise Failed(f"could not plant a held job: {reply}")
    if deaths:
        ctx.r.hset(k.deaths(), ctx.r.hget(k.inflight(wid), "job_key"), deaths)
    if lapsed:
        ctx.r.zadd(k.leases(), {wid: 1})  # lapsed long ago


@group(
    Test(
        "recovery.expired-peer",
        P76,
        MUST,
        "a live worker recovers a peer whose lease lapsed: the held job is requeued and run, the peer removed",
    ),
    Test(
        "recovery.expired-peer.poison",
        P86,
        MUST,
        "recovering a peer whose job reaches max-deaths fails it as jobwire.PoisonJob naming the recoverer",
    ),
)
def expired_peer(ctx):
    ghost = "ghost-host:4242:pq"
    job_id, raw = ctx.payload("jobwire.Echo", ["recovered"], {"extra": True})
    _fake_dead_worker(ctx, "pq", ghost, raw)
    ghost2 = "ghost-host:4343:pq"
    job2, raw2 = ctx.payload("jobwire.Echo", ["poisoned"])
    _fake_dead_worker(ctx, "pq", ghost2, raw2, deaths=2)
    w = ctx.start_worker("pq")
    echo = ctx.wait_echo(job_id, 5)
    time.sleep(0.2)
    gone = not ctx.r.sismember(ctx.k.workers(), ghost) and not ctx.r.exists(ctx.k.inflight(ghost))
    ctx.check(
        "recovery.expired-peer",
        echo is not None and gone and echo.get("worker") == w.worker_id,
        f"job ran: {echo is not None}; ghost removed: {gone}; {w.describe()}",
    )
    rec, doc = ctx.wait_failure(job2, 3)
    ok = (
        rec is not None
        and doc.get("exception") == "jobwire.PoisonJob"
        and doc.get("error", "").endswith(f"recovered as dead by {w.worker_id}")
        and not ctx.echo_for(job2)
    )
    ctx.check(
        "recovery.expired-peer.poison",
        ok,
        f"record {rec[:400] if rec else None!r}; expected jobwire.PoisonJob recovered by {w.worker_id}",
    )


@group(
    Test(
        "redis.restart",
        P77,
        MUST,
        "Redis restarts (losing every key): the worker reconnects, registers again and runs a new job",
    ),
    Test("redis.outage", P77, MUST, "Redis unreachable for 3 s: the worker stays alive and then runs a new job"),
    private_redis=True,
    weight=3,
)
def redis_restart(ctx):
    w = ctx.start_worker("rr")
    first = ctx.enqueue("rr", "jobwire.Echo", ["before"])
    ctx.require(ctx.wait_echo(first, 5) is not None, f"the first job did not run: {w.describe()}")
    if ctx.wants("redis.restart"):
        ctx.private.restart()
        ctx.r.connection_pool.disconnect()
        job = ctx.enqueue("rr", "jobwire.Echo", ["after restart"])
        echo = ctx.wait_echo(job, 12)
        registered = ctx.wait_for(lambda: ctx.r.sismember(ctx.k.workers(), w.worker_id), 3)
        ctx.check(
            "redis.restart",
            echo is not None and w.alive() and bool(registered),
            f"job ran: {echo is not None}; registered again: {bool(registered)}; {w.describe()}",
        )
    if ctx.wants("redis.outage"):
        ctx.private.stop()
        time.sleep(3.0)
        alive = w.alive()
        ctx.private.start()
        ctx.r.connection_pool.disconnect()
        job = ctx.enqueue("rr", "jobwire.Echo", ["after outage"])
        echo = ctx.wait_echo(job, 12)
        ctx.check(
            "redis.outage",
            alive and echo is not None and w.alive(),
            f"alive during the outage: {alive}; job ran: {echo is not None}; {w.describe()}",
        )


@group(
    Test(
        "recovery.stalled-worker.stale-settle",
        P76,
        MUST,
        "a worker stalled past its lease is recovered by a peer; its late outcome is stale and changes nothing",
    ),
    Test(
        "recovery.stalled-worker.reregisters",
        P76,
        MUST,
        "the stalled worker, told 'unknown' by its next beat, registers again and keeps working",
    ),
    weight=2,
)
def stalled_worker(ctx):
    a = ctx.start_worker("sw")
    job_id, raw = ctx.payload("jobwire.Sleep", [1800])
    ctx.push_raw("sw", raw)
    ctx.wait_holding(a, job_id, 5)
    a.signal(signal.SIGSTOP)  # the worker process only; a forked child keeps running
    try:
        b = ctx.start_worker("sw")
        # b recovers a once a's lease (1500 ms) lapses, then runs the job itself
        echo_b = ctx.wait_for(lambda: [e for e in ctx.echo_for(job_id) if e.get("worker") == b.worker_id], 8)
    finally:
        a.signal(signal.SIGCONT)
    ctx.require(bool(echo_b), f"the peer did not recover and run the stalled worker's job: {b.describe()}")
    time.sleep(1.5)  # a wakes up, finds itself recovered, must not settle
    processed = int(ctx.r.get(ctx.k.stat_processed()) or 0)
    problems = []
    if processed != 1:
        problems.append(f"stat:processed is {processed}; the job was settled {processed} times")
    if ctx.failures():
        problems.append(f"failure recorded: {ctx.failures()[0][:300]!r}")
    if ctx.r.llen(ctx.k.queue("sw")):
        problems.append("the job is in its queue again")
    if ctx.r.hlen(ctx.k.deaths()):
        problems.append(f"deaths left: {ctx.r.hgetall(ctx.k.deaths())}")
    ctx.check("recovery.stalled-worker.stale-settle", not problems, "; ".join(problems))
    registered = ctx.wait_for(
        lambda: ctx.r.sismember(ctx.k.workers(), a.worker_id) and ctx.r.zscore(ctx.k.leases(), a.worker_id) is not None,
        3,
    )
    # stop b so that the next job can only run on a
    b.signal(signal.SIGQUIT)
    b.wait(5)
    job2 = ctx.enqueue("sw", "jobwire.Echo", ["after the stall"])
    echo = ctx.wait_echo(job2, 5)
    ctx.check(
        "recovery.stalled-worker.reregisters",
        bool(registered) and a.alive() and echo is not None and echo.get("worker") == a.worker_id,
        f"registered again: {bool(registered)}; ran the next job: {echo is not None and echo.get('worker')}; "
        f"{a.describe()}",
    )


@group(
    Test(
        "recovery.expired-peer.at-register",
        P76,
        MUST,
        "a worker recovers the lapsed peers that heartbeat.lua lists at register, before its first beat",
    )
)
def expired_peer_at_register(ctx):
    ghost = "ghost-host:4444:rq"
    job_id, raw = ctx.payload("jobwire.Echo", ["recovered at register"])
    _fake_dead_worker(ctx, "rq", ghost, raw)
    # The first beat is 4 s away: only the register reply can make the recovery happen sooner.
    # The recovery itself (the ghost's in-flight hash gone, its job given back) is what is timed;
    # the job's run then only has to follow, since a fork-mode worker's first job also waits for
    # its job process to start (a second interpreter: seconds on a loaded machine).
    w = ctx.start_worker("rq", heartbeat_ms=4000, lease_ms=20000, block_timeout_ms=4000)
    t0 = time.monotonic()
    recovered = ctx.wait_for(lambda: not ctx.r.exists(ctx.k.inflight(ghost)), 2.5, 0.02)
    took = time.monotonic() - t0
    echo = ctx.wait_echo(job_id, 10)
    ctx.check(
        "recovery.expired-peer.at-register",
        bool(recovered) and echo is not None,
        f"the lapsed peer recovered within 2.5 s of registering (first beat at 4 s): {bool(recovered)} "
        f"({took:.2f} s); its job ran afterwards: {echo is not None}: {w.describe()}",
    )
