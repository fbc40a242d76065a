"""Shared fixtures: a private redis-server per test session, a clean database per test, and
helpers to run real worker processes against it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

import jobwire
from jobwire_conformance.redisutil import RedisServer

REPO = Path(__file__).resolve().parents[2]

# CI=true: a skipped test fails (no silent skips in CI; conformance/README.md). The hooks live in
# the conformance package, which scripts/setup.sh installs next to jobwire.
try:
    from jobwire_conformance.pytest_ci import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401
except ImportError:  # pragma: no cover - only a partial install lacks it; CI must not
    if os.environ.get("CI", "").lower() == "true":
        raise
JOBWIRE = str(Path(sys.executable).with_name("jobwire"))
TEST_CLIENT_TIMEOUT_S = 60  # the test client's socket timeout (see the `r` fixture)


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def r(redis_server):
    # redis-py 8 reads with a 5 s socket timeout by default. A test's read can queue behind a
    # script the worker runs: work.lua takes seconds to fail a 20 MiB payload on a loaded machine
    # (test_bad_input_never_stops_the_worker), so the test's own client waits longer than that.
    client = redis.Redis.from_url(redis_server.url, socket_timeout=TEST_CLIENT_TIMEOUT_S)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def client(r, redis_server):
    return jobwire.Client(redis_server.url)


class WorkerProcess:
    """A real `jobwire worker` subprocess with fast timings."""

    def __init__(self, url: str, queues: str, *extra: str, env=None) -> None:
        self.args = [
            JOBWIRE,
            "worker",
            "--queues",
            queues,
            "--redis-url",
            url,
            "--import",
            "jobwire.conformance_jobs",
            "--heartbeat-ms",
            "200",
            "--lease-ms",
            "1000",
            "--block-timeout-ms",
            "500",
            *extra,
        ]
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout=15) -> int:
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.proc.stdout.read().decode() if self.proc.poll() is not None else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def spawn(redis_server, r):
    started = []

    def start(queues="q", *extra, env=None) -> WorkerProcess:
        worker = WorkerProcess(redis_server.url, queues, *extra, env=env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.signal(signal.SIGTERM)
            try:
                worker.wait(5)
            except subprocess.TimeoutExpired:
                worker.kill()


def wait_for(predicate, timeout=10.0, interval=0.02, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def echoes(r, namespace="resque") -> list[dict]:
    import json

    return [json.loads(x) for x in r.lrange(f"{namespace}:jobwire:conformance:echo", 0, -1)]
