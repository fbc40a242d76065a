"""The protocol 1.1 Lua scripts (delay, promote, retry, unschedule, fire), called directly with
the exact keys and arguments of protocol.md section 14, against a real Redis."""

import json

import pytest

from jobwire.scripts import Scripts

NS = "resque:"


@pytest.fixture
def s(r):
    return Scripts(r)


def delay(s, ts, item, ns=NS):
    return s.call(
        "delay",
        [ns + "delayed_queue_schedule", f"{ns}delayed:{ts}", f"{ns}timestamps:{item}", ns + "jobwire:wake-schedule"],
        [ts, item],
    )


def promote(s, limit=100, schedules="0", max_bytes=16777216):
    return s.call(
        "promote",
        [
            NS + "delayed_queue_schedule",
            NS + "queues",
            NS + "jobwire:wake-new-queue",
            NS + "failed",
            NS + "jobwire:retry",
            NS + "jobwire:schedules",
        ],
        [NS, limit, "2026/11/29 08:00:00 UTC", "w:1:q", max_bytes, schedules],
    )


def now_s(r):
    return int(r.time()[0])


def test_delay_writes_resque_scheduler_layout_and_wakes(r, s):
    item = '{"class":"Mail","args":[7],"queue":"high","id":"j1"}'
    ts = now_s(r) + 100
    assert delay(s, ts, item) == 1
    assert r.zrange("resque:delayed_queue_schedule", 0, -1, withscores=True) == [(str(ts).encode(), float(ts))]
    assert r.lrange(f"resque:delayed:{ts}", 0, -1) == [item.encode()]
    assert r.smembers(f"resque:timestamps:{item}") == {f"delayed:{ts}".encode()}
    assert r.lrange("resque:jobwire:wake-schedule", 0, -1) == [b"1"]
    r.delete("resque:jobwire:wake-schedule")
    delay(s, ts + 50, item.replace("j1", "j2"))  # later than the earliest: nobody needs waking
    assert not r.exists("resque:jobwire:wake-schedule")


def test_promote_moves_due_items_verbatim_and_leaves_later_ones(r, s):
    now = now_s(r)
    ours = '{"class":"Mail","args":[7],"queue":"high","id":"j1","scheduled_for_ms":1}'
    node = '{"class":"Mail","queue":"high","args":[8]}'
    later = '{"class":"Mail","args":[9],"queue":"high","id":"j3"}'
    delay(s, now - 5, ours)
    delay(s, now, node)
    delay(s, now + 60, later)
    moved, malformed, more, now_ms, next_due = promote(s)
    assert (moved, malformed, more) == (2, 0, 0)
    assert next_due == (now + 60) * 1000
    assert r.lrange("resque:queue:high", 0, -1) == [ours.encode(), node.encode()]
    assert r.smembers("resque:queues") == {b"high"}
    assert r.lrange("resque:jobwire:wake:high", 0, -1) == [b"1"]
    assert r.zrange("resque:delayed_queue_schedule", 0, -1) == [str(now + 60).encode()]
    assert not r.exists(f"resque:delayed:{now - 5}", f"resque:timestamps:{ours}", f"resque:timestamps:{node}")
    assert promote(s)[:3] == [0, 0, 0]


def test_promote_fails_malformed_items_and_goes_on(r, s):
    now = now_s(r) - 1
    bad = [
        "not json",
        '["a"]',
        '{"args":[]}',
        '{"class":"X","args":[],"queue":"a:b"}',
        '{"class":"X","args":[]}',
        '{"class":"X","args":7,"queue":"q"}',
        b"\xff\xfe",
    ]
    for raw in bad:
        r.rpush(f"resque:delayed:{now}", raw)
    r.zadd("resque:delayed_queue_schedule", {str(now): now})
    good = '{"class":"X","args":[],"queue":"q"}'
    delay(s, now, good)
    moved, malformed, more, *_ = promote(s)
    assert (moved, malformed, more) == (1, len(bad), 0)
    assert r.lrange("resque:queue:q", 0, -1) == [good.encode()]
    records = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert [rec["exception"] for rec in records] == ["jobwire.InvalidDelayedItem"] * len(bad)
    assert records[0]["payload"] == "not json"
    assert records[2]["payload"] == {"args": []}
    assert records[3]["queue"] == "a:b" and "queue" in records[3]["error"]
    assert records[6]["payload_hex"] == "fffe"
    assert not r.exists(f"resque:delayed:{now}") and r.zcard("resque:delayed_queue_schedule") == 0


def test_promote_is_bounded_per_call(r, s):
    now = now_s(r) - 1
    for i in range(250):
        delay(s, now - (i % 3), '{"class":"X","args":[%d],"queue":"q"}' % i)
    replies = []
    while True:
        replies.append(promote(s))
        if not replies[-1][2]:
            break
    assert [x[0] for x in replies] == [100, 100, 50]
    assert r.llen("resque:queue:q") == 250
    order = [json.loads(x)["args"][0] for x in r.lrange("resque:queue:q", 0, -1)]
    assert order[:3] == [2, 5, 8]  # the oldest bucket first, each bucket in list order


def test_retry_appends_the_attempt_and_promote_brings_it_back(r, s, redis_server):
    from test_scripts import make_worker, reserve

    payload = '{"class":"X","args":[1],"id":"j1","big":123456789012345678901234567890, "f":1.0}'
    r.sadd("resque:queues", "high")
    r.rpush("resque:queue:high", payload)
    w = make_worker(redis_server.url, queues=("high",))
    job = reserve(w)
    token = job[2].decode()
    entry = '{"attempt":1,"failed_at_ms":5,"exception":"E","error":"boom","worker":"w","queue":"high","delay_ms":0}'
    k = w.keys
    keys = [
        k.worker_record(w.id),
        k.inflight(w.id),
        k.stat_processed,
        k.stat_processed_worker(w.id),
        k.stat_failed,
        k.stat_failed_worker(w.id),
        k.deaths,
        k.minutes("2026-11-29"),
        "resque:jobwire:retry",
        "resque:jobwire:wake-schedule",
    ]
    assert s.call("retry", keys, [w.id, "wrong", 0, entry, "high"]) == [b"stale", 0]
    settled, due = s.call("retry", keys, [w.id, token, 0, entry, "high"])
    assert settled == b"retrying" and due > 0
    member = r.zrange("resque:jobwire:retry", 0, -1)[0]
    want = payload[:-1] + ',"attempts":[' + entry + "]}"
    assert member == b"high " + want.encode()
    assert not r.exists(k.inflight(w.id), k.worker_record(w.id))
    assert r.get("resque:stat:failed") == b"1"
    assert promote(s)[:2] == [1, 0]
    assert r.lrange("resque:queue:high", 0, -1) == [want.encode()]
    # second failure: the entry joins the existing array, no other byte changes
    job = reserve(w)
    entry2 = entry.replace('"attempt":1', '"attempt":2')
    s.call("retry", keys, [w.id, job[2].decode(), 0, entry2, "high"])
    member = r.zrange("resque:jobwire:retry", 0, -1)[0]
    assert member == b"high " + (payload[:-1] + ',"attempts":[' + entry + "," + entry2 + "]}").encode()


@pytest.mark.parametrize(
    "payload, expected",
    [
        ('{"class":"X","attempts":[]}', '{"class":"X","attempts":[E]}'),
        (
            '{"class":"X", "attempts" : [ ] , "z":{"attempts":[1]}}',
            '{"class":"X", "attempts" : [E] , "z":{"attempts":[1]}}',
        ),
        (
            '{"class":"X","s":"a\\"}],\\\\","attempts":[{"a":"]"}]}',
            '{"class":"X","s":"a\\"}],\\\\","attempts":[{"a":"]"},E]}',
        ),
        ('{"class":"X","n":{"attempts":[9]}}  ', '{"class":"X","n":{"attempts":[9]},"attempts":[E]}  '),
    ],
)
def test_retry_splices_only_the_top_level_attempts(r, s, redis_server, payload, expected):
    from test_scripts import make_worker, reserve

    r.sadd("resque:queues", "high")
    r.rpush("resque:queue:high", payload)
    w = make_worker(redis_server.url, queues=("high",))
    token = reserve(w)[2].decode()
    k = w.keys
    keys = [
        k.worker_record(w.id),
        k.inflight(w.id),
        k.stat_processed,
        k.stat_processed_worker(w.id),
        k.stat_failed,
        k.stat_failed_worker(w.id),
        k.deaths,
        k.minutes("2026-11-29"),
        "resque:jobwire:retry",
        "resque:jobwire:wake-schedule",
    ]
    s.call("retry", keys, [w.id, token, 100000, "E", "high"])
    assert r.zrange("resque:jobwire:retry", 0, -1) == [b"high " + expected.encode()]


def test_unschedule_removes_or_enqueues_once(r, s):
    ts = now_s(r) + 100
    item = '{"class":"X","args":[],"queue":"q","id":"a"}'
    delay(s, ts, item)
    delay(s, ts, item.replace('"a"', '"b"'))
    keys = [
        NS + "delayed_queue_schedule",
        f"{NS}delayed:{ts}",
        f"{NS}timestamps:{item}",
        NS + "queues",
        NS + "queue:q",
        NS + "jobwire:wake:q",
        NS + "jobwire:wake-new-queue",
    ]
    assert s.call("unschedule", keys, ["delayed", ts, item, "enqueue", "q"]) == 1
    assert s.call("unschedule", keys, ["delayed", ts, item, "enqueue", "q"]) == 0
    assert r.lrange("resque:queue:q", 0, -1) == [item.encode()]
    assert r.zcard("resque:delayed_queue_schedule") == 1  # the bucket still holds b
    other = item.replace('"a"', '"b"')
    keys[2] = f"{NS}timestamps:{other}"
    assert s.call("unschedule", keys, ["delayed", ts, other, "remove", ""]) == 1
    assert r.zcard("resque:delayed_queue_schedule") == 0 and r.llen("resque:queue:q") == 1
    r.zadd("resque:jobwire:retry", {"q " + item: 1})
    rkeys = [NS + "jobwire:retry", NS + "jobwire:retry", NS + "jobwire:retry"] + keys[3:]
    assert s.call("unschedule", rkeys, ["retry", "q " + item, item, "remove", "q"]) == 1
    assert r.zcard("resque:jobwire:retry") == 0


def test_promote_lists_due_schedules_and_fire_acts_once(r, s):
    t = r.time()
    now_ms = int(t[0]) * 1000 + int(t[1]) // 1000
    definition = '{"every_ms":60000,"queue":"low","class":"Report"}'
    r.hset("resque:jobwire:schedule:nightly", "definition", definition)
    r.zadd("resque:jobwire:schedules", {"nightly": now_ms - 10, "later": now_ms + 5000})
    reply = promote(s, schedules="1")
    assert reply[5:] == [b"nightly", str(now_ms - 10).encode()]
    assert reply[4] == now_ms + 5000 or reply[4] == now_ms - 10
    keys = [
        NS + "jobwire:schedules",
        NS + "jobwire:schedule:nightly",
        NS + "queues",
        NS + "queue:low",
        NS + "jobwire:wake:low",
        NS + "jobwire:wake-new-queue",
    ]
    args = [
        "nightly",
        now_ms - 10,
        definition,
        "fire",
        now_ms + 60000,
        now_ms - 10,
        2,
        now_ms - 70,
        '{"class":"Report"}',
        "low",
        "id1",
    ]
    assert s.call("fire", keys, args) == 1
    assert s.call("fire", keys, args) == 0  # the race's loser changes nothing
    assert r.lrange("resque:queue:low", 0, -1) == [b'{"class":"Report"}']
    state = {k.decode(): v.decode() for k, v in r.hgetall("resque:jobwire:schedule:nightly").items()}
    assert state["fired"] == "1" and state["missed"] == "2" and state["last_job_id"] == "id1"
    assert r.zscore("resque:jobwire:schedules", "nightly") == now_ms + 60000
    assert promote(s, schedules="0")[4] == -1  # schedules are not counted when not fired
    error = ["nightly", now_ms + 60000, definition, "error", "", "", 0, "", "bad cron", "", ""]
    assert s.call("fire", keys, error) == 1
    assert r.zscore("resque:jobwire:schedules", "nightly") == float("inf")
    assert r.hget("resque:jobwire:schedule:nightly", "error") == b"bad cron"
    assert promote(s, schedules="1")[5:] == []


def test_promote_survives_keys_of_the_wrong_type(r, s):
    now = now_s(r) - 1
    r.set(f"resque:delayed:{now - 1}", "a string, not a list")
    r.zadd("resque:delayed_queue_schedule", {str(now - 1): now - 1})
    r.set("resque:queue:taken", "also a string")
    delay(s, now, '{"class":"X","args":[],"queue":"taken","id":"t1"}')
    delay(s, now, '{"class":"X","args":[],"queue":"fine","id":"f1"}')
    r.zadd("resque:jobwire:retry", {'taken {"class":"X","args":[],"id":"t2"}': 1})
    moved, malformed, more, *_ = promote(s)
    assert (moved, malformed, more) == (1, 3, 0)
    assert json.loads(r.lindex("resque:queue:fine", 0))["id"] == "f1"
    assert r.get(f"resque:delayed:{now - 1}") == b"a string, not a list"  # reported, left as it is
    records = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert "is not a list" in records[0]["error"]
    assert records[1]["payload"]["id"] == "t1" and "queue taken cannot take it" in records[1]["error"]
    assert records[2]["payload"]["id"] == "t2"
    assert r.zcard("resque:delayed_queue_schedule") == 0 and r.zcard("resque:jobwire:retry") == 0
