"""Helpers for the web UI tests: seeding a namespace, CSRF, an HTML safety check, a live server.

The redis-server itself comes from conftest.py's `redis_server` fixture.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from html.parser import HTMLParser
from pathlib import Path

import jobwire
from conftest import wait_for  # noqa: F401 (re-exported for the web tests)
from jobwire_conformance.redisutil import RedisServer, free_port  # noqa: F401
from jobwire.web import create_app

JOBWIRE = str(Path(sys.executable).with_name("jobwire"))
CHROMIUM = "/usr/bin/chromium"

XSS = [
    "<script>alert(1)</script>",
    "\"'><img src=x onerror=alert(1)>",
    "javascript:alert(1)",
]


# -- seeding ---------------------------------------------------------------------------------


def failure_record(
    payload,
    queue: str,
    exception="RuntimeError",
    error="boom",
    backtrace=("app.py:1 in perform",),
    worker="host:1:q",
    failed_at="2026/11/29 08:00:00 UTC",
) -> bytes:
    record = {
        "failed_at": failed_at,
        "payload": payload,
        "exception": exception,
        "error": error,
        "backtrace": list(backtrace),
        "worker": worker,
        "queue": queue,
    }
    return json.dumps(record, separators=(",", ":")).encode()


def add_failure(r, namespace="resque", **kw) -> str:
    """Push a failure record; returns its key (the payload id)."""
    job_id = kw.pop("job_id", None) or uuid.uuid4().hex
    payload = kw.pop("payload", None) or {
        "class": kw.pop("job_class", "Mail"),
        "args": kw.pop("args", [1]),
        "id": job_id,
        "enqueued_at": int(time.time() * 1000),
    }
    queue = kw.pop("queue", "mail")
    r.rpush(f"{namespace}:failed", failure_record(payload, queue, **kw))
    return job_id


def register_worker(
    client: jobwire.Client,
    worker_id: str,
    *,
    impl="python",
    state="idle",
    job: dict | None = None,
    queue="q",
    token="tok-1",
    lease_ms=30000,
) -> None:
    """A fake worker, registered by heartbeat.lua as a real one is, optionally holding `job`."""
    host, _, rest = worker_id.partition(":")
    pid, _, queues = rest.partition(":")
    k = client.keys
    client.scripts.call(
        "heartbeat",
        [k.workers, k.heartbeats, k.leases, k.worker_started(worker_id), k.worker_info(worker_id), k.meta],
        [
            worker_id,
            lease_ms,
            "register",
            time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime()),
            "1",
            "impl",
            impl,
            "impl_version",
            "1.0.0",
            "spec",
            "1.0.0",
            "host",
            host,
            "pid",
            pid,
            "queues",
            queues,
            "started_ms",
            int(time.time() * 1000) - 90_000,
            "mode",
            "fork",
            "state",
            state,
        ],
    )
    client.scripts.call(
        "heartbeat",
        [k.workers, k.heartbeats, k.leases, k.worker_started(worker_id), k.worker_info(worker_id), k.meta],
        [worker_id, lease_ms, "beat", "", "1"],
    )
    if job is not None:
        raw = json.dumps(job, separators=(",", ":"))
        record = {
            "queue": queue,
            "run_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 12)),
            "payload": job,
        }
        client.redis.set(k.worker_record(worker_id), json.dumps(record, separators=(",", ":")))
        client.redis.hset(
            k.inflight(worker_id),
            mapping={
                "queue": queue,
                "payload": raw,
                "token": token,
                "job_key": job.get("id", ""),
                "reserved_ms": int(time.time() * 1000) - 12_000,
            },
        )


def seed_minutes(client: jobwire.Client, minutes=60, base=40) -> None:
    """Per-minute counters for the charts, as work.lua writes them."""
    now_min = int(client.redis.time()[0]) // 60
    for i in range(minutes):
        m = now_min - i
        day = time.strftime("%Y-%m-%d", time.gmtime(m * 60))
        processed = base + int(25 * abs(((i * 7) % 23) - 11) / 11) + (i % 5)
        fields = {f"processed:{m}": processed}
        if i % 6 == 0:
            fields[f"failed:{m}"] = 1 + i % 4
        client.redis.hset(client.keys.minutes(day), mapping=fields)


def seed_demo(client: jobwire.Client) -> dict:
    """A namespace with a bit of everything, for page tests and the screenshot."""
    r = client.redis
    now = int(time.time() * 1000)
    for n in range(12):
        client.enqueue(
            "mail", "SendWelcomeMail", f"user{n}@example.org", {"locale": "en"}, enqueued_at=now - 134_000 + n * 5000
        )
    for n in range(5):
        client.enqueue("reports", "BuildReport", n, "monthly", enqueued_at=now - 47_000 + n * 1000)
    client.enqueue("critical", "ChargeCard", 4242, 19.99, enqueued_at=now - 3200)
    r.incrby(client.keys.stat_processed, 18342)
    r.incrby(client.keys.stat_failed, 57)
    keys = [
        add_failure(
            r,
            queue="mail",
            job_class="SendWelcomeMail",
            exception="SMTPServerDisconnected",
            error="Connection unexpectedly closed",
            args=["ada@example.org"],
            backtrace=["mailer.py:88 in send", "smtplib.py:405 in getreply"],
            worker="web1:4242:mail",
        ),
        add_failure(
            r,
            queue="reports",
            job_class="BuildReport",
            exception="ValueError",
            error="month must be in 1..12",
            args=[13],
            worker="web2:77:reports,mail",
        ),
        add_failure(
            r,
            queue="mail",
            job_class="SendWelcomeMail",
            exception="jobwire.Timeout",
            error="job ran longer than 30000 ms; child 991 was killed",
            worker="web1:4242:mail",
        ),
    ]
    register_worker(
        client,
        "web1:4242:mail",
        impl="python",
        job={
            "class": "SendWelcomeMail",
            "args": ["grace@example.org"],
            "id": uuid.uuid4().hex,
            "enqueued_at": int(time.time() * 1000) - 15000,
        },
        queue="mail",
    )
    register_worker(
        client,
        "web2:77:reports,mail",
        impl="node",
        job={
            "class": "BuildReport",
            "args": [11, "monthly"],
            "id": uuid.uuid4().hex,
            "enqueued_at": int(time.time() * 1000) - 4000,
        },
        queue="reports",
        token="tok-2",
    )
    register_worker(client, "c-box:311:critical", impl="c")
    register_worker(client, "web3:12:*", impl="python", state="paused")
    seed_minutes(client)
    return {"failure_keys": keys}


# -- the Flask test client -------------------------------------------------------------------


def app_for(client: jobwire.Client, auth=None):
    app = create_app(client, auth, secret_key=b"test-secret-key")
    app.testing = True
    return app


def csrf_of(tc) -> str:
    """The CSRF token of the test client's session (a page must have been rendered once)."""
    tc.get("/")
    with tc.session_transaction() as s:
        return s["csrf"]


# -- HTML safety -----------------------------------------------------------------------------


class _Audit(HTMLParser):
    URL_ATTRS = {"href", "src", "action", "formaction", "data", "poster", "xlink:href"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        if tag in ("img", "iframe", "object", "embed", "svg", "base", "meta") and tag != "meta":
            self.problems.append(f"unexpected <{tag}> tag {attrs}")
        if tag == "script":
            src = dict(attrs).get("src") or ""
            if not src.startswith("/static/"):
                self.problems.append(f"script without a /static/ src: {attrs}")
            self.in_script = True
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler attribute {name}={value!r} on <{tag}>")
            if name == "style":
                self.problems.append(f"inline style on <{tag}>")
            if name in self.URL_ATTRS and value is not None:
                v = re.sub(r"[\x00-\x20]", "", value).lower()
                if v.startswith(("javascript:", "data:", "vbscript:")):
                    self.problems.append(f"{name}={value!r} on <{tag}>")
                elif not (v.startswith("/") and not v.startswith("//")) and not v.startswith(("#", "?")):
                    self.problems.append(f"{name}={value!r} on <{tag}> is not a same-site path")

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script and data.strip():
            self.problems.append(f"inline script content {data[:60]!r}")


def html_problems(html: str) -> list[str]:
    """Tags, attributes and URLs that would let a stored value run script."""
    audit = _Audit()
    audit.feed(html)
    audit.close()
    problems = audit.problems
    for raw in ("<script>alert", "<img", "onerror=alert(1)>", "\"'>"):
        if raw in html:
            problems.append(f"raw {raw!r} in the page")
    return problems


# -- a real `jobwire web` server -------------------------------------------------------------


class WebServer:
    def __init__(self, redis_url: str, env=None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [JOBWIRE, "web", "--redis-url", redis_url, "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        wait_for(self._up, timeout=15, message="jobwire web to listen")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"jobwire web exited: {self.proc.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM) and shutil.which("chromium") is not None
