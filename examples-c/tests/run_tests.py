#!/usr/bin/env python3
"""End-to-end tests for the C jobwire worker (examples-c).

Starts a throwaway redis-server on a free port (never 6379), runs
jobwire-worker / jobwire-enqueue against it and checks what lands in Redis.
Standard library only: Redis is spoken to over a socket with a tiny RESP
client. The server is killed by its pid at the end.

  python3 tests/run_tests.py --bin .                  # full suite + valgrind run
  python3 tests/run_tests.py --bin build/asan --asan --short
  python3 tests/run_tests.py --bin . --only valgrind --valgrind-jobs 10000
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.abspath(os.path.join(HERE, "..", "..", "spec"))
HOST = socket.gethostname()
OPTS = None
TMP = tempfile.mkdtemp(prefix="jobwire-c-test-")


# ---------------------------------------------------------------- Redis client


class RedisError(Exception):
    pass


class Redis:
    """A minimal blocking RESP2 client: enough for tests."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        chunks, have = [self.buf], len(self.buf)
        while have < n + 2:
            chunk = self.sock.recv(max(1 << 20, n + 2 - have))
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            chunks.append(chunk)
            have += len(chunk)
        data = b"".join(chunks)
        self.buf = data[n + 2 :]
        return data[:n]

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError("bad reply %r" % line)

    @staticmethod
    def _encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, int):
                a = str(a)
            if isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def __call__(self, *args):
        self.sock.sendall(self._encode(args))
        return self._reply()

    def pipeline(self, commands):
        self.sock.sendall(b"".join(self._encode(c) for c in commands))
        return [self._reply() for _ in commands]


class RedisServer:
    """A redis-server child on a free port, with a private --dir."""

    def __init__(self, *extra):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.proc = None
        self.extra = list(extra)  # after the defaults, so they override them (e.g. AOF)
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=TMP)

    def start(self):
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--dbfilename",
                "dump.rdb",
            ]
            + self.extra,
            stdout=open(os.path.join(self.dir, "redis.log"), "ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                r = Redis(self.port)
                r("PING")
                r.close()
                return
            except (OSError, RedisError, ConnectionError):
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port


SERVER = None
R = None


def reconnect():
    global R
    try:
        R.close()
    except Exception:
        pass
    R = Redis(SERVER.port)


# ---------------------------------------------------------------- Helpers


def wait_until(fn, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(0.02)


def lua_sha(name):
    with open(os.path.join(SPEC, "lua", name + ".lua"), "rb") as f:
        return R("SCRIPT", "LOAD", f.read()).decode()


def push_raw(queue, *payloads, ns="resque"):
    """Enqueue raw payload bytes with enqueue.lua (as a client would)."""
    sha = lua_sha("enqueue")
    for i in range(0, len(payloads), 1000):
        R(
            "EVALSHA",
            sha,
            4,
            ns + ":queues",
            ns + ":queue:" + queue,
            ns + ":jobwire:wake:" + queue,
            ns + ":jobwire:wake-new-queue",
            queue,
            *payloads[i : i + 1000],
        )


def enqueue(queue, cls, *args, ns=None, url=None):
    """Enqueue with the jobwire-enqueue binary; returns the job id."""
    cmd = [os.path.join(OPTS.bin, "jobwire-enqueue"), "--redis-url", url or SERVER.url]
    if ns:
        cmd += ["--namespace", ns]
    cmd += [queue, cls] + [json.dumps(a) for a in args]
    out = subprocess.run(cmd, check=True, capture_output=True, env=child_env()).stdout.decode().strip()
    assert re.fullmatch(r"[0-9a-f]{32}", out), out
    return out


def child_env():
    env = dict(os.environ)
    env["JOBWIRE_SPEC_DIR"] = SPEC
    if OPTS.asan:
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:halt_on_error=1"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    for k in list(env):
        if k.startswith("JOBWIRE_") and k != "JOBWIRE_SPEC_DIR" or k == "REDIS_URL":
            del env[k]
    env["JOBWIRE_SPEC_DIR"] = SPEC
    return env


def echoes(ns="resque"):
    return [json.loads(e) for e in R("LRANGE", ns + ":jobwire:conformance:echo", 0, -1)]


def failures(ns="resque"):
    return [json.loads(e) for e in R("LRANGE", ns + ":failed", 0, -1)]


def children_of(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().split(b"\0")[0].decode(errors="replace")


class Worker:
    """A jobwire-worker process; its stderr goes to a log file."""

    all = []

    def __init__(self, queues, *extra, valgrind=False, block_ms=1000, sh_prefix=None, url=None):
        self.log = os.path.join(TMP, "worker-%d.log" % (len(Worker.all) + 1))
        cmd = [
            os.path.join(OPTS.bin, "jobwire-worker"),
            "--queues",
            queues,
            "--redis-url",
            url or SERVER.url,
            "--block-timeout-ms",
            str(block_ms),
        ] + list(extra)
        if valgrind:
            self.vgdir = tempfile.mkdtemp(prefix="vg-", dir=TMP)
            cmd = [
                "valgrind",
                "--leak-check=full",
                "--error-exitcode=1",
                "--errors-for-leak-kinds=definite,indirect",
                # One file for the master and every forked child (each line carries
                # ==pid==): per-pid files would be overwritten when pids wrap around.
                "--log-file=" + os.path.join(self.vgdir, "valgrind.log"),
            ] + cmd
        env = child_env()
        if sh_prefix:  # run shell code first, then exec the worker under the same pid
            env["JW_PORT"] = str(SERVER.port)
            env["JW_HOST"] = HOST
            cmd = ["sh", "-c", sh_prefix + ' && exec "$@"', "sh"] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"), env=env)
        self.pid = self.proc.pid
        self.queues = queues
        self.id = "%s:%d:%s" % (HOST, self.pid, queues)
        Worker.all.append(self)

    def registered(self, ns="resque"):
        return R("SISMEMBER", ns + ":workers", self.id) == 1

    def wait_registered(self, timeout=10, ns="resque"):
        wait_until(lambda: self.registered(ns), timeout, "worker %s to register" % self.id)

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait(self, timeout=15):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("worker %d did not exit within %ss" % (self.pid, timeout)) from None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logtext(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def sanitizer_reports(self):
        text = self.logtext()
        return [
            line
            for line in text.splitlines()
            if "AddressSanitizer" in line or "runtime error:" in line or "LeakSanitizer" in line
        ]

    def quit(self):
        self.signal(signal.SIGQUIT)
        rc = self.wait(20)
        assert rc == 0, "worker exited with %s" % rc


def reset():
    for w in Worker.all:
        w.stop()
    R("FLUSHALL")


def stat(name, ns="resque"):
    v = R("GET", ns + ":stat:" + name)
    return int(v) if v is not None else 0


def inflight_token(w, ns="resque"):
    return wait_until(lambda: R("HGET", ns + ":jobwire:inflight:" + w.id, "token"), 10, "a job in flight").decode()


FAILED_KEYS = ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]


def check_record(raw, exception, queue, worker):
    rec = json.loads(raw)
    assert list(rec)[:7] == FAILED_KEYS, list(rec)
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d UTC", rec["failed_at"]), rec["failed_at"]
    assert rec["exception"] == exception, (rec["exception"], rec["error"])
    assert rec["queue"] == queue and rec["worker"] == worker, rec
    assert isinstance(rec["backtrace"], list)
    return rec


# ---------------------------------------------------------------- Tests


def test_enqueue_and_process():
    args = [1, "x", 9223372036854775807, -9223372036854775808, 0.1, 1e-300, {"a": [True, None]}]
    ids = [enqueue("high", "jobwire.Echo", *args) for _ in range(3)]
    w = Worker("high,low")
    wait_until(lambda: len(echoes()) == 3, 10, "3 echoes")
    for rec, jid in zip(echoes(), ids, strict=True):
        assert list(rec) == ["id", "args", "worker", "queue", "pid", "impl"], rec
        assert rec["id"] == jid and rec["args"] == args, rec
        assert rec["worker"] == w.id and rec["queue"] == "high" and rec["impl"] == "c", rec
        assert rec["pid"] != w.pid, "the job must run in a forked child"
    wait_until(lambda: stat("processed") == 3, 5, "the last settle")  # settle follows the echo
    assert stat("failed") == 0
    assert int(R("GET", "resque:stat:processed:" + w.id)) == 3
    info = dict(zip(*[iter(x.decode() for x in R("HGETALL", "resque:jobwire:worker:" + w.id))] * 2, strict=True))
    assert info["impl"] == "c" and info["mode"] == "fork" and info["state"] == "idle", info
    assert info["pid"] == str(w.pid) and info["queues"] == "high,low" and info["host"] == HOST, info
    assert info["spec"] == open(os.path.join(SPEC, "VERSION")).read().strip(), info
    assert re.fullmatch(r"\d+", info["started_ms"]) and info["impl_version"], info
    hb = R("HGET", "resque:workers:heartbeat", w.id).decode()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", hb), hb
    started = R("GET", "resque:worker:" + w.id + ":started").decode()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000", started), started
    assert R("ZSCORE", "resque:jobwire:leases", w.id) is not None
    minutes = R("KEYS", "resque:jobwire:minutes:*")
    assert len(minutes) == 1 and R("TTL", minutes[0]) > 0
    wait_until(lambda: "Waiting for high,low" in cmdline(w.pid), 5, "procline")
    assert cmdline(w.pid).startswith("jobwire-c/resque-1: Waiting for high,low"), cmdline(w.pid)
    # Wake markers: a job enqueued while the worker blocks runs at once.
    w2_block = time.time()
    enqueue("low", "jobwire.Echo", "late")
    wait_until(lambda: len(echoes()) == 4, 2, "a woken worker")
    assert time.time() - w2_block < 1.0
    w.quit()
    assert not w.registered()
    left = sorted(k.decode() for k in R("KEYS", "*" + w.id + "*"))
    assert left == [], left
    assert R("ZCARD", "resque:jobwire:leases") == 0


def test_failure_record():
    payload = (
        '{"class":"jobwire.Fail","args":["boom \\u00e9 \\"quoted\\"\\n"],"id":"f-1",'
        '"enqueued_at":1764403200123,"extra":{"f":1.50,"e":1E+2,"big":9007199254740993}}'
    )
    big = (
        '{"class":"jobwire.Fail","args":["huge"],"id":"f-2","huge":123456789012345678901234567890,'
        '"tiny":1e-400,"vast":-1e400}'
    )
    push_raw("q", payload, big)
    w = Worker("q")
    wait_until(lambda: R("LLEN", "resque:failed") == 2, 10, "2 failures")
    raws = R("LRANGE", "resque:failed", 0, -1)
    rec = check_record(raws[0], "JobError", "q", w.id)
    assert rec["error"] == 'boom \u00e9 "quoted"\n', rec["error"]
    assert b'"payload":' + payload.encode() + b',"exception"' in raws[0], "payload not verbatim"
    rec = check_record(raws[1], "JobError", "q", w.id)  # numbers beyond int64 do not stop it
    assert b'"payload":' + big.encode() + b',"exception"' in raws[1]
    assert stat("processed") == 2 and stat("failed") == 2
    assert int(R("GET", "resque:stat:failed:" + w.id)) == 2
    w.quit()


def test_unknown_class():
    enqueue("q", "No.Such.Class", 1)
    w = Worker("q")
    wait_until(lambda: R("LLEN", "resque:failed") == 1, 10, "a failure")
    rec = check_record(R("LINDEX", "resque:failed", 0), "jobwire.UnknownClass", "q", w.id)
    assert rec["error"] == 'no handler registered for class "No.Such.Class"', rec["error"]
    assert rec["backtrace"] == []
    w.quit()


def test_invalid_json():
    push_raw("q", '{"class":"jobwire.Echo",', "[1,2]", '"str"', b"\xff\xfe garbage")
    # lua-cjson lets these through; the worker's RFC 8259 parser must not.
    cjson_only = ['{"class":"jobwire.Echo","args":[NaN]}', '{"class":"jobwire.Echo","args":[-Infinity]}']
    push_raw("q", *cjson_only)
    enqueue("q", "jobwire.Echo", "after")
    w = Worker("q")
    wait_until(lambda: len(echoes()) == 1, 10, "the valid job after the bad ones")
    recs = failures()
    assert [r["exception"] for r in recs] == [
        "jobwire.InvalidJSON",
        "jobwire.InvalidPayload",
        "jobwire.InvalidPayload",
        "jobwire.InvalidJSON",
        "jobwire.InvalidJSON",
        "jobwire.InvalidJSON",
    ], recs
    assert [r["payload"] for r in recs[4:]] == cjson_only, recs[4:]
    assert all(r["worker"] == w.id for r in recs)
    assert recs[0]["payload"] == '{"class":"jobwire.Echo",', recs[0]
    assert recs[3]["payload_hex"] == "fffe2067617262616765", recs[3]
    w.quit()


def test_schema_invalid():
    bad = [
        {"class": "x" * 1025},
        {"class": "jobwire.Echo", "args": {"a": 1}},
        {"class": "jobwire.Echo", "id": "i" * 65},
        {"class": "jobwire.Echo", "id": ""},
        {"class": "jobwire.Echo", "id": 7},
        {"class": "jobwire.Echo", "enqueued_at": -1},
        {"class": "jobwire.Echo", "enqueued_at": 1.5},
        {"class": "jobwire.Echo", "queue": 3},
    ]
    ok_len = {"class": "\u00e9" * 1024}  # 1024 characters, 2048 bytes: valid, unknown class
    push_raw("q", *[json.dumps(b, separators=(",", ":")) for b in bad], json.dumps(ok_len, ensure_ascii=False))
    w = Worker("q")
    wait_until(lambda: R("LLEN", "resque:failed") == len(bad) + 1, 10, "failures")
    recs = failures()
    for rec in recs[:-1]:
        assert rec["exception"] == "jobwire.InvalidPayload", rec
        assert isinstance(rec["payload"], dict), "schema-invalid payloads are embedded as objects"
    assert recs[-1]["exception"] == "jobwire.UnknownClass", recs[-1]
    # jobwire-enqueue validates too and pushes nothing on failure.
    r = subprocess.run(
        [os.path.join(OPTS.bin, "jobwire-enqueue"), "--redis-url", SERVER.url, "q", "y" * 1025],
        capture_output=True,
        env=child_env(),
    )
    assert r.returncode == 2 and R("LLEN", "resque:queue:q") == 0, r
    w.quit()


def test_big_payload():
    blob = "z" * (20 * 1024 * 1024)
    big = json.dumps({"class": "jobwire.Fail", "args": [blob], "id": "big-1"}, separators=(",", ":"))
    push_raw("q", big)
    w = Worker("q")
    wait_until(lambda: R("LLEN", "resque:failed") == 1, 30, "PayloadTooLarge")
    rec = failures()[0]
    assert rec["exception"] == "jobwire.PayloadTooLarge" and rec["payload"] == big, rec["error"]
    w.quit()
    R("DEL", "resque:failed")
    echo = json.dumps({"class": "jobwire.Echo", "args": [blob], "id": "big-2"}, separators=(",", ":"))
    push_raw("q", big, echo)
    w = Worker("q", "--max-payload-bytes", str(32 * 1024 * 1024))
    wait_until(lambda: R("LLEN", "resque:jobwire:conformance:echo") == 1, 60, "the 20 MiB echo")
    raw = R("LINDEX", "resque:failed", 0)
    assert b'"payload":' + big.encode() + b',"exception":"JobError"' in raw
    assert json.loads(raw)["error"] == blob
    assert echoes()[0]["args"] == [blob]
    w.quit()


def test_strict_priority():
    for i in range(3):
        enqueue("low", "jobwire.Echo", "low%d" % i)
        enqueue("high", "jobwire.Echo", "high%d" % i)
    w = Worker("high,low")
    wait_until(lambda: len(echoes()) == 6, 10, "6 echoes")
    order = [e["args"][0] for e in echoes()]
    assert order == ["high0", "high1", "high2", "low0", "low1", "low2"], order
    w.quit()


def test_wildcard():
    enqueue("b", "jobwire.Echo", "b")
    enqueue("a", "jobwire.Echo", "a")
    w = Worker("*", block_ms=5000)
    wait_until(lambda: len(echoes()) == 2, 10, "2 echoes")
    assert [e["args"][0] for e in echoes()] == ["a", "b"]
    assert echoes()[0]["worker"] == HOST + ":%d:*" % w.pid
    time.sleep(0.5)  # now blocked on the wake markers
    t = time.time()
    enqueue("brand-new", "jobwire.Echo", "new")
    wait_until(lambda: len(echoes()) == 3, 4, "the new queue's job")
    assert time.time() - t < 1.5, "wake-new-queue did not wake the wildcard worker"
    assert echoes()[2]["queue"] == "brand-new"
    w.quit()


def test_signal_quit():
    jid = enqueue("q", "jobwire.Sleep", 1200)
    w = Worker("q")
    inflight_token(w)
    w.signal(signal.SIGQUIT)
    assert w.wait(10) == 0
    assert [e["id"] for e in echoes()] == [jid], "QUIT must finish the job first"
    assert stat("processed") == 1 and R("LLEN", "resque:queue:q") == 0
    assert not w.registered()


def test_signal_term_int():
    for sig in (signal.SIGTERM, signal.SIGINT):
        R("FLUSHALL")
        enqueue("q", "jobwire.Sleep", 5000)
        w = Worker("q")
        inflight_token(w)
        kids = wait_until(lambda w=w: children_of(w.pid), 5, "the child")
        t = time.time()
        w.signal(sig)
        assert w.wait(10) == 0
        assert time.time() - t < 2, "TERM/INT must not wait for the job"
        wait_until(lambda kids=kids: not alive(kids[0]), 2, "the child to die")
        assert R("LLEN", "resque:queue:q") == 1, "the job goes back to its queue"
        assert R("HLEN", "resque:jobwire:deaths") == 0, "no death counted"
        assert echoes() == [] and not w.registered()


def test_signal_usr1():
    enqueue("q", "jobwire.Sleep", 5000)
    enqueue("q", "jobwire.Echo", "next")
    w = Worker("q")
    inflight_token(w)
    w.signal(signal.SIGUSR1)
    wait_until(lambda: len(echoes()) == 1, 5, "the next job")
    rec = check_record(R("LINDEX", "resque:failed", 0), "jobwire.Killed", "q", w.id)
    assert "SIGUSR1" in rec["error"], rec["error"]
    assert echoes()[0]["args"] == ["next"] and w.proc.poll() is None
    w.quit()


def test_signal_pause_resume():
    w = Worker("q")
    w.wait_registered()
    time.sleep(0.3)
    w.signal(signal.SIGUSR2)
    wait_until(lambda: R("HGET", "resque:jobwire:worker:" + w.id, "state") == b"paused", 5, "paused")
    enqueue("q", "jobwire.Echo", "p")
    time.sleep(1.5)
    assert echoes() == [] and R("LLEN", "resque:queue:q") == 1, "a paused worker must not reserve"
    assert "Paused" in cmdline(w.pid), cmdline(w.pid)
    w.signal(signal.SIGCONT)
    wait_until(lambda: len(echoes()) == 1, 5, "the job after resume")
    assert R("HGET", "resque:jobwire:worker:" + w.id, "state") == b"idle"
    # pause-all-workers pauses too.
    R("SET", "resque:pause-all-workers", " TRUE ")
    time.sleep(0.3)
    enqueue("q", "jobwire.Echo", "pa")
    time.sleep(1.5)
    assert len(echoes()) == 1
    R("DEL", "resque:pause-all-workers")
    wait_until(lambda: len(echoes()) == 2, 5, "the job after pause-all is lifted")
    w.quit()


def test_signal_keeps_control():
    """A signal cuts the idle BLPOP short and the master remakes its connection. No
    child may keep the old one open (a standby child is forked while idle): its
    BLPOP would still block in Redis and pop the next control command unseen."""
    w = Worker("q", block_ms=5000)
    w.wait_registered()
    time.sleep(0.5)  # idle: blocked in BLPOP, with a standby child forked
    assert children_of(w.pid), "expected a standby child"
    w.signal(signal.SIGCONT)  # not paused: only interrupts the BLPOP
    time.sleep(0.3)
    blocked = [line for line in R("CLIENT", "LIST").decode().splitlines() if "flags=b" in line]
    assert len(blocked) == 1, "stale blocked connections: %s" % blocked
    R("RPUSH", "resque:jobwire:control:" + w.id, "pause")
    wait_until(
        lambda: R("HGET", "resque:jobwire:worker:" + w.id, "state") == b"paused", 3, "the pause command after a signal"
    )
    w.quit()


def test_children_reaped_when_idle():
    """The master settles a job once its child's message is whole and reaps the exiting child
    later (jw_worker.c reap_exiting): by the time it blocks idle, no zombie is left, only the
    standby; and no child's SIGCHLD cut the idle BLPOP short (the same connection blocks again,
    never reopened). Several rounds: whether a SIGCHLD lands during a BLPOP is a race."""
    w = Worker("q", block_ms=5000)
    w.wait_registered()
    time.sleep(0.3)
    ids = []
    for k in range(5):
        push_raw("q", *['{"class":"jobwire.Noop","args":[],"id":"z%d-%d"}' % (k, i) for i in range(5)])
        enqueue("q", "jobwire.Echo", k)
        wait_until(lambda k=k: len(echoes()) == k + 1, 10, "the jobs")
        wait_until(lambda k=k: stat("processed") == 6 * (k + 1), 5, "the last settle")
        time.sleep(0.3)
        kids = children_of(w.pid)
        zombies = [p for p in kids if not alive(p)]
        assert len(kids) == 1 and not zombies, "expected the standby alone, got %s (zombies %s)" % (kids, zombies)
        assert "Ready since" in cmdline(kids[0]), cmdline(kids[0])
        blocked = [line for line in R("CLIENT", "LIST").decode().splitlines() if "flags=b" in line]
        assert len(blocked) == 1, blocked
        ids.append(re.search(r"\bid=(\d+)", blocked[0]).group(1))
    assert len(set(ids)) == 1, "the blocking connection was reopened: client ids %s" % ids
    w.quit()


def test_control_commands():
    w = Worker("q")
    w.wait_registered()
    ctl = "resque:jobwire:control:" + w.id
    enqueue("q", "jobwire.Sleep", 2500)
    tok = inflight_token(w)
    R("RPUSH", ctl, "kill 123-not-the-token")
    R("RPUSH", ctl, "frobnicate")
    time.sleep(1.3)
    assert R("LLEN", "resque:failed") == 0 and R("LLEN", ctl) == 0
    R("RPUSH", ctl, "kill " + tok)
    wait_until(lambda: R("LLEN", "resque:failed") == 1, 3, "kill <token>")
    rec = check_record(R("LINDEX", "resque:failed", 0), "jobwire.Killed", "q", w.id)
    assert "operator" in rec["error"], rec["error"]
    enqueue("q", "jobwire.Sleep", 5000)
    inflight_token(w)
    R("RPUSH", ctl, "kill")
    wait_until(lambda: R("LLEN", "resque:failed") == 2, 3, "kill")
    R("RPUSH", ctl, "pause")
    wait_until(lambda: R("HGET", "resque:jobwire:worker:" + w.id, "state") == b"paused", 3, "pause")
    enqueue("q", "jobwire.Echo", 1)
    time.sleep(1.2)
    assert echoes() == []
    R("RPUSH", ctl, "resume")
    wait_until(lambda: len(echoes()) == 1, 3, "resume")
    R("RPUSH", ctl, "quit")
    assert w.wait(5) == 0 and not w.registered()


def test_job_timeout():
    enqueue("q", "jobwire.Sleep", 10000)
    enqueue("q", "jobwire.Echo", "after")
    w = Worker("q", "--job-timeout-ms", "700")
    wait_until(lambda: len(echoes()) == 1, 5, "the job after the timeout")
    rec = check_record(R("LINDEX", "resque:failed", 0), "jobwire.Timeout", "q", w.id)
    assert "700 ms" in rec["error"], rec["error"]
    w.quit()


def test_crash_recovery():
    flags = ["--lease-ms", "1500", "--heartbeat-ms", "300"]
    jid = enqueue("q", "jobwire.Sleep", 2500)
    a = Worker("q", *flags)
    inflight_token(a)
    kids = wait_until(lambda: children_of(a.pid), 5, "the child")
    a.signal(signal.SIGKILL)
    a.wait(5)
    wait_until(lambda: not alive(kids[0]), 2, "the orphan child to die (PR_SET_PDEATHSIG)")
    b = Worker("q", *flags)
    wait_until(lambda: len(echoes()) == 1, 10, "the recovered job")
    time.sleep(3.0)  # the orphan would have echoed by now had it survived
    got = echoes()
    assert [e["id"] for e in got] == [jid], got
    assert got[0]["worker"] == b.id
    assert not a.registered() and R("HLEN", "resque:jobwire:deaths") == 0
    assert R("EXISTS", "resque:jobwire:inflight:" + a.id) == 0
    b.quit()


def test_poison_job():
    enqueue("q", "jobwire.Crash")
    enqueue("q", "jobwire.Echo", "survivor")
    w = Worker("q")
    wait_until(lambda: len(echoes()) == 1, 10, "the job after the poison job")
    recs = failures()
    assert len(recs) == 1 and recs[0]["exception"] == "jobwire.PoisonJob", recs
    assert "3 times" in recs[0]["error"] and "killed by signal 9 (SIGKILL)" in recs[0]["error"], recs[0]
    wait_until(lambda: stat("processed") == 2, 5, "the last settle")
    assert R("HLEN", "resque:jobwire:deaths") == 0 and stat("failed") == 1
    w.quit()


def test_redis_restart():
    w = Worker("q", "--heartbeat-ms", "500", "--lease-ms", "20000")
    w.wait_registered()
    jid = enqueue("q", "jobwire.Sleep", 2500)
    inflight_token(w)
    R("SAVE")  # keep the in-flight job across the restart
    SERVER.kill()
    time.sleep(1.2)
    SERVER.start()
    reconnect()
    wait_until(lambda: [e["id"] for e in echoes()] == [jid], 10, "the echo after the restart")
    wait_until(lambda: stat("processed") == 1, 10, "the held outcome to be settled")
    assert R("EXISTS", "resque:jobwire:inflight:" + w.id) == 0 and R("LLEN", "resque:failed") == 0
    # Now lose everything: the worker must notice (beat "unknown") and register again.
    SERVER.kill()
    os.unlink(os.path.join(SERVER.dir, "dump.rdb"))
    time.sleep(1.0)
    SERVER.start()
    reconnect()
    w.wait_registered(15)
    enqueue("q", "jobwire.Echo", "after")
    wait_until(lambda: len(echoes()) == 1, 10, "a job after Redis lost its data")
    assert w.proc.poll() is None
    assert "lost Redis" in w.logtext()
    w.quit()


def test_pid_reuse():
    # A previous process with our host, pid and queues died holding a job; the new worker
    # (same pid, thanks to exec) must recover that job before registering, not overwrite it.
    prefix = (
        'redis-cli -p "$JW_PORT" HSET "resque:jobwire:inflight:$JW_HOST:$$:q" queue q '
        'payload \'{"class":"jobwire.Echo","args":["orphan"],"id":"orph-1"}\' token 1 '
        "job_key orph-1 reserved_ms 1 >/dev/null"
    )
    w = Worker("q", sh_prefix=prefix)
    wait_until(lambda: len(echoes()) == 1, 10, "the orphaned job to run")
    assert echoes()[0]["id"] == "orph-1" and echoes()[0]["worker"] == w.id
    wait_until(lambda: stat("processed") == 1, 5, "the settle")
    assert "a previous worker with our id held a job" in w.logtext()
    assert R("HLEN", "resque:jobwire:deaths") == 0
    w.quit()


def test_spec_mismatch():
    R("HSET", "resque:jobwire:meta", "spec_major", "99")
    w = Worker("q")
    assert w.wait(10) != 0
    assert "JOBWIRE_SPEC_MISMATCH" in w.logtext()


def test_config_errors():
    exe = os.path.join(OPTS.bin, "jobwire-worker")
    for args in (
        ["--queues", "q", "--concurrency", "4"],
        ["--queues", "q", "--lease-ms", "1000"],
        [],
        ["--queues", "bad:name"],
        ["--queues", "q", "--bogus", "1"],
        ["--queues", "q", "--lease-ms=1000"],
        ["--queues=a,,b"],
        ["--queues", "mail*"],
        ["--queues", "*,a,*"],
        ["--queues", " a"],
        ["--queues", "q", "--heartbeat-ms", "+5"],
        # protocol.md 15.1: a cluster has only database 0, refused before connecting
        ["--queues", "q", "--redis-url", "redis://127.0.0.1:1/3?cluster=1"],
    ):
        r = subprocess.run([exe] + args, capture_output=True, env=child_env(), timeout=10)
        assert r.returncode == 2 and r.stderr, (args, r)
    # protocol.md 7.2: an empty variable counts as unset, so the default (and its check) holds
    env = dict(child_env(), JOBWIRE_QUEUES="")
    r = subprocess.run([exe], capture_output=True, env=env, timeout=10)
    assert r.returncode == 2 and b"--queues is required" in r.stderr, r


def many_jobs(n):
    """n payloads, mostly Noop, with every outcome mixed in."""
    out = []
    for i in range(n):
        k = i % 50
        if k == 1:
            out.append('{"class":"jobwire.Fail","args":["f%d"],"id":"j%d"}' % (i, i))
        elif k == 2:
            out.append('{"class":"jobwire.Echo","args":[%d,"x"],"id":"j%d"}' % (i, i))
        elif k == 3:
            out.append('{"class":"Unknown","id":"j%d"}' % i)
        elif k == 4:
            out.append('{"class":"jobwire.Echo","args":{"bad":1},"id":"j%d"}' % i)
        elif k == 5:
            out.append('{"class":')
        else:
            out.append('{"class":"jobwire.Noop","args":[%d],"id":"j%d"}' % (i, i))
    return out


def run_many(n, valgrind=False, timeout=3600):
    push_raw("q", *many_jobs(n))
    t = time.time()
    w = Worker("q", valgrind=valgrind)
    wait_until(lambda: stat("processed") >= n, timeout, "%d jobs" % n)
    elapsed = time.time() - t
    w.quit()
    assert stat("processed") == n
    assert stat("failed") == sum(1 for i in range(n) if i % 50 in (1, 3, 4, 5))
    return w, elapsed


def test_valgrind():
    n = OPTS.valgrind_jobs
    w, elapsed = run_many(n, valgrind=True)
    text = open(os.path.join(w.vgdir, "valgrind.log"), errors="replace").read()
    summaries = re.findall(r"==(\d+)== ERROR SUMMARY: (\d+) errors", text)
    bad = [pid for pid, count in summaries if count != "0"]
    lost = re.findall(r"==(\d+)==\s+(?:definitely|indirectly) lost: [1-9]", text)
    print(
        "    valgrind: %d jobs in %.1fs (%.0f jobs/s), %d processes checked" % (n, elapsed, n / elapsed, len(summaries))
    )
    forked = sum(1 for i in range(n) if i % 50 not in (3, 4, 5))  # the rest never fork
    assert len(summaries) == forked + 1, "expected a summary for the master and each child"
    assert str(w.pid) in [pid for pid, _ in summaries], "no summary for the master"
    assert not bad and not lost, "valgrind errors in processes %s %s" % (bad[:5], lost[:5])


def test_soak():
    n = OPTS.soak_jobs
    w, elapsed = run_many(n)
    print("    soak: %d jobs in %.1fs (%.0f jobs/s)" % (n, elapsed, n / elapsed))


def test_bench():
    n = 10000
    push_raw("q", *['{"class":"jobwire.Noop","args":[],"id":"n%d"}' % i for i in range(n)])
    t = time.time()
    w = Worker("q")
    wait_until(lambda: stat("processed") >= n, 600, "%d jobs" % n)
    el = time.time() - t
    print("    drain %d jobwire.Noop: %.2fs = %.0f jobs/s (fork per job)" % (n, el, n / el))
    time.sleep(2)
    with open("/proc/%d/status" % w.pid) as f:
        rss = [line for line in f if line.startswith("VmRSS")][0].split()[1]
    print("    idle master RSS: %s kB" % rss)
    w.quit()
    m = 300
    t = time.time()
    for i in range(m):
        enqueue("e", "jobwire.Noop", i)
    el = time.time() - t
    print("    jobwire-enqueue: %d runs in %.2fs = %.0f/s (one process per job)" % (m, el, m / el))


def test_delayed():
    """protocol.md 14.2/14.3: jobwire-enqueue --in stores resque-scheduler's layout; an idle
    worker promotes the job at its bucket second, not before, and wakes for it on its own."""
    w = Worker("d", block_ms=5000)
    w.wait_registered()
    cmd = [
        os.path.join(OPTS.bin, "jobwire-enqueue"),
        "--redis-url",
        SERVER.url,
        "--in",
        "1.5",
        "d",
        "jobwire.Echo",
        "7",
    ]
    t0 = time.time()
    jid = subprocess.run(cmd, check=True, capture_output=True, env=child_env()).stdout.decode().strip()
    ts = R("ZRANGE", "resque:delayed_queue_schedule", 0, -1)
    assert len(ts) == 1, ts
    item = R("LINDEX", b"resque:delayed:" + ts[0], 0)
    doc = json.loads(item)
    assert list(doc)[:3] == ["class", "args", "queue"] and doc["queue"] == "d" and doc["id"] == jid, doc
    assert doc["scheduled_for_ms"] > t0 * 1000 and int(ts[0]) * 1000 >= doc["scheduled_for_ms"], (doc, ts)
    assert R("SMEMBERS", b"resque:timestamps:" + item) == [b"delayed:" + ts[0]]
    wait_until(lambda: len(echoes()) == 1, 5, "the delayed job")
    ran = time.time()
    assert ran * 1000 >= int(ts[0]) * 1000 - 50, "ran before its bucket second"
    assert ran - int(ts[0]) < 1.0, "promoted %.3fs late although idle (block timeout 5s)" % (ran - int(ts[0]))
    assert R("EXISTS", "resque:delayed_queue_schedule", b"resque:delayed:" + ts[0], b"resque:timestamps:" + item) == 0
    past = (
        subprocess.run(
            cmd[:3] + ["--at", "1000", "d", "jobwire.Echo", "8"], check=True, capture_output=True, env=child_env()
        )
        .stdout.decode()
        .strip()
    )
    wait_until(lambda: len(echoes()) == 2, 5, "a past --at runs at once")
    assert echoes()[1]["id"] == past
    w.quit()


def test_retries():
    """protocol.md 14.4: a flaky job is retried under its policy with its history, keeps its id,
    and lands in failed with every attempt when they run out; --default-retry is checked."""
    pol = '"retry":{"max_attempts":3,"backoff":"fixed","delay_ms":300,"jitter":0}'
    push_raw(
        "r",
        '{"class":"jobwire.Flaky","args":[9],"id":"flaky-1",%s}' % pol,
        '{"class":"jobwire.Flaky","args":[1],"id":"flaky-2",%s}' % pol,
        '{"class":"jobwire.Flaky","args":[1],"id":"plain"}',
    )
    w = Worker("r", "--default-retry", '{"max_attempts":2,"delay_ms":100}')
    wait_until(lambda: len(failures()) == 1 and len(echoes()) == 7, 10, "every attempt")
    runs = {}
    for e in echoes():
        runs.setdefault(e["id"], []).append(e["attempt"])
    assert runs == {"flaky-1": [1, 2, 3], "flaky-2": [1, 2], "plain": [1, 2]}, runs
    rec = failures()[0]
    assert rec["payload"]["id"] == "flaky-1" and rec["error"] == "flaky attempt 3", rec
    hist = rec["payload"]["attempts"]
    assert [(a["attempt"], a["error"], a["delay_ms"], a["worker"]) for a in hist] == [
        (1, "flaky attempt 1", 300, w.id),
        (2, "flaky attempt 2", 300, w.id),
    ], hist
    assert list(hist[0]) == ["attempt", "failed_at_ms", "exception", "error", "worker", "queue", "delay_ms"]
    assert R("ZCARD", "resque:jobwire:retry") == 0
    wait_until(lambda: stat("processed") == 7, 5, "the last settle")
    assert stat("failed") == 5, (stat("processed"), stat("failed"))  # 3 + 1 + 1 failed attempts
    w.quit()
    bad = subprocess.run(
        [os.path.join(OPTS.bin, "jobwire-worker"), "--queues", "r", "--default-retry", '{"backoff":"linear"}'],
        capture_output=True,
        env=child_env(),
    )
    assert bad.returncode == 2 and b"--default-retry" in bad.stderr, bad


def test_schedules():
    """protocol.md 14.5: an every-1000-ms schedule fires once per fire time with two workers;
    a broken one is reported (error, next fire time +inf) and blocks nothing; a definition whose
    args hold an integer past int64 (valid JSON, fired by Python and Node) is not called broken."""
    now = int(R("TIME")[0]) * 1000
    first = (now // 1000 + 1) * 1000
    for name, definition in (
        ("tick", '{"every_ms":1000,"queue":"s","class":"jobwire.Echo","args":["t"]}'),
        ("broken", '{"cron":"not a cron","queue":"s","class":"X"}'),
        ("big", '{"every_ms":3600000,"queue":"big","class":"jobwire.Echo","args":[18446744073709551616]}'),
    ):
        R("HSET", "resque:jobwire:schedule:" + name, "definition", definition)
        R("ZADD", "resque:jobwire:schedules", first, name)
    ws = [Worker("s"), Worker("s")]
    wait_until(lambda: len(echoes()) >= 3, 10, "three fires")
    for w in ws:
        w.quit()
    ids = [e["id"] for e in echoes()]
    assert len(ids) == len(set(ids)), ids
    info = dict(zip(*[iter(x.decode() for x in R("HGETALL", "resque:jobwire:schedule:tick"))] * 2, strict=True))
    assert int(info["fired"]) == len(ids) and int(info["last_fire_ms"]) % 1000 == 0, info
    assert R("HGET", "resque:jobwire:schedule:broken", "error"), "a broken schedule gets an error"
    assert R("ZSCORE", "resque:jobwire:schedules", "broken") == b"inf"
    assert not R("HGET", "resque:jobwire:schedule:big", "error"), R("HGET", "resque:jobwire:schedule:big", "error")
    assert int(R("HGET", "resque:jobwire:schedule:big", "fired")) == 1 and R("LLEN", "resque:queue:big") == 1


def test_enqueue_big_integer():
    """jobwire-enqueue keeps an integer past int64 exactly (jansson cannot hold it; Python can)."""
    enqueue("bigint", "jobwire.Echo", 18446744073709551616, -9223372036854775809)
    raw = R("LINDEX", "resque:queue:bigint", 0).decode()
    assert '"args":[18446744073709551616,-9223372036854775809]' in raw, raw
    for arg in ("1x", "1e400"):  # not JSON; a double no worker can hold (Python's client refuses it too)
        bad = subprocess.run(
            [os.path.join(OPTS.bin, "jobwire-enqueue"), "--redis-url", SERVER.url, "bigint", "jobwire.Echo", arg],
            capture_output=True,
            env=child_env(),
        )
        assert bad.returncode == 2 and b"argument 1 is not JSON" in bad.stderr, (arg, bad)


# ---------------------------------------------------------------- Faults (issue #13)
# Beyond a clean restart: Redis unreachable for 10 s, a job that finishes while Redis is down, a
# port that accepts and never answers, the connection cut mid-reply, Redis at maxmemory with
# noeviction. No worker exits, nothing is lost. Each has its own redis-server (AOF always: a
# restart keeps what was acknowledged) and, for wire faults, the shared proxy tests/fault_proxy.py
# that the Python and Node fault tests use too.

FAULT_TIMINGS = ("--heartbeat-ms", "200", "--lease-ms", "5000")
FAULT_PROXY = os.path.abspath(os.path.join(HERE, "..", "..", "tests", "fault_proxy.py"))


class FaultRedis:
    """A private AOF redis-server; `call` opens a connection per command (it may be down)."""

    def __init__(self):
        self.server = RedisServer("--appendonly", "yes", "--appendfsync", "always")
        self.server.start()

    def call(self, *args):
        r = Redis(self.server.port)
        try:
            return r(*args)
        finally:
            r.close()

    def up(self, *args):
        """call(), or None while Redis is away."""
        try:
            return self.call(*args)
        except (OSError, ConnectionError):
            return None

    def ids(self, key):
        return [(json.loads(x).get("payload") or json.loads(x)).get("id") for x in self.up("LRANGE", key, 0, -1) or []]

    def echo_ids(self):
        return self.ids("resque:jobwire:conformance:echo")

    def failed(self):
        return [json.loads(x) for x in self.up("LRANGE", "resque:failed", 0, -1) or []]


class FaultProxy:
    """tests/fault_proxy.py in front of a Redis port; `command` sends one line, returns the answer."""

    def __init__(self, target_port):
        self.proc = subprocess.Popen(
            [sys.executable, FAULT_PROXY, "--target", str(target_port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        first = self.proc.stdout.readline().split()
        assert first[:1] == ["port"], "fault_proxy.py did not start: %s" % first
        self.url = "redis://127.0.0.1:%s/0" % first[1]

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(10)


def fault_worker(url, fr):
    w = Worker("q", *FAULT_TIMINGS, block_ms=500, url=url)
    w.fault_redis = fr
    return w


def fault_registered(w, timeout=20):
    wait_until(
        lambda: w.fault_redis.up("SISMEMBER", "resque:workers", w.id) == 1, timeout, "worker %s to register" % w.id
    )


def processes_one(w, timeout=20):
    """The worker is alive and runs a fresh job end to end."""
    fr = w.fault_redis
    jid = enqueue("q", "jobwire.Echo", "probe", url=fr.server.url)
    wait_until(lambda: jid in fr.echo_ids(), timeout, "the probe job to run")
    assert w.proc.poll() is None, w.logtext()[-1500:]


def with_fault_redis(test):
    """Give the test a FaultRedis and kill its server afterwards."""

    def run():
        fr = FaultRedis()
        try:
            test(fr)
        finally:
            fr.server.kill()

    run.__name__ = test.__name__
    return run


@with_fault_redis
def test_fault_redis_unreachable_10s(fr):
    w = fault_worker(fr.server.url, fr)
    fault_registered(w)
    processes_one(w)
    fr.server.kill()
    time.sleep(10)
    assert w.proc.poll() is None, "the worker exited while Redis was away: " + w.logtext()[-1500:]
    fr.server.start()
    processes_one(w)


@with_fault_redis
def test_fault_job_finishes_while_redis_down(fr):
    w = fault_worker(fr.server.url, fr)
    fault_registered(w)
    # jobwire.Fail finishes without touching Redis; a sleep ahead of it makes it end in the outage
    enqueue("q", "jobwire.Sleep", 800, url=fr.server.url)
    failing = enqueue("q", "jobwire.Fail", "kept across the outage", url=fr.server.url)
    wait_until(lambda: fr.up("KEYS", "resque:jobwire:inflight:*"), 10, "the sleep to be reserved")
    time.sleep(0.2)
    fr.server.kill()
    time.sleep(3)
    fr.server.start()

    def settled():
        mine = [f for f in fr.failed() if f["payload"].get("id") == failing]
        clear = fr.up("KEYS", "resque:jobwire:inflight:*") == [] and fr.up("LLEN", "resque:queue:q") == 0
        return mine if mine and clear else None

    mine = wait_until(settled, 30, "the held outcome to be settled")
    assert len(mine) == 1 and mine[0]["error"] == "kept across the outage", mine
    processes_one(w)


@with_fault_redis
def test_fault_silent_port(fr):
    proxy = FaultProxy(fr.server.port)
    try:
        proxy.command("hang")
        w = fault_worker(proxy.url, fr)
        time.sleep(6)
        assert w.proc.poll() is None, "the worker exited on a silent port: " + w.logtext()[-1500:]
        proxy.command("forward")
        proxy.command("drop")
        fault_registered(w, 40)
        processes_one(w, 30)
    finally:
        proxy.stop()


@with_fault_redis
def test_fault_cut_mid_reply(fr):
    proxy = FaultProxy(fr.server.port)
    try:
        w = fault_worker(proxy.url, fr)
        fault_registered(w)
        for round_ in range(3):
            proxy.command("cut 3")  # the next reply from Redis arrives as 3 bytes and a closed socket
            jid = enqueue("q", "jobwire.Echo", round_, url=fr.server.url)
            wait_until(lambda jid=jid: jid in fr.echo_ids(), 30, "job %d after a cut" % round_)
        assert int(proxy.command("cuts").split()[1]) >= 1, "no reply was cut"
        assert w.proc.poll() is None
        assert fr.failed() == [], fr.failed()
    finally:
        proxy.stop()


@with_fault_redis
def test_fault_maxmemory_noeviction(fr):
    w = fault_worker(fr.server.url, fr)
    fault_registered(w)
    url = fr.server.url
    fr.call("SET", "resque:pause-all-workers", "true")  # hold the jobs in the queue while memory fills
    held = [enqueue("q", "jobwire.Echo", i, url=url) for i in range(20)]
    fr.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
    used = re.search(rb"used_memory:(\d+)", fr.call("INFO", "memory")).group(1)
    fr.call("CONFIG", "SET", "maxmemory", used)
    refused = None
    big = ["x" * 1000] * 50  # one enqueue of 50 KiB: a few hundred reach the limit
    for _ in range(2000):
        cmd = [os.path.join(OPTS.bin, "jobwire-enqueue"), "--redis-url", url, "q", "jobwire.Echo", json.dumps(big)]
        done = subprocess.run(cmd, capture_output=True, env=child_env())
        if done.returncode != 0:
            refused = done
            break
    assert refused is not None, "enqueue never met the limit"
    assert b"maxmemory" in refused.stderr, refused.stderr
    fr.call("DEL", "resque:pause-all-workers")  # DEL is allowed at maxmemory; reserving now is refused
    time.sleep(3)
    assert w.proc.poll() is None, "the worker exited at maxmemory: " + w.logtext()[-1500:]
    queued = [json.loads(x)["id"] for x in fr.call("LRANGE", "resque:queue:q", 0, -1)]
    inflight = [json.loads(fr.call("HGET", k, "payload"))["id"] for k in fr.call("KEYS", "resque:jobwire:inflight:*")]
    failed_ids = [f["payload"].get("id") for f in fr.failed()]
    # a job whose own write (the echo) met the limit fails with Redis' error: kept, not lost
    assert set(held) <= set(queued) | set(inflight) | set(fr.echo_ids()) | set(failed_ids), "a held job vanished"
    fr.call("CONFIG", "SET", "maxmemory", "0")
    wait_until(
        lambda: set(held) <= set(fr.echo_ids()) | {f["payload"].get("id") for f in fr.failed()},
        30,
        "every job held before the limit to run",
    )
    assert all("maxmemory" in f["error"] for f in fr.failed()), fr.failed()
    processes_one(w)


FAULTS = [
    test_fault_redis_unreachable_10s,
    test_fault_job_finishes_while_redis_down,
    test_fault_silent_port,
    test_fault_cut_mid_reply,
    test_fault_maxmemory_noeviction,
]

FULL = [
    test_enqueue_and_process,
    test_failure_record,
    test_unknown_class,
    test_invalid_json,
    test_schema_invalid,
    test_big_payload,
    test_strict_priority,
    test_wildcard,
    test_signal_quit,
    test_signal_term_int,
    test_signal_usr1,
    test_signal_pause_resume,
    test_signal_keeps_control,
    test_children_reaped_when_idle,
    test_control_commands,
    test_job_timeout,
    test_crash_recovery,
    test_poison_job,
    test_redis_restart,
    test_pid_reuse,
    test_spec_mismatch,
    test_config_errors,
    test_delayed,
    test_retries,
    test_schedules,
    test_enqueue_big_integer,
] + FAULTS
SHORT = [
    test_enqueue_and_process,
    test_failure_record,
    test_unknown_class,
    test_invalid_json,
    test_schema_invalid,
    test_strict_priority,
    test_signal_term_int,
    test_signal_usr1,
    test_signal_keeps_control,
    test_children_reaped_when_idle,
    test_control_commands,
    test_job_timeout,
    test_poison_job,
    test_crash_recovery,
    test_delayed,
    test_retries,
    test_schedules,
]
EXTRA = {"valgrind": test_valgrind, "soak": test_soak, "bench": test_bench}


def main():
    global OPTS, SERVER, R
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=".")
    p.add_argument("--asan", action="store_true")
    p.add_argument("--short", action="store_true")
    p.add_argument("--only", action="append", default=[])
    p.add_argument("--valgrind-jobs", type=int, default=0)
    p.add_argument("--soak-jobs", type=int, default=500)
    OPTS = p.parse_args()
    OPTS.bin = os.path.abspath(OPTS.bin)
    if OPTS.only:
        names = {t.__name__: t for t in FULL}
        names.update({"test_" + k: v for k, v in EXTRA.items()})
        tests = [names[n if n.startswith("test_") else "test_" + n] for n in OPTS.only]
    else:
        tests = list(SHORT if OPTS.short else FULL)
        if OPTS.short:
            tests.append(test_soak)
        if OPTS.valgrind_jobs and not OPTS.short:
            tests.append(test_valgrind)
    SERVER = RedisServer()
    SERVER.start()
    R = Redis(SERVER.port)
    failed = []
    start = time.time()
    try:
        for t in tests:
            reset()
            t0 = time.time()
            try:
                t()
                bad = [report for w in Worker.all for report in w.sanitizer_reports()]
                assert not bad, "sanitizer reports: %s" % bad[:5]
                print("PASS %-28s %5.1fs" % (t.__name__, time.time() - t0), flush=True)
            except Exception:
                failed.append(t.__name__)
                print("FAIL %-28s %5.1fs" % (t.__name__, time.time() - t0), flush=True)
                traceback.print_exc()
                for w in Worker.all[-3:]:
                    print("---- %s (worker %d) ----\n%s" % (w.log, w.pid, w.logtext()[-3000:]))
            for w in Worker.all:
                w.stop()
            try:
                reconnect()
            except OSError:
                SERVER.kill()
                SERVER.start()
                reconnect()
    finally:
        for w in Worker.all:
            w.stop()
        SERVER.kill()
    print(
        "%d passed, %d failed in %.0fs%s"
        % (len(tests) - len(failed), len(failed), time.time() - start, (": " + ", ".join(failed)) if failed else "")
    )
    if not failed:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print("logs kept in", TMP)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
