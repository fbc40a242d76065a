"""Interop with the real node-resque from npm (examples-node's dev dependency), both directions,
failure records and worker entries included."""

import json
import os
import signal
import subprocess

import pytest

from conftest import REPO, echoes, wait_for

NODE_DIR = REPO / "examples-node"
pytestmark = [
    pytest.mark.timeout(90),
    # skipped only outside CI: in CI a missing node-resque is a setup failure, not a skip
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules" / "node-resque").is_dir() and os.environ.get("CI") != "true",
        reason="node-resque not installed (make setup runs npm ci)",
    ),
]


def node_resque(script: str, *args, url: str, **popen):
    return ["node", str(NODE_DIR / "interop" / script), *args, "--redis-url", url]


def node_eval(url: str, body: str):
    """Run an ES module snippet with node-resque's Queue connected as `queue`; returns its JSON output."""
    source = f"""
import {{ Queue }} from 'node-resque';
const u = new URL({json.dumps(url)});
const queue = new Queue({{ connection: {{ host: u.hostname, port: Number(u.port), namespace: 'resque' }} }});
await queue.connect();
const result = await (async () => {{ {body} }})();
process.stdout.write(JSON.stringify(result));
await queue.end();
"""
    out = subprocess.run(
        ["node", "--input-type=module", "-e", source], cwd=NODE_DIR, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def node_worker(redis_server, r):
    procs = []

    def start(queues="q"):
        proc = subprocess.Popen(
            node_resque("node-resque-worker.js", "--queues", queues, url=redis_server.url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        return proc

    start.procs = procs
    yield start
    for proc in procs:
        if proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.smoke  # fresh machine: examples-node's node_modules (node-resque, ioredis)
def test_node_resque_runs_jobs_jobwire_enqueued(client, r, node_worker):
    job_id = client.enqueue("q", "jobwire.Echo", 1, "ü", {"deep": [[]]})
    fail_id = client.enqueue("q", "jobwire.Fail", "from node-resque")
    node_worker("q")
    wait_for(lambda: echoes(r) and client.failed_count(), timeout=20, message="node-resque processed both")
    echo = echoes(r)[0]
    assert echo["impl"] == "node-resque" and echo["id"] == job_id and echo["args"] == [1, "ü", {"deep": [[]]}]
    for proc in node_worker.procs:  # stop node-resque, or it takes the retried job at once
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    failure = client.failed()[0]  # node-resque's record format, read by the Python client
    assert failure.key == fail_id and failure.job_class == "jobwire.Fail"
    assert failure.get("error") == "from node-resque" and failure.get("queue") == "q"
    assert client.retry_failed(fail_id)  # retried by id; every payload field kept
    assert json.loads(r.lindex("resque:queue:q", 0))["id"] == fail_id


def test_jobwire_runs_jobs_node_resque_enqueued(client, r, spawn, redis_server):
    subprocess.run(
        node_resque("node-resque-enqueue.js", "q", "jobwire.Echo", '"from node"', "7", url=redis_server.url),
        check=True,
        capture_output=True,
        timeout=30,
    )
    subprocess.run(
        node_resque("node-resque-enqueue.js", "q", "jobwire.Fail", '"py fails"', url=redis_server.url),
        check=True,
        capture_output=True,
        timeout=30,
    )
    assert json.loads(r.lindex("resque:queue:q", 0))["queue"] == "q"  # node-resque's extra field
    spawn("q")
    wait_for(lambda: echoes(r) and client.failed_count(), timeout=20)
    assert echoes(r)[0]["args"] == ["from node", 7] and echoes(r)[0]["impl"] == "python"
    # node-resque reads the failure record a jobwire worker wrote
    failed = node_eval(redis_server.url, "return await queue.failed(0, -1);")
    assert failed[0]["exception"] == "jobwire.conformance_jobs.ConformanceFailure"
    assert failed[0]["error"] == "py fails" and failed[0]["payload"]["class"] == "jobwire.Fail"
    assert failed[0]["payload"]["queue"] == "q"  # node-resque's field survived the round trip
    stats = node_eval(redis_server.url, "return await queue.stats();")
    assert int(stats["processed"]) == 2 and int(stats["failed"]) == 1


def test_node_resque_sees_jobwire_workers_and_their_jobs(client, r, spawn, redis_server):
    spawn("q")
    # The job must still run while node-resque reads: a node process takes seconds to start on a
    # loaded machine, and once the job ends its working-on record is gone and allWorkingOn reports
    # "started". So one node process reads both, the job outlasts it (the fixture's SIGTERM stops
    # it at teardown), and the in-flight hash is checked again after the read.
    job_id = client.enqueue("q", "jobwire.Sleep", 60000)
    inflight = wait_for(lambda: r.keys("resque:jobwire:inflight:*"), message="busy")
    seen = node_eval(redis_server.url, "return [await queue.workers(), await queue.allWorkingOn()];")
    assert r.exists(*inflight), "the job ended before node-resque read it"
    workers, working = seen  # {"host:pid": "queues"}, {"host:pid": working-on record}
    (worker_id,) = client.worker_ids()
    assert workers == {worker_id.rsplit(":", 1)[0]: "q"}
    record = working[worker_id.rsplit(":", 1)[0]]
    assert record["queue"] == "q" and record["payload"]["class"] == "jobwire.Sleep"
    assert record["payload"]["id"] == job_id


def test_node_resque_removes_failure_records_jobwire_wrote(client, r, spawn, redis_server):
    r.sadd("resque:queues", "q")
    r.rpush("resque:queue:q", "not json / at all")  # failed by work.lua itself
    client.enqueue("q", "jobwire.Fail", "a/b <c> \u00fc")  # failed by the Python worker
    spawn("q")
    wait_for(lambda: client.failed_count() == 2, timeout=20)
    removed = node_eval(
        redis_server.url,
        """
        const failed = await queue.failed(0, -1);
        let n = 0;
        for (const f of failed) n += await queue.removeFailed(f);
        return n;""",
    )
    assert removed == 2 and client.failed_count() == 0
