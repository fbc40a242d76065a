"""One worker stream: the gateway plays protocol.md section 7 on Redis for the remote worker.

The remote process decides nothing about Redis. This class registers it under the id
`<host>:<pid>:<queues>` it announced, reserves and settles with work.lua, blocks on its wake
markers and control list, extends its lease each time the worker beats on the stream (the
gateway's BeatBatcher sends all streams' beats together), hands lapsed peers that its replies
report to the gateway's Recoveries, and leaves with unregister.lua. A broken stream is a dead
worker: its job is recovered at once with unregister.lua mode `dead`.

Two coroutines share a Session: `run` (the worker loop) and `_read` (the worker's messages);
the gateway's beat batch calls `beat_reply`. They meet in plain attributes and one
asyncio.Event (`_nudge`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

import grpc
import redis.asyncio as aioredis
import redis.exceptions as rexc

from .. import __version__, routing, spec
from .. import payload as jobmod
from ..errors import InvalidJob
from ..keys import Keys
from ..membership import UNREGISTER_RETRIES, unregister_call
from ..queues import WILDCARD, expand_queues, parse_queues
from ..replies import text
from ..running import Settle
from ..v1 import worker_pb2 as pb
from .errors import GatewayError

__all__ = ["Session", "WorkerConfig"]

log = logging.getLogger("jobwire.gateway.session")
REDIS_ERRORS = (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError)
CONTROL_CHECK_S = 1.0  # protocol.md 11: the control list is read at least this often while busy
LEAVE_GIVE_UP_S = 10.0  # protocol.md 7.5: a leaving worker tries Redis this long
_PID = re.compile(r"^[0-9]{1,10}(\+[0-9]{1,6})?$")
_HOST = re.compile(r"^[^:\s\x00-\x1f\x7f]{1,255}$")
_EOF = grpc.aio.EOF


def _bad(message: str) -> GatewayError:
    return GatewayError(grpc.StatusCode.INVALID_ARGUMENT, "jobwire.InvalidRequest", message)


class WorkerConfig:
    """A hello checked and completed with the defaults of protocol.md section 11."""

    def __init__(self, hello: pb.Hello) -> None:
        if not _HOST.match(hello.host):
            raise _bad(f"hello: host {hello.host!r} must be 1-255 characters without ':' or spaces")
        if not _PID.match(hello.pid):
            raise _bad(f"hello: pid {hello.pid!r} must be digits, optionally +n")
        if not hello.queues:
            raise _bad("hello: at least one queue is required")
        try:
            parse_queues(",".join(hello.queues))  # protocol.md 7.2's one grammar: names, at most one *
        except InvalidJob as exc:
            raise GatewayError(grpc.StatusCode.INVALID_ARGUMENT, "jobwire.InvalidQueueName", str(exc)) from None
        self.host, self.pid, self.queues = hello.host, hello.pid, list(hello.queues)
        self.impl = hello.impl or "grpc"
        self.impl_version = hello.impl_version or "0"
        self.mode = hello.mode or "inline"
        if self.mode not in ("inline", "fork"):
            raise _bad(f"hello: mode {hello.mode!r} is neither inline nor fork")
        self.features = list(hello.features)
        self.lease_ms = hello.lease_ms or 30000
        self.heartbeat_ms = hello.heartbeat_ms or 5000
        self.block_timeout_ms = hello.block_timeout_ms or 5000
        self.max_deaths = hello.max_deaths or 3
        self.max_payload_bytes = hello.max_payload_bytes or 16 * 1024 * 1024
        if min(self.lease_ms, self.heartbeat_ms, self.block_timeout_ms, self.max_deaths, self.max_payload_bytes) < 0:
            raise _bad("hello: numbers must not be negative")
        if self.lease_ms <= 2 * self.heartbeat_ms:
            raise _bad("hello: lease_ms must exceed 2 x heartbeat_ms")
        self.worker_id = f"{self.host}:{self.pid}:{','.join(self.queues)}"


class Session:
    """One remote worker. `await Session(gateway, config, context, keys).run()` until it ends."""

    def __init__(self, gateway, config: WorkerConfig, context, keys: Keys) -> None:
        self.gw = gateway
        self.cfg = config
        self.ctx = context
        self.keys = keys
        self.id = config.worker_id
        self.block = aioredis.Redis(connection_pool=gateway.new_block_pool(config.block_timeout_ms))  # BLPOP only
        self.held: tuple[str, str, bytes] | None = None  # (token, queue, payload) handed out
        self.pending: Settle | None = None  # an outcome to settle on the next work.lua call
        self.paused = False
        self.leave_after = False  # settle, then leave without reserving (SIGQUIT, control quit)
        self.leaving = False  # the worker sent leave, or leave_after was settled
        self.broken = False  # the stream ended without a leave: the worker is dead
        self.stopping = False  # the gateway shuts down
        self.need_register = False
        self._registered_once = False
        self._warned_routes = False  # the routed-queue warning (protocol.md 15.2) is given once
        self._state_shown = "idle"
        self._nudge = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._last_alive = gateway.clock.now()  # awake-clock time of the worker's last hello or beat
        self._next_control = 0.0  # when the control list is next read while a job runs
        self._expanded = [q for q in config.queues if q != WILDCARD]
        self._wildcard = WILDCARD in config.queues

    # -- the worker loop (protocol.md 7.3) ---------------------------------------------------

    async def run(self) -> None:
        """Register, hand out jobs until the worker leaves or the stream breaks, then unregister."""
        reader = None
        try:
            await self._with_redis(self._register)
            await self._send(
                pb.WorkResponse(
                    welcome=pb.Welcome(worker_id=self.id, namespace=self.keys.ns, spec_version=spec.spec_version())
                )
            )
            reader = asyncio.create_task(self._read())
            await self._loop()
        except asyncio.CancelledError:
            self.broken = self.broken or not self.stopping
            raise
        finally:
            if reader is not None:
                reader.cancel()
            await asyncio.shield(self._finish())

    async def _loop(self) -> None:
        while not (self.leaving or self.broken or self.stopping):
            if self.need_register:
                self.need_register = False
                await self._with_redis(self._register)
            if self.held and not self.pending:
                await self._wait_nudge(CONTROL_CHECK_S)  # the worker runs the job
                await self._show_state("paused" if self.paused else "idle")  # a pause shows at once (7.5)
                if time.monotonic() >= self._next_control:  # not per job: a settle needs no LPOP
                    self._next_control = time.monotonic() + CONTROL_CHECK_S
                    await self._quietly(self._poll_control)
                continue
            if self.paused:
                await self._settle_only()
                await self._show_state("paused")
                await self._block(control_only=True)
                continue
            await self._show_state("idle")
            reply = await self._with_redis(lambda: self._call_work(reserve=not self.leave_after))
            if reply is None:
                continue
            status = reply[1]
            if status == b"job":
                self._next_control = time.monotonic() + CONTROL_CHECK_S
                token, queue, payload = reply[2].decode(), reply[3].decode("utf-8", "replace"), reply[4]
                self.held = (token, queue, payload)
                await self._send(pb.WorkResponse(job=pb.Job(token=token, queue=queue, payload=payload)))
            elif status in (b"empty", b"paused"):
                await self._block()
            elif status == b"expired":
                log.warning("worker %s: lease lapsed; registering again", self.id)
                await self._with_redis(self._register)
            elif status == b"settled":
                self.leaving = True

    async def _finish(self) -> None:
        """Settle what the worker reported, then leave: mode self, or mode dead for a broken stream."""
        deadline = time.monotonic() + LEAVE_GIVE_UP_S
        mode = "dead" if self.broken else "self"
        while time.monotonic() < deadline:
            try:
                if self.pending:
                    await self._call_work(reserve=False)
                result = await self._unregister(self.id, mode)
                if mode == "dead" and result[1] != b"none":
                    log.warning(
                        "worker %s: stream broke; its job %s was recovered as a death",
                        self.id,
                        result[1].decode("utf-8", "replace"),
                    )
                break
            except REDIS_ERRORS as exc:
                log.warning("worker %s: Redis unavailable while leaving (%s); the lease will lapse", self.id, exc)
                await asyncio.sleep(0.5)
        try:
            await self.block.aclose(close_connection_pool=True)
        except Exception:  # noqa: BLE001 - closing a broken connection may fail; nothing to do
            pass

    async def _settle_only(self) -> None:
        if self.pending:
            await self._with_redis(lambda: self._call_work(reserve=False))

    # -- the worker's messages ------------------------------------------------------------

    async def _read(self) -> None:
        """Read the stream until it ends; an end without `leave` marks the worker dead."""
        try:
            while True:
                msg = await self.ctx.read()
                if msg is _EOF:
                    break
                await self._handle(msg)
                if self.leaving:
                    return
        except GatewayError as exc:
            log.warning("worker %s: %s; ending its stream", self.id, exc.message)
            self.gw.note_error(self, exc)
        except asyncio.CancelledError:
            raise  # run() is done with the stream and decides how the worker leaves
        except (grpc.aio.AioRpcError, grpc.RpcError):
            pass
        except Exception as exc:  # noqa: BLE001 - a broken stream surfaces in many shapes
            log.warning("worker %s: stream error %r", self.id, exc)
        if not self.leaving:
            self.broken = True
        self._nudge.set()

    async def _handle(self, msg: pb.WorkRequest) -> None:
        kind = msg.WhichOneof("msg")
        if kind == "beat":  # no nudge: cutting an idle BLPOP short costs a reconnect
            self._last_alive = self.gw.clock.now()
            self.gw.beats.want(self)  # batched with every other stream's; repeated beats merge
            return
        if kind == "conformance_echo":
            await self._echo(msg.conformance_echo.record_json)
            return
        if kind == "settle":
            self._on_settle(msg.settle)
        elif kind == "set_paused":
            self.paused = msg.set_paused.paused
        elif kind == "leave":
            self.leaving = True
        else:
            raise _bad(f"unexpected message {kind!r} after hello")
        self._nudge.set()

    def _on_settle(self, settle: pb.Settle) -> None:
        held = self.held
        if held is None or settle.token != held[0] or self.pending:
            # A late outcome (the job was recovered, or belongs to an earlier stream): stale.
            log.warning("worker %s: outcome for job %s it does not hold; dropped (stale)", self.id, settle.token)
            self.leave_after = self.leave_after or settle.leave_after
            return
        token, queue, payload = held
        outcome = settle.WhichOneof("outcome")
        if outcome == "fail":
            f = settle.fail
            record = jobmod.failure_record(payload, f.type or "Error", f.message, list(f.frames), self.id, queue)
            self.pending = ("fail", token, record, queue)
        elif outcome == "ok":
            self.pending = ("ok", token, "", queue)
        else:
            raise _bad("settle: one of ok or fail is required")
        self.leave_after = self.leave_after or settle.leave_after

    async def _echo(self, record_json: str) -> None:
        if not self.gw.conformance:
            raise GatewayError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "jobwire.InvalidRequest",
                "conformance_echo: this gateway was not started with --conformance",
            )
        try:
            if not isinstance(json.loads(record_json), dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise _bad(f"conformance_echo: record is not a JSON object ({exc})") from None
        await self._quietly(lambda: self.gw.redis.rpush(self.keys.conformance_echo, record_json))

    async def _send(self, response: pb.WorkResponse) -> None:
        async with self._write_lock:
            await self.ctx.write(response)

    # -- Redis calls (protocol.md 8) ------------------------------------------------------

    async def _call_work(self, reserve: bool):
        """work.lua: settle the pending outcome, then reserve if asked (protocol.md 8.2)."""
        k, wid = self.keys, self.id
        op, token, arg, settle_queue = self.pending or ("none", "", "", None)
        if reserve:
            await self._expand()
        queues = self._expanded if reserve else []
        if reserve and not queues and op == "none":
            return [b"none", b"empty"]  # a wildcard worker before any queue exists
        keys = [
            k.worker_record(wid),
            k.inflight(wid),
            k.stat_processed,
            k.stat_processed_worker(wid),
            k.stat_failed,
            k.stat_failed_worker(wid),
            k.failed,
            k.deaths,
            k.minutes(jobmod.utc_day()),
            k.leases,
            k.pause_all,
            k.queue(settle_queue) if settle_queue else k.worker_record(wid),
            k.wake(settle_queue) if settle_queue else k.worker_record(wid),
        ]
        keys += [k.queue(q) for q in queues] + [k.wake(q) for q in queues]
        args = [
            wid,
            op,
            token,
            arg,
            jobmod.failed_at_now(),
            jobmod.run_at_now(),
            self.cfg.max_deaths,
            self.cfg.max_payload_bytes,
            *queues,
        ]
        reply = await self.gw.scripts.call("work", keys, args)
        if reserve and not queues:
            reply = [reply[0], b"empty"]
        if op != "none":
            if reply[0] == b"stale":
                log.warning("worker %s: job %s was recovered elsewhere; its outcome is dropped", wid, token)
            self.pending = None
            self.held = None
        return reply

    async def _expand(self) -> None:
        """Resolve `*` against <ns>:queues (protocol.md 7.2); names that break the rules are skipped."""
        if self._wildcard:
            self._expanded = expand_queues(self.cfg.queues, await self.gw.redis.smembers(self.keys.queues))

    async def heartbeat_call(self, mode: str, info: list | None = None, client=None):
        """heartbeat.lua for this worker; queued on `client` when it is a pipeline (a beat batch)."""
        k = self.keys
        keys = [k.workers, k.heartbeats, k.leases, k.worker_started(self.id), k.worker_info(self.id), k.meta]
        args = [
            self.id,
            self.cfg.lease_ms,
            mode,
            jobmod.started_now() if mode == "register" else "",
            spec.spec_major(),
            *(info or []),
        ]
        return await self.gw.scripts.call("heartbeat", keys, args, client=client)

    def alive_within_lease(self) -> bool:
        """The stream is open and its worker beat within one lease of awake time (liveness.py)."""
        if self.broken or self.leaving or self.stopping:
            return False
        return self.gw.clock.now() - self._last_alive < self.cfg.lease_ms / 1000

    async def _register(self) -> None:
        """heartbeat.lua register; first recover a dead predecessor with this id (protocol.md 7.3)."""
        if not self._registered_once and await self.gw.redis.exists(self.keys.inflight(self.id)):
            result = await self._unregister(self.id, "dead")
            log.warning(
                "worker %s: recovered the job of a dead worker with this id (%s)",
                self.id,
                result[1].decode("utf-8", "replace"),
            )
        self._registered_once = True
        c = self.cfg
        info = [
            "impl",
            c.impl,
            "impl_version",
            c.impl_version,
            "spec",
            spec.spec_version(),
            "host",
            c.host,
            "pid",
            c.pid,
            "queues",
            ",".join(c.queues),
            "started_ms",
            str(int(time.time() * 1000)),
            "mode",
            c.mode,
            "state",
            self._state_shown,
            "gateway",
            self.gw.gateway_id,
            "gateway_version",
            __version__,
            "features",
            ",".join(c.features),
        ]
        try:
            reply = await self.heartbeat_call("register", info)
        except rexc.ResponseError as exc:
            if "JOBWIRE_SPEC_MISMATCH" in str(exc):
                raise GatewayError(grpc.StatusCode.FAILED_PRECONDITION, "JOBWIRE_SPEC_MISMATCH", str(exc)) from None
            raise
        self._last_alive = self.gw.clock.now()
        self.gw.recoveries.offer(self, reply[1:])  # register lists lapsed peers too (protocol.md 7.6)
        if not self._warned_routes:
            self._warned_routes = True
            await self._warn_routed()

    async def _warn_routed(self) -> None:
        """protocol.md 15.2: warn once, at the stream's first registration, about each of its queues
        that the routing table of its namespace sends elsewhere, as a worker does. Best effort."""
        named = [q for q in self.cfg.queues if q != WILDCARD]
        if not named:
            return
        try:
            values = await self.gw.redis.hmget(self.keys.routes, named)
        except REDIS_ERRORS as exc:
            log.debug("worker %s: cannot read the routing table: %s", self.id, exc)
            return
        table = {q: text(g) for q, g in zip(named, values, strict=True) if g is not None}
        for queue, where in routing.routed_elsewhere(self.keys.ns, table, named):
            log.warning("worker %s: %s", self.id, routing.routed_warning(self.keys.ns, queue, where))

    def beat_reply(self, reply) -> None:
        """The answer to this worker's beat in a batch: re-register if recovered, else offer lapsed peers."""
        if isinstance(reply, REDIS_ERRORS):
            log.warning("worker %s: beat failed, Redis unavailable (%s)", self.id, reply)
            return
        if isinstance(reply, Exception):
            raise reply
        if reply[0] == b"unknown":
            log.warning("worker %s was recovered as dead by a peer; registering again", self.id)
            self.need_register = True
            self._nudge.set()
            return
        self.gw.recoveries.offer(self, reply[1:])

    async def _unregister(self, worker_id: str, mode: str):
        k = self.keys
        reply = None
        for _ in range(UNREGISTER_RETRIES):
            queue = await self.gw.redis.hget(k.inflight(worker_id), "queue")
            queue = queue.decode("utf-8", "replace") if queue else ""
            keys, args = unregister_call(k, worker_id, mode, queue, self.cfg.max_deaths, self.id)
            reply = await self.gw.scripts.call("unregister", keys, args)
            if reply[0] != b"retry":
                return reply
        return reply

    async def recover(self, dead_id: str) -> None:
        """Recover a lapsed peer as this worker (unregister.lua mode `expired`); called by Recoveries."""
        result, job = await self._unregister(dead_id, "expired")
        if result == b"done":
            log.warning("worker %s: recovered dead worker %s (job %s)", self.id, dead_id, job.decode())

    async def _show_state(self, state: str) -> None:
        if state != self._state_shown:
            self._state_shown = state
            await self._quietly(lambda: self.gw.redis.hset(self.keys.worker_info(self.id), "state", state))

    # -- blocking and the control list (protocol.md 7.5, 8.3) ------------------------------

    async def _block(self, control_only: bool = False) -> None:
        """BLPOP the control list and wake markers, cut short by any message from the worker."""
        k = self.keys
        keys = [k.control(self.id)]
        if not control_only:
            keys += [k.wake(q) for q in self._expanded]
            if self._wildcard:
                keys.append(k.wake_new_queue)
        self._nudge.clear()
        if self.leaving or self.broken or self.stopping or self.need_register:
            return
        pop = asyncio.ensure_future(self.block.blpop(keys, timeout=self.cfg.block_timeout_ms / 1000))
        nudged = asyncio.create_task(self._nudge.wait())
        try:
            await asyncio.wait({pop, nudged}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            nudged.cancel()
        if not pop.done():
            pop.cancel()  # the connection is mid-command now: drop it, the next BLPOP reconnects
            await asyncio.gather(pop, return_exceptions=True)
            await self.block.connection_pool.disconnect()
            return
        try:
            reply = pop.result()
        except REDIS_ERRORS as exc:
            await self.block.connection_pool.disconnect()
            log.warning("worker %s: Redis unavailable (%s)", self.id, exc)
            await self._sleep(0.5)
            return
        if reply and text(reply[0]) == k.control(self.id):
            await self._command(text(reply[1]))

    async def _poll_control(self) -> None:
        while True:
            command = await self.gw.redis.lpop(self.keys.control(self.id))
            if command is None:
                return
            await self._command(command.decode("utf-8", "replace"))

    async def _command(self, command: str) -> None:
        verb, _, arg = command.strip().partition(" ")
        if verb == "pause":
            self.paused = True
        elif verb == "resume":
            self.paused = False
        elif verb == "quit":
            self.leave_after = True
            await self._send(pb.WorkResponse(quit=pb.Quit()))
        elif verb == "kill":
            held = self.held
            if held is not None and (not arg or arg == held[0]):
                await self._send(pb.WorkResponse(kill=pb.Kill(token=held[0], reason="killed by an operator")))
        else:
            log.warning("worker %s: ignoring unknown control command %r", self.id, command)

    # -- waiting and Redis outages (protocol.md 7.7) ---------------------------------------

    async def _wait_nudge(self, timeout: float) -> None:
        self._nudge.clear()
        if self.pending or self.leaving or self.broken or self.stopping:
            return
        try:
            await asyncio.wait_for(self._nudge.wait(), timeout)
        except TimeoutError:
            pass

    async def _sleep(self, seconds: float) -> None:
        """Sleep, cut short by a message from the worker (a leave must not wait for a backoff)."""
        self._nudge.clear()
        if self.leaving or self.broken or self.stopping:
            return
        try:
            await asyncio.wait_for(self._nudge.wait(), seconds)
        except TimeoutError:
            pass

    async def _with_redis(self, fn):
        """Call fn until Redis answers (backoff 100 ms doubling to 5 s); None if the session ends."""
        delay = 0.1
        while True:
            try:
                return await fn()
            except REDIS_ERRORS as exc:
                if self.broken or self.leaving or self.stopping:
                    return None
                log.warning("worker %s: Redis unavailable (%s); retrying in %.1f s", self.id, exc, delay)
            except rexc.ResponseError as exc:
                if "LOADING" not in str(exc) and "NOSCRIPT" not in str(exc):
                    raise
            await self._sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _quietly(self, fn) -> None:
        try:
            await fn()
        except REDIS_ERRORS as exc:
            log.warning("worker %s: Redis unavailable (%s)", self.id, exc)

    def stop(self) -> None:
        """The gateway shuts down: leave (a held job goes back to its queue, no death)."""
        self.stopping = True
        self._nudge.set()
