"""jobwire gateway: the gRPC API against a real gateway process, a real Redis and real workers.

Each test starts `jobwire gateway` as a subprocess on a free loopback port. Workers behind it are
the thin Node worker (examples-node/gateway-worker.js) or raw streams opened here with the
generated stubs; Redis-native peers are real `jobwire worker` processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_status import rpc_status

from conftest import JOBWIRE, REPO, echoes, wait_for
from jobwire_conformance.redisutil import free_port
from jobwire.v1 import admin_pb2, admin_pb2_grpc, common_pb2, producer_pb2, producer_pb2_grpc
from jobwire.v1 import worker_pb2, worker_pb2_grpc

pytestmark = pytest.mark.timeout(180)
NODE_WORKER = REPO / "examples-node" / "gateway-worker.js"
FAST = ("--heartbeat-ms", "200", "--lease-ms", "1000", "--block-timeout-ms", "500")


class GatewayProcess:
    """A `jobwire gateway` subprocess; restart() keeps the port."""

    def __init__(self, url: str, *extra: str, port: int | None = None, env=None) -> None:
        self.url, self.extra, self.env = url, extra, env or {}
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc = None
        self.start()

    def start(self) -> None:
        import tempfile

        self.log = tempfile.NamedTemporaryFile(prefix="jobwire-gateway-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [JOBWIRE, "gateway", "--listen", self.address, "--redis-url", self.url, *self.extra],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
        )
        wait_for(self._listening, 15, 0.05, f"gateway listening on {self.address}")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"gateway exited: {self.output()}")
        import socket

        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def output(self, tail: int = 3000) -> str:
        with open(self.log.name, "rb") as f:
            return f.read()[-tail:].decode("utf-8", "replace")

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address)


@pytest.fixture
def gateways(redis_server, r):
    started = []

    def start(*extra, **kw) -> GatewayProcess:
        g = GatewayProcess(redis_server.url, *extra, **kw)
        started.append(g)
        return g

    yield start
    for g in started:
        g.kill(signal.SIGTERM)
        if not os.environ.get("JOBWIRE_KEEP_GATEWAY_LOG"):  # set it to read the logs of a failed run
            os.unlink(g.log.name)


@pytest.fixture
def node_workers():
    if not shutil.which("node") or not (REPO / "examples-node" / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("node and examples-node/node_modules (@grpc/grpc-js) are required: run make setup")
    started = []

    def start(gateway: GatewayProcess, queues="q", *extra) -> subprocess.Popen:
        p = subprocess.Popen(
            ["node", str(NODE_WORKER), "--gateway", gateway.address, "--queues", queues, *FAST, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def error_name(err: grpc.RpcError) -> str:
    """The spec/errors.json name in the status details (jobwire.v1.ErrorDetail)."""
    status = rpc_status.from_call(err)
    assert status is not None, f"no rich status on {err}"
    detail = common_pb2.ErrorDetail()
    assert status.details[0].Unpack(detail)
    trailer = dict(err.trailing_metadata()).get("jobwire-error-name")
    assert trailer == detail.name
    return detail.name


def registered(r, pid: int) -> list[str]:
    return [w.decode() for w in r.smembers("resque:workers") if w.decode().split(":")[1] == str(pid)]


# -- producers and administration --------------------------------------------------------------


@pytest.mark.smoke  # fresh machine: the gateway extra: grpcio and the stubs make setup generates
def test_enqueue_and_bulk_enqueue_push_jobwire_payloads(gateways, r):
    g = gateways()
    producer = producer_pb2_grpc.ProducerServiceStub(g.channel())
    reply = producer.Enqueue(
        producer_pb2.EnqueueRequest(
            queue="mail", job=producer_pb2.NewJob(job_class="Mail", args_json='[7,"x",18446744073709551615,0.1]')
        )
    )
    raw = r.lindex("resque:queue:mail", 0)
    assert raw.startswith(b'{"class":"Mail","args":[7,"x",18446744073709551615,0.1],"id":"' + reply.job_id.encode())
    assert r.sismember("resque:queues", "mail")
    bulk = producer.BulkEnqueue(
        producer_pb2.BulkEnqueueRequest(
            queue="mail", jobs=[producer_pb2.NewJob(job_class="Mail", args_json=f"[{i}]") for i in range(2500)]
        )
    )
    assert len(bulk.job_ids) == 2500 and r.llen("resque:queue:mail") == 2501
    assert json.loads(r.lindex("resque:queue:mail", -1))["id"] == bulk.job_ids[-1]


@pytest.mark.parametrize(
    "queue, job, code, name",
    [
        (
            "bad:name",
            producer_pb2.NewJob(job_class="Mail"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "jobwire.InvalidQueueName",
        ),
        ("mail", producer_pb2.NewJob(job_class=""), grpc.StatusCode.INVALID_ARGUMENT, "jobwire.InvalidPayload"),
        (
            "mail",
            producer_pb2.NewJob(job_class="Mail", args_json="{1"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "jobwire.InvalidRequest",
        ),
        (
            "mail",
            producer_pb2.NewJob(job_class="Mail", args_json='{"a":1}'),
            grpc.StatusCode.INVALID_ARGUMENT,
            "jobwire.InvalidRequest",
        ),
    ],
)
def test_bad_jobs_are_refused_with_error_names_and_push_nothing(gateways, r, queue, job, code, name):
    producer = producer_pb2_grpc.ProducerServiceStub(gateways().channel())
    good = producer_pb2.NewJob(job_class="Mail", args_json="[1]")
    with pytest.raises(grpc.RpcError) as info:
        producer.BulkEnqueue(producer_pb2.BulkEnqueueRequest(queue=queue, jobs=[good, job]))
    assert info.value.code() == code and error_name(info.value) == name
    assert r.llen("resque:queue:mail") == 0


def test_admin_lists_retries_and_removes_failures_by_id(gateways, r, client):
    g = gateways()
    admin = admin_pb2_grpc.AdminServiceStub(g.channel())
    ids = client.enqueue_many("q", [("jobwire.Fail", ["one"]), ("jobwire.Fail", ["two"])])
    for raw in r.lrange("resque:queue:q", 0, -1):  # fail them as a worker would
        r.rpush(
            "resque:failed",
            json.dumps(
                {
                    "failed_at": "2026/12/01 00:00:00 UTC",
                    "payload": json.loads(raw),
                    "exception": "RuntimeError",
                    "error": "x",
                    "backtrace": [],
                    "worker": "h:1:q",
                    "queue": "q",
                }
            ),
        )
    r.delete("resque:queue:q")
    page = admin.ListFailures(admin_pb2.ListFailuresRequest())
    assert [f.id for f in page.failures] == ids and page.total == 2 and page.failures[0].exception == "RuntimeError"
    admin.RetryFailure(admin_pb2.RetryFailureRequest(id=ids[0]))
    assert json.loads(r.lindex("resque:queue:q", 0))["id"] == ids[0]
    admin.RemoveFailure(admin_pb2.RemoveFailureRequest(id=ids[1]))
    assert r.llen("resque:failed") == 0
    with pytest.raises(grpc.RpcError) as info:
        admin.RetryFailure(admin_pb2.RetryFailureRequest(id=ids[1]))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and error_name(info.value) == "jobwire.NotFound"
    info_reply = admin.GetInfo(admin_pb2.GetInfoRequest())
    assert (info_reply.pending, info_reply.failed_list, info_reply.queues) == (1, 0, 1)
    assert [(q.name, q.size) for q in admin.ListQueues(admin_pb2.ListQueuesRequest()).queues] == [("q", 1)]


def test_token_is_required_when_set_and_beyond_loopback(gateways, redis_server, tmp_path):
    g = gateways(env={"JOBWIRE_GATEWAY_TOKEN": "s3cret"})
    admin = admin_pb2_grpc.AdminServiceStub(g.channel())
    for metadata in ((), (("authorization", "Bearer wrong"),)):
        with pytest.raises(grpc.RpcError) as info:
            admin.GetInfo(admin_pb2.GetInfoRequest(), metadata=metadata)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_name(info.value) == "jobwire.Unauthenticated"
    assert admin.GetInfo(admin_pb2.GetInfoRequest(), metadata=(("authorization", "Bearer s3cret"),)).workers == 0

    async def unauthenticated_worker():
        async with grpc.aio.insecure_channel(g.address) as channel:
            call = worker_pb2_grpc.WorkerServiceStub(channel).Work()
            try:  # the gateway may refuse the call before the hello is written
                await call.write(worker_pb2.WorkRequest(hello=worker_pb2.Hello(host="h", pid="1", queues=["q"])))
            except grpc.aio.AioRpcError:
                pass
            return await call.code(), dict(await call.trailing_metadata()).get("jobwire-error-name")

    assert asyncio.run(unauthenticated_worker()) == (grpc.StatusCode.UNAUTHENTICATED, "jobwire.Unauthenticated")
    env = {k: v for k, v in os.environ.items() if k != "JOBWIRE_GATEWAY_TOKEN"}
    done = subprocess.run(
        [JOBWIRE, "gateway", "--listen", f"0.0.0.0:{free_port()}", "--redis-url", redis_server.url],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == 1 and "refusing to listen on 0.0.0.0 without authentication" in done.stderr


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_tls_and_token_for_api_calls_and_a_node_worker(gateways, node_workers, client, r, tmp_path):
    cert, key = _self_signed(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text("t0ken\n")
    g = gateways("--tls-cert", str(cert), "--tls-key", str(key), "--token-file", str(token_file), "--conformance")
    secure = grpc.secure_channel(g.address, grpc.ssl_channel_credentials(cert.read_bytes()))
    admin = admin_pb2_grpc.AdminServiceStub(secure)
    assert admin.GetInfo(admin_pb2.GetInfoRequest(), metadata=(("authorization", "Bearer t0ken"),)).workers == 0
    with pytest.raises(grpc.RpcError) as info:  # plaintext to a TLS port
        admin_pb2_grpc.AdminServiceStub(g.channel()).GetInfo(admin_pb2.GetInfoRequest(), timeout=3)
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    p = node_workers(g, "tls", "--tls-ca", str(cert), "--token-file", str(token_file))
    job = client.enqueue("tls", "jobwire.Echo", "over tls")
    wait_for(lambda: job in {e["id"] for e in echoes(r)}, 15, message="job run by the TLS worker")
    assert registered(r, p.pid)


# -- workers behind the gateway ----------------------------------------------------------------


def test_redis_native_and_gateway_workers_share_one_queue(gateways, node_workers, spawn, client, r):
    g = gateways("--conformance")
    hosted = [node_workers(g, "shared") for _ in range(2)]
    native = spawn("shared", "--no-fork")
    for p in hosted:
        wait_for(lambda p=p: registered(r, p.pid), 15, message="gateway worker registered")
    info = r.hgetall(f"resque:jobwire:worker:{registered(r, hosted[0].pid)[0]}")
    assert info[b"impl"] == b"node-gateway" and info[b"gateway"].endswith(f":{g.proc.pid}".encode())
    ids = client.enqueue_many("shared", [("jobwire.Sleep", [5, i]) for i in range(150)])
    wait_for(lambda: len({e["id"] for e in echoes(r)}) == 150, 60, 0.1, "every job done")
    by = {}
    for e in echoes(r):
        by.setdefault(e["impl"], set()).add(e["id"])
    assert set(by) == {"node-gateway", "python"}, f"both kinds ran jobs: { {k: len(v) for k, v in by.items()} }"
    assert set().union(*by.values()) == set(ids) and len(echoes(r)) == 150
    assert int(r.get("resque:stat:processed")) == 150 and r.llen("resque:failed") == 0
    native.signal(signal.SIGQUIT)
    for p in hosted:
        p.send_signal(signal.SIGQUIT)
        assert p.wait(10) == 0
    wait_for(lambda: r.scard("resque:workers") == 0, 10, message="every worker left")


async def _hello_stream(address: str, pid: str, queues=("q",), lease_ms=30000):
    channel = grpc.aio.insecure_channel(address)
    call = worker_pb2_grpc.WorkerServiceStub(channel).Work()
    await call.write(
        worker_pb2.WorkRequest(
            hello=worker_pb2.Hello(
                host="testhost", pid=pid, queues=list(queues), impl="pytest", lease_ms=lease_ms, heartbeat_ms=1000
            )
        )
    )
    welcome = await call.read()
    return channel, call, welcome


def test_a_broken_stream_is_recovered_at_once_as_a_death(gateways, client, r):
    g = gateways()
    job_id = client.enqueue("q", "jobwire.Noop")

    async def scenario():
        channel, call, welcome = await _hello_stream(g.address, "4242")
        assert welcome.welcome.worker_id == "testhost:4242:q"
        job = (await call.read()).job
        assert json.loads(job.payload)["id"] == job_id
        assert r.hget("resque:jobwire:inflight:testhost:4242:q", "token").decode() == job.token
        await channel.close()  # the process died: no leave, no settle

    asyncio.run(scenario())
    # with a 30 s lease, only the gateway's reaction to the broken stream can requeue the job now
    wait_for(lambda: r.llen("resque:queue:q") == 1, 5, message="job requeued")
    assert json.loads(r.lindex("resque:queue:q", 0))["id"] == job_id
    assert list(r.hvals("resque:jobwire:deaths")) == [b"1"]
    assert not r.sismember("resque:workers", "testhost:4242:q")
    assert not r.exists("resque:jobwire:inflight:testhost:4242:q", "resque:worker:testhost:4242:q")


def test_settle_fail_writes_the_failure_record_and_leave_gives_the_job_back(gateways, client, r):
    g = gateways()
    first = client.enqueue("q", "Job", 1)
    second = client.enqueue("q", "Job", 2)

    async def scenario():
        channel, call, _ = await _hello_stream(g.address, "77")
        job = (await call.read()).job
        await call.write(
            worker_pb2.WorkRequest(
                settle=worker_pb2.Settle(
                    token=job.token, fail=worker_pb2.Fail(type="ValueError", message="bad", frames=["a.py:1"])
                )
            )
        )
        nxt = (await call.read()).job
        assert json.loads(nxt.payload)["id"] == second
        await call.write(worker_pb2.WorkRequest(leave=worker_pb2.Leave()))
        await call.done_writing()
        assert await call.code() == grpc.StatusCode.OK
        await channel.close()

    asyncio.run(scenario())
    record = json.loads(r.lindex("resque:failed", 0))
    assert (record["payload"]["id"], record["exception"], record["error"], record["backtrace"], record["worker"]) == (
        first,
        "ValueError",
        "bad",
        ["a.py:1"],
        "testhost:77:q",
    )
    assert json.loads(r.lindex("resque:queue:q", 0))["id"] == second and not r.hlen("resque:jobwire:deaths")
    assert r.scard("resque:workers") == 0


def test_sigkilled_gateway_loses_no_job_and_its_workers_reconnect(gateways, node_workers, spawn, client, r):
    g = gateways("--conformance")
    hosted = [node_workers(g, "k") for _ in range(3)]
    for p in hosted:
        wait_for(lambda p=p: registered(r, p.pid), 15, message="gateway worker registered")
    ids = client.enqueue_many("k", [("jobwire.Sleep", [1500]) for _ in range(3)])
    wait_for(
        lambda: r.llen("resque:queue:k") == 0 and len(r.keys("resque:jobwire:inflight:*")) == 3,
        10,
        message="each gateway worker holds a job",
    )
    g.kill(signal.SIGKILL)
    peer = spawn("k", "--no-fork")  # a Redis-native worker recovers the lapsed leases
    wait_for(
        lambda: set(ids) <= {e["id"] for e in echoes(r) if e["impl"] == "python"},
        30,
        0.1,
        "the peer recovered and ran every job of the dead gateway",
    )
    assert not r.hlen("resque:jobwire:deaths") and r.llen("resque:failed") == 0
    peer.signal(signal.SIGQUIT)
    peer.wait(10)
    g.start()  # same port: the workers' backoff (at most 5 s) brings them back
    for p in hosted:
        assert p.poll() is None
        wait_for(lambda p=p: registered(r, p.pid), 20, 0.1, "worker registered again through the new gateway")
    again = client.enqueue_many("k", [("jobwire.Echo", [i]) for i in range(30)])
    wait_for(lambda: set(again) <= {e["id"] for e in echoes(r)}, 20, message="jobs run after the reconnect")


def test_a_stopping_gateway_gives_jobs_back_and_its_workers_return(gateways, node_workers, client, r):
    g = gateways("--conformance")
    p = node_workers(g, "st")
    wait_for(lambda p=p: registered(r, p.pid), 15, message="gateway worker registered")
    job = client.enqueue("st", "jobwire.Sleep", 3000)
    wait_for(lambda: r.llen("resque:queue:st") == 0, 10, message="job reserved")
    g.kill(signal.SIGTERM)  # each worker leaves as with `leave`: the job goes back, no death
    assert g.proc.returncode == 0
    assert json.loads(r.lindex("resque:queue:st", 0))["id"] == job
    assert not r.hlen("resque:jobwire:deaths") and not registered(r, p.pid)
    g.start()
    wait_for(lambda p=p: registered(r, p.pid), 20, 0.1, "worker back through the restarted gateway")
    wait_for(lambda: job in {e["id"] for e in echoes(r)}, 20, message="the given-back job ran")
    assert p.poll() is None


# -- load ------------------------------------------------------------------------------------------

STREAMS = 1000


async def _many_streams(address: str, r, jobs: int) -> dict:
    """STREAMS raw worker streams on one gateway: register all, run `jobs` Noops, leave all."""
    channels = [grpc.aio.insecure_channel(address) for _ in range(10)]  # 100 streams per HTTP/2 connection
    done = asyncio.Event()  # cancelling a read would cancel the call: leave from a second task
    ran = 0
    left = []

    async def worker(n: int):
        nonlocal ran
        call = worker_pb2_grpc.WorkerServiceStub(channels[n % len(channels)]).Work()
        lock = asyncio.Lock()  # one write at a time on a call

        async def send(**msg):
            async with lock:
                await call.write(worker_pb2.WorkRequest(**msg))

        await send(
            hello=worker_pb2.Hello(
                host="loadhost", pid=str(100000 + n), queues=["load"], impl="pytest", heartbeat_ms=5000
            )
        )
        assert (await call.read()).HasField("welcome")

        async def beat_then_leave():  # as a real worker does: its lease follows its beats
            while not done.is_set():
                try:
                    await asyncio.wait_for(done.wait(), 5)
                except TimeoutError:
                    await send(beat=worker_pb2.Beat())
            await send(leave=worker_pb2.Leave())
            async with lock:
                await call.done_writing()

        side = asyncio.create_task(beat_then_leave())
        while (msg := await call.read()) is not grpc.aio.EOF:  # until the gateway ends the stream after our leave
            if msg.HasField("job") and not done.is_set():
                ran += 1
                await send(settle=worker_pb2.Settle(token=msg.job.token, ok=worker_pb2.Ok()))
        await side
        left.append(n)
        return await call.code()

    t0 = time.monotonic()
    tasks = [asyncio.create_task(worker(n)) for n in range(STREAMS)]
    try:
        registered_all = await asyncio.to_thread(
            wait_for, lambda: r.scard("resque:workers") == STREAMS, 90, 0.2, f"{STREAMS} workers registered"
        )
    except AssertionError:
        raise AssertionError(f"{r.scard('resque:workers')} of {STREAMS} workers registered in 90 s") from None
    t_registered = time.monotonic() - t0
    await asyncio.to_thread(
        wait_for, lambda: int(r.get("resque:stat:processed") or 0) == jobs, 90, 0.2, "every job processed"
    )
    done.set()
    try:
        codes = await asyncio.wait_for(asyncio.gather(*tasks), 90)
    except TimeoutError:
        raise AssertionError(
            f"{STREAMS - len(left)} streams did not end after leave; {r.scard('resque:workers')} still registered"
        ) from None
    for c in channels:
        await c.close()
    return {"registered": registered_all, "t_registered": t_registered, "codes": codes, "ran": ran}


def test_one_gateway_holds_a_thousand_worker_streams(gateways, client, r):
    g = gateways()
    client.enqueue_many("load", [("jobwire.Noop", []) for _ in range(3000)])
    result = asyncio.run(_many_streams(g.address, r, 3000))
    assert result["ran"] == 3000 and set(result["codes"]) == {grpc.StatusCode.OK}
    wait_for(lambda: r.scard("resque:workers") == 0, 30, message="every stream left")
    assert r.llen("resque:queue:load") == 0 and not r.keys("resque:jobwire:inflight:*")
    with open(f"/proc/{g.proc.pid}/status") as f:
        rss = next(line for line in f if line.startswith("VmHWM")).split()[1]
    print(
        f"\n{STREAMS} streams registered in {result['t_registered']:.1f} s; gateway peak RSS {int(rss) // 1024} MiB",
        file=sys.stderr,
    )


STARVED = 100  # streams on the starved gateway: enough for beat replies to list many lapsed siblings
STARVED_LEASE_MS, STARVED_BEAT_MS, STARVED_STOP_S = 1500, 300, 2.5  # the stop outlasts the lease


async def _starved_streams(g: GatewayProcess, r, jobs: int) -> dict:
    """STARVED streams each holding a job while the gateway is stopped (SIGSTOP) for longer than
    their lease, then resumed: the extreme of a gateway starved of CPU. Their beats pile up in
    the sockets meanwhile, as they do behind a starved event loop."""
    channel = grpc.aio.insecure_channel(g.address)
    resumed, done = asyncio.Event(), asyncio.Event()
    held, ran, stale = 0, 0, 0

    async def worker(n: int):
        nonlocal held, ran
        call = worker_pb2_grpc.WorkerServiceStub(channel).Work()
        lock = asyncio.Lock()

        async def send(**msg):
            async with lock:
                await call.write(worker_pb2.WorkRequest(**msg))

        await send(
            hello=worker_pb2.Hello(
                host="starved",
                pid=str(200000 + n),
                queues=["load"],
                impl="pytest",
                lease_ms=STARVED_LEASE_MS,
                heartbeat_ms=STARVED_BEAT_MS,
            )
        )
        assert (await call.read()).HasField("welcome")

        async def beat_then_leave():
            while not done.is_set():
                try:
                    await asyncio.wait_for(done.wait(), STARVED_BEAT_MS / 1000)
                except TimeoutError:
                    await send(beat=worker_pb2.Beat())
            await send(leave=worker_pb2.Leave())
            async with lock:
                await call.done_writing()

        side = asyncio.create_task(beat_then_leave())
        first = True
        while (msg := await call.read()) is not grpc.aio.EOF:
            if msg.HasField("job") and not done.is_set():
                if first:  # hold the first job across the stop, as a long job would
                    first, held = False, held + 1
                    await resumed.wait()
                    await asyncio.sleep(0.5)
                ran += 1
                await send(settle=worker_pb2.Settle(token=msg.job.token, ok=worker_pb2.Ok()))
        await side
        return await call.code()

    tasks = [asyncio.create_task(worker(n)) for n in range(STARVED)]
    await asyncio.to_thread(wait_for, lambda: held == STARVED, 60, 0.1, f"{STARVED} streams each holding a job")
    g.proc.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(STARVED_STOP_S)
    finally:
        g.proc.send_signal(signal.SIGCONT)
    resumed.set()
    await asyncio.to_thread(
        wait_for, lambda: int(r.get("resque:stat:processed") or 0) >= jobs, 60, 0.2, "every job processed"
    )
    await asyncio.sleep(1.0)  # a late duplicate or a stale outcome would show by now
    done.set()
    codes = await asyncio.wait_for(asyncio.gather(*tasks), 60)
    await channel.close()
    return {"codes": codes, "ran": ran, "stale": stale}


def test_a_starved_gateway_recovers_none_of_its_own_live_streams(gateways, client, r):
    """#16: a gateway that could not run for longer than its streams' lease (CPU starvation)
    finds every lease lapsed. Its workers are alive and beat all along: it must renew them, not
    recover them as dead (which counted a death for each held job, turned their outcomes stale
    and made every re-register recover more siblings)."""
    g = gateways()
    jobs = 2 * STARVED
    client.enqueue_many("load", [("jobwire.Noop", []) for _ in range(jobs)])
    result = asyncio.run(_starved_streams(g, r, jobs))
    log = g.output(200000)
    assert r.hlen("resque:jobwire:deaths") == 0, f"deaths counted for live streams: {log[-2000:]}"
    assert r.llen("resque:failed") == 0 and "stale" not in log and "recovered dead worker" not in log, log[-2000:]
    assert int(r.get("resque:stat:processed")) == jobs == result["ran"]
    assert set(result["codes"]) == {grpc.StatusCode.OK}
    wait_for(lambda: r.scard("resque:workers") == 0, 30, message="every stream left")
