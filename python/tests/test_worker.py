"""Real `jobwire worker` processes against a real Redis: processing, failures, signals,
control commands, timeouts, crash recovery, Redis restarts."""

import json
import os
import signal
import time

import pytest

from conftest import echoes, wait_for
from jobwire_conformance.redisutil import children_of, pid_alive

pytestmark = pytest.mark.timeout(60)


def failures(r):
    return [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]


def registered(r):
    return {w.decode() for w in r.smembers("resque:workers")}


@pytest.mark.smoke  # fresh machine: the Python worker in both modes: the runtime lock (redis-py, hiredis, jsonschema, setproctitle) and the editable jobwire
@pytest.mark.parametrize("mode", [(), ("--no-fork",)])
def test_processes_jobs_and_records_failures(client, r, spawn, mode):
    ids = [client.enqueue("q", "jobwire.Echo", i, {"nested": [i, "ü"]}) for i in range(5)]
    fail_id = client.enqueue("q", "jobwire.Fail", "boom <b>")
    worker = spawn("q", *mode)
    wait_for(lambda: len(echoes(r)) == 5 and r.llen("resque:failed") == 1, message="jobs done")
    assert [e["id"] for e in echoes(r)] == ids
    assert echoes(r)[0]["args"] == [0, {"nested": [0, "ü"]}]
    if not mode:
        assert all(e["pid"] != worker.pid for e in echoes(r))  # a child per job
    record = failures(r)[0]
    assert record["payload"]["id"] == fail_id
    assert record["exception"] == "jobwire.conformance_jobs.ConformanceFailure"
    assert record["error"] == "boom <b>"
    assert record["queue"] == "q" and record["worker"].endswith(":q")
    assert record["backtrace"] and "conformance_jobs.py" in record["backtrace"][0]
    wait_for(lambda: r.get("resque:stat:processed") == b"6", message="processed counter")
    assert r.get("resque:stat:failed") == b"1"


def test_bad_input_never_stops_the_worker(client, r, spawn):
    r.rpush(
        "resque:queue:q",
        b"\xff\xfe not json",
        b'{"class":"jobwire.Echo","args":{"a":1}}',
        b'{"class":"Missing","args":[]}',
        b'{"class":"jobwire.Noop","args":["' + b"x" * (20 * 1024 * 1024) + b'"]}',
    )
    r.sadd("resque:queues", "q")
    spawn("q", "--max-payload-bytes", str(16 * 1024 * 1024))
    client.enqueue("q", "jobwire.Echo", "after")
    # The good job comes after the 20 MiB one, which work.lua alone takes 4-8 s to fail on a loaded
    # machine (Redis SLOWLOG, 2 cores at load 15): so wait up to 40 s, inside the 60 s test timeout.
    wait_for(lambda: echoes(r), timeout=40, message="the good job")
    got = {f["exception"]: f for f in failures(r)}
    assert set(got) == {
        "jobwire.InvalidJSON",
        "jobwire.InvalidPayload",
        "jobwire.UnknownClass",
        "jobwire.PayloadTooLarge",
    }
    assert got["jobwire.UnknownClass"]["error"] == 'no handler registered for class "Missing"'
    assert "args" in got["jobwire.InvalidPayload"]["error"]
    assert len(got["jobwire.PayloadTooLarge"]["payload"]) > 20 * 1024 * 1024


def test_strict_priority_and_wildcard(client, r, spawn):
    for i in range(3):
        client.enqueue("low", "jobwire.Echo", f"low{i}")
        client.enqueue("high", "jobwire.Echo", f"high{i}")
    spawn("high,low")
    wait_for(lambda: len(echoes(r)) == 6)
    assert [e["args"][0] for e in echoes(r)] == ["high0", "high1", "high2", "low0", "low1", "low2"]
    r.delete("resque:jobwire:conformance:echo")
    spawn("*")
    client.enqueue("brand-new", "jobwire.Echo", "wild")
    wait_for(lambda: echoes(r), message="wildcard worker picks up a new queue")
    assert echoes(r)[0]["queue"] == "brand-new"


def test_plain_resque_push_is_picked_up_within_block_timeout(r, spawn):
    spawn("q")
    wait_for(lambda: registered(r))
    time.sleep(0.2)
    r.sadd("resque:queues", "q")
    r.rpush("resque:queue:q", '{"class":"jobwire.Echo","args":["resque"]}')
    wait_for(lambda: echoes(r), timeout=3, message="job pushed without a wake marker")


def test_quit_finishes_the_job_then_leaves(client, r, spawn):
    worker = spawn("q")
    job_id = client.enqueue("q", "jobwire.Sleep", 600)
    wait_for(lambda: r.exists(f"resque:worker:{next(iter(registered(r)), 'x')}"), message="busy")
    worker_id = next(iter(registered(r)))
    worker.signal(signal.SIGQUIT)
    assert worker.wait() == 0
    assert [e["id"] for e in echoes(r)] == [job_id]
    assert not registered(r)
    assert not r.exists(
        f"resque:worker:{worker_id}",
        f"resque:worker:{worker_id}:started",
        f"resque:jobwire:worker:{worker_id}",
        f"resque:jobwire:inflight:{worker_id}",
    )
    assert not r.hexists("resque:workers:heartbeat", worker_id)


@pytest.mark.parametrize("mode", [(), ("--no-fork",)])
def test_term_gives_the_running_job_back(client, r, spawn, mode):
    worker = spawn("q", *mode)
    job_id = client.enqueue("q", "jobwire.Sleep", 5000)
    wait_for(lambda: r.keys("resque:jobwire:inflight:*"), message="busy")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert json.loads(r.lindex("resque:queue:q", 0))["id"] == job_id
    assert not echoes(r) and not registered(r) and not r.hexists("resque:jobwire:deaths", job_id)


@pytest.mark.parametrize("how", ["usr1", "control"])
def test_kill_fails_the_running_job_and_keeps_working(client, r, spawn, how):
    worker = spawn("q")
    client.enqueue("q", "jobwire.Sleep", 20000)
    inflight = wait_for(lambda: r.keys("resque:jobwire:inflight:*"), message="busy")[0]
    if how == "usr1":
        worker.signal(signal.SIGUSR1)
    else:
        token = r.hget(inflight, "token").decode()
        client.control(next(iter(registered(r))), f"kill {token}")
    wait_for(lambda: r.llen("resque:failed"), message="killed record")
    record = failures(r)[0]
    assert record["exception"] == "jobwire.Killed"
    assert ("SIGUSR1" if how == "usr1" else "operator") in record["error"]
    client.enqueue("q", "jobwire.Echo", "next")
    wait_for(lambda: echoes(r), message="still working")


def test_pause_and_resume_by_signal_and_by_control(client, r, spawn):
    worker = spawn("q")
    worker_id = wait_for(lambda: next(iter(registered(r)), None))
    info = f"resque:jobwire:worker:{worker_id}"
    worker.signal(signal.SIGUSR2)
    wait_for(lambda: r.hget(info, "state") == b"paused", message="paused")
    client.enqueue("q", "jobwire.Echo", 1)
    time.sleep(0.8)
    assert not echoes(r)
    worker.signal(signal.SIGCONT)
    wait_for(lambda: echoes(r), message="resumed")
    client.control(worker_id, "pause")
    wait_for(lambda: r.hget(info, "state") == b"paused")
    client.enqueue("q", "jobwire.Echo", 2)
    time.sleep(0.8)
    assert len(echoes(r)) == 1
    client.control(worker_id, "resume")
    wait_for(lambda: len(echoes(r)) == 2)
    client.control(worker_id, "quit")
    assert worker.wait() == 0


@pytest.mark.parametrize("mode", [(), ("--no-fork",)])
def test_job_timeout(client, r, spawn, mode):
    spawn("q", "--job-timeout-ms", "300", *mode)
    client.enqueue("q", "jobwire.Sleep", 10000)
    wait_for(lambda: r.llen("resque:failed"))
    assert failures(r)[0]["exception"] == "jobwire.Timeout"


def test_sigkilled_master_job_is_recovered_once_and_child_dies_too(client, r, spawn, redis_server):
    worker = spawn("q")
    job_id = client.enqueue("q", "jobwire.Sleep", 1500)
    wait_for(lambda: r.keys("resque:jobwire:inflight:*"), message="busy")
    time.sleep(0.2)
    children = [int(p) for p in os.popen(f"pgrep -P {worker.pid}").read().split()]
    worker.kill()
    for child in children:
        wait_for(lambda child=child: not pid_alive(child), timeout=3, message="orphan child killed")
    spawn("q")
    wait_for(lambda: echoes(r), timeout=15, message="recovered job completes")
    time.sleep(2)
    assert [e["id"] for e in echoes(r)] == [job_id]
    assert len(registered(r)) == 1


def test_poison_job_fails_after_three_deaths(client, r, spawn):
    spawn("q")
    job_id = client.enqueue("q", "jobwire.Crash")
    wait_for(lambda: r.llen("resque:failed"), timeout=20)
    record = failures(r)[0]
    assert record["exception"] == "jobwire.PoisonJob" and record["payload"]["id"] == job_id
    assert "SIGKILL" in record["error"]
    assert r.llen("resque:queue:q") == 0


def test_worker_survives_a_redis_restart(client, r, spawn, redis_server):
    worker = spawn("q")
    wait_for(lambda: registered(r))
    redis_server.stop()
    time.sleep(1.0)
    redis_server.start()
    r.connection_pool.disconnect()
    # the data is gone (no persistence): the worker must notice and register again
    client.enqueue("q", "jobwire.Echo", "after restart")
    wait_for(lambda: echoes(r), timeout=20, message="processing after restart")
    assert worker.proc.poll() is None
    wait_for(lambda: registered(r), timeout=5, message="registered again")


def _new_clients(r, known: set[int]) -> dict[int, str]:
    """Redis clients not in `known`, each with its last command."""
    return {int(c["id"]): c.get("cmd", "") for c in r.client_list() if int(c["id"]) not in known}


@pytest.mark.parametrize("stale_by", ["client kill", "redis restart"])
def test_standby_connects_ahead_and_its_stale_connection_is_harmless(client, r, spawn, redis_server, stale_by):
    """After a job that used current_job().redis, the next job's standby child opens its job
    client's connection before its job arrives (running.connect_ahead). When that connection goes
    stale while the standby waits (killed with CLIENT KILL, or Redis restarted), the job run next
    by that standby still reaches Redis through current_job().redis, fails nothing and loses
    nothing: redis-py's pool checks a connection when it hands it out and reconnects a closed one
    before sending."""
    worker = spawn("q")
    wait_for(lambda: [c for c in r.client_list() if c.get("cmd") == "blpop"], message="an idle worker")
    client.redis.ping()
    known = {int(c["id"]) for c in r.client_list()}  # the test's, the client's, the worker master's two
    client.enqueue("q", "jobwire.Echo", "first")  # its child connects, echoes and exits
    wait_for(lambda: echoes(r), message="the first job")

    def ahead():  # the one new connection left, once the first child's (its last command RPUSH) is gone
        fresh = _new_clients(r, known)
        return fresh if len(fresh) == 1 and "rpush" not in fresh.values() else None

    ahead_id = next(iter(wait_for(ahead, message="the standby's own connection, opened ahead")))
    r.delete("resque:jobwire:conformance:echo")
    standby = wait_for(lambda: [p for p in children_of(worker.pid) if pid_alive(p)], message="the standby")
    assert len(standby) == 1
    if stale_by == "client kill":
        assert r.client_kill_filter(_id=ahead_id) == 1
    else:
        redis_server.stop()
        time.sleep(0.5)
        redis_server.start()
        r.connection_pool.disconnect()
        wait_for(lambda: registered(r), timeout=10, message="registered again")
    assert pid_alive(standby[0])  # the same standby, now with a stale connection, takes the next job
    job_id = client.enqueue("q", "jobwire.Echo", "after")
    wait_for(lambda: echoes(r), timeout=10, message="the job after the stale connection")
    assert [(e["id"], e["pid"]) for e in echoes(r)] == [(job_id, standby[0])]
    assert r.llen("resque:failed") == 0
    assert worker.proc.poll() is None


def test_standby_after_a_job_without_redis_opens_no_connection(client, r, spawn):
    """A job that never asked for current_job().redis: the next standby does not connect ahead
    (a connection per child would cost every such job a socket and a handshake)."""
    worker = spawn("q")
    wait_for(lambda: [c for c in r.client_list() if c.get("cmd") == "blpop"], message="an idle worker")
    client.redis.ping()
    known = {int(c["id"]) for c in r.client_list()}
    client.enqueue("q", "jobwire.Noop")
    wait_for(lambda: r.get("resque:stat:processed") == b"1", message="the job")
    wait_for(lambda: [p for p in children_of(worker.pid) if pid_alive(p)], message="the standby")
    time.sleep(0.5)  # a standby that connects ahead does it at once
    assert _new_clients(r, known) == {}


def test_hooks_run_in_resque_order(client, r, spawn):
    env = {"PYTHONPATH": os.path.dirname(__file__)}
    spawn("q", "--import", "jobs_for_tests", env=env)
    client.enqueue("q", "Hooked", "ok")
    client.enqueue("q", "Hooked", "skip")
    client.enqueue("q", "Hooked", "fail")
    wait_for(lambda: r.llen("resque:failed") == 1 and r.llen("resque:test:notes") >= 10)
    notes = [n.decode() for n in r.lrange("resque:test:notes", 0, -1)]
    assert notes == [
        "before:ok",
        "around-in",
        "perform:ok",
        "around-out",
        "after",
        "before:skip",
        "before:fail",
        "around-in",
        "perform:fail",
        "on_failure:ValueError",
    ]
    assert failures(r)[0]["exception"] == "ValueError"


def test_supervisor_restarts_and_recovers_a_killed_worker(client, r, spawn):
    sup = spawn("q", "--processes", "2", "--lease-ms", "60000", "--heartbeat-ms", "5000")
    wait_for(lambda: len(registered(r)) == 2, message="two workers")
    job_id = client.enqueue("q", "jobwire.Sleep", 800)
    inflight = wait_for(lambda: r.keys("resque:jobwire:inflight:*"))[0].decode()
    pid = int(inflight.split(":")[-2])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: echoes(r), timeout=10, message="recovered without waiting for the 60 s lease")
    assert [e["id"] for e in echoes(r)] == [job_id]
    wait_for(lambda: len(registered(r)) == 2, message="replacement started")
    sup.signal(signal.SIGQUIT)
    assert sup.wait() == 0
    assert not registered(r)


def test_fork_children_inherit_one_job_client_and_connect_their_own_sockets(redis_server, r):
    """make_for_children: the master makes its children's job client once and never connects
    it; each child's first command opens a socket of its own (one Redis client id per child)."""
    from jobwire import payload, running

    running._for_children.clear()
    running.make_for_children(redis_server.url)
    made = running._for_children[redis_server.url]
    job = payload.Job.decode("q", payload.new_payload("jobwire.Echo"), "token")
    context = running.JobContext(job, "w", "resque", redis_server.url, "python")
    ids = []
    for _ in range(2):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report whether it got the master's object, and its client id
            status = 1
            try:
                client = context.redis
                os.write(write_fd, f"{client is made} {client.client_id()}".encode())
                status = 0
            finally:
                os._exit(status)
        os.close(write_fd)
        reply = os.read(read_fd, 100).decode()
        os.close(read_fd)
        assert os.waitpid(pid, 0)[1] == 0
        inherited, client_id = reply.split()
        assert inherited == "True"
        ids.append(int(client_id))
    assert len(set(ids)) == 2 and r.client_id() not in ids
    pool = made.connection_pool
    assert not pool._available_connections and not pool._in_use_connections  # never connected here
