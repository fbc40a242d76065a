"""Protocol 1.1 figures: how late workers promote delayed jobs, and what an idle promoting worker
costs Redis. Ratios and distributions from one run on this host, not promises.

    .venv/bin/python bench/scheduling.py [--jobs 300] [--spread-s 30] [--workers 2] [--idle-s 30]

Lateness: delayed jobs are stored (delay.lua, as Client.enqueue_at) at random times over
--spread-s seconds, for a queue no worker serves, while idle workers of another queue promote.
A keyspace-notification subscriber stamps each push onto that queue; lateness is the stamp minus
the job's bucket second (the earliest the protocol lets it move), and minus its requested time.
Idle cost: INFO commandstats over --idle-s seconds of one idle worker, with --scheduler all and
--scheduler off. Writes bench/scheduling-results.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

import jobwire
from jobwire_conformance.redisutil import RedisServer

REPO = Path(__file__).resolve().parents[1]
JOBWIRE = str(Path(sys.executable).with_name("jobwire"))


def start_worker(url: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [JOBWIRE, "worker", "--queues", "idle", "--redis-url", url, "--import", "jobwire.conformance_jobs", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(procs) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def lateness(url: str, jobs: int, spread_s: float, workers: int) -> dict:
    r = redis.Redis.from_url(url)
    r.config_set("notify-keyspace-events", "Kl")
    procs = [start_worker(url) for _ in range(workers)]
    while r.scard("resque:workers") < workers:
        time.sleep(0.05)
    stamps: list[float] = []
    done = threading.Event()

    def listen():
        sub = redis.Redis.from_url(url).pubsub()
        sub.subscribe("__keyspace@0__:resque:queue:lq")
        while not done.is_set():
            msg = sub.get_message(timeout=0.2)
            if msg and msg["type"] == "message" and msg["data"] == b"rpush":
                stamps.append(time.time())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.5)
    client = jobwire.Client(url)
    start = time.time() + 2
    wanted = sorted(start + random.uniform(0, spread_s) for _ in range(jobs))
    for at in wanted:
        client.enqueue_at("lq", at, "jobwire.Noop")
    deadline = time.time() + spread_s + 15
    while len(stamps) < jobs and time.time() < deadline:
        time.sleep(0.1)
    done.set()
    stop(procs)
    # items of one bucket are pushed in one script call, in bucket order: the k-th push is the
    # k-th job by bucket
    buckets = sorted(-(-int(at * 1000) // 1000) for at in wanted)
    vs_bucket = [(s - b) * 1000 for s, b in zip(stamps, buckets, strict=False)]  # fewer stamps if the run timed out
    vs_wanted = [(s - w) * 1000 for s, w in zip(stamps, sorted(wanted), strict=False)]
    return {
        "jobs": jobs,
        "seen": len(stamps),
        "workers": workers,
        "vs_bucket_ms": {
            "p50": round(percentile(vs_bucket, 50), 1),
            "p99": round(percentile(vs_bucket, 99), 1),
            "min": round(min(vs_bucket), 1),
            "max": round(max(vs_bucket), 1),
        },
        "vs_requested_ms": {
            "p50": round(percentile(vs_wanted, 50), 1),
            "p99": round(percentile(vs_wanted, 99), 1),
            "min": round(min(vs_wanted), 1),
        },
    }


def commands(r) -> dict[str, int]:
    stats = r.info("commandstats")
    return {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()}


def idle_cost(url: str, seconds: float, mode: str) -> dict:
    r = redis.Redis.from_url(url)
    r.flushall()
    proc = start_worker(url, "--scheduler", mode)
    while r.scard("resque:workers") < 1:
        time.sleep(0.05)
    time.sleep(2)
    r.config_resetstat()
    time.sleep(seconds)
    calls = commands(r)
    stop([proc])
    calls.pop("config|resetstat", None)
    calls.pop("info", None)
    # commandstats counts the commands scripts run too; the worker itself sends only these
    sent = {k: v for k, v in calls.items() if k in ("evalsha", "eval", "blpop")}
    return {
        "mode": mode,
        "seconds": seconds,
        "calls_sent_per_s": round(sum(sent.values()) / seconds, 3),
        "commands_run_per_s": round(sum(calls.values()) / seconds, 3),
        "calls_sent": sent,
        "commands_run": calls,
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=300)
    p.add_argument("--spread-s", type=float, default=30)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--idle-s", type=float, default=30)
    opts = p.parse_args()
    with RedisServer() as server:
        results = {
            "lateness": lateness(server.url, opts.jobs, opts.spread_s, opts.workers),
            "idle": [idle_cost(server.url, opts.idle_s, mode) for mode in ("all", "off")],
        }
    print(json.dumps(results, indent=2))
    (REPO / "bench" / "scheduling-results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
