"""Shared fixtures of the container tests: the Docker engine (through the Docker SDK for Python), the
images scripts/containers.sh built, and a Redis container on a free loopback port.

Run by `bash scripts/containers.sh test`, which installs the engine, builds the images and passes
their names in the environment; run alone (`.venv/bin/python -m pytest docker/tests`) once it has.
Every container carries the label org.jobwire.containers (`containers.sh clean` removes leftovers)
and uses the host's network: dockerd runs with no bridge, every server binds 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import docker
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import install_check  # noqa: E402,F401  (tests/install_check.py: the part of the suite an image runs)

RUN_ID = os.environ.get("JOBWIRE_CONTAINERS_RUN_ID") or f"jwc-{os.getpid()}"
LABELS = {"org.jobwire.containers": RUN_ID}

# The images under test (scripts/containers.sh exports the names it built).
IMAGES = {
    "python": os.environ.get("JOBWIRE_IMAGE_PYTHON", "jobwire/python:local"),
    "node": os.environ.get("JOBWIRE_IMAGE_NODE", "jobwire/node:local"),
    "c": os.environ.get("JOBWIRE_IMAGE_C", "jobwire/c:local"),
    "conformance": os.environ.get("JOBWIRE_IMAGE_CONFORMANCE", "jobwire/conformance:local"),
}
REDIS_IMAGE = os.environ.get("JOBWIRE_REDIS_IMAGE", "jobwire-standin/redis:bookworm")
ECHO_KEY = "resque:jobwire:conformance:echo"  # where jobwire.Echo jobs record themselves
IMPLS = ("python", "node", "c")


def pytest_collection_modifyitems(items):
    """Two xdist groups, for JOBWIRE_CONTAINERS_PROCS=2 (containers/test.sh then runs `-n 2 --dist
    loadgroup`): the fresh machine, the longest test by far, in one process; every other test in the other."""
    for item in items:
        group = "fresh-machine" if item.path.name == "test_fresh_machine.py" else "images-and-compose"
        item.add_marker(pytest.mark.xdist_group(group))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.1):
    """predicate()'s first truthy value within timeout seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value or None
        time.sleep(interval)


def manifest(impl: str) -> dict:
    """conformance/implementations/IMPL.json: the one source of each worker's mode and features."""
    return json.loads((ROOT / "conformance" / "implementations" / f"{impl}.json").read_text())


@pytest.fixture(scope="session")
def engine():
    """The Docker engine; its absence is an error here, never a skip (CI must not pass silently)."""
    client = docker.from_env(timeout=600)
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def images(engine):
    """The project's images, each checked to exist (containers.sh builds them before the tests)."""
    for name in list(IMAGES.values()) + [REDIS_IMAGE]:
        engine.images.get(name)
    return IMAGES


def run_container(engine, image: str, name: str, command=None, **kw):
    """A detached, labelled container on the host's network, named RUN_ID-NAME."""
    return engine.containers.run(
        image, command, name=f"{RUN_ID}-{name}", detach=True, network_mode="host", labels=LABELS, **kw
    )


def remove(*containers) -> None:
    for c in containers:
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass


class RedisContainer:
    """redis-server in the Redis image, on a free 127.0.0.1 port of the host's network."""

    def __init__(self, engine, name: str = "redis") -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.container = run_container(
            engine,
            REDIS_IMAGE,
            f"{name}-{self.port}",  # unique: the test files run in two processes at once (containers/test.sh)
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
        )
        self.r = redis.Redis.from_url(self.url)
        if not wait_for(self._pong, 15):
            logs = self.container.logs().decode("utf-8", "replace")[-500:]
            remove(self.container)
            raise RuntimeError(f"the redis container did not answer on 127.0.0.1:{self.port}: {logs}")

    def _pong(self) -> bool:
        try:
            return self.r.ping()
        except redis.ConnectionError:
            return False

    def close(self) -> None:
        self.r.close()
        remove(self.container)


@pytest.fixture(scope="module")
def redis_ctr(engine, images):
    server = RedisContainer(engine)
    yield server
    server.close()
