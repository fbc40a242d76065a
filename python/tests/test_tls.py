"""Workers over TLS (`rediss://`) against a local redis-server that speaks TLS only, with a
throwaway CA made here with openssl.

- Python: `rediss://host:port/db?ssl_ca_certs=<ca.pem>` (redis-py reads the CA from the URL).
- Node: `rediss://host:port/db` with `NODE_EXTRA_CA_CERTS=<ca.pem>` (Node's own way to trust a CA;
  the job children inherit it).
- C: Debian's hiredis 0.14 has no TLS (no libhiredis_ssl), so a TLS terminator on the worker's
  host (socat, examples-c/README.md) listens on loopback and speaks TLS to Redis; the worker talks
  plain `redis://127.0.0.1:<local port>` to it. The C worker refuses `rediss://` with that advice.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from conftest import JOBWIRE, REPO, wait_for
from jobwire.client import Client, connect
from jobwire_conformance.redisutil import free_port

NODE = ["node", str(REPO / "examples-node/worker.js")]
C_WORKER = str(REPO / "examples-c/jobwire-worker")


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_redis():
    """A CA, a server certificate for 127.0.0.1 signed by it, and a TLS-only redis-server."""
    d = Path(tempfile.mkdtemp(prefix="jobwire-tls-"))
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=jobwire throwaway test CA",
        cwd=d,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
        cwd=d,
    )
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "san.cnf",
        cwd=d,
    )
    # a second CA that did not sign the server: trusting it must fail
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "other.key",
        "-out",
        "other.pem",
        "-days",
        "1",
        "-subj",
        "/CN=some other CA",
        cwd=d,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.pem",
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(d),
        ],
        cwd=d,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={d / 'ca.pem'}"
    admin = connect(url)
    wait_for(lambda: _pings(admin), timeout=10, message="the TLS redis-server")
    yield {"dir": d, "port": port, "url": url, "admin": admin, "ca": str(d / "ca.pem")}
    admin.close()
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(d, ignore_errors=True)


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def _run_echo(tls, argv, url, env=None, ns="tlsns"):
    """Start a worker, run one Echo job through TLS Redis, stop it with SIGQUIT; returns the echo."""
    admin = tls["admin"]
    admin.flushall()
    proc = subprocess.Popen(
        argv
        + [
            "--queues",
            "tq",
            "--redis-url",
            url,
            "--namespace",
            ns,
            "--heartbeat-ms",
            "300",
            "--lease-ms",
            "1500",
            "--block-timeout-ms",
            "300",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: admin.scard(f"{ns}:workers") == 1 or proc.poll() is not None,
            timeout=20,
            message="the worker to register over TLS",
        )
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
        job = Client(namespace=ns, redis=admin).enqueue("tq", "jobwire.Echo", "over", "tls")
        echo = wait_for(
            lambda: admin.lindex(f"{ns}:jobwire:conformance:echo", 0), timeout=15, message="the Echo job to run"
        )
        assert job.encode() in echo
        proc.send_signal(signal.SIGQUIT)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, out.decode(errors="replace")
        assert admin.scard(f"{ns}:workers") == 0
        return echo
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_plain_connections_are_refused(tls_redis):
    plain = redis.Redis(port=tls_redis["port"], socket_connect_timeout=2, socket_timeout=2)
    with pytest.raises(redis.ConnectionError):
        plain.ping()


def test_python_client_checks_the_certificate(tls_redis):
    wrong = connect(tls_redis["url"].replace("ca.pem", "other.pem"))
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        wrong.ping()


@pytest.mark.parametrize(
    "argv",
    [
        [JOBWIRE, "worker", "--import", "jobwire.conformance_jobs"],
        [JOBWIRE, "worker", "--import", "jobwire.conformance_jobs", "--no-fork"],
    ],
    ids=["fork", "inline"],
)
def test_python_worker_over_tls(tls_redis, argv):
    _run_echo(tls_redis, argv, tls_redis["url"])


@pytest.mark.parametrize("argv", [NODE, NODE + ["--no-fork"]], ids=["fork", "inline"])
def test_node_worker_over_tls(tls_redis, argv):
    url = f"rediss://127.0.0.1:{tls_redis['port']}/0"
    _run_echo(tls_redis, argv, url, env={**os.environ, "NODE_EXTRA_CA_CERTS": tls_redis["ca"]})


def test_node_worker_checks_the_certificate(tls_redis):
    """Trusting another CA, the Node worker cannot register (it keeps retrying, it does not exit)."""
    admin = tls_redis["admin"]
    admin.flushall()
    log = tls_redis["dir"] / "node-other-ca.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            NODE
            + ["--queues", "tq", "--redis-url", f"rediss://127.0.0.1:{tls_redis['port']}/0", "--namespace", "tlsbad"],
            cwd=REPO,
            env={
                **os.environ,
                "NODE_EXTRA_CA_CERTS": str(tls_redis["dir"] / "other.pem"),
                "JOBWIRE_LOG_LEVEL": "debug",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # The first refusal is polled for, not slept for: Node's start takes seconds on a loaded
        # machine (a fixed 3 s from the spawn was missed there). Then more attempts, each refused.
        wait_for(lambda: _names_the_certificate(log.read_bytes()), 30, message="the certificate refusal in the log")
        time.sleep(2)
        assert proc.poll() is None
        assert admin.scard("tlsbad:workers") == 0
    finally:
        proc.kill()
        proc.wait(5)
    assert _names_the_certificate(log.read_bytes()), log.read_text(errors="replace")


def _names_the_certificate(out: bytes) -> bool:
    return b"certificate" in out.lower() or b"self-signed" in out.lower()


def test_c_worker_refuses_rediss_with_advice(tls_redis):
    done = subprocess.run(
        [C_WORKER, "--queues", "tq", "--redis-url", f"rediss://127.0.0.1:{tls_redis['port']}/0"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode != 0
    assert "TLS" in done.stderr and "terminator" in done.stderr, done.stderr


def _socat(tls, cafile):
    local = free_port()
    proc = subprocess.Popen(
        [
            "socat",
            f"TCP-LISTEN:{local},bind=127.0.0.1,reuseaddr,fork",
            f"OPENSSL:127.0.0.1:{tls['port']},cafile={cafile},verify=1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: _listening(local) or proc.poll() is not None, timeout=10, message="socat to listen")
    return proc, local


def _listening(port) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.mark.smoke  # fresh machine: openssl, socat, Redis' TLS port and the C worker make setup builds
def test_c_worker_through_a_tls_terminator(tls_redis):
    socat, local = _socat(tls_redis, tls_redis["ca"])
    try:
        _run_echo(tls_redis, [C_WORKER], f"redis://127.0.0.1:{local}/0")
    finally:
        socat.terminate()
        socat.wait(5)


def test_tls_terminator_checks_the_certificate(tls_redis):
    socat, local = _socat(tls_redis, tls_redis["dir"] / "other.pem")
    try:
        through = redis.Redis(port=local, socket_connect_timeout=2, socket_timeout=3)
        with pytest.raises(redis.ConnectionError):
            through.ping()
    finally:
        socat.terminate()
        socat.wait(5)
