"""`make demo`: Python enqueues jobs; Python, Node and C workers process them; Node and C
enqueue jobs that Python processes. Everything runs against a private redis-server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

import jobwire
from jobwire_conformance.redisutil import RedisServer

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def workers_available() -> dict[str, list[str]]:
    """The worker command of each implementation present in this checkout."""
    found = {"python": [str(BIN / "jobwire"), "worker", "--import", "jobwire.conformance_jobs"]}
    if (REPO / "examples-node/node_modules").is_dir() and (REPO / "examples-node/worker.js").is_file():
        found["node"] = ["node", str(REPO / "examples-node/worker.js")]
    if os.access(REPO / "examples-c/jobwire-worker", os.X_OK):
        found["c"] = [str(REPO / "examples-c/jobwire-worker")]
    return found


def enqueuers_available() -> dict[str, list[str]]:
    found = {}
    if (REPO / "examples-node/node_modules").is_dir() and (REPO / "examples-node/enqueue.js").is_file():
        found["node"] = ["node", str(REPO / "examples-node/enqueue.js")]
    if os.access(REPO / "examples-c/jobwire-enqueue", os.X_OK):
        found["c"] = [str(REPO / "examples-c/jobwire-enqueue")]
    return found


def main() -> int:
    server = RedisServer().start()
    url = server.url
    env = {**os.environ, "REDIS_URL": url}
    client = jobwire.Client(url)
    r = redis.Redis.from_url(url)
    procs = []
    try:
        impls = workers_available()
        print(f"demo: private Redis at {url}; workers: {', '.join(impls)}")
        for impl, cmd in impls.items():
            procs.append(
                subprocess.Popen(
                    [*cmd, "--queues", f"demo-{impl},shared"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        expected = []
        for impl in impls:  # Python enqueues for every worker
            for n in range(2):
                expected.append(
                    ("python", client.enqueue(f"demo-{impl}", "jobwire.Echo", f"hello {impl}", n, {"ü": 1.5}))
                )
        for n in range(4):
            expected.append(("python", client.enqueue("shared", "jobwire.Echo", "shared", n)))
        for impl, cmd in enqueuers_available().items():  # Node and C enqueue for Python
            out = subprocess.run(
                [*cmd, "demo-python", "jobwire.Echo", json.dumps(f"from {impl}")],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            expected.append((impl, out.split()[-1]))
        client.enqueue("demo-python", "jobwire.Fail", "this job fails on purpose")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = {json.loads(x)["id"] for x in r.lrange("resque:jobwire:conformance:echo", 0, -1)}
            if all(job_id in done for _, job_id in expected) and client.failed_count():
                break
            time.sleep(0.1)
        echoes = {}
        for raw in r.lrange("resque:jobwire:conformance:echo", 0, -1):
            e = json.loads(raw)
            echoes[e["id"]] = e
        print(f"\n{'enqueued by':<12}{'queue':<14}{'processed by':<14}{'worker pid':<12}args")
        for enqueuer, job_id in expected:
            e = echoes.get(job_id)
            if e is None:
                print(f"{enqueuer:<12}{'?':<14}{'NOT PROCESSED':<14}")
                continue
            print(
                f"{enqueuer:<12}{e['queue']:<14}{e['impl']:<14}{e['pid']:<12}{json.dumps(e['args'], ensure_ascii=False)}"
            )
        for failure in client.failed():
            print(
                f"\nfailure record: {failure.get('exception')}: {failure.get('error')} (queue {failure.get('queue')})"
            )
        print(f"\ninfo: {json.dumps(client.info())}")
        missing = [job_id for _, job_id in expected if job_id not in echoes]
        return 1 if missing else 0
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGQUIT)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.close()


if __name__ == "__main__":
    sys.exit(main())
