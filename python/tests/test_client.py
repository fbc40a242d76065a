"""The Python client: enqueue (one, many, hooks), queues, failures by id, workers, info."""

import json

import pytest

import jobwire
from jobwire import payload


def test_enqueue_many_validates_all_before_pushing(client, r):
    with pytest.raises(jobwire.InvalidJob):
        client.enqueue_many("q", [("Ok", [1]), ("", [2])])
    assert r.llen("resque:queue:q") == 0
    ids = client.enqueue_many("q", [("Ok", [i]) for i in range(3)])
    assert [json.loads(x)["id"] for x in r.lrange("resque:queue:q", 0, -1)] == ids


def test_unserialisable_args_push_nothing(client, r):
    with pytest.raises(jobwire.InvalidJob, match="not JSON"):
        client.enqueue("q", "X", {1, 2})
    assert not r.exists("resque:queue:q", "resque:queues")


def test_before_enqueue_hook_can_cancel(redis_server, r):
    registry = jobwire.Registry()
    seen = []

    class Gated:
        def perform(x): ...
        def before_enqueue(x):
            return x != "no"

        def after_enqueue(x):
            seen.append(x)

    registry.register("Gated", Gated)
    client = jobwire.Client(redis_server.url, registry=registry)
    assert client.enqueue("q", "Gated", "no") is None
    assert client.enqueue("q", "Gated", "yes")
    assert seen == ["yes"] and r.llen("resque:queue:q") == 1


def test_peek_remove_and_delete_queue(client, r):
    a = client.enqueue("q", "A")
    client.enqueue("q", "B")
    r.rpush("resque:queue:q", b"junk")
    jobs = client.peek("q")
    assert [j.job_class for j in jobs] == ["A", "B", ""]
    assert jobs[2].key.startswith("sha1:")
    assert client.remove_job("q", a) and not client.remove_job("q", a)
    assert client.remove_job("q", jobs[2].key)
    assert client.queues() == {"q": 1}
    client.delete_queue("q")
    assert client.queues() == {}


def test_failures_by_id_and_filters(client, r):
    for i, (cls, exc) in enumerate([("A", "E1"), ("B", "E2"), ("A", "E2")]):
        raw = payload.new_payload(cls, [i])
        r.rpush("resque:failed", payload.failure_record(raw, exc, "m", [], "h:1:q", "q" if i < 2 else "other"))
    node_record = {
        "worker": "h:2",
        "queue": "q",
        "payload": {"class": "N", "queue": "q", "args": []},
        "exception": "Error",
        "error": "x",
        "backtrace": None,
        "failed_at": "Sun Nov 29 2026 08:00:00 GMT+0000",
    }
    r.rpush("resque:failed", json.dumps(node_record))
    assert client.failed_count() == 4
    assert [f.job_class for f in client.matching_failed(job_class="A")] == ["A", "A"]
    assert len(client.matching_failed(exception="E2", queue="q")) == 1
    assert client.retry_all(job_class="A") == 2
    assert client.queues() == {"q": 1, "other": 1}
    node = client.failed()[-1]
    assert node.key.startswith("sha1:") and node.job_class == "N"
    assert client.remove_failed(node.key)
    assert client.remove_all() == 1 and client.failed_count() == 0


def test_info_and_workers(client, r, redis_server):
    from jobwire.worker import Config, Worker

    w = Worker(Config(["q"], redis_url=redis_server.url, heartbeat_ms=200, lease_ms=1000))
    w._register()
    client.enqueue("q", "A")
    w._call_work(reserve=True)
    info = client.info()
    assert info == {
        "pending": 0,
        "processed": 0,
        "failed": 0,
        "failed_list": 0,
        "queues": 1,
        "workers": 1,
        "working": 1,
    }
    view = client.workers()[0]
    assert view.id == w.id and view.state == "busy" and view.info["impl"] == "python"
    assert view.working_on["payload"]["class"] == "A" and view.inflight["token"]
    assert 0 < view.lease_ms_left <= 1000
    client.control(w.id, "pause")
    assert r.lrange(f"resque:jobwire:control:{w.id}", 0, -1) == [b"pause"]
    with pytest.raises(jobwire.InvalidJob):
        client.control(w.id, "explode")


def test_retry_pushes_the_payload_bytes_as_they_were(client, r):
    raw = b'{"class":"X","args":[1.0,123456789012345678901234567890,{"z":1,"a":[]}],"id":"keepme","new_field":true}'
    r.rpush("resque:failed", payload.failure_record(raw, "E", "m", [], "h:1:q", "q"))
    r.rpush(
        "resque:failed",
        b'{ "queue" : "q2", "payload" : {"class":"Y","args":[2.50]} , "failed_at":"x",'
        b'"exception":"E","error":"m","worker":"w"}',
    )
    assert client.retry_failed("keepme")
    assert r.lindex("resque:queue:q", 0) == raw
    key = client.failed()[0].key
    assert client.retry_failed(key)
    assert r.lindex("resque:queue:q2", 0) == b'{"class":"Y","args":[2.50]}'


def test_a_restarted_worker_with_the_same_id_recovers_its_predecessors_job(client, r, redis_server):
    from jobwire.worker import Config, Worker

    job_id = client.enqueue("q", "A")
    first = Worker(Config(["q"], redis_url=redis_server.url, heartbeat_ms=200, lease_ms=1000))
    first._register()
    first._call_work(reserve=True)  # then the process dies; a new one gets the same pid
    again = Worker(Config(["q"], redis_url=redis_server.url, heartbeat_ms=200, lease_ms=1000))
    again._register()
    assert r.hget("resque:jobwire:deaths", job_id) == b"1"
    assert json.loads(r.lindex("resque:queue:q", 0))["id"] == job_id
