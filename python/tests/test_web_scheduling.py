"""The web UI's protocol 1.1 pages: Scheduled, Retrying and Schedules (view, run now, remove),
CSRF on every action, stored values escaped, and the /metrics gauges."""

from __future__ import annotations

import json
import time

import pytest

from web_support import XSS, app_for, csrf_of, html_problems


@pytest.fixture
def tc(client):
    return app_for(client).test_client()


def seed(client, r):
    ids = {
        "later": client.enqueue_in("mail", 3600, "SendMail", "ada"),
        "sooner": client.enqueue_in("mail", 60, "SendMail", "bob"),
    }
    payload = (
        '{"class":"Report","args":[1],"id":"r1","attempts":[{"attempt":1,"failed_at_ms":1,'
        '"exception":"IOError","error":"disk full","worker":"w:1:q","queue":"reports","delay_ms":515}]}'
    )
    r.zadd("resque:jobwire:retry", {"reports " + payload: int(time.time() * 1000) + 600000})
    client.set_schedule("nightly", {"cron": "0 3 * * *", "queue": "reports", "class": "Report", "args": [7]})
    r.hset("resque:jobwire:schedule:broken", mapping={"definition": "{nope", "error": "not JSON", "missed": "2"})
    r.zadd("resque:jobwire:schedules", {"broken": float("inf")})
    return ids


def test_pages_render_and_list_by_time(tc, client, r):
    ids = seed(client, r)
    html = tc.get("/scheduled").get_data(as_text=True)
    assert html.index(ids["sooner"]) < html.index(ids["later"]) and "SendMail" in html
    html = tc.get("/retrying").get_data(as_text=True)
    assert "disk full" in html and "attempt 2" in html and "IOError" in html
    html = tc.get("/schedules").get_data(as_text=True)
    assert "nightly" in html and "0 3 * * *" in html and "broken: not JSON" in html
    for path in ("/scheduled", "/retrying", "/schedules"):
        resp = tc.get(path)
        assert resp.status_code == 200 and "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert 'aria-current="page"' in resp.get_data(as_text=True)


def test_actions_need_csrf_and_work(tc, client, r):
    ids = seed(client, r)
    for path, field, value in (
        ("/scheduled/remove", "key", ids["later"]),
        ("/retrying/run", "key", "r1"),
        ("/schedules/remove", "name", "nightly"),
    ):
        assert tc.post(path, data={field: value}).status_code == 403
        assert tc.post(path, data={field: value, "csrf_token": "forged"}).status_code == 403
    assert client.scheduled_count() == 2 and client.retrying_count() == 1 and len(client.schedules()) == 2
    token = csrf_of(tc)
    assert tc.post("/scheduled/run", data={"csrf_token": token, "key": ids["sooner"]}).status_code == 303
    assert json.loads(r.lindex("resque:queue:mail", 0))["id"] == ids["sooner"]
    tc.post("/scheduled/remove", data={"csrf_token": token, "key": ids["later"]})
    assert client.scheduled_count() == 0
    resp = tc.post("/scheduled/remove", data={"csrf_token": token, "key": ids["later"]}, follow_redirects=True)
    assert "already promoted or removed" in resp.get_data(as_text=True)
    tc.post("/retrying/run", data={"csrf_token": token, "key": "r1"})
    assert client.retrying_count() == 0 and json.loads(r.lindex("resque:queue:reports", 0))["id"] == "r1"
    tc.post("/schedules/run", data={"csrf_token": token, "name": "nightly"})
    assert json.loads(r.lindex("resque:queue:reports", -1))["schedule"] == "nightly"
    resp = tc.post("/schedules/run", data={"csrf_token": token, "name": "broken"}, follow_redirects=True)
    assert "Cannot run" in resp.get_data(as_text=True)
    tc.post("/schedules/remove", data={"csrf_token": token, "name": "nightly"})
    assert [s.name for s in client.schedules()] == ["broken"]
    assert tc.post("/schedules/explode", data={"csrf_token": token}).status_code == 404


def test_stored_values_are_escaped(tc, client, r):
    now = int(r.time()[0]) + 600
    for n, bad in enumerate(XSS):
        item = json.dumps({"class": bad, "args": [bad], "queue": bad, "id": f"x{n}"})
        r.rpush(f"resque:delayed:{now}", item)
        r.zadd("resque:delayed_queue_schedule", {str(now): now})
        payload = json.dumps(
            {
                "class": bad,
                "args": [bad],
                "id": f"y{n}",
                "attempts": [
                    {
                        "attempt": 1,
                        "failed_at_ms": 1,
                        "exception": bad,
                        "error": bad,
                        "worker": bad,
                        "queue": bad,
                        "delay_ms": 1,
                    }
                ],
            }
        )
        r.zadd("resque:jobwire:retry", {f"q{n} {payload}": 1})
        r.hset(
            f"resque:jobwire:schedule:s{n}",
            mapping={"definition": json.dumps({"cron": bad, "queue": bad, "class": bad}), "error": bad},
        )
        r.zadd("resque:jobwire:schedules", {f"s{n}": n})
    for path in ("/scheduled", "/retrying", "/schedules"):
        html = tc.get(path).get_data(as_text=True)
        assert html_problems(html) == [], path


def test_metrics_gauges(tc, client, r):
    seed(client, r)
    text = tc.get("/metrics").get_data(as_text=True)
    assert "jobwire_scheduled_jobs 2" in text and "jobwire_retrying_jobs 1" in text
    assert 'jobwire_schedules{state="ok"} 1' in text and 'jobwire_schedules{state="broken"} 1' in text
    assert 'jobwire_schedule_missed_total{schedule="broken"} 2' in text
