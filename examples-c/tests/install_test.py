#!/usr/bin/env python3
"""make install / uninstall, and a handler program built outside the tree.

  python3 tests/install_test.py          # (make install-test; part of make test)

1. `make install PREFIX=<tmp>/prefix` and check the tree: both programs, libjobwire.a,
   jobwire.h, jobwire.pc, and under share/jobwire exactly the spec's files but its Markdown
   prose, byte for byte.
2. From a folder outside the checkout, with no JOBWIRE_* variable set: the installed and the
   in-tree jobwire-worker --version name the repository's VERSION and spec/VERSION;
   pkg-config --modversion agrees.
3. Writes a C program with its own handlers in <tmp>/app, builds it with
   `cc my_worker.c $(pkg-config --cflags --libs jobwire)`, runs it as a worker against a
   throwaway redis-server, enqueues with the installed jobwire-enqueue, and checks that its
   handlers ran (a success, a failure with its own type and message, an unknown class: the
   conformance classes are not in a user's program unless it registers them).
4. The installed jobwire-worker runs a jobwire.Echo job.
5. A staged install (DESTDIR) keeps PREFIX in the pkg-config file; `make uninstall` leaves no
   file behind.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)  # examples-c
ROOT = os.path.dirname(SRC)
sys.path.insert(0, HERE)
import run_tests  # noqa: E402  (its RESP client and redis-server helper)
from run_tests import Redis, RedisServer  # noqa: E402

VERSION = open(os.path.join(ROOT, "VERSION")).read().strip()
SPEC_VERSION = open(os.path.join(ROOT, "spec", "VERSION")).read().strip()

HANDLERS_C = r"""
/* A user's worker: its own job classes, nothing edited in libjobwire. */
#include <jobwire.h>
#include <stdio.h>
#include <string.h>

/* Thumbnail [path, size]: records "path@size" in <ns>:test:thumbnails. */
static int thumbnail(const jw_job *job, const jw_env *env, jw_error *err) {
    const char *path = json_string_value(json_array_get(jw_job_args(job), 0));
    json_int_t size = json_integer_value(json_array_get(jw_job_args(job), 1));
    if (!path) return jw_fail(err, "ArgumentError", "Thumbnail expects [path, size]");
    redisContext *c = jw_connect(env);
    if (!c) return jw_fail(err, "RedisError", "cannot connect");
    char key[256], value[512];
    snprintf(key, sizeof key, "%s:test:thumbnails", env->ns);
    snprintf(value, sizeof value, "%s@%lld", path, (long long)size);
    redisReply *rep = redisCommand(c, "RPUSH %s %s", key, value);
    int ok = rep && rep->type == REDIS_REPLY_INTEGER;
    if (rep) freeReplyObject(rep);
    redisFree(c);
    return ok ? 0 : jw_fail(err, "RedisError", "RPUSH failed");
}

/* Broken [path]: always fails with its own error type. */
static int broken(const jw_job *job, const jw_env *env, jw_error *err) {
    (void)env;
    return jw_fail(err, "ThumbError", "no image %s",
                   json_string_value(json_array_get(jw_job_args(job), 0)));
}

int main(int argc, char **argv) {
    if (jw_register(NULL, thumbnail) != -1 || jw_register("X", NULL) != -1) return 3;
    jw_register("Thumbnail", broken);
    jw_register("Thumbnail", thumbnail);   /* registering again replaces */
    jw_register("Broken", broken);
    if (jw_handler_find("Thumbnail") != thumbnail || jw_handler_find("jobwire.Echo")) return 4;
    fprintf(stderr, "my-worker on libjobwire %s\n", jw_version());
    return jw_worker_main(argc, argv);
}
"""


def run(cmd, **kw):
    """Run cmd, failing with its output when it exits non-zero."""
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, "%s exited %d:\n%s%s" % (cmd, r.returncode, r.stdout, r.stderr)
    return r.stdout


def clean_env(prefix):
    """The environment of a user outside the checkout: no JOBWIRE_* or REDIS_URL, and
    pkg-config pointed at the install."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("JOBWIRE_") and k != "REDIS_URL" and not k.startswith("PKG_CONFIG")
    }
    env["PKG_CONFIG_PATH"] = os.path.join(prefix, "lib", "pkgconfig")
    return env


def wait_until(fn, timeout, what):
    deadline = time.time() + timeout
    while not fn():
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def check_tree(prefix):
    """Step 1: every installed file is there; the spec files equal spec/ byte for byte."""
    for rel in (
        "bin/jobwire-worker",
        "bin/jobwire-enqueue",
        "lib/libjobwire.a",
        "include/jobwire.h",
        "lib/pkgconfig/jobwire.pc",
    ):
        assert os.path.isfile(os.path.join(prefix, rel)), "not installed: " + rel
    share = os.path.join(prefix, "share", "jobwire")
    wanted = spec_data_files(os.path.join(ROOT, "spec"))
    assert {"VERSION", "errors.json", "lua/manifest.json", "lua/work.lua", "schemas/job.schema.json"} <= set(wanted)
    installed = sorted(os.path.relpath(os.path.join(d, f), share) for d, _, files in os.walk(share) for f in files)
    assert installed == wanted, "share/jobwire holds exactly the spec's data files: %s" % installed
    for rel in wanted:
        with open(os.path.join(ROOT, "spec", rel), "rb") as a, open(os.path.join(share, rel), "rb") as b:
            assert a.read() == b.read(), "share/jobwire/%s differs from spec/%s" % (rel, rel)


def spec_data_files(top):
    """Every file under top but Markdown, as sorted relative paths."""
    found = [os.path.relpath(os.path.join(d, f), top) for d, _, files in os.walk(top) for f in files]
    return sorted(f for f in found if not f.endswith(".md"))


def check_versions(prefix, env, cwd):
    """Step 2: --version and pkg-config name the one release version; the installed worker
    finds share/jobwire and the in-tree one ../spec, neither through an environment variable."""
    want = "jobwire-worker %s (protocol %s)" % (VERSION, SPEC_VERSION)
    for exe in (os.path.join(prefix, "bin", "jobwire-worker"), os.path.join(SRC, "jobwire-worker")):
        out = run([exe, "--version"], env=env, cwd=cwd)
        assert out.strip() == want, (exe, out)
    out = run([os.path.join(prefix, "bin", "jobwire-enqueue"), "--version"], env=env, cwd=cwd)
    assert out.strip() == "jobwire-enqueue " + VERSION, out
    out = run(["pkg-config", "--modversion", "jobwire"], env=env, cwd=cwd)
    assert out.strip() == VERSION, out


def build_app(app, env):
    """Step 3a: the user's program, built against the install through pkg-config only."""
    os.makedirs(app)
    with open(os.path.join(app, "my_worker.c"), "w") as f:
        f.write(HANDLERS_C)
    flags = run(["pkg-config", "--cflags", "--libs", "jobwire"], env=env, cwd=app).split()
    cc = os.environ.get("CC", "cc")
    run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-o", "my-worker", "my_worker.c"] + flags, env=env, cwd=app)
    return os.path.join(app, "my-worker")


def enqueue(prefix, env, cwd, url, queue, klass, *args):
    cmd = [os.path.join(prefix, "bin", "jobwire-enqueue"), "--redis-url", url, queue, klass]
    return run(cmd + [json.dumps(a) for a in args], env=env, cwd=cwd).strip()


def start_worker(exe, env, cwd, url, queue, log):
    return subprocess.Popen(
        [exe, "--queues", queue, "--redis-url", url, "--block-timeout-ms", "500"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
    )


def quit_worker(proc, log):
    proc.send_signal(signal.SIGQUIT)
    rc = proc.wait(20)
    assert rc == 0, "worker exited %s: %s" % (rc, open(log).read()[-2000:])


def check_app(exe, prefix, env, cwd, server):
    """Step 3b: the user's handlers run; failures carry their own type, message, frame."""
    r = Redis(server.port)
    enqueue(prefix, env, cwd, server.url, "imgs", "Thumbnail", "cat.png", 64)
    enqueue(prefix, env, cwd, server.url, "imgs", "Broken", "dog.png")
    enqueue(prefix, env, cwd, server.url, "imgs", "jobwire.Echo", 1)
    log = os.path.join(cwd, "my-worker.log")
    proc = start_worker(exe, env, cwd, server.url, "imgs", log)
    try:
        wait_until(lambda: r("GET", "resque:stat:processed") == b"3", 20, "3 jobs processed")
        assert r("LRANGE", "resque:test:thumbnails", 0, -1) == [b"cat.png@64"]
        fails = [json.loads(x) for x in r("LRANGE", "resque:failed", 0, -1)]
        assert [(f["exception"], f["error"]) for f in fails] == [
            ("ThumbError", "no image dog.png"),
            ("jobwire.UnknownClass", 'no handler registered for class "jobwire.Echo"'),
        ], fails
        assert fails[0]["backtrace"] == ["broken"], fails[0]
        wid = r("SMEMBERS", "resque:workers")[0].decode()
        assert r("HGET", "resque:jobwire:worker:" + wid, "impl_version").decode() == VERSION
        quit_worker(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "my-worker on libjobwire %s" % VERSION in open(log).read()
    r.close()


def check_shipped_worker(prefix, env, cwd, server):
    """Step 4: the installed jobwire-worker finds its spec files and runs jobwire.Echo."""
    r = Redis(server.port)
    job_id = enqueue(prefix, env, cwd, server.url, "conf", "jobwire.Echo", "hi")
    log = os.path.join(cwd, "jobwire-worker.log")
    proc = start_worker(os.path.join(prefix, "bin", "jobwire-worker"), env, cwd, server.url, "conf", log)
    try:
        wait_until(lambda: r("LLEN", "resque:jobwire:conformance:echo") == 1, 20, "the echo record")
        rec = json.loads(r("LINDEX", "resque:jobwire:conformance:echo", 0))
        assert rec["id"] == job_id and rec["args"] == ["hi"] and rec["impl"] == "c", rec
        quit_worker(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    r.close()


def check_staged_and_uninstall(tmp, prefix):
    """Step 5: DESTDIR staging, then uninstall removes every file of both installs."""
    stage = os.path.join(tmp, "stage")
    run(["make", "-s", "install", "PREFIX=/opt/jobwire-test", "DESTDIR=" + stage], cwd=SRC)
    pc = open(os.path.join(stage, "opt/jobwire-test/lib/pkgconfig/jobwire.pc")).read()
    assert "prefix=/opt/jobwire-test\n" in pc, pc
    run(["make", "-s", "uninstall", "PREFIX=/opt/jobwire-test", "DESTDIR=" + stage], cwd=SRC)
    run(["make", "-s", "uninstall", "PREFIX=" + prefix], cwd=SRC)
    for top in (stage, prefix):
        left = [os.path.join(d, f) for d, _, files in os.walk(top) for f in files]
        assert not left, "uninstall left %s" % left


def main():
    tmp = tempfile.mkdtemp(prefix="jobwire-c-install-")
    prefix = os.path.join(tmp, "prefix")
    outside = os.path.join(tmp, "work")
    os.makedirs(outside)
    env = clean_env(prefix)
    server = RedisServer()
    ok = False
    try:
        run(["make", "-s", "install", "PREFIX=" + prefix], cwd=SRC)
        check_tree(prefix)
        check_versions(prefix, env, outside)
        exe = build_app(os.path.join(tmp, "app"), env)
        server.start()
        check_app(exe, prefix, env, outside, server)
        Redis(server.port)("FLUSHALL")
        check_shipped_worker(prefix, env, outside, server)
        check_staged_and_uninstall(tmp, prefix)
        ok = True
        print("PASS install_test: make install, a handler program via pkg-config, uninstall")
    finally:
        server.kill()
        shutil.rmtree(run_tests.TMP, ignore_errors=True)
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("FAIL install_test; files kept in", tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
