"""jobwire's speed next to its peers, on one private Redis, in one run. Ratios, not promises.

    make bench            (or: .venv/bin/python bench/run.py [--quick])

Measures, with no-op jobs: enqueue rate (one per call, and bulk), processing rate of one worker
(Python fork and inline, Node at concurrency 1 and 8, C fork, real node-resque), and the
enqueue-to-reserve / enqueue-to-done latency of an idle worker. Prints a table and writes
bench/results.json. The numbers move with the host's load; compare rows of the same run.
"""

from __future__ import annotations

import argparse
import json
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
from jobwire.devserver import RedisServer

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


WORKERS = {
    "python fork": lambda q: [str(BIN / "jobwire"), "worker", "--queues", q, "--import", "jobwire.conformance_jobs"],
    "python inline": lambda q: [str(BIN / "jobwire"), "worker", "--queues", q, "--import", "jobwire.conformance_jobs", "--no-fork"],
    "node c1": lambda q: ["node", str(REPO / "examples-node/worker.js"), "--queues", q],
    "node c8": lambda q: ["node", str(REPO / "examples-node/worker.js"), "--queues", q, "--concurrency", "8"],
    "node c1 inline": lambda q: ["node", str(REPO / "examples-node/worker.js"), "--queues", q, "--no-fork"],
    "node c8 inline": lambda q: ["node", str(REPO / "examples-node/worker.js"), "--queues", q, "--concurrency", "8", "--no-fork"],
    "c fork": lambda q: [str(REPO / "examples-c/jobwire-worker"), "--queues", q],
    "node-resque": lambda q: ["node", str(REPO / "examples-node/interop/node-resque-worker.js"), "--queues", q, "--timeout", "5"],
}
FORKING = {"python fork", "c fork"}


def available(name: str) -> bool:
    cmd = WORKERS[name]("q")
    return Path(cmd[1] if cmd[0] == "node" else cmd[0]).exists() and (
        cmd[0] != "node" or (REPO / "examples-node/node_modules").is_dir())


def stop(proc) -> None:
    proc.send_signal(signal.SIGQUIT if proc.args[0] != "node" or "interop" not in proc.args[1] else signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_enqueue(url: str, n: int) -> dict:
    r = redis.Redis.from_url(url)
    client = jobwire.Client(url, namespace="bench-enqueue")
    start = time.perf_counter()
    for i in range(n):
        client.enqueue("q", "jobwire.Noop", i)
    one = n / (time.perf_counter() - start)
    start = time.perf_counter()
    client.enqueue_many("q", [("jobwire.Noop", [i]) for i in range(n * 4)])
    bulk = n * 4 / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(n):  # what a Ruby Resque client sends: SADD + RPUSH, pipelined
        pipe = r.pipeline(transaction=False)
        pipe.sadd("bench-resque:queues", "q")
        pipe.rpush("bench-resque:queue:q", json.dumps({"class": "jobwire.Noop", "args": [i]}))
        pipe.execute()
    resque = n / (time.perf_counter() - start)
    rates = {"jobwire-python one by one": one, "jobwire-python bulk": bulk, "resque-style SADD+RPUSH (redis-py)": resque}
    if (REPO / "examples-node/node_modules").is_dir():
        out = subprocess.run(["node", str(REPO / "bench/node_enqueue.mjs"), url, str(n)],
                             capture_output=True, text=True, timeout=300)
        if out.returncode == 0:
            rates.update({f"{k} one by one": v for k, v in json.loads(out.stdout).items()})
    r.flushall()
    return rates


def bench_processing(url: str, name: str, n: int) -> dict:
    r = redis.Redis.from_url(url)
    r.flushall()
    client = jobwire.Client(url)
    client.enqueue_many("bench", [("jobwire.Noop", []) for _ in range(n)])
    commands_before = int(r.info("stats")["total_commands_processed"])
    proc = subprocess.Popen(WORKERS[name]("bench"), env={**os.environ, "REDIS_URL": url},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    proc = subprocess.Popen(WORKERS[name]("lat"), env={**os.environ, "REDIS_URL": url},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    return {"reserve_p50_ms": pct(to_reserve, 50), "reserve_p99_ms": pct(to_reserve, 99),
            "done_p50_ms": pct(to_done, 50), "done_p99_ms": pct(to_done, 99), "samples": len(to_done)}


def idle_rss_mib(url: str, name: str) -> float:
    proc = subprocess.Popen(WORKERS[name]("idle"), env={**os.environ, "REDIS_URL": url},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.0)
        with open(f"/proc/{proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
    finally:
        stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    opts = parser.parse_args()
    scale = 0.1 if opts.quick else 1.0
    server = RedisServer().start()
    url = server.url
    results = {"enqueue_per_s": {}, "processing": {}, "latency": {}, "idle_rss_mib": {}}
    try:
        results["enqueue_per_s"] = bench_enqueue(url, int(5000 * scale))
        for name in WORKERS:
            if not available(name):
                continue
            n = int((2000 if name in FORKING else 20000) * scale)
            results["processing"][name] = bench_processing(url, name, n)
            if name != "node-resque":
                results["latency"][name] = bench_latency(url, name, int(200 * scale) or 20)
            results["idle_rss_mib"][name] = idle_rss_mib(url, name)
    finally:
        server.stop()
    print("\nenqueue (jobs/s)")
    for name, rate in results["enqueue_per_s"].items():
        print(f"  {name:<40}{rate:>10,.0f}")
    print(f"\n{'worker (one process, no-op jobs)':<22}{'jobs/s':>10}{'cmds/job':>10}{'reserve p50/p99 ms':>22}{'done p50/p99 ms':>20}{'idle RSS MiB':>14}")
    for name, p in results["processing"].items():
        lat = results["latency"].get(name)
        lat_r = f"{lat['reserve_p50_ms']:.2f} / {lat['reserve_p99_ms']:.2f}" if lat else "-"
        lat_d = f"{lat['done_p50_ms']:.2f} / {lat['done_p99_ms']:.2f}" if lat else "-"
        print(f"{name:<22}{p['jobs_per_s']:>10,.0f}{p['redis_commands_per_job']:>10.1f}{lat_r:>22}{lat_d:>20}"
              f"{results['idle_rss_mib'].get(name, 0):>14.1f}")
    (REPO / "bench" / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
