"""The web UI's pages, actions, CSRF, auth, JSON API and /metrics, with Flask's test client
against a seeded real Redis (conftest.py's redis_server)."""

from __future__ import annotations

import base64
import json
import re

import pytest

import jobwire
from jobwire.client import connect
from jobwire.web import Auth, create_app

from web_support import add_failure, app_for, csrf_of, free_port, register_worker, seed_demo


@pytest.fixture
def seeded(client):
    return seed_demo(client)


@pytest.fixture
def tc(client, seeded):
    return app_for(client).test_client()


PAGES = [
    "/",
    "/workers",
    "/worker?id=web1:4242:mail",
    "/worker?id=web3:12:*",
    "/failed",
    "/failed?queue=mail",
    "/failed?class=BuildReport",
    "/failed?exception=ValueError",
    "/failed?start=1",
    "/stats",
    "/stats?hours=24",
    "/queue?name=mail",
    "/queue?name=mail&start=10",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_with_security_headers(tc, path):
    resp = tc.get(path)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert resp.mimetype == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    html = resp.get_data(as_text=True)
    assert "<script>" not in html  # the only scripts are /static/ files
    assert 'src="/static/app.js"' in html


def test_overview_shows_queues_workers_and_totals(tc):
    html = tc.get("/").get_data(as_text=True)
    for text in (
        "mail",
        "reports",
        "critical",
        "18342",
        "57",
        "web1:4242:mail",
        "SendWelcomeMail",
        "web2:77:reports,mail",
        "BuildReport",
    ):
        assert text in html
    assert 'href="/queue?name=mail"' in html
    assert 'href="/worker?id=web1:4242:mail"' in html


def test_queue_page_pages_and_pretty_prints(tc, client):
    html = tc.get("/queue?name=mail").get_data(as_text=True)
    assert html.count('class="job"') == 20 - 8  # 12 jobs, one page
    assert "&#34;locale&#34;: &#34;en&#34;" in html  # indented JSON, escaped
    client.enqueue_many("mail", [("Bulk", [n]) for n in range(30)])
    first = tc.get("/queue?name=mail").get_data(as_text=True)
    second = tc.get("/queue?name=mail&start=20").get_data(as_text=True)
    assert first.count('class="job"') == 20 and second.count('class="job"') == 20
    assert "older ›" in first and "‹ newer" in second
    assert tc.get("/queue?name=nope").status_code == 404


def test_remove_queued_job_and_delete_queue(tc, client):
    token = csrf_of(tc)
    job = client.peek("mail", 3, 1)[0]
    resp = tc.post("/queue/remove-job", data={"csrf_token": token, "name": "mail", "key": job.key})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/queue?name=mail")
    assert client.queue_size("mail") == 11
    assert job.key not in [j.key for j in client.peek("mail", 0, 100)]
    html = tc.get(resp.headers["Location"]).get_data(as_text=True)
    assert f"Removed job {job.key}" in html
    # gone already: a warning, nothing removed
    tc.post("/queue/remove-job", data={"csrf_token": token, "name": "mail", "key": job.key})
    assert client.queue_size("mail") == 11
    resp = tc.post("/queue/delete", data={"csrf_token": token, "name": "mail"})
    assert resp.status_code == 303
    assert "mail" not in client.queues()


def test_actions_need_post_and_csrf(tc, client):
    before = client.failed_count()
    for path in (
        "/failed/clear",
        "/failed/retry",
        "/failed/remove",
        "/failed/retry-all",
        "/failed/remove-all",
        "/queue/delete",
        "/queue/remove-job",
        "/worker/control",
    ):
        assert tc.get(path).status_code == 405, path
        assert tc.post(path).status_code == 403, path
        assert tc.post(path, data={"csrf_token": "forged"}).status_code == 403, path
    assert client.failed_count() == before
    token = csrf_of(tc)
    # A token from the right session but a foreign Origin is refused too.
    for origin in ("http://evil.example", "null"):
        assert tc.post("/failed/clear", data={"csrf_token": token}, headers={"Origin": origin}).status_code == 403
    assert (
        tc.post(
            "/failed/remove", data={"csrf_token": token, "key": "nope"}, headers={"Origin": "http://localhost"}
        ).status_code
        == 303
    )  # the test client's own host
    # Another browser (another session) cannot reuse this session's token.
    other = app_for(client).test_client()
    assert other.post("/failed/clear", data={"csrf_token": token}).status_code == 403
    assert client.failed_count() == before
    assert tc.post("/failed/clear", data={"csrf_token": token}).status_code == 303
    assert client.failed_count() == 0


def test_retry_and_remove_one_failure_by_key(tc, client, seeded):
    token = csrf_of(tc)
    first, second, third = seeded["failure_keys"]
    size = client.queue_size("reports")
    resp = tc.post("/failed/retry", data={"csrf_token": token, "key": second})
    assert resp.status_code == 303
    assert client.queue_size("reports") == size + 1
    requeued = client.peek("reports", size, 1)[0]
    assert requeued.key == second and requeued.document["args"] == [13]
    assert [f.key for f in client.failed()] == [first, third]
    assert "Retried" in tc.get("/failed").get_data(as_text=True)
    # retrying again: already gone
    tc.post("/failed/retry", data={"csrf_token": token, "key": second})
    assert "already retried or removed" in tc.get("/failed").get_data(as_text=True)
    assert tc.post("/failed/remove", data={"csrf_token": token, "key": first}).status_code == 303
    assert [f.key for f in client.failed()] == [third]


def test_unrunnable_failure_cannot_be_retried(tc, client, r):
    r.rpush(
        client.keys.failed,
        json.dumps(
            {
                "failed_at": "x",
                "payload": "not json {",
                "exception": "jobwire.InvalidPayload",
                "error": "bad",
                "backtrace": [],
                "worker": "w:1:q",
                "queue": "q",
            }
        ),
    )
    f = client.failed(3, 1)[0]
    html = tc.get("/failed?exception=jobwire.InvalidPayload").get_data(as_text=True)
    assert "not json {" in html and f.key in html
    tc.post("/failed/retry", data={"csrf_token": csrf_of(tc), "key": f.key})
    assert client.failed_count() == 4


def test_failed_filters_and_bulk_actions(tc, client, r):
    add_failure(r, queue="reports", job_class="BuildReport", exception="KeyError", error="'month'")
    html = tc.get("/failed?exception=ValueError").get_data(as_text=True)
    assert "month must be in 1..12" in html and "Connection unexpectedly closed" not in html
    assert "1 matching of 4" in html
    html = tc.get("/failed?class=SendWelcomeMail").get_data(as_text=True)
    assert "Connection unexpectedly closed" in html and "month must be" not in html
    html = tc.get("/failed?queue=reports&class=BuildReport").get_data(as_text=True)
    assert "2 matching of 4" in html
    assert tc.get("/api/failed?queue=reports").get_json()["total"] == 2
    token = csrf_of(tc)
    mail_before = client.queue_size("mail")
    resp = tc.post("/failed/retry-all", data={"csrf_token": token, "queue": "mail"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/failed?queue=mail")
    assert client.queue_size("mail") == mail_before + 2
    assert {f.get("queue") for f in client.failed()} == {"reports"}
    tc.post("/failed/remove-all", data={"csrf_token": token, "exception": "KeyError"})
    assert [f.get("exception") for f in client.failed()] == ["ValueError"]


def test_worker_controls(tc, client, r):
    token = csrf_of(tc)
    control = client.keys.control("web1:4242:mail")
    for verb in ("pause", "resume", "quit"):
        assert (
            tc.post("/worker/control", data={"csrf_token": token, "id": "web1:4242:mail", "command": verb}).status_code
            == 303
        )
    tc.post("/worker/control", data={"csrf_token": token, "id": "web1:4242:mail", "command": "kill", "token": "tok-1"})
    assert [x.decode() for x in r.lrange(control, 0, -1)] == ["pause", "resume", "quit", "kill tok-1"]
    # kill needs the job's token; arbitrary commands and unknown workers are refused
    tc.post("/worker/control", data={"csrf_token": token, "id": "web1:4242:mail", "command": "kill"})
    tc.post("/worker/control", data={"csrf_token": token, "id": "web1:4242:mail", "command": "kill", "token": "a b"})
    assert (
        tc.post(
            "/worker/control", data={"csrf_token": token, "id": "web1:4242:mail", "command": "flushall"}
        ).status_code
        == 400
    )
    assert r.llen(control) == 4
    resp = tc.post("/worker/control", data={"csrf_token": token, "id": "gone:1:q", "command": "pause"})
    assert resp.status_code == 303 and "no longer registered" in tc.get("/workers").get_data(as_text=True)
    assert not r.exists(client.keys.control("gone:1:q"))


def test_workers_page_and_api(tc):
    html = tc.get("/workers").get_data(as_text=True)
    for text in ("python", "node", "paused", "busy", "idle", "c-box", "SendWelcomeMail", "Kill job"):
        assert text in html
    body = tc.get("/api/workers").get_json()
    assert body["counts"] == {"total": 4, "busy": 2, "paused": 1, "idle": 1}
    w = {x["id"]: x for x in body["workers"]}
    assert w["web1:4242:mail"]["token"] == "tok-1" and w["web1:4242:mail"]["job"]["class"] == "SendWelcomeMail"
    assert w["web2:77:reports,mail"]["impl"] == "node"
    assert w["web3:12:*"]["state"] == "paused"
    assert 0 < w["c-box:311:critical"]["lease_ms_left"] <= 30000
    assert w["c-box:311:critical"]["heartbeat_age_ms"] < 5000
    one = tc.get("/api/workers?id=web1:4242:mail").get_json()
    assert one["worker"]["id"] == "web1:4242:mail" and one["stats"] == {"processed": 0, "failed": 0}
    assert tc.get("/api/workers?id=nobody").get_json()["worker"] is None
    assert tc.get("/worker?id=nobody").status_code == 404


def test_api_overview_queues_stats(tc):
    o = tc.get("/api/overview").get_json()
    assert o["info"]["processed"] == 18342 and o["info"]["failed"] == 57 and o["failed_count"] == 3
    assert {q["name"]: q["size"] for q in o["queues"]} == {"critical": 1, "mail": 12, "reports": 5}
    assert all(q["oldest_age_ms"] is not None and q["oldest_age_ms"] < 200_000 for q in o["queues"])
    assert sorted(w["id"] for w in o["busy"]) == ["web1:4242:mail", "web2:77:reports,mail"]
    assert len(o["series"]["processed"]) == 60 and o["series"]["processed_sum"] > 0
    assert tc.get("/api/queues").get_json()["queues"][1]["name"] == "mail"
    s = tc.get("/api/stats?hours=6").get_json()
    assert s["hours"] == 6 and len(s["series"]["processed"]) == 360
    assert s["series"]["failed_sum"] == sum(s["series"]["failed"]) > 0
    assert tc.get("/api/stats?hours=999").get_json()["hours"] == 3


_SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? '
    r"(-?[0-9.e+]+|NaN|[+-]Inf)$"
)


def parse_metrics(text: str) -> dict:
    """A strict reader of the text format: {(name, labels tuple): value}."""
    assert text.endswith("\n")
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("gauge", "counter")
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        m = _SAMPLE.match(line)
        assert m, f"unparseable line {line!r}"
        name, labels = m.group(1), m.group(3) or ""
        assert name in types, f"{name} has no TYPE"
        pairs = tuple(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
        samples[(name, pairs)] = float(m.group(4))
    return samples


def test_metrics_parse(tc, client, r):
    r.sadd(client.keys.queues, 'we"ird\\q')
    r.rpush(client.keys.queue('we"ird\\q'), b'{"class":"X","args":[]}')
    resp = tc.get("/metrics")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    assert "version=0.0.4" in resp.headers["Content-Type"]
    m = parse_metrics(resp.get_data(as_text=True))
    assert m[("jobwire_up", ())] == 1
    assert m[("jobwire_queue_depth", (("queue", "mail"),))] == 12
    assert m[("jobwire_queue_depth", (("queue", 'we\\"ird\\\\q'),))] == 1
    assert 40 <= m[("jobwire_queue_oldest_job_age_seconds", (("queue", "reports"),))] < 120
    assert ("jobwire_queue_oldest_job_age_seconds", (("queue", 'we\\"ird\\\\q'),)) not in m  # no enqueued_at
    assert m[("jobwire_processed_total", ())] == 18342
    assert m[("jobwire_failed_total", ())] == 57
    assert m[("jobwire_failed_list_length", ())] == 3
    assert m[("jobwire_workers", (("state", "busy"),))] == 2
    assert m[("jobwire_workers", (("state", "idle"),))] == 1
    assert m[("jobwire_workers", (("state", "paused"),))] == 1


def test_redis_unreachable_pages_still_render(redis_server):
    dead = jobwire.Client(redis=connect(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5))
    tc = app_for(dead).test_client()
    for path in ("/", "/workers", "/failed", "/stats", "/queue?name=x", "/worker?id=a:1:q"):
        resp = tc.get(path)
        assert resp.status_code == 503
        html = resp.get_data(as_text=True)
        assert 'id="banner"' in html and "Redis is unreachable" in html
        assert 'class="banner" role="alert" hidden' not in html
        assert "Overview" in html and "Workers" in html  # the layout still renders
    body = tc.get("/api/overview")
    assert body.status_code == 503 and "Redis is unreachable" in body.get_json()["error"]
    metrics = tc.get("/metrics")
    assert metrics.status_code == 503 and parse_metrics(metrics.get_data(as_text=True)) == {("jobwire_up", ()): 0}


def test_token_auth(client, seeded):
    tc = create_app(client, Auth(token="s3cret-token"), secret_key=b"k").test_client()
    resp = tc.get("/")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    assert tc.get("/api/overview").status_code == 401
    assert tc.get("/metrics").status_code == 401
    assert tc.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert tc.get("/api/overview", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert tc.get("/static/app.css").status_code == 200
    login = tc.get("/login")
    assert login.status_code == 200
    with tc.session_transaction() as s:
        token = s["csrf"]
    assert tc.post("/login", data={"csrf_token": token, "token": "nope"}).status_code == 401
    assert tc.get("/").status_code == 302
    resp = tc.post("/login", data={"csrf_token": token, "token": "s3cret-token"})
    assert resp.status_code == 303
    assert tc.get("/").status_code == 200
    with tc.session_transaction() as s:
        assert "s3cret-token" not in json.dumps(dict(s))
        token = s["csrf"]
    assert tc.post("/logout", data={"csrf_token": token}).status_code == 303
    assert tc.get("/").status_code == 302


def test_basic_auth(client, seeded):
    tc = create_app(client, Auth(user="ops", password="pw:with:colons"), secret_key=b"k").test_client()

    def basic(user, password):
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    resp = tc.get("/")
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Basic")
    assert tc.get("/", headers=basic("ops", "wrong")).status_code == 401
    assert tc.get("/", headers={"Authorization": "Basic !!!"}).status_code == 401
    assert tc.get("/", headers=basic("ops", "pw:with:colons")).status_code == 200
    assert tc.get("/metrics", headers=basic("ops", "pw:with:colons")).status_code == 200


def test_auth_comes_from_the_environment_only():
    assert Auth.from_env({}) is None
    assert Auth.from_env({"JOBWIRE_WEB_TOKEN": "t"}) == Auth(token="t")
    assert Auth.from_env({"JOBWIRE_WEB_USER": "u", "JOBWIRE_WEB_PASSWORD": "p"}) == Auth(user="u", password="p")
    with pytest.raises(jobwire.JobwireError):
        Auth.from_env({"JOBWIRE_WEB_USER": "u"})
    from jobwire.cli import _parser

    web = _parser().parse_args(["web"])
    assert web.host == "127.0.0.1"
    assert not any("token" in name or "password" in name for name in vars(web))


def test_worker_without_job_and_missing_fields(tc, client, r):
    # A Resque worker: no jobwire info hash, no lease.
    r.sadd(client.keys.workers, "ruby-host:99:legacy")
    r.set(
        client.keys.worker_record("ruby-host:99:legacy"),
        json.dumps({"queue": "legacy", "run_at": "2026-11-29T08:00:00Z", "payload": {"class": "Old", "args": []}}),
    )
    assert tc.get("/workers").status_code == 200
    assert tc.get("/worker?id=ruby-host:99:legacy").status_code == 200
    w = tc.get("/api/workers?id=ruby-host:99:legacy").get_json()["worker"]
    assert w["busy"] and w["lease_ms_left"] is None and w["impl"] == "" and w["token"] == ""
    register_worker(client, "x:1:q", job=None)
    assert tc.get("/worker?id=x:1:q").status_code == 200


def test_every_namespace_on_the_overview_and_in_metrics(tc, client):
    """protocol.md 15.2: the home namespace and each group namespace of its routing table."""
    client.router.set_route("welcome", "mail")
    client.enqueue("welcome", "jobwire.Echo", 1)
    client.enqueue("welcome", "jobwire.Echo", 2)
    html = tc.get("/").get_data(as_text=True)
    assert "Namespaces" in html and "{resque:mail}" in html
    m = parse_metrics(tc.get("/metrics").get_data(as_text=True))
    assert m[("jobwire_namespace_pending_jobs", (("namespace", "{resque:mail}"),))] == 2
    assert m[("jobwire_namespace_processed_total", (("namespace", "resque"),))] == 18342
