"""--redis-url and --namespace work before and after every subcommand (issue 9).

Each subcommand runs once with the two options before it and once after it, against the test
server in a namespace that is not the default. $REDIS_URL points at a dead port and
$JOBWIRE_NAMESPACE is unset, so an option that is dropped shows as a failure (a Redis error, or
keys under `resque:`) and never as traffic to 127.0.0.1:6379.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request

import pytest

import jobwire
from conftest import JOBWIRE, echoes, wait_for
from jobwire_conformance.redisutil import free_port
from web_support import add_failure

NS = "cliopts"
PLACES = ["before", "after"]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "JOBWIRE_NAMESPACE"}
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there: a dropped --redis-url fails loudly
    return env


def argv(place: str, url: str, *command: str) -> list[str]:
    """`jobwire OPTIONS COMMAND...` or `jobwire COMMAND... OPTIONS`."""
    options = ["--redis-url", url, "--namespace", NS]
    return [JOBWIRE, *options, *command] if place == "before" else [JOBWIRE, *command, *options]


def run(place: str, url: str, *command: str) -> str:
    proc = subprocess.run(argv(place, url, *command), capture_output=True, text=True, timeout=30, env=_env())
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def ns_client(r, redis_server):
    yield jobwire.Client(redis_server.url, NS)
    assert not r.keys("resque:*"), "a command wrote to the default namespace"


@pytest.mark.parametrize("place", PLACES)
def test_enqueue(place, r, redis_server, ns_client):
    job_id = run(place, redis_server.url, "enqueue", "q", "C", "1").strip()
    job = json.loads(r.lindex(f"{NS}:queue:q", 0))
    assert (job["class"], job["args"], job["id"]) == ("C", [1], job_id)


@pytest.mark.parametrize("place", PLACES)
def test_info_and_queues(place, redis_server, ns_client):
    ns_client.enqueue("q", "C", 1)
    assert json.loads(run(place, redis_server.url, "info"))["pending"] == 1
    assert run(place, redis_server.url, "queues") == "q\t1\n"


@pytest.mark.parametrize("place", PLACES)
def test_workers(place, r, redis_server, ns_client):
    r.sadd(f"{NS}:workers", "h:1:q")
    assert run(place, redis_server.url, "workers").startswith("h:1:q\t")


@pytest.mark.parametrize("place", PLACES)
def test_version(place, redis_server, ns_client):
    assert run(place, redis_server.url, "version").startswith(f"jobwire {jobwire.__version__} ")


@pytest.mark.parametrize("place", PLACES + ["between"])
def test_failed_list_retry_remove_clear(place, r, redis_server, ns_client):
    def failed(action, *rest):
        if place == "between":  # `jobwire failed --redis-url URL --namespace NS list`
            options = ["--redis-url", redis_server.url, "--namespace", NS]
            proc = subprocess.run(
                [JOBWIRE, "failed", *options, action, *rest], capture_output=True, text=True, timeout=30, env=_env()
            )
            assert proc.returncode == 0, proc.stderr
            return proc.stdout
        return run(place, redis_server.url, "failed", action, *rest)

    first = add_failure(r, NS, queue="high")
    assert first in failed("list")
    failed("retry", first)
    assert r.llen(f"{NS}:queue:high") == 1 and r.llen(f"{NS}:failed") == 0
    second = add_failure(r, NS, queue="high")
    failed("remove", second)
    assert r.llen(f"{NS}:failed") == 0
    add_failure(r, NS, queue="high")
    failed("clear")
    assert not r.exists(f"{NS}:failed")


@pytest.mark.parametrize("place", PLACES)
def test_control(place, r, redis_server, ns_client):
    r.sadd(f"{NS}:workers", "h:1:q")
    run(place, redis_server.url, "control", "h:1:q", "pause")
    assert r.lrange(ns_client.keys.control("h:1:q"), 0, -1) == [b"pause"]


@pytest.mark.parametrize("place", PLACES)
def test_worker(place, r, redis_server, ns_client):
    cmd = argv(
        place,
        redis_server.url,
        "worker",
        "--queues",
        "q",
        "--import",
        "jobwire.conformance_jobs",
        "--heartbeat-ms",
        "200",
        "--lease-ms",
        "1000",
        "--block-timeout-ms",
        "500",
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    try:
        job_id = ns_client.enqueue("q", "jobwire.Echo", "hi")
        got = wait_for(lambda: echoes(r, NS), message="the worker's echo in the given namespace")
        assert got[0]["id"] == job_id and got[0]["args"] == ["hi"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


@pytest.mark.parametrize("place", PLACES)
def test_web(place, redis_server, ns_client):
    ns_client.enqueue("only-in-cliopts", "C", 1)
    port = free_port()
    cmd = argv(place, redis_server.url, "web", "--host", "127.0.0.1", "--port", str(port))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    try:

        def queues():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/queues", timeout=2) as resp:
                    return json.loads(resp.read())
            except OSError:
                return None

        assert "only-in-cliopts" in json.dumps(wait_for(queues, message="the web UI"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:1/3?cluster=1", "redis://127.0.0.1:1/2?cluster=true"],
)
@pytest.mark.parametrize("command", [["worker", "--queues", "a"], ["enqueue", "q", "C"], ["info"]])
def test_a_cluster_url_naming_a_database_is_bad_usage(url, command):
    # protocol.md 15.1: a cluster has only database 0; refused before connecting (port 1 is dead),
    # exit status 2 as every bad value (options.json exit_codes), not a retry loop or a Redis error
    proc = subprocess.run(
        [JOBWIRE, *command, "--redis-url", url], capture_output=True, text=True, timeout=30, env=_env()
    )
    assert proc.returncode == 2, proc.stderr
    assert "only database 0" in proc.stderr
