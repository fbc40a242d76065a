"""Worker lifecycle tests: registration, heartbeat, stats, signals, control commands."""

from __future__ import annotations

import calendar
import json
import re
import signal
import time
import urllib.parse

from . import schemas
from .checks import RUN_AT, STARTED, raw_member
from .core import MUST, SHOULD, Test, group
from .redisutil import redis_time_ms

P71 = "protocol.md#71-identity"
P73 = "protocol.md#73-life-of-a-worker"
P75 = "protocol.md#75-signals-and-the-control-channel"
P76 = "protocol.md#76-heartbeat-and-recovery"
P63 = "protocol.md#63-heartbeat-value"
P61 = "protocol.md#61-working-on-record"
P84 = "protocol.md#84-register-and-heartbeat"
P85 = "protocol.md#85-unregister-leave"
P83_BLOCK = "protocol.md#83-blocking-while-idle"
KL_R = "key-layout.md#resque-keys-shared-with-ruby-resque-and-node-resque"
KL_J = "key-layout.md#jobwire-extension-keys"


def worker_keys(ctx, wid: str) -> dict[str, object]:
    """Everything registered under a worker id: which of its keys and members still exist."""
    k = ctx.k
    return {
        "workers member": ctx.r.sismember(k.workers(), wid),
        "heartbeat field": ctx.r.hexists(k.heartbeats(), wid),
        "lease": ctx.r.zscore(k.leases(), wid) is not None,
        k.worker_record(wid): ctx.r.exists(k.worker_record(wid)),
        k.worker_started(wid): ctx.r.exists(k.worker_started(wid)),
        k.inflight(wid): ctx.r.exists(k.inflight(wid)),
        k.stat_processed_worker(wid): ctx.r.exists(k.stat_processed_worker(wid)),
        k.stat_failed_worker(wid): ctx.r.exists(k.stat_failed_worker(wid)),
        k.worker_info(wid): ctx.r.exists(k.worker_info(wid)),
        k.control(wid): ctx.r.exists(k.control(wid)),
    }


def process_title(pid: int) -> str:
    """The process title as ps shows it (Linux: /proc/<pid>/cmdline, NULs as spaces)."""
    try:
        raw = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError as exc:
        return str(exc)
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def _check_title(ctx, w, queues: str) -> None:
    """protocol.md 7.8: the prefix and the state; an idle worker is 'Waiting for <queues>'."""
    impl = re.escape(ctx.impl.impl) if ctx.impl.impl else r"[\w.-]+"
    want = re.compile(rf"^jobwire-{impl}/resque-1: Waiting for {re.escape(queues)}$")
    seen = ctx.wait_for(lambda: want.match(process_title(w.pid)), 2.0, 0.05)  # 'Starting' may linger
    ctx.check(
        "worker.process-title",
        seen is not None,
        f"process title {process_title(w.pid)!r}; an idle worker's must be "
        f"'jobwire-{ctx.impl.impl or '<impl>'}/resque-1: Waiting for {queues}'",
    )


def info(ctx, wid: str) -> dict:
    return {k.decode(): v.decode("utf-8", "replace") for k, v in ctx.r.hgetall(ctx.k.worker_info(wid)).items()}


@group(
    Test("worker.register.id-format", P71, MUST, "the worker id is <host>:<pid>:<queues as configured>"),
    Test("worker.register.workers-set", P84, MUST, "a started worker is a member of <ns>:workers"),
    Test("worker.register.started", KL_R, MUST, "<ns>:worker:<id>:started is '%Y-%m-%d %H:%M:%S +0000'"),
    Test(
        "worker.register.heartbeat-value", P63, MUST, "the heartbeat hash value validates against heartbeat.schema.json"
    ),
    Test(
        "worker.register.info",
        KL_J,
        MUST,
        "<ns>:jobwire:worker:<id> validates against worker-info.schema.json and matches the worker",
    ),
    Test(
        "worker.register.meta",
        "protocol.md#12-versioning",
        MUST,
        "registration records spec_major in <ns>:jobwire:meta",
    ),
    Test("worker.register.lease", P76, MUST, "the worker holds a lease in <ns>:jobwire:leases ending in the future"),
    Test(
        "worker.process-title",
        "protocol.md#78-process-title",
        SHOULD,
        "the process title is jobwire-<impl>/resque-1: <state>; an idle worker's state is 'Waiting for <queues>'",
    ),
    Test("stats.processed.counts-all", KL_R, MUST, "stat:processed counts every settled job, failures included"),
    Test("stats.failed.counts-failures", KL_R, MUST, "stat:failed counts failed jobs only"),
    Test(
        "stats.per-worker", KL_R, MUST, "stat:processed:<id> and stat:failed:<id> count while the worker is registered"
    ),
    Test(
        "record.working-on.cleared",
        KL_R,
        MUST,
        "an idle worker has no <ns>:worker:<id> record and no in-flight hash once its jobs settled",
    ),
    Test("stats.minutes", KL_J, MUST, "the per-minute counters record processed and failed jobs"),
    Test(
        "worker.unregister.quit",
        P85,
        MUST,
        "after SIGQUIT an idle worker exits 0 and every key and member of its id is gone",
    ),
    Test("stats.global-survive-unregister", KL_R, MUST, "global counters survive the worker's unregistration"),
)
def registration(ctx):
    queues = "rega,regb"
    w = ctx.start_worker(queues)
    wid = w.worker_id
    m = re.fullmatch(r"([^:]+):(\d+)(\+\d+)?:(.*)", wid)
    ctx.check(
        "worker.register.id-format",
        bool(m) and m.group(2) == str(w.pid) and m.group(4) == queues,
        f"worker id {wid!r}; expected <host>:{w.pid}:{queues}",
    )
    ctx.check("worker.register.workers-set", ctx.r.sismember(ctx.k.workers(), wid), "not in the workers set")
    started = (ctx.r.get(ctx.k.worker_started(wid)) or b"").decode()
    ctx.check("worker.register.started", bool(STARTED.match(started)), f"started is {started!r}")
    beat = ctx.r.hget(ctx.k.heartbeats(), wid)
    beat = beat.decode() if beat else None
    why = schemas.errors("heartbeat", beat) if beat else "missing"
    if why is None:
        stamp = calendar.timegm(time.strptime(beat[:19], "%Y-%m-%dT%H:%M:%S"))
        if abs(stamp - redis_time_ms(ctx.r) / 1000) > 5:
            why = f"{beat} is not Redis's current time"
    ctx.check("worker.register.heartbeat-value", why is None, f"heartbeat value {beat!r}: {why}")
    facts = info(ctx, wid)
    problems = []
    why = schemas.errors("worker-info", facts)
    if why:
        problems.append(why)
    if facts.get("queues") != queues:
        problems.append(f"queues {facts.get('queues')!r}")
    if facts.get("pid", "").split("+")[0] != str(w.pid):
        problems.append(f"pid {facts.get('pid')!r}, expected {w.pid}")
    if m and facts.get("host") != m.group(1):
        problems.append(f"host {facts.get('host')!r} differs from the id's {m.group(1)!r}")
    if ctx.impl.mode and facts.get("mode") != ctx.impl.mode:
        problems.append(f"mode {facts.get('mode')!r}, the manifest says {ctx.impl.mode!r}")
    if ctx.impl.impl and facts.get("impl") != ctx.impl.impl:
        problems.append(f"impl {facts.get('impl')!r}, the manifest says {ctx.impl.impl!r}")
    if facts.get("state") != "idle":
        problems.append(f"state {facts.get('state')!r}")
    ctx.check("worker.register.info", not problems, "; ".join(problems) + f" in {facts}")
    meta = ctx.r.hget(ctx.k.meta(), "spec_major")
    ctx.check("worker.register.meta", meta == b"1", f"spec_major is {meta!r}")
    lease = ctx.r.zscore(ctx.k.leases(), wid)
    now = redis_time_ms(ctx.r)
    ctx.check("worker.register.lease", lease is not None and lease > now, f"lease {lease} (Redis time {now})")
    if ctx.wants("worker.process-title"):
        _check_title(ctx, w, queues)
    # stats: 3 successes, 2 failures
    ids = [ctx.enqueue("rega", "jobwire.Echo", [n]) for n in range(3)]
    fails = [ctx.enqueue("regb", "jobwire.Fail", [f"stat failure {n}"]) for n in range(2)]
    for job_id in ids:
        ctx.require(ctx.wait_echo(job_id, 6) is not None, f"job {job_id} did not run: {w.describe()}")
    for job_id in fails:
        ctx.require(ctx.wait_failure(job_id, 6)[0] is not None, f"job {job_id} did not fail: {w.describe()}")
    processed = lambda: int(ctx.r.get(ctx.k.stat_processed()) or 0)  # noqa: E731
    ctx.wait_for(lambda: processed() >= 5, 3)
    failed = int(ctx.r.get(ctx.k.stat_failed()) or 0)
    ctx.check("stats.processed.counts-all", processed() == 5, f"stat:processed is {processed()}, expected 5")
    ctx.check("stats.failed.counts-failures", failed == 2, f"stat:failed is {failed}, expected 2")
    pw = ctx.r.get(ctx.k.stat_processed_worker(wid))
    fw = ctx.r.get(ctx.k.stat_failed_worker(wid))
    ctx.check(
        "stats.per-worker",
        pw == b"5" and fw == b"2",
        f"stat:processed:<id> {pw!r} (expected 5), stat:failed:<id> {fw!r} (expected 2)",
    )
    ctx.check(
        "record.working-on.cleared",
        not ctx.r.exists(ctx.k.worker_record(wid)) and not ctx.r.exists(ctx.k.inflight(wid)),
        "<ns>:worker:<id> or the in-flight hash remains after the jobs settled",
    )
    days = {time.strftime("%Y-%m-%d", time.gmtime(t)) for t in (time.time() - 60, time.time())}
    totals = {"processed": 0, "failed": 0}
    for day in days:
        for field, value in ctx.r.hgetall(ctx.k.minutes(day)).items():
            kind = field.decode().split(":")[0]
            if kind in totals:
                totals[kind] += int(value)
    ctx.check("stats.minutes", totals == {"processed": 5, "failed": 2}, f"minute counters total {totals}")
    w.signal(signal.SIGQUIT)
    code = w.wait(8)
    left = {k: v for k, v in worker_keys(ctx, wid).items() if v}
    ctx.check(
        "worker.unregister.quit",
        code == 0 and not left,
        f"exit status {code}; still present: {sorted(left)}; {w.describe() if code != 0 else ''}",
    )
    ctx.check(
        "stats.global-survive-unregister",
        processed() == 5 and int(ctx.r.get(ctx.k.stat_failed()) or 0) == 2,
        "global counters changed",
    )


@group(
    Test(
        "worker.signal.quit",
        P75,
        MUST,
        "SIGQUIT during a job: the job finishes and is settled, the worker leaves and exits 0",
    ),
    Test("worker.heartbeat.while-busy", P76, MUST, "the lease keeps being renewed while a job runs longer than it"),
    Test("record.working-on", P61, MUST, "while a job runs, <ns>:worker:<id> holds {queue, run_at, payload verbatim}"),
    Test("record.inflight", KL_J, MUST, "while a job runs, the in-flight hash holds queue, payload, token"),
)
def signal_quit(ctx):
    w = ctx.start_worker("sq")
    job_id, raw = ctx.payload("jobwire.Sleep", [2200], {"extra": [1.50]})
    ctx.push_raw("sq", raw)
    held = ctx.wait_holding(w, job_id, 5)
    problems = [f"{f} missing" for f in ("queue", "payload", "token") if f not in held]
    if held.get("payload") != raw:
        problems.append("payload differs from the pushed bytes")
    if held.get("queue") != b"sq":
        problems.append(f"queue {held.get('queue')!r}")
    ctx.check("record.inflight", not problems, "; ".join(problems))
    rec = ctx.r.get(ctx.k.worker_record(w.worker_id)) or b""
    problems = []
    try:
        doc = json.loads(rec)
        why = schemas.errors("working-on", doc)
        if why:
            problems.append(why)
        if doc.get("queue") != "sq":
            problems.append(f"queue {doc.get('queue')!r}")
        if not RUN_AT.match(str(doc.get("run_at"))):
            problems.append(f"run_at {doc.get('run_at')!r} is not %Y-%m-%dT%H:%M:%SZ")
        if raw_member(rec, "payload") != raw:
            problems.append("payload is not the pushed bytes verbatim")
    except ValueError:
        problems.append("not JSON")
    ctx.check("record.working-on", not problems, "; ".join(problems) + f": {rec[:300]!r}")
    l1 = ctx.r.zscore(ctx.k.leases(), w.worker_id) or 0
    time.sleep(1.6)  # longer than the 1500 ms lease
    l2 = ctx.r.zscore(ctx.k.leases(), w.worker_id) or 0
    now = redis_time_ms(ctx.r)
    ctx.check(
        "worker.heartbeat.while-busy",
        l2 > l1 and l2 > now,
        f"lease {l1} then {l2} (Redis time {now}) while a 2.2 s job runs",
    )
    w.signal(signal.SIGQUIT)
    code = w.wait(8)
    echo = ctx.echo_for(job_id)
    left = {k: v for k, v in worker_keys(ctx, w.worker_id).items() if v}
    ctx.check(
        "worker.signal.quit",
        code == 0
        and len(echo) == 1
        and not left
        and not ctx.failures()
        and ctx.r.llen(ctx.k.queue("sq")) == 0
        and int(ctx.r.get(ctx.k.stat_processed()) or 0) == 1,
        f"exit status {code}, {len(echo)} echo records, failures {ctx.failures()[:1]}, "
        f"keys left {sorted(left)}, queue length {ctx.r.llen(ctx.k.queue('sq'))}; {w.describe()}",
    )


def _term(ctx, sig, test_id):
    w = ctx.start_worker("st")
    job_id, raw = ctx.payload("jobwire.Sleep", [4000], {"extra": {"keep": "me", "n": 1.50}})
    ctx.push_raw("st", raw)
    ctx.wait_holding(w, job_id, 5)
    behind = ctx.enqueue("st", "jobwire.Echo", ["behind"])
    time.sleep(0.2)
    t0 = time.monotonic()
    w.signal(sig)
    code = w.wait(6)
    took = time.monotonic() - t0
    queue = ctx.r.lrange(ctx.k.queue("st"), 0, -1)
    time.sleep(0.3)
    problems = []
    if code != 0:
        problems.append(f"exit status {code} ({w.describe()})")
    if took > 3:
        problems.append(f"took {took:.1f} s to exit (the job must be killed at once)")
    if not queue or queue[0] != raw:
        problems.append(f"the queue's head is {queue[:1]!r}, expected the Sleep payload byte for byte")
    if len(queue) != 2:
        problems.append(f"queue holds {len(queue)} payloads, expected 2")
    if ctx.echo_for(job_id):
        problems.append("the killed job still echoed")
    if ctx.r.hlen(ctx.k.deaths()):
        problems.append(f"a death was counted: {ctx.r.hgetall(ctx.k.deaths())}")
    if ctx.failures():
        problems.append(f"a failure was recorded: {ctx.failures()[0][:200]!r}")
    left = {k: v for k, v in worker_keys(ctx, w.worker_id).items() if v}
    if left:
        problems.append(f"keys left: {sorted(left)}")
    if any(pid for pid in w.children()):
        problems.append(f"processes left behind: {w.children()}")
    ctx.check(test_id, not problems, "; ".join(problems))
    return behind


@group(
    Test(
        "worker.signal.term",
        P75,
        MUST,
        "SIGTERM during a job: the job is given back to the head of its queue unchanged, no death, exit 0",
    ),
    Test("worker.signal.int", P75, MUST, "SIGINT behaves as SIGTERM"),
)
def signal_term(ctx):
    if ctx.wants("worker.signal.term"):
        _term(ctx, signal.SIGTERM, "worker.signal.term")
    if ctx.wants("worker.signal.int"):
        ctx.r.delete(ctx.k.queue("st"))
        _term(ctx, signal.SIGINT, "worker.signal.int")


def _pause_resume(ctx, w, pause, resume, test_id, queue):
    pause()
    state = ctx.wait_for(lambda: info(ctx, w.worker_id).get("state") == "paused", 3)
    if not state:
        ctx.fail(test_id, f"state is {info(ctx, w.worker_id).get('state')!r} 3 s after pausing")
        return
    job = ctx.enqueue(queue, "jobwire.Echo", ["while paused"])
    time.sleep(1.3)
    if ctx.echo_for(job):
        ctx.fail(test_id, "a job ran while the worker was paused")
        return
    if ctx.r.llen(ctx.k.queue(queue)) != 1:
        ctx.fail(test_id, "the job left its queue while the worker was paused")
        return
    resume()
    echo = ctx.wait_echo(job, 3)
    state = info(ctx, w.worker_id).get("state")
    ctx.check(
        test_id,
        echo is not None and state == "idle" and w.alive(),
        f"after resuming: job ran {echo is not None}, state {state!r}; {w.describe()}",
    )


@group(
    Test(
        "worker.signal.pause-resume",
        P75,
        MUST,
        "SIGUSR2 pauses (state paused, no job taken); SIGCONT resumes (state idle, jobs run)",
    ),
    Test("control.pause-resume", P75, MUST, "the pause and resume control commands pause and resume"),
    Test("control.unknown-ignored", P75, MUST, "an unknown control command is ignored"),
    Test("control.quit", P75, MUST, "the quit control command makes an idle worker leave and exit 0"),
    Test(
        "queue.pause-all",
        "protocol.md#75-signals-and-the-control-channel",
        MUST,
        "<ns>:pause-all-workers = true stops reserving; deleting it resumes within the block timeout",
    ),
)
def pause_and_control(ctx):
    w = ctx.start_worker("pc")
    control = ctx.k.control(w.worker_id)
    if ctx.wants("worker.signal.pause-resume"):
        _pause_resume(
            ctx,
            w,
            lambda: w.signal(signal.SIGUSR2),
            lambda: w.signal(signal.SIGCONT),
            "worker.signal.pause-resume",
            "pc",
        )
    if ctx.wants("control.pause-resume"):
        _pause_resume(
            ctx,
            w,
            lambda: ctx.r.rpush(control, "pause"),
            lambda: ctx.r.rpush(control, "resume"),
            "control.pause-resume",
            "pc",
        )
    if ctx.wants("control.unknown-ignored"):
        ctx.r.rpush(control, "frobnicate now")
        time.sleep(0.3)
        job = ctx.enqueue("pc", "jobwire.Echo", ["after unknown"])
        ctx.check(
            "control.unknown-ignored",
            ctx.wait_echo(job, 3) is not None and w.alive(),
            f"the worker stopped working after an unknown command: {w.describe()}",
        )
    if ctx.wants("queue.pause-all"):
        ctx.r.set(ctx.k.pause_all(), " TRUE ")
        time.sleep(0.7)
        job = ctx.enqueue("pc", "jobwire.Echo", ["pause all"])
        time.sleep(1.2)
        ran = bool(ctx.echo_for(job))
        ctx.r.delete(ctx.k.pause_all())
        echo = ctx.wait_echo(job, 3)
        ctx.check(
            "queue.pause-all",
            not ran and echo is not None,
            "a job ran while pause-all-workers was true" if ran else "the job did not run after resuming",
        )
    if ctx.wants("control.quit"):
        ctx.r.rpush(control, "quit")
        code = w.wait(6)
        left = {k: v for k, v in worker_keys(ctx, w.worker_id).items() if v}
        ctx.check("control.quit", code == 0 and not left, f"exit status {code}; keys left {sorted(left)}")


@group(
    Test(
        "worker.signal.usr1-kill",
        P75,
        "MUST",
        "SIGUSR1 kills the running job; it fails as jobwire.Killed; the worker goes on",
        feature="kill-running-job",
    ),
    Test(
        "control.kill-token",
        P75,
        "MUST",
        "kill <token> kills only the job holding that token",
        feature="kill-running-job",
    ),
    Test(
        "control.kill",
        P75,
        "MUST",
        "a bare kill command kills the running job as jobwire.Killed",
        feature="kill-running-job",
    ),
)
def kill(ctx):
    w = ctx.start_worker("kq")

    def killed(job_id, how, test_id, token_check=None):
        rec, doc = ctx.wait_failure(job_id, 3.5)
        after = ctx.enqueue("kq", "jobwire.Echo", [f"after {how}"])
        ran_after = ctx.wait_echo(after, 4) is not None
        ctx.check(
            test_id,
            rec is not None and doc.get("exception") == "jobwire.Killed" and ran_after and not ctx.echo_for(job_id),
            f"after {how}: record {rec[:300] if rec else None!r}; next job ran: {ran_after}; {w.describe()}",
        )

    if ctx.wants("worker.signal.usr1-kill"):
        job = ctx.enqueue("kq", "jobwire.Sleep", [6000])
        ctx.wait_holding(w, job, 4)
        time.sleep(0.2)
        w.signal(signal.SIGUSR1)
        killed(job, "SIGUSR1", "worker.signal.usr1-kill")
    if ctx.wants("control.kill-token"):
        job = ctx.enqueue("kq", "jobwire.Sleep", [6000])
        held = ctx.wait_holding(w, job, 4)
        ctx.r.rpush(ctx.k.control(w.worker_id), "kill 123wrongtoken")
        time.sleep(1.4)
        if ctx.failure_for(job):
            ctx.fail("control.kill-token", "kill with another token killed the job")
        else:
            ctx.r.rpush(ctx.k.control(w.worker_id), "kill " + held["token"].decode())
            killed(job, "kill <token>", "control.kill-token")
    if ctx.wants("control.kill"):
        job = ctx.enqueue("kq", "jobwire.Sleep", [6000])
        ctx.wait_holding(w, job, 4)
        ctx.r.rpush(ctx.k.control(w.worker_id), "kill")
        killed(job, "kill", "control.kill")


@group(
    Test(
        "worker.job-timeout",
        "protocol.md#74-running-a-job",
        MUST,
        "a job running past --job-timeout-ms fails as jobwire.Timeout; the worker goes on",
        feature="job-timeout",
    )
)
def job_timeout(ctx):
    w = ctx.start_worker("jt", job_timeout_ms=600)
    job = ctx.enqueue("jt", "jobwire.Sleep", [5000])
    rec, doc = ctx.wait_failure(job, 4)
    after = ctx.enqueue("jt", "jobwire.Echo", ["after timeout"])
    ran = ctx.wait_echo(after, 4) is not None
    ctx.check(
        "worker.job-timeout",
        rec is not None and doc.get("exception") == "jobwire.Timeout" and ran,
        f"record {rec[:300] if rec else None!r}; next job ran: {ran}; {w.describe()}",
    )


@group(
    Test(
        "worker.register.spec-mismatch",
        "protocol.md#12-versioning",
        MUST,
        "a worker refuses to register when <ns>:jobwire:meta names another spec major, and exits non-zero",
    )
)
def spec_mismatch(ctx):
    ctx.r.hset(ctx.k.meta(), "spec_major", "2")
    w = ctx.start_worker("sm", register=False)
    code = w.wait(10)
    members = ctx.r.smembers(ctx.k.workers())
    ctx.check(
        "worker.register.spec-mismatch",
        code not in (None, 0) and not members,
        f"exit status {code}; workers set {members}; {w.describe()}",
    )


def _output_lines(w) -> int:
    """How many non-empty lines an exited worker wrote (stdout and stderr together)."""
    return sum(1 for line in w.output(20000).splitlines() if line.strip())


@group(
    Test(
        "worker.options.lease-too-short",
        "protocol.md#72-configuration",
        MUST,
        "a worker given --lease-ms not above 2 x --heartbeat-ms exits with status 2 and registers nothing",
    ),
    Test(
        "worker.options.bad-queues",
        "protocol.md#72-configuration",
        MUST,
        "a worker given an invalid --queues (an empty entry, a glob, * twice) exits with status 2",
    ),
    Test(
        "worker.options.usage-one-line",
        "protocol.md#72-configuration",
        SHOULD,
        "a worker's bad usage (a short --lease-ms, a bad --queues) is reported in one line of output, no usage text",
    ),
    Test(
        "worker.options.bad-redis-url",
        "protocol.md#72-configuration",
        SHOULD,
        "a worker given an invalid --redis-url (port, db, scheme, %-escape) exits with status 2, its password unprinted",
    ),
    Test(
        "worker.options.cluster-database",
        "protocol.md#151-running-on-a-cluster",
        MUST,
        "a worker given a cluster URL (?cluster=1) that names database 3 exits with status 2 and registers nothing",
    ),
)
def bad_options(ctx):
    w = ctx.start_worker("q", register=False, heartbeat_ms=600, lease_ms=1200)
    code = w.wait(10)
    ctx.check(
        "worker.options.lease-too-short",
        code == 2 and not ctx.r.smembers(ctx.k.workers()),
        f"exit status {code}, workers {ctx.r.smembers(ctx.k.workers())}: {w.describe()}",
    )
    lines = {"--lease-ms 1200 --heartbeat-ms 600": _output_lines(w)}
    for queues in ("a,,b", "mail*", "*,a,*"):
        w = ctx.start_worker(queues, register=False)
        code = w.wait(10)
        lines[f"--queues {queues}"] = _output_lines(w)
        if not ctx.check(
            "worker.options.bad-queues",
            code == 2 and not ctx.r.smembers(ctx.k.workers()),
            f"--queues {queues!r}: exit status {code}: {w.describe()}",
        ):
            break
    long = {given: n for given, n in lines.items() if n != 1}
    ctx.check(
        "worker.options.usage-one-line",
        not long,
        "; ".join(f"{given}: {n} lines of output" for given, n in long.items()) + f": {w.describe()}",
    )
    # protocol.md 7.2 "Redis URL" (vectors/v1/redis-urls.json): found before connecting, so a port
    # that no Redis listens on cannot make a worker wait; the password never reaches its output
    secret = "hunter2-never-printed"
    for url in (
        f"redis://jobwire:{secret}@127.0.0.1:99999/0",
        f"redis://jobwire:{secret}@127.0.0.1:1/x",
        f"http://jobwire:{secret}@127.0.0.1:1/0",
        f"redis://jobwire:{secret}%zz@127.0.0.1:1/0",
    ):
        w = ctx.start_worker("q", register=False, redis_url=url)
        code = w.wait(10)
        if code is None:
            w.kill_all()
        shown = w.output(20000)
        if not ctx.check(
            "worker.options.bad-redis-url",
            code == 2 and secret not in shown,
            f"--redis-url {url.replace(secret, '***')}: exit status {code}"
            f"{'; the password is in its output' if secret in shown else ''}: {w.describe().replace(secret, '***')}",
        ):
            break
    # protocol.md 15.1: a cluster has only database 0; the suite's own node, asked for database 3
    where = urllib.parse.urlsplit(ctx.redis_url)
    url = f"redis://{where.netloc}/3?cluster=1"
    w = ctx.start_worker("q", register=False, redis_url=url)
    code = w.wait(10)
    ctx.check(
        "worker.options.cluster-database",
        code == 2 and not ctx.r.smembers(ctx.k.workers()),
        f"--redis-url {url}: exit status {code}, workers {ctx.r.smembers(ctx.k.workers())}: {w.describe()}",
    )


@group(
    Test(
        "worker.routes.warns-routed-queue",
        "protocol.md#152-namespace-groups-past-one-slot",
        SHOULD,
        "a worker one of whose --queues its namespace's routing table sends to a group warns at start-up, "
        "naming the queue and the group's namespace",
    )
)
def routed_queue_warning(ctx):
    ctx.r.hset(ctx.k.routes(), mapping={"rtw": "elsewhere", "other": "mail"})
    where = "{" + ctx.ns.replace("{", "").replace("}", "") + ":elsewhere}"  # protocol.md 15.2
    w = ctx.start_worker("rtx,rtw")

    def warned():
        return any("rtw" in line and where in line for line in w.output(20000).splitlines())

    seen = ctx.wait_for(warned, 3.0, 0.05)
    ctx.check(
        "worker.routes.warns-routed-queue",
        bool(seen),
        f"no output line names queue rtw and {where} within 3 s of registering: {w.describe()}",
    )


@group(
    Test(
        "worker.signal.prompt-while-blocked",
        "protocol.md#79-the-worker-state-machine",
        MUST,
        "an idle worker blocked in BLPOP (4 s timeout, beats 3 s apart) acts on SIGQUIT at once: it exits within 1.5 s",
    )
)
def prompt_signal(ctx):
    w = ctx.start_worker("ps", heartbeat_ms=3000, lease_ms=10000, block_timeout_ms=4000)
    time.sleep(0.6)  # blocked now, nowhere near a beat or the block timeout
    t0 = time.monotonic()
    w.signal(signal.SIGQUIT)
    code = w.wait(5)
    took = time.monotonic() - t0
    ctx.check(
        "worker.signal.prompt-while-blocked",
        code == 0 and took < 1.5,
        f"exit status {code} after {took:.2f} s: {w.describe()}",
    )


@group(
    Test(
        "worker.signal.pause-while-busy",
        P75,
        MUST,
        "SIGUSR2 during a job: state is paused at once, the job finishes and is settled, no next job starts",
    ),
    Test(
        "worker.signal.cont-after-stop-resumes",
        P75,
        MUST,
        "a paused worker stopped with SIGSTOP and continued with SIGCONT is resumed (SIGCONT means resume)",
    ),
)
def pause_timing(ctx):
    w = ctx.start_worker("pt")
    if ctx.wants("worker.signal.pause-while-busy"):
        job = ctx.enqueue("pt", "jobwire.Sleep", [2500])
        ctx.wait_holding(w, job, 5)
        w.signal(signal.SIGUSR2)
        paused = ctx.wait_for(lambda: info(ctx, w.worker_id).get("state") == "paused", 1.5)
        still_running = not ctx.echo_for(job)
        nxt = ctx.enqueue("pt", "jobwire.Echo", ["after pause"])
        echo = ctx.wait_echo(job, 5)
        settled = ctx.wait_for(lambda: not ctx.held(w), 1.5)
        time.sleep(0.6)
        ctx.check(
            "worker.signal.pause-while-busy",
            paused and still_running and echo is not None and settled and not ctx.echo_for(nxt),
            f"state paused within 1.5 s {bool(paused)} (job still running {still_running}), job ran "
            f"{echo is not None}, settled after it {bool(settled)}, next job ran {bool(ctx.echo_for(nxt))}: "
            f"{w.describe()}",
        )
        w.signal(signal.SIGCONT)
        ctx.wait_echo(nxt, 3)
    if ctx.wants("worker.signal.cont-after-stop-resumes"):
        ctx.r.rpush(ctx.k.control(w.worker_id), "pause")
        ctx.require(
            ctx.wait_for(lambda: info(ctx, w.worker_id).get("state") == "paused", 3),
            f"the pause command did not pause: {w.describe()}",
        )
        w.signal(signal.SIGSTOP)
        time.sleep(0.3)
        w.signal(signal.SIGCONT)
        job = ctx.enqueue("pt", "jobwire.Echo", ["after stop and continue"])
        echo = ctx.wait_echo(job, 3)
        state = info(ctx, w.worker_id).get("state")
        ctx.check(
            "worker.signal.cont-after-stop-resumes",
            echo is not None and state == "idle",
            f"after SIGSTOP + SIGCONT: job ran {echo is not None}, state {state!r}",
        )


SIGNAL_ROUNDS = 3  # each round: a bare SIGCONT, then SIGUSR2 + SIGCONT (pause and resume)
# Beats and blocks of 10 s: a BLPOP a signal cuts short had seconds left, so a connection the
# worker dropped but something still holds stays blocked in Redis (until that timeout) long
# enough to be seen, and to pop a command pushed next.
LONG_TIMINGS = {"heartbeat_ms": 10000, "lease_ms": 30000, "block_timeout_ms": 10000}
SETTLE_S = 0.3  # after a signal: the worker is back in BLPOP, a connection it closed is gone


def _blocked(ctx) -> list[dict]:
    """Clients of the group's private Redis blocked in a command (flags has b): only the worker
    under test connects to it besides the suite, and the suite never blocks."""
    return [c for c in ctx.r.client_list() if "b" in c.get("flags", "")]


def _show_blocked(clients: list[dict]) -> str:
    return ", ".join(f"{c.get('addr')} {c.get('cmd')} idle {c.get('idle')} s" for c in clients) or "none"


def _state_is(ctx, w, state: str, timeout: float) -> bool:
    return bool(ctx.wait_for(lambda: info(ctx, w.worker_id).get("state") == state, timeout))


def _one_blocked_after(ctx, w, what: str) -> str | None:
    """Shortly after a signal, at most one connection of the worker is blocked: what is wrong, or None."""
    time.sleep(SETTLE_S)
    ctx.wait_for(lambda: len(_blocked(ctx)) <= 1, SETTLE_S)
    blocked = _blocked(ctx)
    if len(blocked) <= 1:
        return None
    return (
        f"after {what} {len(blocked)} connections are blocked in Redis (one the worker dropped is "
        f"still open, e.g. held by a child): {_show_blocked(blocked)}"
    )


def _signal_round(ctx, w) -> str | None:
    """A bare SIGCONT, then a pause and a resume by signal: what went wrong, or None."""
    w.signal(signal.SIGCONT)  # not paused: it only cuts the idle BLPOP short
    if problem := _one_blocked_after(ctx, w, "SIGCONT"):
        return problem
    w.signal(signal.SIGUSR2)
    if not _state_is(ctx, w, "paused", 1.5):
        return f"SIGUSR2 did not pause within 1.5 s (state {info(ctx, w.worker_id).get('state')!r})"
    if problem := _one_blocked_after(ctx, w, "SIGUSR2"):
        return problem
    w.signal(signal.SIGCONT)
    if not _state_is(ctx, w, "idle", 1.5):
        return f"SIGCONT did not resume within 1.5 s (state {info(ctx, w.worker_id).get('state')!r})"
    return _one_blocked_after(ctx, w, "SIGUSR2 and SIGCONT")


@group(
    Test(
        "worker.signal.control-after-interrupt",
        P83_BLOCK,
        MUST,
        "after signals cut an idle BLPOP short, at most one connection is blocked in Redis "
        "and a pause pushed next pauses within 1 s",
    ),
    private_redis=True,
    weight=2,
)
def control_after_interrupt(ctx):
    w = ctx.start_worker("ci", **LONG_TIMINGS)
    test_id = "worker.signal.control-after-interrupt"
    first = ctx.enqueue("ci", "jobwire.Echo", ["first"])  # a job first: a standby may fork during it
    ctx.require(ctx.wait_echo(first, 5) is not None, f"the first job did not run: {w.describe()}")
    ctx.require(ctx.wait_for(lambda: _blocked(ctx), 5), f"the idle worker never blocked in Redis: {w.describe()}")
    for n in range(SIGNAL_ROUNDS):
        if problem := _signal_round(ctx, w):
            ctx.fail(test_id, f"round {n + 1}: {problem}; {w.describe()}")
            return
    w.signal(signal.SIGCONT)
    time.sleep(SETTLE_S)
    control = ctx.k.control(w.worker_id)
    ctx.r.rpush(control, "pause")
    if not ctx.check(
        test_id,
        _state_is(ctx, w, "paused", 1.0),
        f"a pause command pushed {SETTLE_S} s after a SIGCONT did not pause within 1 s (state "
        f"{info(ctx, w.worker_id).get('state')!r}, {ctx.r.llen(control)} commands left in the list, "
        f"blocked: {_show_blocked(_blocked(ctx))}); {w.describe()}",
    ):
        return
    ctx.r.rpush(control, "resume")
    job = ctx.enqueue("ci", "jobwire.Echo", ["after the signals"])
    ctx.check(
        test_id,
        ctx.wait_echo(job, 3) is not None and w.alive(),
        f"after resume the next job did not run within 3 s: {w.describe()}",
    )
