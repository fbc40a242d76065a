"""One jobwire worker: register, reserve, run (forking a child per job, or inline), settle.

protocol.md section 7 is the contract this module implements. The process is single-threaded
while it waits or forks; only an inline job gets a helper thread, which keeps the lease alive and
watches the control list while the job runs.

The worker's parts, one module each: this one is the loop (7.9: idle, busy, paused, leaving),
the blocking wait, control commands and signals; membership.py registers, beats, leaves and
recovers peers (shared with the prefork supervisor); running.py performs a handler and holds
current_job(); forked.py and inline.py run a job in a child or in this process.

Names shared with Node (lib/worker.js) and C (jw_worker.c): `run` is the worker's whole life
(register, loop, leave; `work()` stays as its Resque name), `call_work` one work.lua call (settle
and/or reserve), `beat` one heartbeat, `leave` unregistering in mode self.

Signals (protocol.md 7.5): QUIT finish the job then leave; TERM/INT kill the job, give it back to
its queue, leave; USR1 kill the job and fail it; USR2 pause; CONT resume.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass

import redis as redis_lib

from . import __version__, backoff, routing, spec
from . import payload as jobmod
from .client import connect
from .errors import InvalidJob
from .forked import ForkedRunning
from .inline import InlineRunning
from .keys import Keys
from .membership import Membership
from .options import BY_NAME, DEFAULTS
from .promotion import Promoter
from .queues import WILDCARD, expand_queues, parse_queues
from .registry import Registry, default_registry
from .replies import bytes_list, text
from .running import REDIS_ERRORS, Interrupt, JobContext, Settle, current_job, perform
from .scripts import Scripts

try:
    from setproctitle import setproctitle
except ImportError:  # pragma: no cover - setproctitle is a declared dependency

    def setproctitle(title: str) -> None:
        pass


__all__ = ["Config", "Worker", "current_job", "JobContext"]

log = logging.getLogger("jobwire.worker")
LOCAL_WAIT_S = 0.15  # protocol.md 14.3: a due time this close is waited for locally, not by BLPOP

# protocol.md 8.3 and 11: the read timeout of the blocking call exceeds its block timeout by this.
BLOCK_READ_MARGIN_S = 5.0


@dataclass
class Config:
    """Worker settings; the defaults come from spec/options.json."""

    queues: list[str]
    namespace: str = DEFAULTS["namespace"]
    redis_url: str | None = None
    heartbeat_ms: int = DEFAULTS["heartbeat_ms"]
    lease_ms: int = DEFAULTS["lease_ms"]
    block_timeout_ms: int = DEFAULTS["block_timeout_ms"]
    max_deaths: int = DEFAULTS["max_deaths"]
    job_timeout_ms: int = DEFAULTS["job_timeout_ms"]
    max_payload_bytes: int = DEFAULTS["max_payload_bytes"]
    fork: bool = True
    impl: str = "python"
    default_retry: object = DEFAULTS[
        "default_retry"
    ]  # protocol.md 14.4: policy of jobs without one (JSON text or value)
    scheduler: str = DEFAULTS["scheduler"]  # protocol.md 14.1: all (promote and fire), promote, off

    def __post_init__(self) -> None:
        if not self.queues or any(not q for q in self.queues):
            raise ValueError("a worker needs at least one queue (--queues a,b)")
        parse_queues(",".join(self.queues))  # the one --queues grammar: names, at most one *, no repeats
        if self.lease_ms <= 2 * self.heartbeat_ms:
            raise ValueError("the lease must be longer than two heartbeats (--lease-ms > 2 x --heartbeat-ms)")
        try:
            self.default_policy = backoff.parse_default(self.default_retry)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        modes = BY_NAME["scheduler"]["values"]
        if self.scheduler not in modes:
            raise ValueError(f"--scheduler is {', '.join(modes[:-1])} or {modes[-1]}, not {self.scheduler!r}")


def quiet_block_s(config: Config) -> float:
    """The longest idle block of a quiet idle worker: 2 x block-timeout-ms (protocol.md 16.3)."""
    return 2 * config.block_timeout_ms / 1000


def quiet_beat_s(config: Config, next_lapse_s: float | None) -> float:
    """Seconds from an idle beat to the next (protocol.md 16.2): the idle beat period, or sooner
    when another worker's lease lapses before it, so that its recovery is not delayed."""
    hb, lease = config.heartbeat_ms, config.lease_ms
    period = max(hb, min(2 * hb, lease // 3)) / 1000
    return period if next_lapse_s is None else max(0.01, min(period, next_lapse_s + 0.01))


class _Wakeup(BaseException):
    """Raised by a signal handler to end a blocking wait early."""


def _drop_connections(client) -> None:
    """Close a client's sockets: a BLPOP cut short by a signal leaves its connection unusable."""
    if hasattr(client, "disconnect_connection_pools"):  # RedisCluster
        client.disconnect_connection_pools()
    else:
        client.connection_pool.disconnect()


class Worker(ForkedRunning, InlineRunning):
    """One protocol worker. `Worker(Config(["high", "low"])).run()` runs until stopped.

    Running a job lives in the mixins forked.ForkedRunning and inline.InlineRunning (one per
    --fork/--no-fork); membership (register, beat, leave, recover) in membership.Membership."""

    def __init__(self, config: Config, registry: Registry | None = None) -> None:
        self.config = config
        self.registry = registry or default_registry
        self.keys = Keys(config.namespace)
        self.redis = connect(config.redis_url, wait_for_cluster=True)
        # BLPOP gets its own connection, whose read timeout outlasts the longest block (8.3): with
        # redis-py's default 5 s it gave up on a 5 s BLPOP that Redis answered a little late,
        # dropped the connection and slept, deaf for half a second every block timeout.
        self.block_redis = connect(
            config.redis_url, wait_for_cluster=True, socket_timeout=quiet_block_s(config) + BLOCK_READ_MARGIN_S
        )
        self.scripts = Scripts(self.redis)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}:{self.pid}:{','.join(config.queues)}"
        self._pending: Settle | None = None  # the outcome to settle on the next call
        self._held: jobmod.Job | None = None  # the job reserved and not yet settled
        self._stop: str | None = None  # None, "quit" or "term"
        self._paused = False
        self._kill_reason: str | None = None
        self._blocking = False
        self._inline_job = False
        self._child: int | None = None
        self._next_beat = 0.0
        self._expanded: list[str] = [q for q in config.queues if q != WILDCARD]
        self._wildcard = WILDCARD in config.queues
        self._wake_r, self._wake_w = -1, -1
        self._state_shown = "idle"
        self._exiting: list[int] = []  # children that reported and are exiting
        self._standby: tuple[int, int, int] | None = None  # the next job's child: (pid, job pipe, result pipe)
        # A standby connects its job client ahead (running.connect_ahead) while the last job used
        # its client: a job that never talks to Redis does not pay a connection per child then.
        self._connect_ahead = True
        # A job reserved right after an idle block runs with no fork beside it (its standby forks
        # before the next block instead): a fork competes for the 2 cores with the job it serves.
        self._after_idle = False
        self._blocked = False  # a wait for wake markers ran since the last reserved job
        self._ran_a_job = False
        self.membership = Membership(self.redis, self.keys, self.id, config.lease_ms, config.max_deaths, self.scripts)
        self._promoter = (
            None
            if config.scheduler == "off"
            else Promoter(self.keys, self.id, config.max_payload_bytes, config.scheduler == "all")
        )
        self._next_due_at: float | None = None  # monotonic time of the next delayed/retry/schedule due
        self._next_due_ms = -1  # the same on Redis's clock (-1: nothing waits), for the quiet look
        self._last_beat = 0.0  # monotonic time of the last beat: a reserved job pulls the next one in
        self._timed_out = False  # the last BLPOP popped nothing: a quiet look may do (16.3)

    # -- public ------------------------------------------------------------------------------

    def run(self) -> int:
        """Register, process jobs until told to stop, leave. Returns the exit status."""
        self._install_signals()
        self._title("Starting")
        self._with_redis(self._register)
        self._warn_routed()
        self.registry.run_hooks("before_first_fork")
        self._watch_done = threading.Event()
        gc.freeze()  # keep the start-up heap out of the collector: fewer copied pages per fork
        if not self.config.fork:
            threading.Thread(target=self._inline_watch, name="jobwire-watch", daemon=True).start()
        try:
            self._loop()
        finally:
            self._watch_done.set()
            self._title("Shutting down")
            self._stop_standby()
            self._leave()
            self._reap_exiting(block=True)
        return 0

    work = run  # Resque's name for the same (Resque::Worker#work), kept for 1.0 callers

    def stop(self, how: str = "quit") -> None:
        self._stop = how

    # -- the loop ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            if self._stop:
                self._settle_pending()
                return
            self._beat_if_due()
            if self._paused:
                self._settle_pending()
                self._show_state("paused")
                self._title("Paused")
                self._block(control_only=True)
                continue
            self._show_state("idle")
            if self._timed_out and self._with_redis(self._nothing_new):
                self._block()  # protocol.md 16.3: nothing to reserve or promote; keep waiting
                continue
            reply = self._with_redis(lambda: self._call_work(reserve=True))
            if reply is None:
                continue
            status = reply[1]
            if status == b"job":
                job = jobmod.Job(reply[3].decode("utf-8", "replace"), reply[4], reply[2].decode())
                self._kill_reason = None  # a kill that arrives from here on is for this job
                self._held = job
                self._after_idle, self._blocked, self._ran_a_job = self._blocked, False, True
                self._busy_beats()
                self._pending = self._run(job)
            elif status in (b"empty", b"paused"):
                if self._promoter and self._with_redis(self._promote):
                    continue  # due jobs were moved: reserve again before blocking
                self._standby_for_idle()
                self._title(f"Waiting for {','.join(self._queue_list())}")
                self._block()
            elif status == b"expired":
                log.warning("worker %s: lease lapsed; registering again", self.id)
                self._with_redis(self._register)

    def _queue_list(self) -> list[str]:
        return self._expanded if self._wildcard else list(self.config.queues)

    def _expand(self) -> None:
        """Resolve `*` against <ns>:queues (protocol.md 7.2); names that break the rules are skipped."""
        if self._wildcard:
            self._expanded = expand_queues(self.config.queues, bytes_list(self.redis.smembers(self.keys.queues)))

    def _call_work(self, reserve: bool):
        """work.lua: settle the pending outcome, then reserve if asked (protocol.md 8.2)."""
        k = self.keys
        op, token, arg, settle_queue = self._pending or ("none", "", "", "")
        if op == "retry":
            fallback = self._settle_retry(token, arg, settle_queue)
            op, token, arg, settle_queue = fallback or ("none", "", "", "")
            if not reserve and not fallback:
                return [b"retrying", b"settled"]
        if reserve:
            self._expand()
        queues = self._queue_list() if reserve else []
        if reserve and not queues and op == "none":
            return [b"none", b"empty"]  # a wildcard worker before any queue exists
        keys = [
            k.worker_record(self.id),
            k.inflight(self.id),
            k.stat_processed,
            k.stat_processed_worker(self.id),
            k.stat_failed,
            k.stat_failed_worker(self.id),
            k.failed,
            k.deaths,
            k.minutes(jobmod.utc_day()),
            k.leases,
            k.pause_all,
            k.queue(settle_queue) if settle_queue else k.worker_record(self.id),
            k.wake(settle_queue) if settle_queue else k.worker_record(self.id),
        ]
        keys += [k.queue(q) for q in queues] + [k.wake(q) for q in queues]
        args = [
            self.id,
            op,
            token,
            arg,
            jobmod.failed_at_now(),
            jobmod.run_at_now(),
            self.config.max_deaths,
            self.config.max_payload_bytes,
            *queues,
        ]
        reply = self.scripts.call("work", keys, args)
        if reserve and not queues:
            reply = [reply[0], b"empty"]
        if op != "none":
            if reply[0] == b"stale":
                log.warning("worker %s: job %s was recovered elsewhere; its outcome is dropped", self.id, token)
            self._pending = None
            self._held = None
        return reply

    def _settle_retry(self, token: str, arg, queue: str) -> Settle | None:
        """retry.lua: schedule the failed job's next attempt (protocol.md 14.4). Returns None, or
        the plain fail settle to use instead when Redis refused the retry (e.g. a retry key of
        the wrong type): the job then lands in the failed list rather than being lost."""
        k = self.keys
        delay_ms, entry, record = arg
        keys = [
            k.worker_record(self.id),
            k.inflight(self.id),
            k.stat_processed,
            k.stat_processed_worker(self.id),
            k.stat_failed,
            k.stat_failed_worker(self.id),
            k.deaths,
            k.minutes(jobmod.utc_day()),
            k.retry_set,
            k.wake_schedule,
        ]
        try:
            reply = self.scripts.call("retry", keys, [self.id, token, delay_ms, entry, queue])
        except redis_lib.ResponseError as exc:
            if "NOSCRIPT" in str(exc) or "LOADING" in str(exc):
                raise
            log.error("worker %s: Redis refused the retry of job %s (%s); failing it instead", self.id, token, exc)
            return ("fail", token, record, queue)
        if reply[0] == b"stale":
            log.warning("worker %s: job %s was recovered elsewhere; its retry is dropped", self.id, token)
        self._pending = None
        self._held = None
        return None

    def _promote(self, redis=None, scripts=None, remember: bool = True) -> bool:
        """One promotion pass (protocol.md 14.3); True when it moved jobs onto queues. Only the
        main loop's pass (`remember`) sets the next due time its block waits for: a pass from the
        beat of a busy worker may finish late and must not overwrite a newer one."""
        if self._promoter is None:  # --scheduler off
            return False
        try:
            done = self._promoter.run(redis or self.redis, scripts or self.scripts)
        except REDIS_ERRORS:
            raise  # the caller's outage handling applies
        except redis_lib.ResponseError as exc:
            if "NOSCRIPT" in str(exc) or "LOADING" in str(exc):
                raise
            log.error("worker %s: promotion failed: %s", self.id, exc)  # never fatal: jobs still run
            return False
        except Exception:  # bad data must never stop a worker (protocol.md 14.3): report and go on
            log.exception("worker %s: promotion failed", self.id)
            return False
        if remember:
            self._next_due_at = None if done.next_due_s is None else time.monotonic() + done.next_due_s
            self._next_due_ms = done.next_due_ms
        return done.moved > 0 or done.fired > 0

    def _nothing_new(self) -> bool:
        """The quiet look after a BLPOP that timed out (protocol.md 16.3): True when no queue of
        this worker holds a job (one EXISTS) and nothing is due for promotion: no due time has
        come and no delayed bucket earlier than the known next due time was stored without a
        marker (one ZRANGE). Then work.lua and promote.lua would find nothing."""
        self._timed_out = False
        self._expand()
        queues = self._queue_list()
        if queues and self.redis.exists(*[self.keys.queue(q) for q in queues]):
            return False
        if self._promoter is None:
            return True
        if self._next_due_at is not None and time.monotonic() >= self._next_due_at - LOCAL_WAIT_S:
            return False
        earliest = self.redis.zrange(self.keys.delayed_schedule, 0, 0, withscores=True)
        return not earliest or (0 <= self._next_due_ms <= float(earliest[0][1]) * 1000)

    def _settle_pending(self) -> None:
        if self._pending:
            self._with_redis(lambda: self._call_work(reserve=False))

    # -- blocking ----------------------------------------------------------------------------

    def _block(self, control_only: bool = False) -> None:
        """BLPOP the control list and the wake markers (protocol.md 8.3), then handle a command."""
        k = self.keys
        keys = [k.control(self.id)]
        if not control_only:
            keys += [k.wake(q) for q in self._queue_list()]
            if self._wildcard:
                keys.append(k.wake_new_queue)
            if self._promoter:
                keys.append(k.wake_schedule)
        timeout = min(quiet_block_s(self.config), max(0.01, self._next_beat - time.monotonic()))
        if self._promoter and self._next_due_at is not None and not control_only:
            due_in = max(0.001, self._next_due_at - time.monotonic())
            if due_in < LOCAL_WAIT_S and due_in <= timeout:
                # Redis times a blocked client out on its event-loop tick (up to 100 ms late at the
                # default hz 10): wait the last moments here. Markers stay set for the next BLPOP.
                self._sleep(due_in)
                return
            timeout = min(timeout, max(0.001, due_in - LOCAL_WAIT_S))  # wake just before, then wait locally
        reply = None
        self._blocked = self._blocked or not control_only
        try:
            self._blocking = True
            if self._stop:
                return
            reply = self.block_redis.blpop(keys, timeout=timeout)
        except _Wakeup:
            _drop_connections(self.block_redis)
        except REDIS_ERRORS as exc:
            _drop_connections(self.block_redis)
            self._backoff(exc)
        finally:
            self._blocking = False
        self._timed_out = reply is None and not control_only and not self._stop
        if reply and text(reply[0]) == k.control(self.id):
            self._command(text(reply[1]))

    def _poll_control(self, redis=None) -> None:
        """Read every pending operator command without blocking."""
        redis = redis or self.redis
        while True:
            command = redis.lpop(self.keys.control(self.id))
            if command is None:
                return
            self._command(command.decode("utf-8", "replace"))

    def _command(self, command: str) -> None:
        verb, _, arg = command.strip().partition(" ")
        if verb == "pause":
            self._paused = True
        elif verb == "resume":
            self._paused = False
        elif verb == "quit":
            self._stop = self._stop or "quit"
        elif verb == "kill":
            held = self._held
            if held is not None and (not arg or arg == held.token):
                self._request_kill("killed by an operator")
        else:
            log.warning("worker %s: ignoring unknown control command %r", self.id, command)

    # -- running a job ----------------------------------------------------------------------

    def _run(self, job: jobmod.Job):
        """Run a reserved job; returns the settle tuple, or None to give it back on leaving."""
        try:
            job = jobmod.Job.decode(job.queue, job.payload, job.token)
        except InvalidJob as exc:
            kind = (
                "jobwire.InvalidJSON" if str(exc).startswith("payload is not valid JSON") else "jobwire.InvalidPayload"
            )
            return self._failure(job, kind, str(exc))
        handler = self.registry.get(job.job_class)
        if handler is None:
            return self._failure(
                job,
                "jobwire.UnknownClass",
                "no handler registered for class " + json.dumps(job.job_class, ensure_ascii=False),
            )
        self._held = job
        self._title(f"Processing {job.queue} since {int(time.time())} [{job.job_class}]")
        if self.config.fork:
            return self._run_forked(job, handler)
        return self._run_inline(job, handler)

    def _failure(self, job: jobmod.Job, exception: str, error: str, backtrace=()):
        record = jobmod.failure_record(job.payload, exception, error, list(backtrace), self.id, job.queue)
        return ("fail", job.token, record, job.queue)

    def _context(self, job: jobmod.Job) -> JobContext:
        return JobContext(job, self.id, self.config.namespace, self.config.redis_url, self.config.impl)

    def _perform(self, job: jobmod.Job, handler) -> dict:
        """Run the handler with its hooks (running.perform); the outcome as a small dict."""
        return perform(job, handler, self._context(job))

    def _outcome(self, job: jobmod.Job, result: dict):
        if result.get("ok"):
            return ("ok", job.token, "", job.queue)
        return self._retry_or_fail(
            job, result.get("exception", "Exception"), result.get("error", ""), result.get("backtrace", [])
        )

    def _retry_or_fail(self, job: jobmod.Job, exception: str, error: str, backtrace=()):
        """A job error or timeout: retry under the job's policy, else fail (protocol.md 14.4)."""
        document = job.document if isinstance(job.document, dict) else {}
        policy = backoff.policy_from_member(document.get("retry")) or self.config.default_policy
        attempt = 1 + len(document.get("attempts") or [])
        if policy.never or attempt >= policy.max_attempts:
            return self._failure(job, exception, error, backtrace)
        job_id = document["id"] if isinstance(document.get("id"), str) else ""
        delay = backoff.retry_delay_ms(policy, job_id, attempt)
        entry = jobmod.dumps(
            {
                "attempt": attempt,
                "failed_at_ms": int(time.time() * 1000),
                "exception": str(exception),
                "error": str(error),
                "worker": self.id,
                "queue": job.queue,
                "delay_ms": delay,
            }
        )
        log.info(
            "worker %s: job %s attempt %d failed (%s); retrying in %d ms",
            self.id,
            job_id or job.job_class,
            attempt,
            exception,
            delay,
        )
        record = self._failure(job, exception, error, backtrace)[2]  # used if Redis refuses the retry
        return ("retry", job.token, (delay, entry, record), job.queue)

    def _request_kill(self, reason: str) -> None:
        self._kill_reason = reason
        if self._child:
            try:
                os.kill(self._child, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- registration, heartbeat, recovery ------------------------------------------------

    def _register(self) -> None:
        """Register (again), recovering a predecessor with this id and lapsed peers (7.3, 7.6)."""
        info = [
            "impl",
            self.config.impl,
            "impl_version",
            __version__,
            "spec",
            spec.spec_version(),
            "host",
            self.host,
            "pid",
            str(self.pid),
            "queues",
            ",".join(self.config.queues),
            "started_ms",
            str(int(time.time() * 1000)),
            "mode",
            "fork" if self.config.fork else "inline",
            "state",
            self._state_shown,
        ]
        self.membership.register(info)
        self._last_beat = time.monotonic()
        self._next_beat = self._last_beat + self.config.heartbeat_ms / 1000
        log.info("worker %s registered (%s)", self.id, "fork per job" if self.config.fork else "inline")

    def _warn_routed(self) -> None:
        """protocol.md 15.2: warn once, at start-up, about each of our queues that the routing table
        of our namespace sends elsewhere (we still serve what is left in ours). Best effort. HMGET of
        the named queues: protocol.md 8.9's user may run it (HGETALL is for tools)."""
        named = [q for q in self.config.queues if q != "*"]
        if not named:
            return
        try:
            values = self.redis.hmget(self.keys.routes, named)
            table = {q: text(g) for q, g in zip(named, values, strict=True) if g is not None}
        except REDIS_ERRORS as exc:
            log.debug("worker %s: cannot read the routing table: %s", self.id, exc)
            return
        for queue, where in routing.routed_elsewhere(self.keys.ns, table, self.config.queues):
            log.warning("worker %s: %s", self.id, routing.routed_warning(self.keys.ns, queue, where))

    def _beat_if_due(self) -> None:
        if time.monotonic() >= self._next_beat:
            self._with_redis(self._beat)

    def _beat(self) -> None:
        """Renew the lease; register again if a peer recovered us; promote while busy (14.3)."""
        self._last_beat = time.monotonic()
        self._next_beat = self._last_beat + self.config.heartbeat_ms / 1000
        if not self.membership.beat():
            log.warning("worker %s was recovered as dead by a peer; registering again", self.id)
            self._pending = None
            self._register()
            return
        if self._promoter and self._child:  # protocol.md 14.3: promote every beat while busy
            self._promote(remember=False)
        if not self._child and not self._inline_job:
            self._next_beat = self._last_beat + quiet_beat_s(self.config, self.membership.next_lapse_s)

    def _busy_beats(self) -> None:
        """A reserved job: beats every heartbeat-ms again, not at the idle period (16.2)."""
        self._next_beat = min(self._next_beat, self._last_beat + self.config.heartbeat_ms / 1000)

    def _leave(self) -> None:
        """Settle what is pending, unregister (mode self), close the connections."""
        if self._pending:
            self._quietly(lambda: self._call_work(reserve=False))
        self._quietly(self.membership.leave)
        for client in (self.redis, self.block_redis):
            try:
                client.close()
            except Exception:
                pass

    def _show_state(self, state: str, redis=None) -> None:
        """Write the info hash's state field when it changes (pause and resume are rare)."""
        if state != self._state_shown:
            self._state_shown = state
            client = redis or self.redis
            self._quietly(lambda: client.hset(self.keys.worker_info(self.id), "state", state))

    def _show_pause(self, redis=None) -> None:
        """While a job runs: state follows a pause or resume at once, not after the job (7.5)."""
        self._show_state("paused" if self._paused else "idle", redis)

    # -- Redis outages ----------------------------------------------------------------------

    def _with_redis(self, fn):
        """Call fn until Redis answers: a worker never exits because Redis is away (7.7)."""
        delay = 0.1
        while True:
            try:
                return fn()
            except REDIS_ERRORS as exc:
                if self._stop == "term":
                    return None
                log.warning("worker %s: Redis unavailable (%s); retrying in %.1f s", self.id, exc, delay)
                self._sleep(delay)
                delay = min(delay * 2, 5.0)
            except redis_lib.ResponseError as exc:
                if "LOADING" in str(exc) or "NOSCRIPT" in str(exc):
                    self._sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                raise

    def _backoff(self, exc: Exception) -> None:
        log.warning("worker %s: Redis unavailable (%s)", self.id, exc)
        self._sleep(0.5)

    def _sleep(self, seconds: float) -> None:
        try:
            self._blocking = True
            if not self._stop:
                time.sleep(seconds)
        except _Wakeup:
            pass
        finally:
            self._blocking = False

    def _quietly(self, fn) -> None:
        try:
            fn()
        except REDIS_ERRORS as exc:
            log.warning("worker %s: Redis unavailable (%s)", self.id, exc)

    # -- signals and titles -----------------------------------------------------------------

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in (
            signal.SIGQUIT,
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGUSR1,
            signal.SIGUSR2,
            signal.SIGCONT,
            signal.SIGALRM,
        ):
            signal.signal(sig, self._on_signal)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _on_signal(self, signum, frame) -> None:
        if signum == signal.SIGQUIT:
            self._stop = self._stop or "quit"
        elif signum in (signal.SIGTERM, signal.SIGINT):
            self._stop = "term"
            if self._child:
                try:
                    os.kill(self._child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if self._inline_job:
                raise Interrupt("term")
        elif signum == signal.SIGUSR1:
            if self._inline_job:
                raise Interrupt(self._kill_reason or "killed by SIGUSR1")
            if self._held is not None:  # before the fork too: _wait_child acts on the reason
                self._request_kill("killed by SIGUSR1")
        elif signum == signal.SIGUSR2:
            self._paused = True
        elif signum == signal.SIGCONT:
            self._paused = False
        elif signum == signal.SIGALRM:
            if self._inline_job:
                raise Interrupt("timeout")
        if self._blocking and signum != signal.SIGALRM:
            raise _Wakeup()

    def _title(self, state: str) -> None:
        setproctitle(f"jobwire-{self.config.impl}/resque-{spec.spec_major()}: {state}")
