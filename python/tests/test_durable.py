"""Durable enqueue (protocol.md 15.4) from every language's enqueuer: with a replica attached,
`--wait-replicas 1` succeeds and the job is on the replica; asking for more replicas than exist
fails with jobwire.NotReplicated (exit status 1) while the job stays on the master."""

import subprocess
import time

import pytest
import redis

from conftest import JOBWIRE, REPO
from jobwire_conformance.redisutil import RedisServer

pytestmark = pytest.mark.timeout(90)

ENQUEUERS = {
    "python": lambda url, *flags: [JOBWIRE, "enqueue", "--redis-url", url, *flags, "dq", "jobwire.Echo", "1"],
    "node": lambda url, *flags: [
        "node",
        str(REPO / "examples-node" / "enqueue.js"),
        "--redis-url",
        url,
        *flags,
        "--",
        "dq",
        "jobwire.Echo",
        "1",
    ],
    "c": lambda url, *flags: [
        str(REPO / "examples-c" / "jobwire-enqueue"),
        "--redis-url",
        url,
        *flags,
        "dq",
        "jobwire.Echo",
        "1",
    ],
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A master and one replica of it, both throwaway (the replica writes the RDB of its first
    sync into --dir: a temporary one, not the checkout)."""
    where = str(tmp_path_factory.mktemp("durable"))
    with RedisServer(extra_args=("--dir", where)) as master:
        with RedisServer(
            extra_args=("--replicaof", "127.0.0.1", str(master.port), "--dir", where, "--dbfilename", "replica.rdb")
        ) as replica:
            m, r = redis.Redis(port=master.port), redis.Redis(port=replica.port)
            deadline = time.monotonic() + 20
            while r.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica did not sync"
                time.sleep(0.05)
            yield master, m, r


@pytest.mark.parametrize("impl", ENQUEUERS)
def test_durable_enqueue(pair, impl):
    master, m, replica = pair
    m.delete("resque:queue:dq")
    ok = subprocess.run(ENQUEUERS[impl](master.url, "--wait-replicas", "1"), capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    job_id = ok.stdout.strip()
    assert job_id.encode() in replica.lindex("resque:queue:dq", 0)  # acknowledged means replicated
    short = subprocess.run(
        ENQUEUERS[impl](master.url, "--wait-replicas", "2", "--wait-timeout-ms", "50"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert short.returncode == 1 and "1 of 2 replica" in short.stderr, short.stderr
    assert m.llen("resque:queue:dq") == 2  # on the master all the same, as the error says
