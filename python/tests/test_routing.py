"""Namespace groups (protocol.md 15.2): the routing function against spec/routing-vectors.json,
and the client, `jobwire route` and `jobwire info` on a real Redis."""

import json
import subprocess

import pytest

import jobwire
from conftest import JOBWIRE, REPO
from jobwire.durable import NotReplicated
from jobwire import routing
from jobwire.routing import BadRoute, namespaces, route

VECTORS = json.loads((REPO / "spec" / "routing-vectors.json").read_text())


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["id"])
def test_route_vectors(case):
    if "error" in case:
        with pytest.raises(BadRoute):
            route(case["home"], case["routes"], case["queue"])
    else:
        assert route(case["home"], case["routes"], case["queue"]) == case["namespace"]


@pytest.mark.parametrize("case", VECTORS["namespaces"], ids=lambda c: c["id"])
def test_namespaces_vectors(case):
    assert namespaces(case["home"], case["routes"]) == case["namespaces"]


def test_the_client_follows_the_routing_table(r, redis_server):
    client = jobwire.Client(redis_server.url, "{app}")
    client.router.set_route("welcome", "mail")
    r.hset("{app}:jobwire:routes", "broken", "no good")
    client.enqueue("welcome", "jobwire.Echo", 1)
    client.enqueue_many("welcome", [("jobwire.Echo", [2])])
    client.enqueue("high", "jobwire.Echo", 3)
    client.enqueue_in("welcome", 60, "jobwire.Echo", 4)  # a delayed job lives in its queue's namespace
    assert r.llen("{app:mail}:queue:welcome") == 2 and r.llen("{app}:queue:high") == 1
    assert not r.exists("{app}:queue:welcome")
    assert r.zcard("{app:mail}:delayed_queue_schedule") == 1 and not r.exists("{app}:delayed_queue_schedule")
    with pytest.raises(BadRoute):
        client.enqueue("broken", "jobwire.Echo")
    assert client.namespaces() == ["{app}", "{app:mail}"]


def test_route_and_info_commands(r, redis_server):
    def run(*args):
        return subprocess.run(
            [JOBWIRE, *args, "--redis-url", redis_server.url, "--namespace", "{app}"],
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert run("route", "welcome", "mail").stdout.strip() == "{app:mail}"
    assert run("route", "welcome").stdout.strip() == "{app:mail}"
    assert run("enqueue", "welcome", "jobwire.Echo").returncode == 0
    info = json.loads(run("info").stdout)
    assert info["pending"] == 0 and info["namespaces"]["{app:mail}"]["pending"] == 1
    assert run("route", "welcome", "--home").stdout.strip() == "{app}"
    assert run("route", "x", "bad group").returncode == 1


def test_durable_enqueue_without_replicas_says_so(r, redis_server):
    client = jobwire.Client(redis_server.url, wait_replicas=1, wait_timeout_ms=50)
    with pytest.raises(NotReplicated, match="0 of 1 replica"):
        client.enqueue("q", "jobwire.Echo")
    assert r.llen("resque:queue:q") == 1  # it is on the master: the error says so


def test_routed_elsewhere_lists_the_queues_a_worker_of_home_warns_about():
    # protocol.md 15.2: a queue routed to a group, or to an invalid value; `*` and home routes not
    table = {"welcome": "mail", "broken": "no good", "high": ""}
    found = routing.routed_elsewhere("{app}", table, ["high", "welcome", "*", "broken", "low"])
    assert [q for q, _ in found] == ["welcome", "broken"]
    assert found[0][1] == "{app:mail}" and "BadRoute" not in found[0][1]
    assert "no group name" in found[1][1]
    assert "{app:mail}" in routing.routed_warning("{app}", "welcome", "{app:mail}")
