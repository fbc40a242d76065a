"""The web UI's security: who may use it, CSRF, response headers, error pages, log in and out.

Lessons from resque-web (shared/reference/resque-wire.md 4.9 and 8): every change is a POST
carrying a per-session CSRF token (403 without it) from the same origin; a Content-Security-Policy
without inline script, nosniff and frame-ancestors 'none'; authentication from the environment
only (JOBWIRE_WEB_TOKEN as a bearer header or a login form setting a signed session cookie, and/or
JOBWIRE_WEB_USER + JOBWIRE_WEB_PASSWORD as HTTP basic); an open UI refused beyond loopback.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis as redis_lib
from flask import Flask, Response, abort, jsonify, redirect, render_template, request, session, url_for

from ..errors import JobwireError
from . import metrics

__all__ = ["Auth", "CSP", "MAX_BODY_BYTES", "check_exposure", "install"]

MAX_BODY_BYTES = 64 * 1024  # forms only: larger requests are refused before Flask sees them
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Auth:
    """Who may use the UI. Any configured method suffices; none configured means open."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, environ=None) -> Auth | None:
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


def install(app: Flask, auth: Auth | None) -> None:
    """Guard every request of `app`: authentication, CSRF, headers, error pages, /login, /logout."""

    def csrf_token() -> str:
        token = session.get("csrf")
        if not token:
            token = session["csrf"] = secrets.token_urlsafe(32)
        return token

    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["auth_enabled"] = auth is not None

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
        return auth.token is not None and _same(session.get("login"), _login_mark(auth.token))

    def _login_mark(token: str) -> str:
        # The session cookie is signed; it stores a digest of the token, never the token.
        key = app.secret_key  # create_app always sets one
        return hmac.new(
            key if isinstance(key, bytes) else str(key).encode(), token.encode("utf-8"), "sha256"
        ).hexdigest()

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
            return Response(
                "authentication required\n",
                401,
                {"WWW-Authenticate": 'Basic realm="jobwire"', "Content-Type": "text/plain; charset=utf-8"},
            )
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
        return render_template(
            "error.html", error=f"{exc.code} {exc.name}: {exc.description}", title=exc.name, redis_ok=True
        ), exc.code

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
            "in front of it does the authentication"
        )
    return (
        f"WARNING: serving on {host} with no authentication (--insecure-no-auth): whatever reaches this "
        "port can change jobs"
    )
