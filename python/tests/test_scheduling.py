"""Protocol 1.1 end to end with real `jobwire worker` processes: delayed jobs, retries with
backoff and history, recurring schedules, and the client and CLI that manage them."""

import json
import time

import pytest

from conftest import echoes, wait_for
from jobwire import backoff, recurring
from jobwire.errors import InvalidJob

pytestmark = pytest.mark.timeout(60)


def redis_ms(r):
    s, us = r.time()
    return s * 1000 + us // 1000


@pytest.mark.parametrize("mode", [(), ("--no-fork",)])
def test_delayed_job_runs_at_its_time_not_before(client, r, spawn, mode):
    spawn("q", *mode, "--block-timeout-ms", "5000")
    time.sleep(0.5)
    at = time.time() + 1.2
    job_id = client.enqueue_at("q", at, "jobwire.Echo", "later")
    [job] = client.scheduled()
    assert job.key == job_id and job.queue == "q" and job.ts == -(-int(at * 1000) // 1000)  # rounded up
    echo = wait_for(lambda: [e for e in echoes(r) if e["id"] == job_id], 6, message="delayed job ran")
    ran = time.time()
    assert ran >= at - 0.05, "a delayed job ran before its time"
    assert ran - at < 2.5, f"promoted {ran - at:.2f} s late with an idle worker (5 s block timeout)"
    assert echo[0]["args"] == ["later"]
    assert client.scheduled_count() == 0 and r.zcard("resque:delayed_queue_schedule") == 0


def test_enqueue_at_in_the_past_enqueues_now_and_remove_by_id(client, r):
    now_id = client.enqueue_at("q", time.time() - 10, "Mail", 1)
    assert json.loads(r.lindex("resque:queue:q", 0))["id"] == now_id
    a = client.enqueue_in("q", 100, "Mail", 2)
    b = client.enqueue_in("q", 50, "Mail", 3)
    assert [j.key for j in client.scheduled()] == [b, a]  # by time
    item = json.loads(client.get_scheduled(a).raw)
    assert list(item)[:3] == ["class", "args", "queue"] and item["scheduled_for_ms"] > 0
    assert client.remove_scheduled(a) is True
    assert [j.key for j in client.scheduled()] == [b]
    assert client.enqueue_scheduled_now(b) is True
    assert r.llen("resque:queue:q") == 2 and client.scheduled_count() == 0
    with pytest.raises(InvalidJob):
        client.enqueue_in("q", float("nan"), "Mail")


@pytest.mark.parametrize("mode", [(), ("--no-fork",)])
def test_retries_follow_the_policy_keep_the_id_and_record_history(client, r, spawn, mode):
    policy = {"max_attempts": 3, "backoff": "exponential", "delay_ms": 300, "factor": 2, "jitter": 0.5}
    job_id = client.enqueue("q", "jobwire.Flaky", 10, retry=policy)
    spawn("q", *mode)
    wait_for(lambda: r.llen("resque:failed") == 1, 15, message="exhausted job in failed")
    runs = [e for e in echoes(r) if e["id"] == job_id]
    assert [e["attempt"] for e in runs] == [1, 2, 3]
    record = json.loads(r.lindex("resque:failed", 0))
    assert record["payload"]["id"] == job_id and record["error"] == "flaky attempt 3"
    history = record["payload"]["attempts"]
    expected = [backoff.retry_delay_ms(backoff.parse_policy(policy), job_id, n) for n in (1, 2)]
    assert [h["attempt"] for h in history] == [1, 2]
    assert [h["delay_ms"] for h in history] == expected
    assert [h["error"] for h in history] == ["flaky attempt 1", "flaky attempt 2"]
    assert r.zcard("resque:jobwire:retry") == 0
    assert r.get("resque:stat:failed") == b"3"


def test_retry_then_success_and_opt_out_and_default(client, r, spawn):
    ok_id = client.enqueue("q", "jobwire.Flaky", 1, retry={"max_attempts": 3, "delay_ms": 200, "jitter": 0})
    never_id = client.enqueue("q", "jobwire.Flaky", 5, retry=False)
    default_id = client.enqueue("q", "jobwire.Flaky", 1)
    foreign_id = client.enqueue("q", "jobwire.Flaky", 1, retry=True)  # not a jobwire policy: the default applies
    spawn("q", "--default-retry", '{"max_attempts":2,"delay_ms":100,"backoff":"fixed"}')
    wait_for(
        lambda: len([e for e in echoes(r) if e["id"] in (ok_id, default_id, foreign_id)]) == 6,
        15,
        message="retried jobs",
    )
    wait_for(lambda: r.llen("resque:failed") == 1, 5, message="the opted-out job failed")
    time.sleep(0.5)
    assert json.loads(r.lindex("resque:failed", 0))["payload"]["id"] == never_id
    assert [e["attempt"] for e in echoes(r) if e["id"] == never_id] == [1]
    assert [e["attempt"] for e in echoes(r) if e["id"] == ok_id] == [1, 2]


def test_retrying_list_remove_and_run_now(client, r, spawn):
    job_id = client.enqueue("q", "jobwire.Flaky", 9, retry={"max_attempts": 5, "delay_ms": 600000})
    w = spawn("q")
    wait_for(lambda: client.retrying_count() == 1, 10, message="job waiting for a retry")
    [job] = client.retrying()
    assert job.key == job_id and job.queue == "q" and len(job.attempts) == 1
    assert job.due_ms - redis_ms(r) > 200000
    assert client.retry_now(job_id) is True
    wait_for(lambda: len([e for e in echoes(r) if e["id"] == job_id]) == 2, 10, message="second attempt")
    wait_for(lambda: client.retrying_count() == 1, 10, message="waiting again")
    assert client.remove_retrying(job_id) is True
    assert client.retrying_count() == 0 and r.llen("resque:failed") == 0
    w.kill()


def test_interval_schedule_fires_each_time_once_with_two_workers(client, r, spawn):
    spawn("q")
    spawn("q", "--no-fork")
    wait_for(lambda: r.scard("resque:workers") == 2, 20, message="both workers registered")
    client.set_schedule("tick", {"every_ms": 1000, "queue": "q", "class": "jobwire.Echo", "args": ["tick"]})
    time.sleep(4.5)
    runs = [e for e in echoes(r) if e["args"] == ["tick"]]
    ids = [e["id"] for e in runs]
    assert 3 <= len(ids) <= 6 and len(set(ids)) == len(ids), ids
    [s] = client.schedules()
    assert int(s.state["fired"]) == len(ids)
    payload_ids = {recurring.fire_job_id("tick", ms) for ms in range(int(s.next_ms) - 10000, int(s.next_ms), 1000)}
    assert set(ids) <= payload_ids


def test_missed_fires_are_counted_not_run_late(client, r, spawn):
    now = redis_ms(r)
    start = now - 3 * 60000 - 30000  # fire times 3.5, 2.5, 1.5 and 0.5 minutes ago, all past the grace
    definition = {
        "every_ms": 60000,
        "start_ms": start,
        "queue": "q",
        "class": "jobwire.Echo",
        "args": ["m"],
        "misfire_grace_ms": 1000,
    }
    client.set_schedule("slow", definition)
    r.zadd("resque:jobwire:schedules", {"slow": start})  # as if no worker had run since start
    spawn("q")
    wait_for(lambda: client.get_schedule("slow").state.get("missed"), 5, message="missed counted")
    s = client.get_schedule("slow")
    assert s.state["missed"] == "4" and s.state["last_missed_ms"] == str(start + 3 * 60000)
    assert "fired" not in s.state and s.next_ms > now
    time.sleep(0.3)
    assert not [e for e in echoes(r) if e["args"] == ["m"]]


def test_broken_schedule_is_reported_and_others_still_fire(client, r, spawn):
    client.set_schedule("good", {"every_ms": 1000, "queue": "q", "class": "jobwire.Echo", "args": ["good"]})
    r.hset("resque:jobwire:schedule:bad", "definition", '{"cron":"61 * * * *","queue":"q","class":"X"}')
    r.zadd("resque:jobwire:schedules", {"bad": 1})
    r.zadd("resque:jobwire:schedules", {"orphan": 2})  # no hash at all
    r.hset("resque:jobwire:schedule:frac", "definition", '{"every_ms":60000,"queue":"q","class":"X"}')
    r.zadd("resque:jobwire:schedules", {"frac": 5.5})  # not a whole ms: never a busy loop
    spawn("q")
    wait_for(lambda: [e for e in echoes(r) if e["args"] == ["good"]], 5, message="good schedule fired")
    bad = client.get_schedule("bad")
    assert bad.broken and "minute" in bad.state["error"]
    assert client.get_schedule("orphan").broken
    wait_for(lambda: client.get_schedule("frac").broken, 5, message="fractional next fire reported")
    client.set_schedule("bad", {"cron": "* * * * *", "queue": "q", "class": "X"})
    assert not client.get_schedule("bad").broken


def test_schedule_api_validates_and_runs_now(client, r):
    with pytest.raises(InvalidJob):
        client.set_schedule("x", {"cron": "0 0 30 2 *", "queue": "q", "class": "X"})
    with pytest.raises(InvalidJob):
        client.set_schedule("a:b", {"every_ms": 1000, "queue": "q", "class": "X"})
    next_ms = client.set_schedule("daily", {"cron": "0 3 * * *", "queue": "q", "class": "Report", "args": [1]})
    assert next_ms % 86400000 == 3 * 3600000
    job_id = client.run_schedule_now("daily")
    assert json.loads(r.lindex("resque:queue:q", 0))["id"] == job_id
    assert client.remove_schedule("daily") and not client.schedules()


def test_malformed_delayed_items_go_to_failed_and_others_run(client, r, spawn):
    now = int(r.time()[0]) - 1
    r.rpush(f"resque:delayed:{now}", "{broken", '{"class":"jobwire.Echo","args":["ok"],"queue":"q"}')
    r.zadd("resque:delayed_queue_schedule", {str(now): now})
    spawn("q")
    wait_for(lambda: [e for e in echoes(r) if e["args"] == ["ok"]], 5, message="the good item ran")
    record = json.loads(r.lindex("resque:failed", 0))
    assert record["exception"] == "jobwire.InvalidDelayedItem" and record["payload"] == "{broken"


def test_a_retry_redis_refuses_fails_the_job_instead_of_losing_it(client, r, spawn):
    r.set("resque:jobwire:retry", "not a zset")
    job_id = client.enqueue("q", "jobwire.Flaky", 5, retry={"max_attempts": 3, "delay_ms": 10})
    spawn("q")
    wait_for(lambda: r.llen("resque:failed") == 1, 10, message="the job failed instead")
    assert json.loads(r.lindex("resque:failed", 0))["payload"]["id"] == job_id
    after = client.enqueue("q", "jobwire.Echo", "still working")
    wait_for(lambda: [e for e in echoes(r) if e["id"] == after], 10, message="the worker went on")
