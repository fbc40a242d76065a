"""jobwire's web UI: `jobwire web`, or create_app(client) inside your own WSGI server.

Everything it reads or changes goes through jobwire.Client. Lessons taken from resque-web
(shared/reference/resque-wire.md 4.9 and 8):

- every value is rendered through Jinja autoescape or, in the live-update script, textContent;
  links carry untrusted values only as URL-encoded query parameters after a fixed path;
- every change is a POST carrying a per-session CSRF token, answered 403 without it;
  failures are named by key (payload id or sha1), never by index;
- a Content-Security-Policy without inline script, nosniff and frame-ancestors 'none';
- optional authentication configured from the environment only:
  JOBWIRE_WEB_TOKEN (bearer header, or a login form that sets a signed session cookie) and/or
  JOBWIRE_WEB_USER + JOBWIRE_WEB_PASSWORD (HTTP basic);
- no arbitrary-key viewer and no KEYS/SCAN.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import os
import secrets
import signal
import sys
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis as redis_lib

from ..errors import JobwireError

try:
    from flask import (Flask, Response, abort, flash, jsonify, redirect, render_template, request,
                       session, url_for)
except ImportError as exc:  # `jobwire web` prints this as one line
    raise JobwireError(f"the web UI needs Flask (pip install flask): {exc}") from None

from .. import __version__
from ..client import Client, connect
from ..errors import InvalidJob, NotFound
from . import data, metrics, scheduling

__all__ = ["Auth", "check_exposure", "create_app", "serve"]

QUEUE_PAGE = 20
FAILED_PAGE = 20
STATS_HOURS = (1, 3, 6, 12, 24)
CONTROL_VERBS = ("pause", "resume", "quit", "kill")
MAX_BODY_BYTES = 64 * 1024  # forms only: larger requests are refused before Flask sees them

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


@dataclass(frozen=True)
class Auth:
    """Who may use the UI. Any configured method suffices; none configured means open."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, environ=None) -> "Auth | None":
        env = os.environ if environ is None else environ
        token = env.get("JOBWIRE_WEB_TOKEN") or None
        user, password = env.get("JOBWIRE_WEB_USER") or None, env.get("JOBWIRE_WEB_PASSWORD") or None
        if bool(user) != bool(password):
            raise JobwireError("set both JOBWIRE_WEB_USER and JOBWIRE_WEB_PASSWORD, or neither")
        if not token and not user:
            return None
        return cls(token=token, user=user, password=password)

    @property
    def basic(self) -> bool:
        return bool(self.user and self.password)


def _same(given: str | None, wanted: str | None) -> bool:
    if not given or not wanted:
        return False
    return hmac.compare_digest(given.encode("utf-8"), wanted.encode("utf-8"))


def _optional(name: str) -> str | None:
    value = request.values.get(name, "")
    return value if value != "" else None


def _short(value: str, limit: int = 100) -> str:
    """A value quoted in a flash message, cut so that the session cookie stays small."""
    return value if len(value) <= limit else value[:limit - 1] + "…"


def _start() -> int:
    try:
        return max(0, int(request.args.get("start", "0")))
    except ValueError:
        return 0


def create_app(client: Client, auth: Auth | dict | None = None, *, secret_key: bytes | str | None = None) -> Flask:
    """The Flask app for one Client. `auth` None leaves the UI open (bind it to loopback)."""
    if isinstance(auth, dict):
        auth = Auth(**auth)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or os.environ.get("JOBWIRE_WEB_SECRET") or secrets.token_bytes(32),
        SESSION_COOKIE_NAME="jobwire_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    app.json.sort_keys = False
    app.extensions["jobwire.client"] = client
    app.extensions["jobwire.auth"] = auth
    app.jinja_env.autoescape = True  # every template, whatever its extension
    app.jinja_env.filters["duration"] = data.duration

    # -- security plumbing --------------------------------------------------------------------

    def csrf_token() -> str:
        token = session.get("csrf")
        if not token:
            token = session["csrf"] = secrets.token_urlsafe(32)
        return token

    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["version"] = __version__
    app.jinja_env.globals["namespace"] = client.keys.ns
    app.jinja_env.globals["auth_enabled"] = auth is not None
    app.jinja_env.globals["blank"] = defaultdict(str)  # the item a live-update <template> row is drawn from

    def authenticated() -> bool:
        if auth is None:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if auth.token and scheme.lower() == "bearer" and _same(value.strip(), auth.token):
            return True
        if auth.basic and scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            if _same(user, auth.user) & _same(password, auth.password):
                return True
        return bool(auth.token) and _same(session.get("login"), _login_mark(auth.token))

    def _login_mark(token: str) -> str:
        # The session cookie is signed; it stores a digest of the token, never the token.
        return hmac.new(app.secret_key if isinstance(app.secret_key, bytes) else app.secret_key.encode(),
                        token.encode("utf-8"), "sha256").hexdigest()

    def wants_json() -> bool:
        return request.path.startswith("/api/") or request.path == "/metrics"

    @app.before_request
    def guard():
        if request.method not in ("GET", "HEAD", "POST"):
            abort(405)
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin and urlsplit(origin).netloc != request.host:  # "null" is refused too
                abort(403, "cross-origin request refused")
            sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
            if not _same(sent, session.get("csrf")):
                abort(403, "missing or wrong CSRF token: reload the page and try again")
        if request.endpoint in ("static", "login") or authenticated():
            return None
        if auth.token and not wants_json() and request.method == "GET" and not auth.basic:
            return redirect(url_for("login"))
        if auth.basic:
            return Response("authentication required\n", 401, {"WWW-Authenticate": 'Basic realm="jobwire"',
                                                              "Content-Type": "text/plain; charset=utf-8"})
        if wants_json():
            return jsonify(error="authentication required"), 401
        abort(401)

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"  # no-referrer would make Origin "null"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(redis_lib.RedisError)
    def redis_down(exc):
        message = f"Redis is unreachable: {exc}"
        if request.path == "/metrics":
            return Response(metrics.render(None), 503, {"Content-Type": metrics.CONTENT_TYPE})
        if wants_json():
            return jsonify(error=message), 503
        return render_template("error.html", error=message, title="Redis unreachable"), 503

    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(401)
    def http_error(exc):
        if wants_json():
            return jsonify(error=exc.description), exc.code
        return render_template("error.html", error=f"{exc.code} {exc.name}: {exc.description}",
                               title=exc.name, redis_ok=True), exc.code

    # -- login --------------------------------------------------------------------------------

    @app.route("/login", methods=["GET", "POST"])
    def login():
        if auth is None or not auth.token:
            return redirect(url_for("overview"))
        error = None
        if request.method == "POST":
            if _same(request.form.get("token", ""), auth.token):
                session.clear()
                session["login"] = _login_mark(auth.token)
                session["csrf"] = secrets.token_urlsafe(32)
                return redirect(url_for("overview"), 303)
            error = "wrong token"
        return render_template("login.html", title="Log in", error=error), 401 if error else 200

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect(url_for("login") if auth and auth.token else url_for("overview"), 303)

    # -- pages --------------------------------------------------------------------------------

    @app.get("/")
    def overview():
        return render_template("overview.html", title="Overview", o=data.overview(client), page="overview")

    @app.get("/queue")
    def queue():
        name = request.args.get("name", "")
        start = _start()
        now = data.redis_now_ms(client)
        size = client.queue_size(name)
        known = name in client.queue_names()
        if not known and not size:
            abort(404, "no such queue")
        jobs = [data.queued_job(j, now) for j in client.peek(name, start, QUEUE_PAGE)]
        return render_template("queue.html", title=f"Queue {name}", name=name, size=size, jobs=jobs,
                               start=start, count=QUEUE_PAGE, page="overview")

    @app.post("/queue/remove-job")
    def queue_remove_job():
        name, key = request.form.get("name", ""), request.form.get("key", "")
        if client.remove_job(name, key):
            flash(f"Removed job {_short(key)} from {_short(name)}.", "ok")
        else:
            flash(f"Job {_short(key)} is no longer in {_short(name)}.", "warn")
        return redirect(url_for("queue", name=name), 303)

    @app.post("/queue/delete")
    def queue_delete():
        name = request.form.get("name", "")
        client.delete_queue(name)
        flash(f"Deleted queue {_short(name)} and its jobs.", "ok")
        return redirect(url_for("overview"), 303)

    @app.get("/workers")
    def workers():
        now = data.redis_now_ms(client)
        items = data.workers(client, now)
        return render_template("workers.html", title="Workers", workers=items,
                               counts=data.worker_counts(items), page="workers")

    @app.get("/worker")
    def worker():
        wid = request.args.get("id", "")
        now = data.redis_now_ms(client)
        found = [w for w in client.workers() if w.id == wid]
        if not found:
            abort(404, "no such worker (it may have left)")
        return render_template("worker.html", title=f"Worker {wid}", w=data.worker(found[0], now),
                               stats=data.worker_stats(client, wid), page="workers")

    @app.post("/worker/control")
    def worker_control():
        wid, verb = request.form.get("id", ""), request.form.get("command", "")
        if verb not in CONTROL_VERBS:
            abort(400, "unknown command")
        command = verb
        if verb == "kill":
            token = request.form.get("token", "")
            if not token or any(c.isspace() for c in token):
                flash("That worker holds no job to kill.", "warn")
                return redirect(url_for("worker", id=wid), 303)
            command = f"kill {token}"
        wid_text = _short(wid)
        try:
            client.control(wid, command)
        except NotFound:
            flash(f"Worker {wid_text} is no longer registered.", "warn")
            return redirect(url_for("workers"), 303)
        flash({"pause": f"Asked {wid_text} to pause after its current job.",
               "resume": f"Asked {wid_text} to resume.",
               "quit": f"Asked {wid_text} to finish its job and quit.",
               "kill": f"Asked {wid_text} to kill its running job; it will be recorded as jobwire.Killed."}[verb], "ok")
        back = {"workers": url_for("workers"), "overview": url_for("overview")}
        return redirect(back.get(request.form.get("back", ""), url_for("worker", id=wid)), 303)

    def failed_filters() -> dict:
        return {"queue": _optional("queue"), "job_class": _optional("class"), "exception": _optional("exception")}

    def failed_url(filters: dict) -> str:
        return url_for("failed", **{k: v for k, v in (("queue", filters["queue"]), ("class", filters["job_class"]),
                                                       ("exception", filters["exception"])) if v})

    @app.get("/failed")
    def failed():
        filters = failed_filters()
        start = _start()
        items, total = data.failures(client, start, FAILED_PAGE, **filters)
        return render_template("failed.html", title="Failed", items=items, total=total, start=start,
                               count=FAILED_PAGE, filters=filters, all_count=client.failed_count(),
                               filtered=any(filters.values()), page="failed")

    @app.post("/failed/retry")
    def failed_retry():
        key = request.form.get("key", "")
        shown = _short(key)
        try:
            moved = client.retry_failed(key)
        except NotFound:
            flash(f"Failure {shown} was already retried or removed.", "warn")
        except InvalidJob as exc:
            flash(f"Cannot retry {shown}: {_short(str(exc), 300)}", "error")
        else:
            flash(f"Retried {shown}." if moved else f"Failure {shown} changed meanwhile; nothing retried.",
                  "ok" if moved else "warn")
        return redirect(failed_url(failed_filters()), 303)

    @app.post("/failed/remove")
    def failed_remove():
        key = request.form.get("key", "")
        try:
            client.remove_failed(key)
        except NotFound:
            flash(f"Failure {_short(key)} was already retried or removed.", "warn")
        else:
            flash(f"Removed failure {_short(key)}.", "ok")
        return redirect(failed_url(failed_filters()), 303)

    @app.post("/failed/retry-all")
    def failed_retry_all():
        filters = failed_filters()
        flash(f"Retried {client.retry_all(**filters)} matching failures.", "ok")
        return redirect(failed_url(filters), 303)

    @app.post("/failed/remove-all")
    def failed_remove_all():
        filters = failed_filters()
        flash(f"Removed {client.remove_all(**filters)} matching failures.", "ok")
        return redirect(failed_url(filters), 303)

    @app.post("/failed/clear")
    def failed_clear():
        client.clear_failed()
        flash("Cleared every failure record.", "ok")
        return redirect(url_for("failed"), 303)

    def stats_hours() -> int:
        try:
            hours = int(request.args.get("hours", "3"))
        except ValueError:
            hours = 3
        return hours if hours in STATS_HOURS else 3

    @app.get("/stats")
    def stats():
        hours = stats_hours()
        now = data.redis_now_ms(client)
        return render_template("stats.html", title="Stats", info=client.info(), hours=hours,
                               choices=STATS_HOURS, series=data.minute_series(client, now, hours * 60),
                               page="stats")

    # -- JSON and metrics ---------------------------------------------------------------------

    @app.get("/api/overview")
    def api_overview():
        return jsonify(data.overview(client))

    @app.get("/api/queues")
    def api_queues():
        return jsonify(queues=data.queue_summaries(client, data.redis_now_ms(client)))

    @app.get("/api/workers")
    def api_workers():
        now = data.redis_now_ms(client)
        items = data.workers(client, now)
        wid = request.args.get("id")
        if wid is not None:
            match = [w for w in items if w["id"] == wid]
            return jsonify(worker=match[0] if match else None,
                           stats=data.worker_stats(client, wid) if match else None, now_ms=now)
        return jsonify(workers=items, counts=data.worker_counts(items), now_ms=now)

    @app.get("/api/failed")
    def api_failed():
        try:
            count = max(1, min(500, int(request.args.get("count", str(FAILED_PAGE)))))
        except ValueError:
            count = FAILED_PAGE
        start = _start()
        items, total = data.failures(client, start, count, **failed_filters())
        return jsonify(failed=items, total=total, start=start, count=count)

    @app.get("/api/stats")
    def api_stats():
        hours = stats_hours()
        now = data.redis_now_ms(client)
        return jsonify(info=client.info(), hours=hours, series=data.minute_series(client, now, hours * 60),
                       now_ms=now)

    @app.get("/metrics")
    def prometheus():
        return Response(metrics.render(data.overview(client), scheduling=scheduling.gauges(client)), 200,
                        {"Content-Type": metrics.CONTENT_TYPE})

    scheduling.register(app, client)  # protocol 1.1 pages: Scheduled, Retrying, Schedules
    return app


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, auth: Auth | None, insecure_no_auth: bool = False) -> str | None:
    """Refuse an open UI beyond loopback: anyone who reaches it could retry, clear and kill jobs.

    Raises JobwireError saying what to do; returns a warning to print when the operator said
    --insecure-no-auth (something in front of the UI guards it), else None.
    """
    if auth is not None or _loopback(host):
        return None
    if not insecure_no_auth:
        raise JobwireError(
            f"refusing to serve the web UI on {host or 'every address'} without authentication: anyone who "
            "reaches it could retry, remove and kill jobs. Set JOBWIRE_WEB_TOKEN (or JOBWIRE_WEB_USER and "
            "JOBWIRE_WEB_PASSWORD), or listen on 127.0.0.1, or pass --insecure-no-auth if a proxy or firewall "
            "in front of it does the authentication")
    return (f"WARNING: serving on {host} with no authentication (--insecure-no-auth): whatever reaches this "
            "port can change jobs")


def serve(redis_url: str | None, namespace: str, host: str = "127.0.0.1", port: int = 8080, *,
          insecure_no_auth: bool = False, threads: int = 8) -> int:
    """Run the UI under waitress, a production WSGI server (pure Python, no C build, no fork).

    werkzeug's development server is not meant for anything but development; waitress bounds
    connections and request sizes, times out idle clients and runs requests on a thread pool.
    Refuses to listen beyond loopback without authentication (check_exposure).
    """
    try:
        from waitress import create_server
    except ImportError as exc:
        raise JobwireError(f"the web UI needs waitress (pip install 'jobwire[web]'): {exc}") from None

    auth = Auth.from_env()
    warning = check_exposure(host, auth, insecure_no_auth)
    if warning:
        print(f"jobwire web: {warning}", file=sys.stderr)
    redis = connect(redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10)
    app = create_app(Client(namespace=namespace, redis=redis), auth)
    # A live-update page polls every 2 s; 8 threads serve a few operators without queueing.
    server = create_server(app, host=host, port=port, threads=threads, channel_timeout=60,
                           max_request_body_size=MAX_BODY_BYTES, ident="jobwire")
    signal.signal(signal.SIGTERM, _exit_quietly)  # `docker stop`, supervisors: exit 0 at once
    print(f"jobwire web: http://{host}:{port}/ (namespace {namespace}, waitress, {threads} threads)",
          file=sys.stderr, flush=True)
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.close()
    return 0


def _exit_quietly(signum, frame) -> None:
    raise SystemExit(0)
