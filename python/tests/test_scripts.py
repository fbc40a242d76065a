"""The Lua scripts of spec/lua, driven through the worker's own calls against a real Redis."""

import calendar
import json
import re
import time

import pytest

import jobwire
from jobwire import payload
from jobwire.worker import Config, Worker


def make_worker(url, queues=("high", "low"), **options) -> Worker:
    options.setdefault("heartbeat_ms", 200)
    options.setdefault("lease_ms", 1000)
    worker = Worker(Config(list(queues), redis_url=url, **options))
    worker._register()
    return worker


def reserve(worker, op="none", token="", arg="", queue=None):
    worker._pending = None if op == "none" else (op, token, arg, queue)
    return worker._call_work(reserve=True)


def test_enqueue_pushes_sets_queue_and_wake_marker(client, r):
    job_id = client.enqueue("high", "Mail", 1)
    assert r.smembers("resque:queues") == {b"high"}
    assert r.lrange("resque:jobwire:wake:high", 0, -1) == [b"1"]
    assert json.loads(r.lindex("resque:queue:high", 0))["id"] == job_id
    client.enqueue_many("high", [("Mail", [i]) for i in range(2500)])
    assert r.llen("resque:queue:high") == 2501
    assert r.llen("resque:jobwire:wake:high") == 1


def test_a_script_flushed_from_redis_is_loaded_again(client, r):
    client.enqueue("high", "Mail", 1)
    r.script_flush()  # what a restarted or new Redis looks like to a client that loaded it before
    client.enqueue("high", "Mail", 2)
    assert r.llen("resque:queue:high") == 2
    assert r.script_exists(client.scripts.enqueue.sha) == [True]


def test_reserve_is_strictly_by_priority_and_records_working_on(client, r, redis_server):
    client.enqueue("low", "L")
    client.enqueue("high", "H")
    w = make_worker(redis_server.url)
    reply = reserve(w)
    assert reply[1] == b"job" and reply[3] == b"high"
    record = json.loads(r.get(f"resque:worker:{w.id}"))
    assert list(record) == ["queue", "run_at", "payload", "worker"]
    assert record["worker"] == w.id.rsplit(":", 1)[0]
    assert record["payload"]["class"] == "H"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["run_at"])
    assert r.hget(f"resque:jobwire:inflight:{w.id}", "payload") == reply[4]
    reply = reserve(w, "ok", reply[2].decode(), "", "high")
    assert reply[0] == b"ok" and reply[3] == b"low"
    reply = reserve(w, "ok", reply[2].decode(), "", "low")
    assert reply[:2] == [b"ok", b"empty"]
    assert r.get("resque:stat:processed") == b"2"
    assert r.get(f"resque:stat:processed:{w.id}") == b"2"
    assert not r.exists(f"resque:worker:{w.id}", f"resque:jobwire:inflight:{w.id}")


def test_settle_with_a_wrong_token_is_stale_and_changes_nothing(client, r, redis_server):
    client.enqueue("high", "H")
    w = make_worker(redis_server.url)
    assert reserve(w)[1] == b"job"
    w._pending = ("ok", "not-the-token", "", "high")
    assert w._call_work(reserve=False)[0] == b"stale"
    assert r.exists(f"resque:jobwire:inflight:{w.id}")
    assert r.get("resque:stat:processed") is None


def test_unrunnable_payloads_become_failures_with_raw_bytes(r, redis_server):
    bad = [b"not json", b"[1,2]", b'{"args":[]}', b'{"class":""}', b'{"class":"Big","args":["' + b"x" * 2000 + b'"]}']
    r.rpush("resque:queue:high", *bad, b'{"class":"Good"}')
    w = make_worker(redis_server.url, max_payload_bytes=1024)
    reply = reserve(w)
    assert reply[1] == b"job" and reply[4] == b'{"class":"Good"}'
    records = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert [x["exception"] for x in records] == [
        "jobwire.InvalidJSON",
        "jobwire.InvalidPayload",
        "jobwire.InvalidPayload",
        "jobwire.InvalidPayload",
        "jobwire.PayloadTooLarge",
    ]
    assert records[0]["payload"] == "not json"
    assert records[2]["payload"] == {"args": []}
    assert records[4]["payload"] == bad[4].decode()
    assert r.get("resque:stat:failed") == b"5"


def test_crash_requeues_at_head_then_poisons_at_max_deaths(client, r, redis_server):
    job_id = client.enqueue("high", "Crashy")
    client.enqueue("high", "Other")
    w = make_worker(redis_server.url, max_deaths=3)
    for death in (1, 2):
        reply = reserve(w)
        assert json.loads(reply[4])["id"] == job_id
        w._pending = ("crash", reply[2].decode(), "child 1 killed by signal 9 (SIGKILL)", "high")
        assert w._call_work(reserve=False)[0] == b"requeued"
        assert r.hget("resque:jobwire:deaths", job_id) == str(death).encode()
    reply = reserve(w)
    w._pending = ("crash", reply[2].decode(), "child 1 killed by signal 9 (SIGKILL)", "high")
    assert w._call_work(reserve=False)[0] == b"poisoned"
    record = json.loads(r.lindex("resque:failed", -1))
    assert record["exception"] == "jobwire.PoisonJob"
    assert "3 times" in record["error"] and "SIGKILL" in record["error"]
    assert record["payload"]["id"] == job_id
    assert not r.hexists("resque:jobwire:deaths", job_id)
    assert json.loads(r.lindex("resque:queue:high", 0))["class"] == "Other"


def test_register_writes_resque_and_jobwire_keys(r, redis_server):
    w = make_worker(redis_server.url)
    assert r.sismember("resque:workers", w.id)
    assert re.fullmatch(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000", r.get(f"resque:worker:{w.id}:started"))
    beat = r.hget("resque:workers:heartbeat", w.id).decode()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", beat)
    beat_s = calendar.timegm(time.strptime(beat[:19], "%Y-%m-%dT%H:%M:%S"))
    assert abs(beat_s - int(r.time()[0])) <= 1  # Redis time, formatted by the script itself
    info = {k.decode(): v.decode() for k, v in r.hgetall(f"resque:jobwire:worker:{w.id}").items()}
    assert info["impl"] == "python" and info["mode"] == "fork" and info["state"] == "idle"
    assert r.hget("resque:jobwire:meta", "spec_major") == b"1"
    assert r.zscore("resque:jobwire:leases", w.id) is not None


def test_register_refuses_another_spec_major(r, redis_server):
    r.hset("resque:jobwire:meta", "spec_major", "2")
    with pytest.raises(jobwire.SpecMismatch):
        make_worker(redis_server.url)


def test_expired_peer_is_listed_and_its_job_recovered(client, r, redis_server):
    job_id = client.enqueue("high", "H")
    dead = make_worker(redis_server.url, lease_ms=600, heartbeat_ms=200)
    reply = reserve(dead)
    assert reply[1] == b"job"
    live = make_worker(redis_server.url, queues=("low",))  # same process: another id needs other queues
    time.sleep(0.7)
    live._beat()  # lists the dead worker and recovers it
    assert not r.sismember("resque:workers", dead.id)
    assert not r.exists(f"resque:worker:{dead.id}", f"resque:jobwire:inflight:{dead.id}")
    assert json.loads(r.lindex("resque:queue:high", 0))["id"] == job_id
    assert r.hget("resque:jobwire:deaths", job_id) == b"1"
    # the dead worker wakes up: its settle is stale and its beat says unknown, so it re-registers
    dead._pending = ("ok", reply[2].decode(), "", "high")
    assert dead._call_work(reserve=False)[0] == b"stale"
    assert dead.membership.heartbeat("beat")[0] == b"unknown"


def test_renew_beats_several_ids_and_reports_unknown_expired_and_next_lapse(r, redis_server):
    """heartbeat.lua mode renew (protocol.md 16.1): one call for several ids, the ids that hold no
    lease named apart, lapsed peers listed, and the time to the earliest other lease's lapse."""
    a = make_worker(redis_server.url, queues=("a",), lease_ms=30000)
    b = make_worker(redis_server.url, queues=("b",), lease_ms=30000)
    peer = make_worker(redis_server.url, queues=("p",), lease_ms=9000)
    r.zadd("resque:jobwire:leases", {"ghost:1:x": 1})  # lapsed long ago
    before = {w: r.zscore("resque:jobwire:leases", w) for w in (a.id, b.id)}
    r.hdel("resque:workers:heartbeat", a.id, b.id)
    time.sleep(0.01)
    reply = a.membership.heartbeat("renew", [b.id, "gone:2:y"])
    assert reply[0] == b"ok" and int(reply[2]) == 1 and reply[3] == b"gone:2:y"
    assert reply[4:] == [b"ghost:1:x"]
    assert 0 < int(reply[1]) <= 9000  # the peer's lease, the earliest of those not beaten
    for w in (a.id, b.id):
        assert r.zscore("resque:jobwire:leases", w) > before[w]
        assert r.hexists("resque:workers:heartbeat", w)
    assert r.zscore("resque:jobwire:leases", "gone:2:y") is None  # never added
    assert not r.hexists("resque:workers:heartbeat", "gone:2:y")
    # alone in the namespace: no next lapse
    for w in (b.id, peer.id, "ghost:1:x"):
        r.zrem("resque:jobwire:leases", w)
    assert a.membership.heartbeat("renew")[:3] == [b"ok", -1, 0]
    assert a.membership.beat() and a.membership.next_lapse_s is None


def test_renew_answers_an_id_that_was_recovered_as_unknown(r, redis_server):
    w = make_worker(redis_server.url)
    r.zrem("resque:jobwire:leases", w.id)
    assert not w.membership.beat()  # the caller registers again (protocol.md 7.6)
    assert r.zscore("resque:jobwire:leases", w.id) is None


def test_quiet_idle_beats_at_the_idle_period_but_not_past_a_lapse():
    """protocol.md 16.2: max(heartbeat, min(2 x heartbeat, lease / 3)), bounded by the next lapse."""
    from jobwire.worker import quiet_beat_s

    defaults = Config(["q"])
    assert quiet_beat_s(defaults, None) == 10.0
    assert quiet_beat_s(defaults, 2.5) == pytest.approx(2.51)
    assert quiet_beat_s(Config(["q"], heartbeat_ms=250, lease_ms=600), None) == 0.25  # lease / 3 < beat
    assert quiet_beat_s(Config(["q"], heartbeat_ms=1000, lease_ms=60000), None) == 2.0


def test_quiet_look_sees_jobs_and_delayed_items_pushed_without_a_marker(client, r, redis_server):
    """protocol.md 16.3: after a timeout, EXISTS and ZRANGE decide whether work.lua or promote.lua
    has anything to do."""
    w = make_worker(redis_server.url)
    w._promote()
    assert w._next_due_ms == -1 and w._nothing_new()
    r.rpush("resque:queue:low", json.dumps({"class": "Plain", "args": []}))  # a Resque producer
    assert not w._nothing_new()
    r.delete("resque:queue:low")
    bucket = int(r.time()[0]) + 60
    r.zadd("resque:delayed_queue_schedule", {str(bucket): bucket})  # resque-scheduler's layout
    assert not w._nothing_new()  # nothing was known: a bucket appeared
    w._next_due_ms = bucket * 1000
    assert w._nothing_new()  # the known due time is that bucket's
    w._next_due_ms = (bucket + 5) * 1000
    assert not w._nothing_new()  # an earlier bucket than the one known


def test_reserve_refuses_a_worker_whose_lease_lapsed(client, r, redis_server):
    client.enqueue("high", "H")
    w = make_worker(redis_server.url, lease_ms=450, heartbeat_ms=200)
    time.sleep(0.5)
    assert reserve(w)[1] == b"expired"
    assert r.llen("resque:queue:high") == 1


def test_unregister_self_requeues_without_counting_a_death(client, r, redis_server):
    job_id = client.enqueue("high", "H")
    w = make_worker(redis_server.url)
    reserve(w)
    assert w.membership.unregister(w.id, "self") == [b"done", b"requeued"]
    assert not r.hexists("resque:jobwire:deaths", job_id)
    assert r.llen("resque:queue:high") == 1
    assert not r.zscore("resque:jobwire:leases", w.id)
    assert not r.hexists("resque:workers:heartbeat", w.id)


def test_unregister_expired_leaves_a_live_worker_alone(r, redis_server):
    w = make_worker(redis_server.url)
    other = make_worker(redis_server.url, queues=("low",))
    assert other.membership.unregister(w.id, "expired") == [b"alive", b"none"]
    assert r.sismember("resque:workers", w.id)


def test_pause_all_workers_stops_reserving(client, r, redis_server):
    client.enqueue("high", "H")
    w = make_worker(redis_server.url)
    r.set("resque:pause-all-workers", " TRUE ")
    assert reserve(w)[1] == b"paused"
    r.delete("resque:pause-all-workers")
    assert reserve(w)[1] == b"job"


def test_burst_rearms_the_wake_marker_while_jobs_remain(client, r, redis_server):
    client.enqueue_many("high", [("H", [])] * 3)
    r.delete("resque:jobwire:wake:high")
    w = make_worker(redis_server.url)
    reserve(w)
    assert r.llen("resque:jobwire:wake:high") == 1


def test_failed_retry_moves_the_full_payload_back(client, r):
    raw = payload.new_payload("X", [1], extra={"keep": True})
    record = payload.failure_record(raw, "E", "m", [], "h:1:q", "q")
    r.rpush("resque:failed", record)
    key = json.loads(raw)["id"]
    assert client.retry_failed(key)
    assert r.llen("resque:failed") == 0
    assert json.loads(r.lindex("resque:queue:q", 0)) == json.loads(raw)
    assert r.llen("resque:jobwire:wake:q") == 1
    with pytest.raises(jobwire.NotFound):
        client.retry_failed(key)


def test_a_retried_call_gets_the_held_job_again_not_a_new_one(client, r, redis_server):
    first = client.enqueue("high", "A")
    client.enqueue("high", "B")
    w = make_worker(redis_server.url)
    reply = reserve(w)  # pretend this reply was lost on the way back
    again = reserve(w)
    assert again[1:] == reply[1:] and json.loads(again[4])["id"] == first
    assert r.llen("resque:queue:high") == 1
