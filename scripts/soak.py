#!/usr/bin/env python3
"""Soak: many no-op jobs through one Python (--no-fork), one Node and one C worker on one queue,
each master's RSS sampled every second; RSS must be flat once warm.

    .venv/bin/python scripts/soak.py --jobs 1000000     # the long run (documented, not in CI)
    .venv/bin/python scripts/soak.py --ci               # 20,000 jobs, run by scripts/test.sh

Flat means: the highest RSS of the last quarter of the jobs is at most GROWTH_FACTOR x the RSS
once the first quarter of the jobs is done plus GROWTH_SLACK_KIB, for every worker. Python runs jobs
in-process (--no-fork) so a leak in the job path shows in the one process sampled; the C worker
forks, so its master is what stays up. Loopback only, one private redis-server, every process
stopped by its pid.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from jobwire import payload as jobmod
from jobwire import Client
from jobwire_conformance.redisutil import RedisServer

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "soak"
GROWTH_FACTOR = 1.25
GROWTH_SLACK_KIB = 8 * 1024


def commands(url: str) -> dict[str, list[str]]:
    """One worker per implementation, all on the soak queue, default timings."""
    return {
        "python": [
            str(ROOT / ".venv/bin/jobwire"),
            "worker",
            "--queues",
            QUEUE,
            "--redis-url",
            url,
            "--no-fork",
            "--import",
            "jobwire.conformance_jobs",
        ],
        "node": ["node", str(ROOT / "examples-node/worker.js"), "--queues", QUEUE, "--redis-url", url],
        "c": [str(ROOT / "examples-c/jobwire-worker"), "--queues", QUEUE, "--redis-url", url],
    }


def rss_kib(pid: int) -> int | None:
    """VmRSS of one process from /proc, in KiB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run(jobs: int, logdir: str) -> dict:
    server = RedisServer().start()
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, cmd in commands(server.url).items():
            log = open(Path(logdir) / f"soak-{name}.log", "wb")
            procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return feed_and_sample(server, procs, jobs)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        server.kill()
        server.close()


def feed_and_sample(server: RedisServer, procs: dict, jobs: int) -> dict:
    """Keep the queue topped up, sample RSS once a second, until every job is processed."""
    client = Client(server.url)
    r = redis.Redis(port=server.port)
    payloads = [jobmod.new_job("jobwire.Noop", [i])[1] for i in range(1000)]  # reused: ids repeat, fine for no-ops
    samples: list[dict] = []
    pushed, next_sample, start = 0, time.monotonic(), time.monotonic()
    while True:
        processed = int(r.get("resque:stat:processed") or 0)
        if processed >= jobs:
            break
        if pushed < jobs and r.llen(f"resque:queue:{QUEUE}") < 5000:
            n = min(1000, jobs - pushed)
            client._push(QUEUE, payloads[:n])
            pushed += n
        else:
            time.sleep(0.01)
        if time.monotonic() >= next_sample:
            next_sample += 1.0
            samples.append(
                {
                    "t": round(time.monotonic() - start, 1),
                    "processed": processed,
                    **{name: rss_kib(p.pid) for name, p in procs.items()},
                }
            )
        for name, p in procs.items():
            if p.poll() is not None:
                raise SystemExit(f"soak: the {name} worker exited ({p.returncode})")
    samples.append(
        {
            "t": round(time.monotonic() - start, 1),
            "processed": jobs,
            **{name: rss_kib(p.pid) for name, p in procs.items()},
        }
    )
    return {
        "jobs": jobs,
        "seconds": samples[-1]["t"],
        "samples": samples,
        "per_worker": {name: verdict(samples, name) for name in procs},
    }


def verdict(samples: list[dict], name: str) -> dict:
    """RSS at start, once warm (a quarter of the jobs done), at the end; flat if the last quarter
    (by jobs done, not by time: start-up must not count as growth) stays within the bound."""
    jobs = samples[-1]["processed"]
    values = [s[name] for s in samples if s[name]]
    warm = next(s[name] for s in samples if s[name] and s["processed"] >= jobs / 4)
    tail_max = max(s[name] for s in samples if s[name] and s["processed"] >= jobs * 3 / 4)
    bound = int(warm * GROWTH_FACTOR + GROWTH_SLACK_KIB)
    return {
        "rss_start_kib": values[0],
        "rss_warm_kib": warm,
        "rss_end_kib": values[-1],
        "rss_max_last_quarter_kib": tail_max,
        "bound_kib": bound,
        "flat": tail_max <= bound,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--ci", action="store_true", help="the short form: 20,000 jobs")
    ap.add_argument("--json", help="write every sample and the verdict here")
    opts = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop every pid started here
    result = run(20_000 if opts.ci else opts.jobs, tempfile.mkdtemp(prefix="jobwire-soak-"))
    if opts.json:
        Path(opts.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"jobs": result["jobs"], "seconds": result["seconds"], **result["per_worker"]}))
    bad = [name for name, v in result["per_worker"].items() if not v["flat"]]
    print(f"soak: FAIL, RSS grew: {bad}" if bad else "soak: ok (RSS flat)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
