"""Faults beyond a clean restart, against the Python worker: Redis unreachable for 10 s, a port that
accepts and never answers, Redis at maxmemory with noeviction, the connection cut mid-reply, and a
job that finishes while Redis is down. No worker exits and nothing is lost.

Each test runs its own redis-server (AOF always, so a restart keeps what was acknowledged) and,
where the fault is on the wire, the shared loopback proxy tests/fault_proxy.py between the worker
and Redis. The same faults are tests of the Node worker (examples-node/test/faults.test.js) and
of the C worker (examples-c/tests/run_tests.py, `fault_*`), through the same proxy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis

import jobwire
from jobwire_conformance.redisutil import RedisServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from fault_proxy import Proxy  # noqa: E402  (tests/fault_proxy.py: one proxy for every language's tests)

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
JOBWIRE = str(Path(sys.executable).with_name("jobwire"))
TIMINGS = ("--heartbeat-ms", "200", "--lease-ms", "5000", "--block-timeout-ms", "500")
IMPLS = ("python",)  # Node and C run these faults in their own test suites (see above)


def worker_cmd(impl: str, url: str) -> list[str]:
    """The command line of the Python worker on queue q (`impl` names it in the test ids)."""
    assert impl == "python", impl
    return [JOBWIRE, "worker", "--queues", "q", "--redis-url", url, "--import", "jobwire.conformance_jobs", *TIMINGS]


@pytest.fixture
def server():
    workdir = tempfile.mkdtemp(prefix="jobwire-faults-")
    srv = RedisServer(extra_args=("--appendonly", "yes", "--appendfsync", "always", "--dir", workdir))
    srv.start()
    yield srv
    srv.kill()
    srv.close()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def start_worker(tmp_path):
    started = []

    def start(impl: str, url: str) -> subprocess.Popen:
        log = open(tmp_path / f"{impl}-{len(started)}.log", "wb")
        proc = subprocess.Popen(worker_cmd(impl, url), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        proc.logfile = log.name
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def R(srv: RedisServer) -> redis.Redis:
    return redis.Redis(port=srv.port, socket_timeout=5)


def echo_ids(srv: RedisServer) -> list[str]:
    return [json.loads(x)["id"] for x in R(srv).lrange("resque:jobwire:conformance:echo", 0, -1)]


def failed_ids(srv: RedisServer) -> list[str]:
    return [(json.loads(x).get("payload") or {}).get("id") for x in R(srv).lrange("resque:failed", 0, -1)]


def wait_for(predicate, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


def registered(srv: RedisServer) -> bool:
    return R(srv).scard("resque:workers") >= 1


def processes_one(srv: RedisServer, worker: subprocess.Popen, timeout: float = 20) -> None:
    """The worker is alive and runs a fresh job end to end."""
    job_id = jobwire.Client(srv.url).enqueue("q", "jobwire.Echo", "probe")
    wait_for(lambda: job_id in echo_ids(srv), timeout, f"the probe job to run ({log_tail(worker)})")
    assert worker.poll() is None, log_tail(worker)


def log_tail(worker: subprocess.Popen) -> str:
    return Path(worker.logfile).read_text(errors="replace")[-1500:]


@pytest.mark.parametrize("impl", IMPLS)
def test_redis_unreachable_for_10_s(impl, server, start_worker):
    worker = start_worker(impl, server.url)
    wait_for(lambda: registered(server), 20, "the worker to register")
    processes_one(server, worker)
    server.kill()
    time.sleep(10)
    assert worker.poll() is None, f"the worker exited while Redis was away: {log_tail(worker)}"
    server.start()
    processes_one(server, worker)


@pytest.mark.parametrize("impl", IMPLS)
def test_job_finishing_while_redis_is_down_is_settled_once_back(impl, server, start_worker):
    worker = start_worker(impl, server.url)
    wait_for(lambda: registered(server), 20, "the worker to register")
    # jobwire.Fail finishes without touching Redis; make it finish while Redis is down by holding
    # it behind a sleep that ends in the outage
    client = jobwire.Client(server.url)
    client.enqueue("q", "jobwire.Sleep", 800)
    failing = client.enqueue("q", "jobwire.Fail", "kept across the outage")
    wait_for(lambda: R(server).keys("resque:jobwire:inflight:*"), 10, "the sleep to be reserved")
    time.sleep(0.2)
    server.kill()
    time.sleep(3)
    server.start()

    # the failure is recorded exactly once, the in-flight hash is cleared, nothing re-runs
    def settled():
        r = R(server)
        records = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
        mine = [f for f in records if (f.get("payload") or {}).get("id") == failing]
        return mine if mine and not r.keys("resque:jobwire:inflight:*") and r.llen("resque:queue:q") == 0 else None

    mine = wait_for(settled, 30, f"the held outcome to be settled ({log_tail(worker)})")
    assert len(mine) == 1 and mine[0]["error"] == "kept across the outage"
    assert worker.poll() is None
    processes_one(server, worker)


@pytest.mark.parametrize("impl", IMPLS)
def test_port_that_accepts_and_never_answers(impl, server, start_worker):
    proxy = Proxy(server.port)
    try:
        proxy.mode = "hang"
        url = f"redis://127.0.0.1:{proxy.port}/0"
        worker = start_worker(impl, url)
        time.sleep(6)
        assert worker.poll() is None, f"the worker exited on a silent port: {log_tail(worker)}"
        proxy.mode = "forward"
        proxy.drop_all()
        wait_for(lambda: registered(server), 40, f"the worker to register once Redis answers ({log_tail(worker)})")
        processes_one(server, worker, timeout=30)
    finally:
        proxy.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_connection_cut_mid_reply(impl, server, start_worker):
    proxy = Proxy(server.port)
    try:
        worker = start_worker(impl, f"redis://127.0.0.1:{proxy.port}/0")
        wait_for(lambda: registered(server), 20, "the worker to register")
        for round_ in range(3):
            proxy.cut_after = 3  # the next reply from Redis arrives as 3 bytes and a closed socket
            job_id = jobwire.Client(server.url).enqueue("q", "jobwire.Echo", round_)
            wait_for(
                lambda job_id=job_id: job_id in echo_ids(server), 30, f"job {round_} after a cut ({log_tail(worker)})"
            )
        assert proxy.cuts >= 1
        assert worker.poll() is None
        # The cut may land on the job's own RPUSH (its connection goes through the proxy too):
        # that job fails by its own write, a job's failure. Any other failure is the worker's.
        failures = [json.loads(raw) for raw in R(server).lrange("resque:failed", 0, -1)]
        by_worker = [f for f in failures if not any("conformance_jobs" in frame for frame in f.get("backtrace") or [])]
        assert not by_worker, by_worker
    finally:
        proxy.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_maxmemory_noeviction(impl, server, start_worker):
    worker = start_worker(impl, server.url)
    wait_for(lambda: registered(server), 20, "the worker to register")
    r = R(server)
    client = jobwire.Client(server.url)
    r.set("resque:pause-all-workers", "true")  # hold the jobs in the queue while memory fills
    held = [client.enqueue("q", "jobwire.Echo", i) for i in range(20)]
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", str(int(r.info("memory")["used_memory"])))
    with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
        for _ in range(10_000):
            client.enqueue("q", "jobwire.Echo", "x" * 1000)
    r.delete("resque:pause-all-workers")  # DEL is allowed at maxmemory; reserving now is refused
    time.sleep(3)
    assert worker.poll() is None, f"the worker exited at maxmemory: {log_tail(worker)}"
    queued = [json.loads(x)["id"] for x in r.lrange("resque:queue:q", 0, -1)]
    inflight = [json.loads(r.hget(k, "payload"))["id"] for k in r.keys("resque:jobwire:inflight:*")]
    # a job whose own write (the echo) met the limit fails with Redis' error: kept, not lost
    assert set(held) <= set(queued) | set(inflight) | set(echo_ids(server)) | set(failed_ids(server)), (
        "a held job vanished"
    )
    r.config_set("maxmemory", "0")
    wait_for(
        lambda: set(held) <= set(echo_ids(server)) | set(failed_ids(server)),
        30,
        f"every job held before the limit to run ({log_tail(worker)})",
    )
    failures = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert all("maxmemory" in f["error"] for f in failures), failures
    processes_one(server, worker)
