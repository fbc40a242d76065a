"""Issue 12's soak test: 10,000 jobs, about a third failing on their first attempts, processed by
every implementation that claims the protocol 1.1 features (conformance/implementations/*.json
with "delayed" and "retries": Python fork and inline today; Node and C join when their manifests
claim them), all promoting at once. Every job must end done exactly once or in the failed list
after its last attempt; no attempt may run twice, none after success; every recorded delay must be
protocol.md 14.4's formula (the suite's own implementation, jobwire_conformance.vectors_1_1).

JOBWIRE_SOAK_JOBS changes the count (default 10000).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter

import pytest

from jobwire import payload as jobmod
from jobwire_conformance.core import TIMINGS
from jobwire_conformance.impl import Implementation, WorkerProc, available
from jobwire_conformance.vectors_1_1 import retry_outcome

JOBS = int(os.environ.get("JOBWIRE_SOAK_JOBS", "10000"))
POLICY = {"max_attempts": 3, "backoff": "exponential", "delay_ms": 40, "factor": 2, "jitter": 0.5}
pytestmark = pytest.mark.timeout(600)


def claimants() -> list[Implementation]:
    out = []
    for name in available():
        impl = Implementation.load(name)
        if impl.has("delayed") and impl.has("retries") and not impl.missing() and not impl.matrix_only:
            out.append(impl)
    return out


def test_ten_thousand_jobs_with_retries_across_implementations(r, redis_server, tmp_path):
    impls = claimants()
    assert any(i.name == "python" for i in impls), [i.name for i in impls]
    rng = random.Random(12)
    fail_times = {}
    payloads = []
    for n in range(JOBS):
        k = 0 if rng.random() < 2 / 3 else rng.choice((1, 2, 3))  # 3: fails on every attempt
        job_id = f"soak{n:05d}"
        fail_times[job_id] = k
        payloads.append(jobmod.dumps({"class": "jobwire.Flaky", "args": [k], "id": job_id, "retry": POLICY}))
    values = dict(
        TIMINGS, queues="soak", redis_url=redis_server.url, namespace="resque", heartbeat_ms=500, lease_ms=5000
    )
    workers = [WorkerProc(impl, values, str(tmp_path)) for impl in impls for _ in range(2)]
    try:
        from jobwire.client import Client

        client = Client(redis_server.url)
        for start in range(0, JOBS, 1000):
            client._push("soak", payloads[start : start + 1000])
        exhausted = sum(1 for k in fail_times.values() if k >= 3)
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            done = r.llen("resque:queue:soak") == 0 and r.zcard("resque:jobwire:retry") == 0
            if done and r.llen("resque:failed") >= exhausted and not r.keys("resque:jobwire:inflight:*"):
                break
            time.sleep(0.5)
        time.sleep(1)
    finally:
        for w in workers:
            w.kill_all()
    runs = Counter()
    impls_seen = Counter()
    for raw in r.lrange("resque:jobwire:conformance:echo", 0, -1):
        echo = json.loads(raw)
        runs[(echo["id"], echo["attempt"])] += 1
        impls_seen[echo["impl"]] += 1
    failed = {}
    for raw in r.lrange("resque:failed", 0, -1):
        record = json.loads(raw)
        failed.setdefault(record["payload"]["id"], []).append(record)
    problems = []
    for job_id, k in fail_times.items():
        last = min(k + 1, 3)
        wanted = {(job_id, n): 1 for n in range(1, last + 1)}
        got = {key: runs[key] for key in [(job_id, n) for n in range(1, 5)] if runs[key]}
        if got != wanted:
            problems.append(f"{job_id} (fails {k}x): runs {got}")
        in_failed = failed.get(job_id, [])
        if (k >= 3) != (len(in_failed) == 1) or len(in_failed) > 1:
            problems.append(f"{job_id} (fails {k}x): {len(in_failed)} failure records")
        for record in in_failed:
            history = record["payload"].get("attempts", [])
            delays = [h["delay_ms"] for h in history]
            want = [retry_outcome(POLICY, job_id, n)[1] for n in (1, 2)]
            if delays != want:
                problems.append(f"{job_id}: recorded delays {delays}, formula {want}")
    assert not problems, f"{len(problems)} problems, e.g. {problems[:5]}; implementations {dict(impls_seen)}"
    assert set(impls_seen) == {i.impl for i in impls}, (dict(impls_seen), [i.name for i in impls])
