"""Protocol 1.1 interop with the real node-resque from npm: its enqueueAt/enqueueIn items are
promoted by jobwire workers, its Scheduler moves jobwire's delayed jobs, and both promoting the
same keys at once move each item exactly once (protocol.md 14.2, 14.6)."""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import echoes, wait_for
from test_interop_node_resque import NODE_DIR, node_eval, node_resque

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules" / "node-resque").is_dir() and os.environ.get("CI") != "true",
        reason="node-resque not installed (make setup runs npm ci)",
    ),
]


@pytest.fixture
def node_scheduler(redis_server):
    procs = []

    def start():
        proc = subprocess.Popen(
            node_resque("node-resque-scheduler.js", url=redis_server.url),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        assert proc.stdout.readline().strip() == b"leader"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_jobwire_workers_promote_node_resque_enqueue_at_and_in(client, r, spawn, redis_server):
    at_ms = int(time.time() * 1000) + 3000
    node_eval(
        redis_server.url,
        f"""
        await queue.enqueueAt({at_ms}, 'q', 'jobwire.Echo', ['at']);
        await queue.enqueueIn(1500, 'q', 'jobwire.Echo', ['in']);
        return null;""",
    )
    buckets = [int(ts) for ts in r.zrange("resque:delayed_queue_schedule", 0, -1)]
    assert sum(r.llen(f"resque:delayed:{ts}") for ts in buckets) == 2  # stored in resque-scheduler's keys
    spawn("q", "--block-timeout-ms", "1000")
    wait_for(lambda: len(echoes(r)) == 2, 10, message="node-resque's delayed jobs ran")
    ran = {e["args"][0]: e for e in echoes(r)}
    assert set(ran) == {"at", "in"} and all(e["impl"] == "python" for e in ran.values())
    assert time.time() >= min(buckets)  # not before its bucket second
    assert r.zcard("resque:delayed_queue_schedule") == 0 and not r.keys("resque:timestamps:*")


def test_node_resque_scheduler_moves_jobwire_delayed_jobs(client, r, node_scheduler, redis_server):
    job_id = client.enqueue_in("q", 1, "jobwire.Echo", "from jobwire")
    listed = node_eval(redis_server.url, "return await queue.scheduledAt('q', 'jobwire.Echo', ['from jobwire']);")
    assert listed == []  # node-resque looks items up by its own JSON, which differs (protocol.md 14.2)
    timestamps = node_eval(redis_server.url, "return await queue.timestamps();")
    assert len(timestamps) == 1
    node_scheduler()
    wait_for(lambda: r.llen("resque:queue:q") == 1, 10, message="node-resque's scheduler moved the job")
    moved = json.loads(r.lindex("resque:queue:q", 0))
    assert moved == {"class": "jobwire.Echo", "queue": "q", "args": ["from jobwire"]}  # rebuilt: no id
    wait_for(lambda: r.zcard("resque:delayed_queue_schedule") == 0, 5, message="node-resque cleaned the bucket up")
    assert job_id  # the id was jobwire's; node-resque's rebuilt payload does not carry it


def test_node_resque_scheduler_and_jobwire_workers_move_each_item_once(client, r, spawn, node_scheduler):
    spawn("q")
    spawn("q", "--no-fork")
    wait_for(lambda: r.scard("resque:workers") == 2, 10, message="workers registered")
    at = time.time() + 1
    for n in range(120):
        client.enqueue_at("q", at + (n % 6), "jobwire.Echo", n)
    for n in range(120, 150):  # items in node-resque's own format too
        r.rpush(
            f"resque:delayed:{int(at) + 4}",
            json.dumps({"class": "jobwire.Echo", "queue": "q", "args": [n]}, separators=(",", ":")),
        )
    r.zadd("resque:delayed_queue_schedule", {str(int(at) + 4): int(at) + 4})
    wait_for(lambda: echoes(r), 5, message="the workers promoted the first bucket")
    node_scheduler()  # from now on both promote the same keys
    wait_for(lambda: len(echoes(r)) >= 150, 30, message="every delayed job ran")
    time.sleep(1)
    runs = sorted(e["args"][0] for e in echoes(r))
    assert runs == list(range(150)), [n for n in range(150) if runs.count(n) != 1]
    assert r.zcard("resque:delayed_queue_schedule") == 0
    by_node = [e for e in echoes(r) if e["id"] is None and e["args"][0] < 120]  # node-resque rebuilds without id
    by_jobwire = [e for e in echoes(r) if e["id"] is not None]
    assert by_node and by_jobwire, (len(by_node), len(by_jobwire))
