"""Stored values that try to run script are shown as text everywhere (resque-web's history,
shared/reference/resque-wire.md section 8: queue names, worker ids, class names, failure
details)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from web_support import XSS, add_failure, app_for, csrf_of, html_problems, register_worker


@pytest.fixture
def evil(client, r):
    """Every place a stored string can reach the UI, filled with each attack string."""
    k = client.keys
    for n, bad in enumerate(XSS):
        # queues written as a plain Resque producer would (no name validation)
        payload = {
            "class": bad,
            "args": [bad, {bad: bad}],
            "id": bad if n == 0 else f"id{n}",
            "enqueued_at": 1764403200000,
            bad: bad,
        }
        r.sadd(k.queues, bad)
        r.rpush(k.queue(bad), json.dumps(payload))
        r.rpush(k.queue(bad), bad)  # not even JSON
        add_failure(
            r,
            queue=bad,
            job_id=f"f{n}",
            payload=payload,
            exception=bad,
            error=bad,
            backtrace=[bad, f"{bad}:12 in perform"],
            worker=bad,
            failed_at=bad,
        )
        r.rpush(k.failed, bad)  # an unreadable failure record
        wid = f"{bad}:{n}:{bad}"
        register_worker(client, wid, impl=bad, queue=bad, token=bad, job={"class": bad, "args": [bad], "id": bad})
        r.hset(k.worker_info(wid), mapping={"impl_version": bad, "mode": bad, "host": bad, "state": bad})
    register_worker(client, "plain:1:q", impl="python")
    return client


def pages(client):
    out = ["/", "/workers", "/failed", "/stats", "/api/overview"]
    for bad in XSS:
        q = quote(bad, safe="")
        out += [
            f"/queue?name={q}",
            f"/failed?queue={q}",
            f"/failed?class={q}",
            f"/failed?exception={q}",
            f"/failed?queue={q}&class={q}&exception={q}&start=0",
        ]
    out += [f"/worker?id={quote(w, safe='')}" for w in client.worker_ids()]
    return out


def test_no_page_renders_a_stored_payload_as_markup(evil):
    tc = app_for(evil).test_client()
    checked = 0
    for path in pages(evil):
        resp = tc.get(path)
        assert resp.status_code == 200, (path, resp.status_code)
        if resp.mimetype != "text/html":
            assert resp.mimetype == "application/json"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            continue
        html = resp.get_data(as_text=True)
        assert html_problems(html) == [], path
        checked += 1
    assert checked >= 20


def test_the_attack_strings_are_shown_as_text(evil):
    tc = app_for(evil).test_client()
    html = tc.get("/failed").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "javascript:alert(1)" in html  # as text, and never as a link target
    assert 'href="javascript' not in html.lower()
    # Links carry them URL-encoded after a fixed path
    assert 'href="/failed?queue=javascript:alert(1)"' in html
    assert 'href="/failed?queue=%3Cscript%3Ealert(1)%3C/script%3E"' in html
    overview = tc.get("/").get_data(as_text=True)
    assert 'href="/queue?name=%22&#39;%3E%3Cimg+src%3Dx+onerror%3Dalert(1)%3E"' in overview


def test_actions_take_hostile_keys_and_names(evil, r):
    tc = app_for(evil).test_client()
    token = csrf_of(tc)
    bad = XSS[0]
    k = evil.keys
    # remove a job whose id is the attack string, from a queue named by it
    resp = tc.post("/queue/remove-job", data={"csrf_token": token, "name": bad, "key": bad})
    assert resp.status_code == 303 and r.llen(k.queue(bad)) == 1
    follow = tc.get(resp.headers["Location"])
    assert follow.status_code == 200 and html_problems(follow.get_data(as_text=True)) == []
    # retry by key; the redirect keeps the filter, encoded
    resp = tc.post("/failed/retry", data={"csrf_token": token, "key": bad, "queue": XSS[1]})
    assert resp.status_code == 303
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/failed" and not location.netloc
    assert parse_qs(location.query) == {"queue": [XSS[1]]}
    assert r.llen(k.queue(bad)) == 2 and evil.peek(bad, 1, 1)[0].key == bad
    # a kill for a hostile worker id and token goes to exactly that worker's control list
    wid = f"{bad}:0:{bad}"
    tc.post("/worker/control", data={"csrf_token": token, "id": wid, "command": "kill", "token": "tok"})
    assert r.lrange(k.control(wid), 0, -1) == [b"kill tok"]
