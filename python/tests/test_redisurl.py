"""The Redis URL rules against the shared vectors (conformance/vectors/v1/redis-urls.json), and a
bad URL as the CLI meets it: exit status 2, one line, the password never shown."""

import json
import subprocess

import pytest
from conftest import JOBWIRE, REPO

from jobwire import redisurl

CASES = json.loads((REPO / "conformance/vectors/v1/redis-urls.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_vectors(case):
    if not case["valid"]:
        with pytest.raises(redisurl.InvalidRedisUrl):
            redisurl.parse(case["url"])
        return
    got = redisurl.parse(case["url"])
    want = {k: case[k] for k in ("host", "port", "db", "username", "password", "cluster")}
    assert {k: getattr(got, k) for k in want} == want


def test_messages_hide_the_password():
    for url in ("redis://jobwire:hunter2@127.0.0.1:99999/0", "redis://:hunter2@127.0.0.1/x", "redis://u:hunter2@:1/0"):
        with pytest.raises(redisurl.InvalidRedisUrl) as err:
            redisurl.parse(url)
        assert "hunter2" not in str(err.value) and "***" in str(err.value)


@pytest.mark.parametrize("command", [["worker", "--queues", "a"], ["enqueue", "a", "jobwire.Echo"], ["info"]])
def test_cli_bad_url_is_usage_error(command):
    done = subprocess.run(
        [JOBWIRE, *command, "--redis-url", "redis://jobwire:hunter2@127.0.0.1:99999/0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
