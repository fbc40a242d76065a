#!/usr/bin/env python3
"""`make chaos`: jobs through Python (fork and --no-fork), Node and C workers at once while a driver
SIGKILLs worker masters, forked children and Redis (AOF), and restarts them.

Two rounds: `appendfsync always` (lost must be 0) and `appendfsync everysec` (Redis may drop up to
about a second of acknowledged writes: the round reports how many jobs that rule could have lost
against how many were). Every job is `jobwire.Echo`/`jobwire.Sleep`, which RPUSHes a record of its
run, so lost = acknowledged and never run, duplicate = run more than once. A duplicate is allowed
only for a job that was in flight at a kill (held by a killed worker, run by a killed pid, or held
in Redis when Redis was killed); any other duplicate fails the run.

Bounded: loopback only, one private redis-server (jobwire_conformance.redisutil), every process started here
is stopped here by its pid (each worker is a process-group leader, so orphaned children go too),
and every phase has a deadline. `--ci` is the short form scripts/test.sh runs.

`--broken pop-without-record` runs the same storm against two copies of the conformance suite's
broken worker (conformance/tests/broken_workers/base.py: it LPOPs a job with nothing recorded in
Redis) instead of the real workers, to show that the storm catches a worker that loses jobs: it
must report lost > 0 and exit 1 (python/tests/test_chaos.py runs it in CI).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from jobwire import Client
from jobwire import payload as jobmod
from jobwire_conformance.redisutil import RedisServer

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "chaos"
NS = "resque"
# fast beats and short leases so a killed worker's job is recovered within a second
TIMINGS = ("--heartbeat-ms", "100", "--lease-ms", "600", "--block-timeout-ms", "500", "--max-deaths", "100000")
# everysec loses "up to about one second" of writes (redis.io, persistence); allow a second more
# for the background fsync that was late when the kill came
EVERYSEC_WINDOW_S = 2.0
# a restarted master gets this long to start and work before it may be shot again
MASTER_MIN_AGE_S = 3.0


BROKEN_WORKER = ROOT / "conformance/tests/broken_workers/base.py"
BROKEN_DEFECTS = ("pop-without-record",)  # base.py's defects that lose jobs under kills


def worker_commands(url: str, broken: str | None = None) -> dict[str, list[str]]:
    """The four kinds of worker the storm runs, each a command line; or two broken workers."""
    if broken:
        cmd = [sys.executable, str(BROKEN_WORKER), "--defect", broken, "--queues", QUEUE, "--redis-url", url, *TIMINGS]
        return {f"broken-{n}": cmd for n in (1, 2)}
    jobwire = str(ROOT / ".venv/bin/jobwire")
    py = [jobwire, "worker", "--queues", QUEUE, "--redis-url", url, "--import", "jobwire.conformance_jobs"]
    return {
        "python-fork": [*py, *TIMINGS],
        "python-inline": [*py, "--no-fork", *TIMINGS],
        "node": [
            "node",
            str(ROOT / "examples-node/worker.js"),
            "--queues",
            QUEUE,
            "--redis-url",
            url,
            "--concurrency",
            "4",
            *TIMINGS,
        ],
        "c": [str(ROOT / "examples-c/jobwire-worker"), "--queues", QUEUE, "--redis-url", url, *TIMINGS],
    }


def children_of(pid: int) -> list[int]:
    """Direct children (the forked job processes) of a worker master, from /proc."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


@dataclass
class Slot:
    """One worker kind: its command, its live master, every pid group it ever led."""

    name: str
    cmd: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    groups: list[int] = field(default_factory=list)
    log: object = None

    def start(self) -> None:
        # own session: the master leads a process group holding its children, stopped at the end
        self.proc = subprocess.Popen(
            self.cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.started = time.monotonic()
        self.groups.append(self.proc.pid)


@dataclass
class Tally:
    """What happened in one round; the report and the verdict are computed from it."""

    kills: collections.Counter = field(default_factory=collections.Counter)
    redis_restarts: int = 0
    killed_pids: set = field(default_factory=set)
    in_flight_at_kill: set = field(default_factory=set)
    acked: dict = field(default_factory=dict)  # job id -> monotonic time its push returned
    unsure: set = field(default_factory=set)  # pushed when Redis died: maybe twice
    redis_kill_times: list = field(default_factory=list)
    redis_outages: list = field(default_factory=list)  # [wall time killed, wall time back]
    unexpected_exits: list = field(default_factory=list)


class Storm:
    """One round: one Redis with AOF, four workers, an enqueuer, a killer, then a calm drain."""

    def __init__(
        self, fsync: str, jobs: int, seed: int, workdir: str, seconds: float, rate: float, broken: str | None = None
    ) -> None:
        self.fsync, self.jobs, self.rng, self.seconds = fsync, jobs, random.Random(seed), seconds
        self.broken = broken  # a defect of the broken worker to run instead of the real workers
        self.rate = rate  # jobs enqueued per second at most: spreads the jobs over many kills
        self.dir = tempfile.mkdtemp(prefix=f"aof-{fsync}-", dir=workdir)
        self.server = RedisServer(extra_args=("--appendonly", "yes", "--appendfsync", fsync, "--dir", self.dir))
        self.tally = Tally()
        self.logdir = workdir
        self.slots: list[Slot] = []
        self.seen_records, self.seen_ids, self.last_check = 0, set(), 0.0
        self.last_quiet_check, self.quiet_since = 0.0, None
        self.record_counts: list[tuple[float, int]] = []  # (when, run records seen): for everysec

    # -- redis -----------------------------------------------------------------------------------

    def redis(self) -> redis.Redis:
        return redis.Redis(port=self.server.port, socket_timeout=5)

    def held_job_ids(self, pattern: str = f"{NS}:jobwire:inflight:*") -> set[str]:
        """Ids of the jobs some in-flight hash holds right now (best effort: Redis may be down)."""
        ids = set()
        try:
            r = self.redis()
            for key in r.scan_iter(pattern, count=500):
                raw = r.hget(key, "payload")
                if raw:
                    ids.add(job_id_of(raw))
        except redis.RedisError:
            pass
        return ids

    def kill_redis(self) -> None:
        """SIGKILL Redis and start it again on the same port and AOF; note what it held."""
        self.tally.in_flight_at_kill |= self.held_job_ids()
        if self.fsync == "everysec":
            self.tally.in_flight_at_kill |= self.recently_ran()
        self.tally.redis_kill_times.append(time.monotonic())
        self.tally.redis_outages.append([time.time(), None])
        self.server.kill()
        time.sleep(self.rng.uniform(0.05, 0.5))
        self.server.start()
        self.tally.redis_restarts += 1
        self.tally.redis_outages[-1][1] = time.time()
        self.tally.in_flight_at_kill |= self.held_job_ids()

    # -- workers ---------------------------------------------------------------------------------

    def start_workers(self) -> None:
        for name, cmd in worker_commands(self.server.url, self.broken).items():
            slot = Slot(name, cmd, log=open(os.path.join(self.logdir, f"{self.fsync}-{name}.log"), "ab"))
            slot.start()
            self.slots.append(slot)

    def recently_ran(self) -> set[str]:
        """Jobs whose run record is younger than the everysec window: their settle may be lost."""
        try:
            r = self.redis()
            total = r.llen(f"{NS}:jobwire:conformance:echo")
        except redis.RedisError:
            return set()
        then = time.monotonic() - EVERYSEC_WINDOW_S
        start = next((n for t, n in self.record_counts if t >= then), total)
        try:
            raw = r.lrange(f"{NS}:jobwire:conformance:echo", start, -1)
        except redis.RedisError:
            return set()
        return {json.loads(x)["id"] for x in raw}

    def kill_something(self) -> None:
        """One SIGKILL: a forked child (half the time when there is one) or a master, restarted."""
        slot = self.rng.choice(self.slots)
        pid = slot.proc.pid
        children = children_of(pid)
        if children and (self.rng.random() < 0.5 or time.monotonic() - slot.started < MASTER_MIN_AGE_S):
            child = self.rng.choice(children)
            self.tally.in_flight_at_kill |= self.held_job_ids(inflight_pattern(pid))
            self.kill_pid(child)
            self.tally.kills[f"{slot.name} child"] += 1
            self.tally.in_flight_at_kill |= self.held_job_ids(inflight_pattern(pid))
            return
        if time.monotonic() - slot.started < MASTER_MIN_AGE_S:
            return  # let a fresh master get to work before it is shot again
        self.kill_pid(pid)
        slot.proc.wait()
        self.tally.kills[f"{slot.name} master"] += 1
        self.tally.in_flight_at_kill |= self.held_job_ids(inflight_pattern(pid))
        slot.start()

    def kill_pid(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
            self.tally.killed_pids.add(pid)
        except ProcessLookupError:
            pass

    def check_exits(self) -> None:
        """A worker that exits by itself (not killed here) is a failure: note it and restart it."""
        for slot in self.slots:
            if slot.proc.poll() is not None:
                self.tally.unexpected_exits.append((slot.name, slot.proc.returncode))
                slot.start()

    def stop_all(self) -> None:
        """Every process group this round started, by its leader's pid; then Redis."""
        for slot in self.slots:
            for group in slot.groups:
                try:
                    os.killpg(group, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if slot.proc:
                slot.proc.wait()
            slot.log.close()
        self.server.kill()

    # -- enqueue ---------------------------------------------------------------------------------

    def push_batch(self, client: Client, batch: list[tuple[str, bytes]]) -> Client:
        """Push until one attempt is answered; a push that errored may have landed: mark it unsure."""
        attempt = 0
        while True:
            try:
                client._push(QUEUE, [payload for _, payload in batch])
                now = time.monotonic()
                for job_id, _ in batch:
                    self.tally.acked[job_id] = now
                return client
            except redis.RedisError:
                attempt += 1
                self.tally.unsure.update(job_id for job_id, _ in batch)
                time.sleep(0.05)
                client = Client(self.server.url)

    def new_batch(self, size: int) -> list[tuple[str, bytes]]:
        """Mostly instant echoes, some short sleeps so that kills often find a job running."""
        batch = []
        for _ in range(size):
            if self.rng.random() < 0.8:
                batch.append(jobmod.new_job("jobwire.Echo", [len(self.tally.acked)]))
            else:
                batch.append(jobmod.new_job("jobwire.Sleep", [self.rng.choice([1, 5, 20])]))
        return batch

    # -- the round -------------------------------------------------------------------------------

    def run(self) -> dict:
        self.server.start()
        try:
            self.start_workers()
            return self.storm_then_drain()
        finally:
            self.stop_all()

    def storm_then_drain(self) -> dict:
        client = Client(self.server.url)
        deadline = time.monotonic() + self.seconds
        next_kill = time.monotonic() + 1.0
        next_redis_kill = time.monotonic() + self.rng.uniform(2.0, 4.0)
        pushed, started = 0, time.monotonic()
        while time.monotonic() < deadline:
            paced = pushed < self.rate * (time.monotonic() - started)
            if pushed < self.jobs and paced and self.backlog() < 400:
                batch = self.new_batch(min(100, self.jobs - pushed))
                client = self.push_batch(client, batch)
                pushed += len(batch)
            else:
                time.sleep(0.02)
            now = time.monotonic()
            if now >= next_kill:
                self.kill_something()
                next_kill = now + self.rng.uniform(0.15, 0.45)  # several kills a second
            if now >= next_redis_kill and pushed < self.jobs:
                self.kill_redis()
                next_redis_kill = time.monotonic() + self.rng.uniform(2.0, 5.0)
            self.check_exits()
            self.all_ran()  # keeps the run-record index (and its timeline) current, twice a second
            if pushed >= self.jobs and self.settled():
                break
        self.drain(deadline + 60)
        return self.verdict()

    def backlog(self) -> int:
        try:
            return self.redis().llen(f"{NS}:queue:{QUEUE}")
        except redis.RedisError:
            return 10**9

    def ran_ids(self) -> set[str]:
        """Ids with a run record, read incrementally (an everysec restart may shorten the list)."""
        key = f"{NS}:jobwire:conformance:echo"
        try:
            r = self.redis()
            if r.llen(key) < self.seen_records:
                self.seen_records, self.seen_ids, self.record_counts = 0, set(), []
            raw = r.lrange(key, self.seen_records, -1)
        except redis.RedisError:
            return self.seen_ids
        self.seen_records += len(raw)
        self.record_counts.append((time.monotonic(), self.seen_records))
        self.seen_ids.update(json.loads(x)["id"] for x in raw)
        return self.seen_ids

    def all_ran(self) -> bool:
        """Checked at most twice a second: the list grows to every run of the round."""
        now = time.monotonic()
        if now - self.last_check < 0.5:
            return False
        self.last_check = now
        ran = self.ran_ids()
        return all(job_id in ran for job_id in self.tally.acked)

    def settled(self) -> bool:
        """Every job ran, or (everysec may have dropped some) nothing is queued or held for 3 s."""
        if self.all_ran():
            return True
        now = time.monotonic()
        if now - self.last_quiet_check < 0.5:
            return False
        self.last_quiet_check = now
        empty = self.backlog() == 0 and not self.held_job_ids()
        self.quiet_since = (self.quiet_since or now) if empty else None
        return bool(self.quiet_since and now - self.quiet_since > 3.0)

    def drain(self, deadline: float) -> None:
        """No more kills: wait until every job ran or nothing is left anywhere for 3 s."""
        quiet_since = None
        while time.monotonic() < deadline and not self.all_ran():
            self.check_exits()
            empty = self.backlog() == 0 and not self.held_job_ids()
            quiet_since = (quiet_since or time.monotonic()) if empty else None
            if quiet_since and time.monotonic() - quiet_since > 3.0:
                return
            time.sleep(0.2)

    def run_records(self) -> list[dict]:
        raw = self.redis().lrange(f"{NS}:jobwire:conformance:echo", 0, -1)
        return [json.loads(x) for x in raw]

    def verdict(self) -> dict:
        """Count lost and duplicates; split duplicates into explained (in flight at a kill) and not."""
        t = self.tally
        records = self.run_records()
        failed_raw = self.redis().lrange(f"{NS}:failed", 0, -1)
        failure_examples = sorted({failure_summary(raw) for raw in failed_raw})[:5]
        runs = collections.defaultdict(list)
        for rec in records:
            runs[rec["id"]].append(rec)
        failed_ids = {failed_job_id(raw) for raw in failed_raw}
        # a forked child killed mid-job is a failed job (protocol.md: dirty exit), not a lost one
        lost = [j for j in t.acked if j not in runs and j not in failed_ids]
        unexplained_failures = [failed_job_id(raw) for raw in failed_raw if not self.failure_explained(raw)]
        duplicates = [j for j, recs in runs.items() if len(recs) > 1]
        unexplained = [j for j in duplicates if not self.explained(j, runs[j])]
        at_risk = sum(
            1 for j, at in t.acked.items() if any(0 <= k - at <= EVERYSEC_WINDOW_S for k in t.redis_kill_times)
        )
        return {
            "fsync": self.fsync,
            "jobs": len(t.acked),
            "runs": len(records),
            "kills": sum(t.kills.values()),
            "kills_by_target": dict(t.kills),
            "redis_restarts": t.redis_restarts,
            "lost": len(lost),
            "lost_allowed_by_everysec_rule": at_risk if self.fsync == "everysec" else 0,
            "duplicates": len(duplicates),
            "unexplained_duplicates": len(unexplained),
            "unsure_pushes": len(t.unsure),
            "failed_by_a_kill": len(failed_ids) - len(unexplained_failures),
            "unexplained_failures": len(unexplained_failures),
            "unexpected_worker_exits": t.unexpected_exits,
            "examples": {"lost": lost[:3], "unexplained": unexplained[:3], "failures": failure_examples},
        }

    def failure_explained(self, raw: bytes) -> bool:
        """A failure record is expected only for a job a kill interrupted (a killed child's job)."""
        if failed_job_id(raw) in self.tally.in_flight_at_kill:
            return True
        try:
            record = json.loads(raw)
            error = str(record.get("error", ""))
            failed_at = time.mktime(time.strptime(record["failed_at"], "%Y/%m/%d %H:%M:%S UTC")) - time.timezone
        except (ValueError, KeyError):
            return False
        # the job's own write (its run record) met the Redis outage: the job failed, recorded
        if any(down - 2 <= failed_at <= up + 5 for down, up in self.tally.redis_outages if up):
            return True
        named = [int(w) for w in error.split() if w.isdigit()]
        return "killed by signal 9" in error and any(pid in self.tally.killed_pids for pid in named)

    def explained(self, job_id: str, recs: list[dict]) -> bool:
        """A second run is allowed when the job was in flight at a kill of a worker or of Redis."""
        t = self.tally
        if job_id in t.in_flight_at_kill or job_id in t.unsure:
            return True
        pids = {rec.get("pid") for rec in recs} | {worker_pid(rec.get("worker", "")) for rec in recs}
        return bool(pids & t.killed_pids)


def failure_summary(raw: bytes) -> str:
    """exception: error (worker) of one failure record, short enough to print."""
    try:
        rec = json.loads(raw)
        return f"{rec.get('exception')}: {str(rec.get('error'))[:160]} ({str(rec.get('worker'))[:40]})"
    except ValueError:
        return repr(raw[:160])


def failed_job_id(raw: bytes) -> str:
    try:
        return (json.loads(raw).get("payload") or {}).get("id") or ""
    except (ValueError, AttributeError):
        return ""


def job_id_of(raw: bytes) -> str:
    try:
        return json.loads(raw).get("id") or ""
    except (ValueError, AttributeError):
        return ""


def inflight_pattern(pid: int) -> str:
    """SCAN pattern of the in-flight hashes of every worker a master process hosts: host:pid:queues,
    and host:pid+N:queues for each of a Node process's N workers (protocol.md section 7.1)."""
    return f"{NS}:jobwire:inflight:*:{pid}[:+]*"


def worker_pid(worker_id: str) -> int | None:
    """host:pid:queues or host:pid+N:queues (one of a Node process's workers) -> pid."""
    parts = worker_id.split(":")
    if len(parts) < 3:
        return None
    pid = parts[1].split("+", 1)[0]
    return int(pid) if pid.isdigit() else None


def failures(result: dict) -> list[str]:
    """Why a round fails: lost with always, unexplained duplicates, a worker that exited, failures."""
    why = []
    if result["fsync"] == "always" and result["lost"]:
        why.append(f"{result['lost']} jobs lost with appendfsync always")
    if result["fsync"] == "everysec" and result["lost"] > result["lost_allowed_by_everysec_rule"]:
        why.append("more jobs lost than everysec's one-second rule allows")
    if result["unexplained_duplicates"]:
        why.append(f"{result['unexplained_duplicates']} duplicates of jobs no kill touched")
    if result["unexpected_worker_exits"]:
        why.append(f"workers exited by themselves: {result['unexpected_worker_exits']}")
    if result["unexplained_failures"]:
        why.append(f"{result['unexplained_failures']} failure records of jobs no kill touched")
    return why


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20_000, help="jobs per round")
    ap.add_argument("--ci", action="store_true", help="the short form for CI: 2,000 jobs a round")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("JOBWIRE_CHAOS_SEED", "1729")))
    ap.add_argument("--seconds", type=float, default=240.0, help="storm budget per round")
    ap.add_argument("--rate", type=float, help="enqueue at most this many jobs/s (default 500; --ci 100)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--fsync", action="append", choices=("always", "everysec"), help="rounds to run (default both)")
    ap.add_argument(
        "--broken",
        choices=BROKEN_DEFECTS,
        help="run two broken workers with this defect instead of the real ones: the run must FAIL",
    )
    opts = ap.parse_args()
    # a SIGTERM (timeout, Ctrl-C from make) unwinds through the finally blocks that stop every pid
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    jobs = 2_000 if opts.ci else opts.jobs
    rate = opts.rate or (100 if opts.ci else 500)
    workdir = tempfile.mkdtemp(prefix="jobwire-chaos-")
    results, problems = [], []
    for n, fsync in enumerate(opts.fsync or ("always", "everysec")):
        result = Storm(fsync, jobs, opts.seed + n, workdir, opts.seconds, rate, opts.broken).run()
        results.append(result)
        problems += [f"{fsync}: {why}" for why in failures(result)]
        print(json.dumps(result), flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"worker logs: {workdir}")
    for why in problems:
        print(f"FAIL {why}")
    print("chaos: FAIL" if problems else "chaos: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
