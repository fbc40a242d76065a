"""The protocol 1.1 commands of `jobwire`: enqueue --at/--in, scheduled, retrying, schedule."""

import json
import time

from test_cli import run


def test_enqueue_at_and_in_then_list_run_and_remove(r, redis_server):
    url = redis_server.url
    in_id = run(url, "enqueue", "q", "Mail", "1", "--in", "120").stdout.strip()
    at_id = run(url, "enqueue", "q", "Mail", "2", "--at", "2099-01-01T00:00:00Z").stdout.strip()
    unix_id = run(url, "enqueue", "q", "Mail", "3", "--at", str(time.time() + 60)).stdout.strip()
    assert r.zrange("resque:delayed_queue_schedule", -1, -1) == [b"4070908800"]  # 2099-01-01 UTC
    listing = run(url, "scheduled", "list").stdout.splitlines()
    assert [line.split("\t")[0] for line in listing] == [unix_id, in_id, at_id]
    assert listing[2].split("\t")[1:] == ["2099-01-01T00:00:00.000Z", "q", "Mail"]
    run(url, "scheduled", "run", in_id)
    assert json.loads(r.lindex("resque:queue:q", 0))["id"] == in_id
    run(url, "scheduled", "remove", at_id)
    assert run(url, "scheduled", "remove", at_id, ok=False).returncode == 1
    bad = run(url, "enqueue", "q", "Mail", "--at", "next tuesday", ok=False)
    assert bad.returncode == 1 and "--at" in bad.stderr


def test_schedule_commands(r, redis_server):
    url = redis_server.url
    run(
        url,
        "schedule",
        "set",
        "nightly",
        "--cron",
        "0 3 * * *",
        "--queue",
        "low",
        "--class",
        "Report",
        "--arg",
        "7",
        "--retry",
        '{"max_attempts":2}',
    )
    run(url, "schedule", "set", "tick", "--every-ms", "60000", "--queue", "low", "--class", "Tick")
    lines = run(url, "schedule", "list").stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["tick", "nightly"]  # by next fire time
    assert "0 3 * * *" in lines[1] and "T03:00:00" in lines[1]
    definition = json.loads(r.hget("resque:jobwire:schedule:nightly", "definition"))
    assert definition == {
        "queue": "low",
        "class": "Report",
        "args": [7],
        "cron": "0 3 * * *",
        "retry": {"max_attempts": 2},
    }
    job_id = run(url, "schedule", "run", "nightly").stdout.strip()
    assert json.loads(r.lindex("resque:queue:low", 0))["id"] == job_id
    bad = run(url, "schedule", "set", "x", "--cron", "61 * * * *", "--queue", "low", "--class", "X", ok=False)
    assert bad.returncode == 1 and "minute" in bad.stderr
    run(url, "schedule", "remove", "tick")
    assert run(url, "schedule", "remove", "tick", ok=False).returncode == 1


def test_retrying_commands(r, redis_server):
    url = redis_server.url
    payload = (
        '{"class":"X","args":[],"id":"r1","attempts":[{"attempt":1,"failed_at_ms":1,"exception":"E",'
        '"error":"boom","worker":"w","queue":"q","delay_ms":5}]}'
    )
    r.zadd("resque:jobwire:retry", {"q " + payload: 4070908800000})
    line = run(url, "retrying", "list").stdout.strip()
    assert line.split("\t") == ["r1", "2099-01-01T00:00:00.000Z", "q", "X", "attempt 2", "E: boom"]
    run(url, "retrying", "run", "r1")
    assert r.lrange("resque:queue:q", 0, -1) == [payload.encode()] and not r.zcard("resque:jobwire:retry")
