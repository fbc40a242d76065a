"""The gateway bench's measurements (bench/gateway.py): one Node worker process's no-op rate (from the
first reserve to the last `stat:processed`) and the enqueue-to-reserve / enqueue-to-done latency of
an idle worker (keyspace notification of the working-on record, then the jobwire.Echo record).
bench/run.py, the comparison with the peers, measures differently (echo markers, the same for
every system); these rows compare only among themselves."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis

import jobwire
import jobwire.payload

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

WORKERS = {
    "node c1": lambda q: ["node", str(REPO / "examples-node/worker.js"), "--queues", q],
    "node c8": lambda q: ["node", str(REPO / "examples-node/worker.js"), "--queues", q, "--concurrency", "8"],
}


def stop(proc) -> None:
    proc.send_signal(signal.SIGQUIT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_processing(url: str, name: str, n: int) -> dict:
    r = redis.Redis.from_url(url)
    r.flushall()
    client = jobwire.Client(url)
    client.enqueue_many("bench", [("jobwire.Noop", []) for _ in range(n)])
    commands_before = int(r.info("stats")["total_commands_processed"])
    proc = subprocess.Popen(
        WORKERS[name]("bench"),
        env={**os.environ, "REDIS_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while r.llen("resque:queue:bench") == n:  # the clock starts at the first reserve
            time.sleep(0.001)
        start = time.perf_counter()
        deadline = start + 300
        while int(r.get("resque:stat:processed") or 0) < n and time.perf_counter() < deadline:
            time.sleep(0.005)
        elapsed = time.perf_counter() - start
        done = int(r.get("resque:stat:processed") or 0)
        commands = int(r.info("stats")["total_commands_processed"]) - commands_before
    finally:
        stop(proc)
    return {"jobs": n, "jobs_per_s": done / elapsed, "redis_commands_per_job": commands / max(done, 1)}


def bench_latency(url: str, name: str, samples: int) -> dict:
    r = redis.Redis.from_url(url)
    r.flushall()
    client = jobwire.Client(url)
    proc = subprocess.Popen(
        WORKERS[name]("lat"), env={**os.environ, "REDIS_URL": url}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    to_reserve, to_done = [], []
    try:
        while not r.scard("resque:workers"):
            time.sleep(0.01)
        time.sleep(0.3)
        pubsub = redis.Redis.from_url(url).pubsub()
        r.config_set("notify-keyspace-events", "K$")
        pubsub.psubscribe("__keyspace@0__:resque:worker:*")
        pubsub.get_message(timeout=1)
        for _ in range(samples):
            time.sleep(0.02)  # let the worker go idle and block again
            payload = jobwire.payload.new_payload("jobwire.Echo")
            start = time.perf_counter()  # from the enqueue call's send, not the payload's building
            client._push("lat", [payload])
            message = pubsub.get_message(timeout=5)
            while message and message["type"] != "pmessage":
                message = pubsub.get_message(timeout=5)
            reserved = time.perf_counter()
            if r.blpop("resque:jobwire:conformance:echo", timeout=5) is None:
                continue
            done = time.perf_counter()
            to_reserve.append((reserved - start) * 1000)
            to_done.append((done - start) * 1000)
            while pubsub.get_message(timeout=0.001):
                pass
        pubsub.close()
    finally:
        stop(proc)

    def pct(values, p):
        return statistics.quantiles(values, n=100)[p - 1] if len(values) > 2 else float("nan")

    return {
        "reserve_p50_ms": pct(to_reserve, 50),
        "reserve_p99_ms": pct(to_reserve, 99),
        "done_p50_ms": pct(to_done, 50),
        "done_p99_ms": pct(to_done, 99),
        "samples": len(to_done),
    }
