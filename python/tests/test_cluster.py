"""Redis Cluster: with a hash-tagged namespace every script's keys share one slot, so the same
scripts, clients and workers (Python, Node, C) run on a three-master cluster unchanged
(protocol.md 15, rationale.md)."""

import json
import signal
import subprocess

import pytest

import jobwire
from conftest import JOBWIRE, REPO, wait_for
from jobwire.client import connect
from jobwire_conformance.redisutil import ClusterServer

pytestmark = pytest.mark.timeout(90)
NS = "{jw}"


@pytest.fixture(scope="module")
def cluster():
    with ClusterServer(replicas=0, node_timeout_ms=2000) as server:
        yield server


@pytest.fixture
def rc(cluster):
    client = connect(cluster.url)
    client.flushall()
    yield client
    client.close()


# The worker of each language; each runs the conformance job classes (jobwire.Echo, Fail, Sleep).
WORKERS = {
    "python": [JOBWIRE, "worker", "--import", "jobwire.conformance_jobs"],
    "node": ["node", str(REPO / "examples-node" / "worker.js")],
    "c": [str(REPO / "examples-c" / "jobwire-worker")],
}


def start_worker(cluster, impl="python", *extra, queues="high,low", log=None):
    """A worker of `impl` on the cluster; its output goes to the open file `log` (or nowhere)."""
    out = log or subprocess.DEVNULL
    return subprocess.Popen(
        [
            *WORKERS[impl],
            "--queues",
            queues,
            "--redis-url",
            cluster.url,
            "--namespace",
            NS,
            "--heartbeat-ms",
            "200",
            "--lease-ms",
            "1000",
            "--block-timeout-ms",
            "500",
            *extra,
        ],
        stdout=out,
        stderr=out,
    )


def echoes(rc):
    return [json.loads(x) for x in rc.lrange(f"{NS}:jobwire:conformance:echo", 0, -1)]


@pytest.mark.parametrize("impl", WORKERS)
def test_jobs_failures_and_recovery_on_a_cluster(cluster, rc, impl):
    # the URL names the first node; NS's slot lives on another, so C must follow MOVED
    assert cluster.master_port(NS) != cluster.ports[0]
    client = jobwire.Client(redis=rc, namespace=NS)
    low = client.enqueue("low", "jobwire.Echo", "low")
    high = [client.enqueue("high", "jobwire.Echo", i) for i in range(5)]
    client.enqueue("high", "jobwire.Fail", "on a cluster")
    worker = start_worker(cluster, impl)
    try:
        wait_for(lambda: len(echoes(rc)) == 6 and client.failed_count() == 1, timeout=20, message="jobs done")
        assert [e["id"] for e in echoes(rc)] == [*high, low]  # strict priority, on a cluster too
        assert client.failed()[0].get("error") == "on a cluster"
        (view,) = client.workers()
        assert view.info["impl"] == impl and view.lease_ms_left > 0
        sleeper = client.enqueue("high", "jobwire.Sleep", 1500)
        wait_for(lambda: client.workers()[0].working_on, message="busy")
        worker.kill()
        worker.wait(10)
        worker = start_worker(cluster, impl)  # recovers the dead worker's job once its lease lapses
        wait_for(lambda: sleeper in [e["id"] for e in echoes(rc)], timeout=20, message="recovered job done")
        # the echo comes before the settle; once settled, the death count is gone
        wait_for(lambda: rc.hget(f"{NS}:jobwire:deaths", sleeper) is None, message="settled")
        assert client.info()["workers"] == 1
    finally:
        worker.send_signal(signal.SIGQUIT)
        worker.wait(10)


def move_slot(cluster, key: str, to_port: int) -> None:
    """Reshard by hand: `key`'s slot, with every key in it, moves to the master on `to_port`
    (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), as `redis-cli --cluster
    reshard` does. Clients then get MOVED (or ASK while it migrates)."""
    import redis

    src_port = cluster.master_port(key)
    src, dst = redis.Redis(port=src_port), redis.Redis(port=to_port)
    slot = src.execute_command("CLUSTER", "KEYSLOT", key)
    src_id, dst_id = (n.execute_command("CLUSTER", "MYID") for n in (src, dst))
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
        src.execute_command("MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *keys)
    for port in cluster.ports:
        redis.Redis(port=port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)


@pytest.mark.parametrize("impl", WORKERS)
def test_a_slot_moved_mid_job_is_followed_by_the_job_and_the_worker(cluster, rc, impl):
    # protocol.md 15.1: the echo of a job that started before its slot moved goes to the new master
    # (MOVED), and so do the worker's settle and its next reserve; nothing fails, nothing is lost
    client = jobwire.Client(redis=rc, namespace=NS)
    others = [p for p in cluster.ports if p not in (cluster.ports[0], cluster.master_port(NS))]
    worker = start_worker(cluster, impl)
    try:
        wait_for(lambda: client.workers(), timeout=20, message="registered")
        sleeper = client.enqueue("high", "jobwire.Sleep", 1500)
        wait_for(lambda: client.workers()[0].working_on, timeout=10, message="busy")
        move_slot(cluster, NS, others[0])
        assert cluster.master_port(NS) == others[0]
        wait_for(lambda: sleeper in [e["id"] for e in echoes(rc)], timeout=20, message="echo after the move")
        after = client.enqueue("low", "jobwire.Echo", "after the move")
        wait_for(lambda: after in [e["id"] for e in echoes(rc)], timeout=20, message="next job")
        wait_for(lambda: int(rc.get(f"{NS}:stat:processed") or 0) == 2, timeout=10, message="both settled")
        assert client.failed_count() == 0
    finally:
        worker.send_signal(signal.SIGQUIT)
        worker.wait(10)
