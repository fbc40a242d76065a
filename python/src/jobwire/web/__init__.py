"""jobwire's web UI: `jobwire web`, or create_app(client) inside your own WSGI server.

Everything it reads or changes goes through jobwire.Client; there is no arbitrary-key viewer and
no KEYS/SCAN. Its parts, one module each: security.py (authentication, CSRF, headers, error pages,
log in and out, the loopback rule), pages.py (the HTML pages and their changes), api.py (the JSON
API and /metrics), scheduling.py (the protocol 1.1 pages), params.py (request parameters),
data.py (what the pages show) and metrics.py (Prometheus text).
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
from collections import defaultdict

from ..errors import JobwireError

try:
    from flask import Flask
except ImportError as exc:  # `jobwire web` prints this as one line
    raise JobwireError(f"the web UI needs Flask (pip install flask): {exc}") from None

from .. import __version__
from ..client import Client, connect
from . import api, data, pages, scheduling, security
from .security import MAX_BODY_BYTES, Auth, check_exposure

__all__ = ["Auth", "check_exposure", "create_app", "serve"]


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
    app.json.sort_keys = False  # type: ignore[attr-defined]  # flask's DefaultJSONProvider has it
    app.extensions["jobwire.client"] = client
    app.extensions["jobwire.auth"] = auth
    app.jinja_env.autoescape = True  # every template, whatever its extension
    app.jinja_env.filters["duration"] = data.duration
    app.jinja_env.globals["version"] = __version__
    app.jinja_env.globals["namespace"] = client.keys.ns
    app.jinja_env.globals["blank"] = defaultdict(str)  # the item a live-update <template> row is drawn from
    security.install(app, auth)
    pages.register(app, client)
    api.register(app, client)
    scheduling.register(app, client)  # protocol 1.1 pages: Scheduled, Retrying, Schedules
    return app


def serve(
    redis_url: str | None,
    namespace: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    insecure_no_auth: bool = False,
    threads: int = 8,
) -> int:
    """Run the UI under waitress, a production WSGI server (pure Python, no C build, no fork).

    werkzeug's development server is not meant for anything but development; waitress bounds
    connections and request sizes, times out idle clients and runs requests on a thread pool.
    Refuses to listen beyond loopback without authentication (check_exposure).
    """
    try:
        from waitress.server import create_server
    except ImportError as exc:
        raise JobwireError(f"the web UI needs waitress (pip install 'jobwire[web]'): {exc}") from None

    auth = Auth.from_env()
    warning = check_exposure(host, auth, insecure_no_auth)
    if warning:
        print(f"jobwire web: {warning}", file=sys.stderr)
    redis = connect(redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10)
    app = create_app(Client(namespace=namespace, redis=redis), auth)
    # A live-update page polls every 2 s; 8 threads serve a few operators without queueing.
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        channel_timeout=60,
        max_request_body_size=MAX_BODY_BYTES,
        ident="jobwire",
    )
    signal.signal(signal.SIGTERM, _exit_quietly)  # `docker stop`, supervisors: exit 0 at once
    print(
        f"jobwire web: http://{host}:{port}/ (namespace {namespace}, waitress, {threads} threads)",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.close()
    return 0


def _exit_quietly(signum, frame) -> None:
    raise SystemExit(0)
