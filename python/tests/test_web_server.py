"""`jobwire web` as a process: served by waitress, refusing an open UI beyond loopback.

No test listens beyond loopback: the refusal happens before any socket is bound, and the
--insecure-no-auth path beyond loopback is checked through check_exposure, the one function
serve() asks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from jobwire.errors import JobwireError
from jobwire.web import Auth, check_exposure
from web_support import JOBWIRE, WebServer, free_port, wait_for

NO_AUTH_ENV = {k: v for k, v in os.environ.items() if not k.startswith("JOBWIRE_WEB_")}


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_loopback_needs_no_authentication(host):
    assert check_exposure(host, None) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.7", "jobs.example.org"])
def test_open_ui_beyond_loopback_is_refused_with_what_to_do(host):
    with pytest.raises(JobwireError) as err:
        check_exposure(host, None)
    for hint in ("JOBWIRE_WEB_TOKEN", "JOBWIRE_WEB_USER", "127.0.0.1", "--insecure-no-auth"):
        assert hint in str(err.value)


def test_authentication_or_the_explicit_flag_allows_other_addresses():
    assert check_exposure("0.0.0.0", Auth(token="t0ken")) is None
    assert check_exposure("0.0.0.0", Auth(user="ops", password="pw")) is None
    warning = check_exposure("0.0.0.0", None, insecure_no_auth=True)
    assert warning and "no authentication" in warning


def test_cli_refuses_before_listening(redis_server):
    port = free_port()
    done = subprocess.run(
        [JOBWIRE, "web", "--redis-url", redis_server.url, "--host", "0.0.0.0", "--port", str(port)],
        env=NO_AUTH_ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "refusing" in done.stderr and "--insecure-no-auth" in done.stderr and "JOBWIRE_WEB_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr
    assert not _listening(port)


@pytest.mark.smoke  # fresh machine: the web extra: Flask and waitress
def test_served_by_waitress_and_stops_on_sigterm(redis_server):
    server = WebServer(redis_server.url, env={"JOBWIRE_WEB_TOKEN": ""})
    try:
        with urllib.request.urlopen(server.url + "/api/overview", timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["Server"] == "jobwire"  # waitress's ident; werkzeug says Werkzeug/<version>
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(10) == 0
        assert not _listening(server.port)
    finally:
        server.stop()


def test_oversized_request_refused(redis_server):
    server = WebServer(redis_server.url)
    try:
        body = b"x" * (65 * 1024)
        req = urllib.request.Request(
            server.url + "/login",
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 413
    finally:
        server.stop()


def test_methods_other_than_get_head_post_refused(redis_server):
    server = WebServer(redis_server.url, env={"JOBWIRE_WEB_TOKEN": ""})
    try:
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
            req = urllib.request.Request(server.url + "/failed/clear", data=b"", method=method)
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=5)
            assert err.value.code == 405, method
    finally:
        server.stop()


def test_insecure_flag_is_accepted(redis_server):
    port = free_port()
    proc = subprocess.Popen(
        [
            JOBWIRE,
            "web",
            "--redis-url",
            redis_server.url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--insecure-no-auth",
        ],
        env=NO_AUTH_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: _listening(port) or proc.poll() is not None, timeout=15, message="jobwire web")
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
