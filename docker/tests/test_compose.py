"""docker-compose.yml as a user runs it: the file validates with every profile; `up` with the
polyglot profile on free ports starts three workers that register, jobs enqueued by the `client`
service run, the web UI answers. Uses Debian's docker-compose (1.29), as docker/README.md says."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import urllib.request

import pytest
import redis

from conftest import ECHO_KEY, ROOT, RUN_ID, free_port, wait_for

PROFILES = ["--profile", "polyglot", "--profile", "conformance", "--profile", "tools"]


def compose(project: str, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [
        "docker-compose",
        "-f",
        str(ROOT / "docker-compose.yml"),
        "--project-directory",
        str(ROOT),
        "-p",
        project,
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_compose_config_validates(engine):
    done = compose(f"{RUN_ID}-config", *PROFILES, "config", "-q")
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
def stack(engine, images):
    """`docker-compose --profile polyglot up -d` on free ports; `down` afterwards."""
    env = {"JOBWIRE_REDIS_PORT": str(free_port()), "JOBWIRE_WEB_PORT": str(free_port()), "JOBWIRE_QUEUES": "smoke"}
    project = f"{RUN_ID}-compose"
    try:
        up = compose(project, "--profile", "polyglot", "up", "-d", "--no-build", env=env)
        assert up.returncode == 0, f"docker-compose up: {up.stderr[-2000:]}"
        yield project, env
    finally:
        compose(project, *PROFILES, "down", "--remove-orphans", env=env)


def test_compose_up(stack):
    project, env = stack
    r = redis.Redis(port=int(env["JOBWIRE_REDIS_PORT"]))

    def workers():
        try:
            return r.scard("resque:workers") == 3
        except redis.ConnectionError:
            return False

    assert wait_for(workers, 30, 0.2), f"{r.smembers('resque:workers')} registered; expected 3 workers"
    n = 3
    for i in range(1, n + 1):
        done = compose(
            project, "run", "--rm", "client", "enqueue", "smoke", "jobwire.Echo", '"compose"', str(i), env=env
        )
        assert done.returncode == 0, f"docker-compose run client enqueue: {done.stderr[-1500:]}"
    assert wait_for(lambda: r.llen(ECHO_KEY) >= n, 20, 0.2), f"{r.llen(ECHO_KEY)} of {n} jobs ran"
    ran = collections.Counter(json.loads(x)["impl"] for x in r.lrange(ECHO_KEY, 0, -1))
    print(f"jobs from the client service ran on: {dict(ran)}")
    url = f"http://127.0.0.1:{env['JOBWIRE_WEB_PORT']}/"

    def web():
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    assert wait_for(web, 20, 0.2), f"the web UI on {url} did not answer 200"
