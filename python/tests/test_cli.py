"""The `jobwire` command line: each command, and one clear line for every error."""

import json
import os
import subprocess

import pytest
from conftest import JOBWIRE

import jobwire
from jobwire import spec


def run(url, *args, ok=True):
    proc = subprocess.run([JOBWIRE, *args, "--redis-url", url], capture_output=True, text=True, timeout=30)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_enqueue_info_queues_and_failed(r, redis_server):
    url = redis_server.url
    job_id = run(url, "enqueue", "high", "Mail", "7", '{"to":"a"}', "plain words").stdout.strip()
    doc = json.loads(r.lindex("resque:queue:high", 0))
    assert doc["id"] == job_id and doc["args"] == [7, {"to": "a"}, "plain words"]
    assert json.loads(run(url, "info").stdout)["pending"] == 1
    assert run(url, "queues").stdout == "high\t1\n"
    r.rpush(
        "resque:failed",
        json.dumps(
            {
                "failed_at": "x",
                "payload": doc,
                "exception": "E",
                "error": "m",
                "backtrace": [],
                "worker": "h:1:high",
                "queue": "high",
            }
        ),
    )
    assert job_id in run(url, "failed", "list").stdout
    run(url, "failed", "retry", job_id)
    assert r.llen("resque:queue:high") == 2 and r.llen("resque:failed") == 0


def test_errors_are_one_line_and_non_zero(r, redis_server):
    url = redis_server.url
    for args, expected in [
        (("enqueue", "bad:queue", "X"), "invalid queue name"),
        (("failed", "retry", "nope"), "no failure record"),
        (("control", "h:1:q", "pause"), "no worker"),
        (("worker", "--queues", "q", "--import", "no_such_module_xyz"), "cannot import"),
    ]:
        proc = run(url, *args, ok=False)
        assert proc.returncode == 1
        assert proc.stderr.startswith("jobwire: ") and expected in proc.stderr
        assert "Traceback" not in proc.stderr
    proc = subprocess.run([JOBWIRE, "info", "--redis-url", "redis://127.0.0.1:1/0"], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("jobwire: Redis error") and "Traceback" not in proc.stderr


@pytest.mark.smoke  # fresh machine: the `jobwire` entry point of the editable install
def test_version_names_package_and_protocol():
    """The release version is the root VERSION, the protocol's spec/VERSION (one source each)."""
    from conftest import REPO

    release = (REPO / "VERSION").read_text().strip()
    protocol = (REPO / "spec" / "VERSION").read_text().strip()
    out = subprocess.run([JOBWIRE, "version"], capture_output=True, text=True).stdout
    assert out == f"jobwire {release} (protocol {protocol})\n"
    assert (jobwire.__version__, spec.spec_version()) == (release, protocol)


def test_bad_worker_options_are_usage_errors_with_status_2(redis_server):
    """protocol.md 7.2: flags, variables, the --queues grammar and the lease rule; exit status 2."""
    url = redis_server.url
    for args, expected in [
        (("--queues", "q", "--lease-ms", "100", "--heartbeat-ms", "100"), "lease"),
        (("--queues", "q", "--lease-ms=100", "--heartbeat-ms=50"), "lease"),
        (("--queues", "a,,b"), "invalid queue name"),
        (("--queues", "mail*"), "invalid queue name"),
        (("--queues", " a"), "invalid queue name"),
        (("--queues", "*,a,*"), "twice"),
        (("--queues", "q", "--heartbeat-ms", "+5"), "ASCII digits"),
        (("--queues", "q", "--no-such-flag"), "unrecognized"),
        (("--queue", "q"), "unrecognized"),
    ]:
        proc = subprocess.run(
            [JOBWIRE, "worker", *args, "--redis-url", url], capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 2, (args, proc.stderr)
        assert expected in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_an_empty_variable_counts_as_unset(redis_server):
    """JOBWIRE_HEARTBEAT_MS= is ignored (the default holds); a set one is read and checked."""
    env = dict(os.environ, JOBWIRE_QUEUES="", JOBWIRE_LEASE_MS="")
    proc = subprocess.run(
        [JOBWIRE, "worker", "--redis-url", redis_server.url], capture_output=True, text=True, timeout=30, env=env
    )
    assert proc.returncode == 2 and "needs --queues" in proc.stderr
    env = dict(os.environ, JOBWIRE_QUEUES="q", JOBWIRE_LEASE_MS="600", JOBWIRE_HEARTBEAT_MS="300")
    proc = subprocess.run(
        [JOBWIRE, "worker", "--redis-url", redis_server.url], capture_output=True, text=True, timeout=30, env=env
    )
    assert proc.returncode == 2 and "must exceed 2 x" in proc.stderr
