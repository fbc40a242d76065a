"""Every worker and enqueuer works as a Redis ACL user limited to what protocol.md 8.9 lists, on
the namespace's keys only; a command or a key outside that list is refused.

The user is made from the `ACL SETUSER` line of protocol.md itself (the one source of the list).
Redis's ACL LOG must stay empty while the workers run: a denial that a client swallowed (a
handshake command it treats as optional) would show there.
"""

from __future__ import annotations

import re
import signal
import subprocess
import urllib.parse

import pytest
import redis

from conftest import REPO, JOBWIRE, wait_for
from jobwire.client import Client
from jobwire_conformance.redisutil import RedisServer

NS = "aclns"
# Characters a URL must percent-encode (protocol.md 8.9: user and password are URL-decoded), so
# every client is shown to decode them.
PASSWORD = "s3cret/acl@pw%:x"
NODE = ["node", str(REPO / "examples-node/worker.js")]
WORKERS = {
    "python": [JOBWIRE, "worker", "--import", "jobwire.conformance_jobs"],
    "python-inline": [JOBWIRE, "worker", "--import", "jobwire.conformance_jobs", "--no-fork"],
    "node": NODE,
    "node-inline": NODE + ["--no-fork"],
    "c": [str(REPO / "examples-c/jobwire-worker")],
}
ENQUEUERS = {
    "python": lambda url: [JOBWIRE, "enqueue", "--redis-url", url, "--namespace", NS, "aclq", "jobwire.Echo", "7"],
    "node": lambda url: [
        "node",
        str(REPO / "examples-node/enqueue.js"),
        "--redis-url",
        url,
        "--namespace",
        NS,
        "--",
        "aclq",
        "jobwire.Echo",
        "7",
    ],
    "c": lambda url: [
        str(REPO / "examples-c/jobwire-enqueue"),
        "--redis-url",
        url,
        "--namespace",
        NS,
        "aclq",
        "jobwire.Echo",
        "7",
    ],
}


def acl_setuser_line() -> list[str]:
    """protocol.md 8.9's ACL SETUSER line, for namespace NS and our password."""
    text = (REPO / "spec/protocol.md").read_text()
    line = re.search(r"^ACL SETUSER jobwire .*$", text.split("### 8.9", 1)[1], re.M).group(0)
    words = line.split()[2:]  # after ACL SETUSER
    return [w.replace("~resque:*", f"~{NS}:*").replace(">secret", f">{PASSWORD}") for w in words]


@pytest.fixture(scope="module")
def acl_server():
    server = RedisServer().start()
    admin = redis.Redis.from_url(server.url)
    admin.execute_command("ACL", "SETUSER", *acl_setuser_line())
    yield server, admin, f"redis://jobwire:{urllib.parse.quote(PASSWORD, safe='')}@127.0.0.1:{server.port}/0"
    admin.close()
    server.close()


def _denials(admin) -> list:
    return admin.execute_command("ACL", "LOG")


@pytest.mark.parametrize("impl", sorted(WORKERS))
def test_worker_runs_as_the_limited_user(acl_server, impl):
    _, admin, url = acl_server
    if impl == "c" and not (REPO / "examples-c/jobwire-worker").exists():
        pytest.fail("the C worker is not built (make -C examples-c)")
    admin.flushall()
    admin.execute_command("ACL", "LOG", "RESET")
    proc = subprocess.Popen(
        WORKERS[impl]
        + [
            "--queues",
            "aclq",
            "--redis-url",
            url,
            "--namespace",
            NS,
            "--heartbeat-ms",
            "300",
            "--lease-ms",
            "1500",
            "--block-timeout-ms",
            "300",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        client = Client(url, namespace=NS)  # the producer is limited too
        wait_for(lambda: admin.scard(f"{NS}:workers") == 1, timeout=20, message=f"{impl} to register")
        echo_id = client.enqueue("aclq", "jobwire.Echo", 1, "two")
        fail_id = client.enqueue("aclq", "jobwire.Fail", "denied?")
        wait_for(
            lambda: admin.llen(f"{NS}:jobwire:conformance:echo") == 1 and admin.llen(f"{NS}:failed") == 1,
            timeout=20,
            message=f"{impl} to run an Echo and a Fail job",
        )
        assert echo_id.encode() in admin.lindex(f"{NS}:jobwire:conformance:echo", 0)
        assert fail_id.encode() in admin.lindex(f"{NS}:failed", 0)
        wid = admin.smembers(f"{NS}:workers").pop().decode()
        if impl not in ("node-inline",):  # an in-process Node job cannot be killed (protocol.md 7.5)
            sleep_id = client.enqueue("aclq", "jobwire.Sleep", 30000)
            wait_for(
                lambda: admin.hget(f"{NS}:jobwire:inflight:{wid}", "payload") is not None,
                timeout=10,
                message="the Sleep job to be reserved",
            )
            admin.rpush(f"{NS}:jobwire:control:{wid}", "kill")
            wait_for(lambda: admin.llen(f"{NS}:failed") == 2, timeout=10, message="the killed job's failure")
            killed = admin.lindex(f"{NS}:failed", -1)
            assert b"jobwire.Killed" in killed and sleep_id.encode() in killed, killed
        client.redis.close()
        proc.send_signal(signal.SIGQUIT)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, out.decode(errors="replace")
        assert not admin.sismember(f"{NS}:workers", wid)
        assert b"NOPERM" not in out, out.decode(errors="replace")
        assert _denials(admin) == [], (_denials(admin), out.decode(errors="replace"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.mark.parametrize("impl", sorted(ENQUEUERS))
def test_enqueuer_works_as_the_limited_user(acl_server, impl):
    _, admin, url = acl_server
    admin.flushall()
    admin.execute_command("ACL", "LOG", "RESET")
    done = subprocess.run(ENQUEUERS[impl](url), cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = done.stdout.strip().splitlines()[-1]
    assert job_id.encode() in admin.lindex(f"{NS}:queue:aclq", 0)
    assert _denials(admin) == []


def test_commands_and_keys_outside_the_list_are_refused(acl_server):
    _, admin, url = acl_server
    admin.execute_command("ACL", "LOG", "RESET")
    limited = redis.Redis.from_url(url)
    try:
        assert limited.ping()
        limited.rpush(f"{NS}:queue:x", b"ok")  # inside: allowed
        for attempt in (
            lambda: limited.flushall(),
            lambda: limited.keys("*"),
            lambda: limited.config_get("*"),
            lambda: limited.set("elsewhere:key", "x"),
            lambda: limited.get("resque:stat:processed"),
            lambda: limited.eval("return 1", 0),
            lambda: limited.publish("ch", "x"),
            lambda: limited.lrange(f"{NS}:queue:x", 0, -1),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                attempt()
        # a script cannot reach beyond the namespace either: it runs with its caller's permissions
        sha = limited.script_load("return redis.call('SET', KEYS[1], 'x')")
        with pytest.raises(redis.exceptions.ResponseError, match="(?i)permission|no permissions|NOPERM"):
            limited.evalsha(sha, 1, "elsewhere:key")
        assert admin.get("elsewhere:key") is None
        denied = {entry[b"object"].decode() for entry in _denials(admin)}
        assert {
            "flushall",
            "keys",
            "config|get",
            "elsewhere:key",
            "resque:stat:processed",
            "eval",
            "publish",
            "lrange",
        } <= denied, denied
    finally:
        limited.close()
