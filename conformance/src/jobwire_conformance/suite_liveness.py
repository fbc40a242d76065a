"""Liveness tests: beats while idle, a beat answered 'unknown', and a dead predecessor with the
worker's own id. Each one is aimed at a way a worker can look alive to the other tests and still
break protocol.md 7.3, 7.6 or 8.3."""

from __future__ import annotations

import dataclasses
import itertools
import os
import socket
import time
from typing import TYPE_CHECKING

from .core import MUST, TIMINGS, Failed, Test, group
from .impl import WorkerProc
from .redisutil import Scripts, redis_time_ms, utc
from .suite_recovery import _fake_dead_worker

if TYPE_CHECKING:  # image.py needs the optional docker SDK
    from .image import ImageWorker

P73 = "protocol.md#73-life-of-a-worker"
P76 = "protocol.md#76-heartbeat-and-recovery"
P83 = "protocol.md#83-blocking-while-idle"

# An idle worker with a block timeout far longer than its beat period and its lease: a worker that
# beats only between blocks renews its lease every 4 s, and loses it (1.5 s) in between.
IDLE = {"heartbeat_ms": 250, "lease_ms": 1500, "block_timeout_ms": 4000}
IDLE_GAP_MS = 1000  # the longest gap allowed between two renewals: 4 beat periods
OBSERVE_S = 3.0


def _renewals(ctx, wid: str, seconds: float):
    """Sample the lease and the heartbeat value every 20 ms: (monotonic times of lease renewals,
    distinct heartbeat values seen, last lease, Redis time at the end)."""
    times, beats, last = [], set(), ctx.r.zscore(ctx.k.leases(), wid)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        lease = ctx.r.zscore(ctx.k.leases(), wid)
        beat = ctx.r.hget(ctx.k.heartbeats(), wid)
        if lease is not None and last is not None and lease > last:
            times.append(time.monotonic())
        last = lease if lease is not None else last
        if beat:
            beats.add(beat)
        time.sleep(0.02)
    return [start] + times + [time.monotonic()], beats, last, redis_time_ms(ctx.r)


@group(
    Test(
        "worker.heartbeat.advances",
        P76,
        MUST,
        "an idle worker renews its lease and its heartbeat value every heartbeat-ms",
    ),
    Test(
        "worker.block.beat-bounded",
        P83,
        MUST,
        f"no block delays a beat: with a {IDLE['block_timeout_ms']} ms block timeout and {IDLE['heartbeat_ms']} ms "
        f"beats an idle worker's lease renewals are at most {IDLE_GAP_MS} ms apart",
    ),
)
def idle_beats(ctx):
    w = ctx.start_worker("ib", **IDLE)
    stamps, beats, lease, now = _renewals(ctx, w.worker_id, OBSERVE_S)
    renewals = len(stamps) - 2
    ctx.check(
        "worker.heartbeat.advances",
        renewals >= 4 and len(beats) >= 2 and lease is not None and lease > now,
        f"{renewals} lease renewals and {len(beats)} distinct heartbeat values in {OBSERVE_S} s with "
        f"--heartbeat-ms {IDLE['heartbeat_ms']} (expected >= 4 and >= 2); last lease {lease}, Redis time {now}",
    )
    gaps = [round((b - a) * 1000) for a, b in itertools.pairwise(stamps)]
    # one long gap is allowed (a loaded machine may stall any process once); a worker that blocks
    # for its whole block timeout has a single gap the length of the observation and no renewal
    long_gaps = [g for g in gaps if g > IDLE_GAP_MS]
    ctx.check(
        "worker.block.beat-bounded",
        renewals >= OBSERVE_S * 1000 / IDLE_GAP_MS and len(long_gaps) <= 1,
        f"{renewals} renewals; gaps between lease renewals {gaps} ms (the first from the start of the "
        f"observation, the last to its end); at most one may exceed {IDLE_GAP_MS} ms; {w.describe()}",
    )


@group(
    Test(
        "worker.heartbeat.unknown-reregisters",
        P76,
        MUST,
        "a busy worker whose beat answers 'unknown' (it was recovered as dead) registers again at once, "
        "not only when its job ends",
    ),
    weight=1.5,
)
def beat_unknown(ctx):
    w = ctx.start_worker("bu")
    job_id, raw = ctx.payload("jobwire.Sleep", [6000])
    ctx.push_raw("bu", raw)
    ctx.wait_holding(w, job_id, 5)
    time.sleep(0.3)
    wid, k = w.worker_id, ctx.k
    # recover the worker as a peer does once its lease lapsed (mode "dead": no lease check, no race
    # with its next beat); the job goes back to its queue and every key of the id is removed
    queue = (ctx.r.hget(k.inflight(wid), "queue") or b"bu").decode()
    reply = Scripts(ctx.r).call(
        "unregister",
        k.unregister_keys(wid, queue),
        [wid, "dead", queue, utc("%Y/%m/%d %H:%M:%S UTC"), 3, "conformance-peer:1:bu"],
    )
    # the reply, not the workers set: a worker that beats within 200 ms may be back already
    done = isinstance(reply, list) and reply and reply[0] in (b"done", "done")
    ctx.require(done, f"the suite could not recover the worker: unregister.lua answered {reply!r}")
    t0 = time.monotonic()
    back = ctx.wait_for(
        lambda: ctx.r.sismember(k.workers(), wid) and (ctx.r.zscore(k.leases(), wid) or 0) > redis_time_ms(ctx.r),
        3.0,
        0.02,
    )
    took = time.monotonic() - t0
    running = not ctx.echo_for(job_id)
    ctx.check(
        "worker.heartbeat.unknown-reregisters",
        bool(back) and running and w.alive(),
        f"registered again: {bool(back)} ({took:.2f} s after the recovery, with --heartbeat-ms 200; the "
        f"6 s job still running: {running}); {w.describe()}",
    )


HOLD = 'while [ ! -e "$0" ]; do sleep 0.01; done; exec "$@"'  # wait for the flag file, then become the worker


def start_held(ctx, queues: str) -> tuple[WorkerProc | ImageWorker, str]:
    """Start the worker command under a shell that waits for a flag file and then execs it: the pid
    (hence the worker id <host>:<pid>:<queues>) is known before the worker runs. Returns the process
    and the flag file; creating the file releases the worker."""
    flag = os.path.join(ctx.log_dir, f"release-{ctx.ns}")
    held = dataclasses.replace(ctx.impl, worker_argv=["/bin/sh", "-c", HOLD, flag, *ctx.impl.worker_argv])
    values = dict(TIMINGS, queues=queues, redis_url=ctx.redis_url, namespace=ctx.ns)
    w: WorkerProc | ImageWorker
    if ctx.impl.image:  # --image: the same hold, in the worker's container (image.py)
        from .image import start_held as start_held_image

        w = start_held_image(ctx.impl, values, ctx.log_dir, HOLD, flag)
    else:
        w = WorkerProc(held, values, ctx.log_dir)
    ctx.workers.append(w)
    return w, flag


@group(
    Test(
        "worker.register.recovers-predecessor",
        P73,
        MUST,
        "a worker whose own id holds a dead predecessor's in-flight job recovers it (mode dead) before "
        "registering: the job's third death poisons it",
    ),
    weight=1.5,
)
def predecessor(ctx):
    w, flag = start_held(ctx, "pd")  # the pid is known; the worker does not run yet
    host = socket.gethostname()
    planted = {}
    for pid_part in (str(w.pid), f"{w.pid}+1"):  # a process hosting several workers appends +n
        wid = f"{host}:{pid_part}:pd"
        job_id, raw = ctx.payload("jobwire.Echo", ["left by a dead predecessor"], {"extra": [1.50]})
        _fake_dead_worker(ctx, "pd", wid, raw, deaths=2, lapsed=False)
        planted[wid] = job_id
    open(flag, "w").close()  # release: the shell execs the worker, same pid

    def registered():  # the planted ids are members already: wait for the worker's own info hash
        if not w.alive():
            raise Failed(f"the worker exited: {w.describe()}")
        return next((x for x in planted if ctx.r.hget(ctx.k.worker_info(x), "impl") not in (None, b"ghost")), None)

    wid = ctx.wait_for(registered, 15, 0.02)
    if wid is None:
        raise Failed(
            f"the worker did not register as one of {sorted(planted)} (<host>:<pid>[+n]:<queues>) "
            f"within 15 s, so the suite cannot plant a predecessor for it: {w.describe()}"
        )
    w.worker_id = wid
    job_id = planted[wid]
    rec, doc = ctx.wait_failure(job_id, 5)
    time.sleep(0.3)
    echoed = ctx.echo_for(job_id)
    ok = (
        rec is not None
        and doc.get("exception") == "jobwire.PoisonJob"
        and doc.get("error", "").endswith(f"recovered as dead by {wid}")
        and not echoed
    )
    ctx.check(
        "worker.register.recovers-predecessor",
        ok,
        f"the predecessor's job (2 deaths before): record {rec[:300] if rec else None!r}, ran "
        f"{len(echoed)} times (a worker that skips the recovery is handed the job again and runs it); "
        f"failed list {[r[:200] for r in ctx.failures()]}; {w.describe()}",
    )
