"""Past one slot, measured: one namespace on one master against three namespaces on three masters,
with the same workers, in one run; and the cost of durable (WAIT) enqueue. Ratios, not promises.

    .venv/bin/python bench/cluster.py [--jobs N] [--worker KIND] [--json FILE]

Starts a Redis Cluster of 3 masters and 3 replicas on loopback ports (jobwire_conformance.redisutil), then:
1. `one slot`: N no-op jobs in namespace {b0}; three workers all serve it (one master does all
   the Redis work);
2. `three slots`: N/3 jobs in each of three namespaces whose slots live on the three masters; one
   worker per namespace (protocol.md 15.2);
3. enqueue one by one with the Python client, plain and durable (`wait_replicas=1`).
For 1 and 2 it reports jobs/s and each master's Redis CPU seconds (INFO cpu), which shows where
the work went. On a small machine the workers' own CPU may be the ceiling, not Redis: read the
master CPU column before the ratio. Every redis-server is stopped by pid at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis
from redis.crc import key_slot

import jobwire
from jobwire_conformance.redisutil import ClusterServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import WORKERS, stop  # noqa: E402  (the same worker commands as bench/run.py)


def masters(cluster) -> dict[int, tuple[int, int]]:
    """port -> (first slot, last slot) of every master."""
    node = redis.Redis(port=cluster.live_ports()[0])
    out = {}
    for first, last, master, *_ in node.execute_command("CLUSTER", "SLOTS"):
        out[int(master[1])] = (int(first), int(last))
    node.close()
    return out


def namespaces_on(slots: dict[int, tuple[int, int]]) -> list[str]:
    """One hash-tagged namespace per master, in port order: {b1}, {b2}, ... picked by slot."""
    found: dict[int, str] = {}
    n = 1
    while len(found) < len(slots):
        ns = f"{{b{n}}}"
        slot = key_slot(ns.encode())
        for port, (first, last) in slots.items():
            if first <= slot <= last and port not in found:
                found[port] = ns
        n += 1
    return [found[p] for p in sorted(found)]


def cpu_seconds(ports) -> dict[int, float]:
    out = {}
    for port in ports:
        info = redis.Redis(port=port).info("cpu")
        out[port] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return out


def drain(cluster, plan: list[tuple[str, int]], kind: str, workers_per_ns: int) -> dict:
    """Fill each namespace of `plan` with its jobs, start the workers, time until all are done."""
    rc = jobwire.client.connect(cluster.url)
    total = sum(n for _, n in plan)
    procs = [
        subprocess.Popen(
            [*WORKERS[kind]("bench"), "--redis-url", cluster.url, "--namespace", ns],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for ns, _ in plan
        for _ in range(workers_per_ns)
    ]

    def done() -> int:
        return sum(int(rc.get(f"{ns}:stat:processed") or 0) for ns, _ in plan)

    try:
        # every worker registered and idle before the first job: start-up is not measured
        while sum(rc.scard(f"{ns}:workers") for ns, _ in plan) < len(procs):
            time.sleep(0.05)
        time.sleep(0.5)
        # build first, push by 1000s, one namespace after another (bulk enqueue, ~30k/s)
        batches = [(jobwire.Client(redis=rc, namespace=ns), [("jobwire.Noop", []) for _ in range(n)]) for ns, n in plan]
        ports = sorted(masters(cluster))
        before = cpu_seconds(ports)
        start = time.perf_counter()  # the clock runs from the first push to the last settle
        for client, jobs in batches:
            for i in range(0, len(jobs), 1000):
                client.enqueue_many("bench", jobs[i : i + 1000])
        while done() < total and time.perf_counter() - start < 600:
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        finished = done()
    finally:
        for p in procs:
            stop(p)
    after = cpu_seconds(ports)
    for ns, _ in plan:
        rc.delete(*[k for k in rc.scan_iter(match=f"{ns}:*")] or [f"{ns}:none"])
    rc.close()
    return {
        "namespaces": [ns for ns, _ in plan],
        "workers": len(procs),
        "jobs": finished,
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(finished / elapsed),
        "master_cpu_s": {str(p): round(after[p] - before[p], 2) for p in ports},
    }


def enqueue_cost(cluster, n: int) -> dict:
    """One-by-one enqueue rate and median latency, plain and durable (WAIT 1 replica)."""
    out = {}
    for label, options in (("plain", {}), ("durable (wait_replicas=1)", {"wait_replicas": 1})):
        client = jobwire.Client(cluster.url, "{bw}", **options)
        client.enqueue("warm", "jobwire.Noop")
        lat = []
        start = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            client.enqueue("e", "jobwire.Noop")
            lat.append((time.perf_counter() - t) * 1000)
        elapsed = time.perf_counter() - start
        out[label] = {
            "jobs_per_s": round(n / elapsed),
            "p50_ms": round(statistics.median(lat), 3),
            "p99_ms": round(sorted(lat)[int(n * 0.99) - 1], 3),
        }
        client.redis.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=6000, help="jobs per phase (default 6000)")
    p.add_argument("--worker", default="node c8 inline", choices=sorted(WORKERS), help="worker kind (bench/run.py)")
    p.add_argument("--enqueues", type=int, default=2000, help="one-by-one enqueues per mode (default 2000)")
    p.add_argument("--json", metavar="FILE")
    opts = p.parse_args()
    with ClusterServer(replicas=1, node_timeout_ms=2000) as cluster:
        slots = masters(cluster)
        spread = namespaces_on(slots)
        one = drain(cluster, [("{b0}", opts.jobs)], opts.worker, len(spread))
        three = drain(cluster, [(ns, opts.jobs // len(spread)) for ns in spread], opts.worker, 1)
        wait = enqueue_cost(cluster, opts.enqueues)
    result = {"worker": opts.worker, "one_slot": one, "three_slots": three, "enqueue": wait}
    print(
        f"worker kind: {opts.worker}; masters (port: slots): "
        + ", ".join(f"{p}: {a}-{b}" for p, (a, b) in sorted(slots.items()))
    )
    for label, r in (("one namespace, one master", one), ("three namespaces, three masters", three)):
        print(
            f"{label:34} {r['workers']} workers {r['jobs']:6} jobs {r['seconds']:7.2f} s "
            f"{r['jobs_per_s']:6} jobs/s  master CPU s {r['master_cpu_s']}"
        )
    print(f"three/one: {three['jobs_per_s'] / one['jobs_per_s']:.2f}x")
    # Where the ceiling is: Redis CPU per job on the one busy master, and what it implies
    per_job_us = max(one["master_cpu_s"].values()) / one["jobs"] * 1e6
    result["redis_cpu_us_per_job"] = round(per_job_us, 1)
    print(
        f"Redis CPU per job on the one master: {per_job_us:.0f} us, so one master saturates near "
        f"{1e6 / per_job_us:,.0f} jobs/s and three near {3e6 / per_job_us:,.0f} (derived, not measured: "
        "below that the workers are the ceiling)"
    )
    for label, r in wait.items():
        print(f"enqueue one by one, {label:26} {r['jobs_per_s']:6}/s p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms")
    if opts.json:
        Path(opts.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
