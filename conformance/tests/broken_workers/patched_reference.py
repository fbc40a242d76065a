"""The Python reference worker with one defect patched in, to prove the conformance suite fails it.

    python patched_reference.py DEFECT worker --queues a,b --import jobwire.conformance_jobs [flags]

Everything after DEFECT is the `jobwire` command line. Each defect breaks one rule of
protocol.md in the real worker (by replacing one function or wrapping it), so that every other
part of the worker stays correct and only the tests aimed at that rule fail. conformance/tests/
mutations.py names, for each MUST test id, a defect (or a Lua mutation) that fails it.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import sys

from jobwire import cli, forked, membership, options, payload as jobmod, queues as qmod, running, worker as wmod
from jobwire.registry import default_registry

W = wmod.Worker
M = membership.Membership
DEFECTS = {}


def defect(fn):
    """Register fn under its name, dashes for underscores."""
    DEFECTS[fn.__name__.replace("_", "-")] = fn
    return fn


def wrap(cls, name, make):
    """Replace cls.name by make(original)."""
    original = getattr(cls, name)
    setattr(cls, name, make(original))


@defect
def none():
    """No defect: the reference itself (e.g. --no-fork while claiming fork-per-job)."""


def _echo_with(change_record=None, change_args=None):
    from jobwire import conformance_jobs as cj

    def echo(*args):
        context = wmod.current_job()
        record = {
            "id": context.job.id,
            "args": change_args(list(args)) if change_args else list(args),
            "worker": context.worker_id,
            "queue": context.job.queue,
            "pid": os.getpid(),
            "impl": context.impl,
        }
        if change_record:
            change_record(record)
        context.redis.rpush(
            context.keys.conformance_echo, json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        )

    cj._echo = echo
    default_registry.register("jobwire.Echo", echo)


def _mangle(v):
    """A different value of (mostly) the same kind: every argument list the round-trip tests send changes."""
    if v is None:
        return False
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1 if v < 2**63 - 1 else v - 1
    if isinstance(v, float):
        return v * 1.0000001 + 1e-300
    if isinstance(v, str):
        return v + "x"
    if isinstance(v, list):
        return [_mangle(x) for x in v] or [None]
    if isinstance(v, dict):
        return {**{k: _mangle(x) for k, x in v.items()}, "added": 1}
    return v


@defect
def echo_mangles_args():
    """jobwire.Echo records arguments that differ from those sent (every JSON type)."""
    _echo_with(change_args=_mangle)


@defect
def echo_wrong_worker():
    """jobwire.Echo names another worker and no queue."""
    _echo_with(change_record=lambda rec: rec.update(worker="nobody:1:q", queue=None))


@defect
def ints_through_double():
    """Integers decoded as doubles: beyond 2**53 they change."""
    original = jobmod.Job.decode.__func__

    def decode(cls, queue, payload, token=""):
        job = original(cls, queue, payload, token)
        job.document = json.loads(payload, parse_int=float)
        return job

    jobmod.Job.decode = classmethod(decode)


@defect
def failure_record_embeds_object():
    """The failure-record bug issue 11 found: a payload starting with '{' is embedded verbatim even
    when lua-cjson let through what RFC 8259 forbids (NaN, 0x1F): the record is not valid JSON."""

    def failure_record(payload, exception, error, backtrace, worker, queue, failed_at=None):
        d = jobmod.dumps
        if not payload.lstrip().startswith(b"{"):
            payload = d(payload.decode("utf-8", "replace"))
        return b"".join(
            (
                b'{"failed_at":',
                d(failed_at or jobmod.failed_at_now()),
                b',"payload":',
                payload,
                b',"exception":',
                d(exception),
                b',"error":',
                d(error),
                b',"backtrace":',
                d(list(backtrace)),
                b',"worker":',
                d(worker),
                b',"queue":',
                d(queue),
                b"}",
            )
        )

    jobmod.failure_record = failure_record


@defect
def no_schema_validation():
    """Runs payloads job.schema.json rejects (args not an array, a 65-character id, ...)."""
    jobmod.schema_error = lambda document: None


@defect
def unknown_class_message():
    """jobwire.UnknownClass with a message other than the spec's."""
    wrap(
        W,
        "_failure",
        lambda f: (
            lambda self, job, exc, error, backtrace=(): f(
                self, job, exc, "unknown class" if exc == "jobwire.UnknownClass" else error, backtrace
            )
        ),
    )


@defect
def dies_on_invalid_json():
    """Exits when its own parser rejects a payload."""

    def make(f):
        def failure(self, job, exc, error, backtrace=()):
            if exc == "jobwire.InvalidJSON":
                os._exit(70)
            return f(self, job, exc, error, backtrace)

        return failure

    wrap(W, "_failure", make)


@defect
def exit_on_redis_error():
    """Exits when Redis is unreachable instead of reconnecting (protocol.md 7.7)."""

    def with_redis(self, fn):
        try:
            return fn()
        except wmod.REDIS_ERRORS:
            os._exit(75)

    W._with_redis = with_redis
    W._backoff = lambda self, exc: os._exit(75)


@defect
def no_pdeathsig():
    """The forked child does not die with its master."""
    forked._prctl = None


@defect
def crash_reason_vague():
    """The crash reason does not name the signal that ended the child."""

    def make(f):
        def run_forked(self, job, handler):
            out = f(self, job, handler)
            if out and out[0] == "crash":
                out = (out[0], out[1], "the child is gone", *out[3:])
            return out

        return run_forked

    wrap(W, "_run_forked", make)


@defect
def wildcard_drops_last():
    """A * worker leaves out the last queue of <ns>:queues."""

    def make(f):
        def expand(self):
            f(self)
            if len(self._expanded) > 1:
                self._expanded = self._expanded[:-1]

        return expand

    wrap(W, "_expand", make)


@defect
def wildcard_no_reread():
    """A * worker reads <ns>:queues once, at start: later queues are never seen."""

    def make(f):
        def expand(self):
            if not getattr(self, "_expanded_once", False):
                self._expanded_once = True
                f(self)

        return expand

    wrap(W, "_expand", make)


@defect
def wildcard_keeps_invalid():
    """A * worker takes queue names that break the rules."""
    qmod.is_valid_queue_name = lambda name: True  # expand_queues reads it from its module


@defect
def wildcard_sorts_all():
    """--queues wz,* and *,wa: the named queue loses its place, every queue is sorted."""
    original = wmod.expand_queues
    wmod.expand_queues = lambda configured, known: sorted(original(configured, known))


@defect
def ignores_peers_at_register():
    """The lapsed peers heartbeat.lua lists at register are left for the first beat."""

    def make(f):
        def heartbeat(self, mode, info=None):
            reply = f(self, mode, info)
            return reply[:1] if mode == "register" and reply else reply

        return heartbeat

    wrap(M, "heartbeat", make)


@defect
def accepts_bad_options():
    """A lease not above two beats and an invalid --queues are accepted."""
    options.check_constraints = lambda values: None
    cli.parse_queues = wmod.parse_queues = lambda text: [q for q in text.split(",") if q] or ["default"]
    W_config = wmod.Config
    W_config.__post_init__ = lambda self: None


@defect
def usage_text_on_error():
    """Bad usage prints the whole usage text after its one line (the 1.0 Node worker)."""
    strict = cli.main

    def main(argv=None):
        code = strict(argv)
        if code == cli.EXIT_USAGE:
            cli._parser().print_help(sys.stderr)
        return code

    cli.main = main


@defect
def accepts_cluster_database():
    """A cluster URL naming a database other than 0 is not refused up front (the 1.2.0 Python
    worker: redis-py refuses it on every connect, so the worker retried for ever)."""
    import re

    from jobwire import redisurl

    strict = redisurl.parse
    redisurl.parse = lambda url: strict(re.sub(r"/[0-9]+(?=\?)", "/0", url))


@defect
def pause_shown_after_job():
    """SIGUSR2 during a job: state shows paused only once the job is done (1.0 Python)."""
    W._show_pause = lambda self, redis=None: None


@defect
def cont_ignored():
    """SIGCONT does not resume a paused worker."""
    _signal_as({signal.SIGCONT: None})


@defect
def rejects_huge_exponent():
    """1e400 (valid RFC 8259, beyond a double) is failed as jobwire.InvalidJSON."""
    original = jobmod.Job.decode.__func__

    def finite(text):
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise jobmod.InvalidJob(f"payload is not valid JSON: {text} overflows a double")
        return value

    def decode(cls, queue, payload, token=""):
        try:
            json.loads(payload, parse_float=finite, parse_constant=lambda n: 0)
        except (ValueError, RecursionError):
            pass  # not JSON at all: the reference says so below
        return original(cls, queue, payload, token)  # every other verdict is the reference's

    jobmod.Job.decode = classmethod(decode)


@defect
def record_ascii_escapes():
    """Strings in failure records escape every non-ASCII character (not JSON.stringify's way)."""
    jobmod.dumps = lambda value: json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode()


@defect
def fail_message_str():
    """jobwire.Fail's non-string message is Python's str(), not its compact JSON."""
    from jobwire import conformance_jobs as cj

    def fail(*args):
        raise cj.ConformanceFailure(str(args[0]) if args else "fail")

    default_registry.register("jobwire.Fail", fail)


@defect
def sleep_int_only():
    """jobwire.Sleep rejects a float number of milliseconds."""
    from jobwire import conformance_jobs as cj

    def sleep(ms=0, *args):
        if not isinstance(ms, int):
            raise TypeError(f"jobwire.Sleep expects an integer, not {ms!r}")
        return cj._sleep(ms, *args)

    default_registry.register("jobwire.Sleep", sleep)


@defect
def block_ignores_wake():
    """Blocks on the control list only: a job is found at the next beat, not when enqueued."""
    wrap(W, "_block", lambda f: lambda self, control_only=False: f(self, control_only=True))


@defect
def drop_without_shutdown():
    """Drops a connection with close() alone, never shutdown(): the standby child forked during a job
    holds a copy of the master's blocking socket, so when a signal cuts the idle BLPOP short the
    connection stays open in Redis with its BLPOP blocked and pops the next control command into a
    socket nobody reads (the C worker's standby bug, fixed by closing the socket in every child)."""
    from redis.connection import AbstractConnection

    def make(f):
        def disconnect(self, *args, **kwargs):
            pid, self.pid = self.pid, -1  # redis-py shuts a socket down only in the process that opened it
            try:
                return f(self, *args, **kwargs)
            finally:
                self.pid = pid

        return disconnect

    wrap(AbstractConnection, "disconnect", make)


@defect
def child_runs_two_jobs():
    """Each child runs two jobs before it exits (a child reused for the next job, like a standby
    that loops): more than one pid runs the jobs, never the master's, yet pids repeat (protocol.md
    7.4). Only what the fork tests touch: no kill, timeout or control while a job runs."""
    state: dict[str, list] = {}

    def serve(self, job_r: int, result_w: int) -> None:
        """The reused child: two jobs from the pipe, each result length-prefixed, then _exit."""
        try:
            self._child_prepare()
            for _ in range(2):
                lengths = forked._read_exact(job_r, 8)
                if lengths is None:
                    break
                queue_len, payload_len = struct.unpack("=II", lengths)
                data = forked._read_exact(job_r, queue_len + payload_len)
                job = jobmod.Job.decode(data[:queue_len].decode(), data[queue_len:], "")
                result = jobmod.dumps(self._perform(job, self.registry.get(job.job_class)))
                os.write(result_w, struct.pack("=I", len(result)) + result)
        finally:
            os._exit(0)

    def make(f):
        def run_forked(self, job, handler):
            if "child" not in state:
                job_r, job_w = os.pipe()
                result_r, result_w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(job_w)
                    os.close(result_r)
                    serve(self, job_r, result_w)
                os.close(job_r)
                os.close(result_w)
                state["child"] = [pid, job_w, result_r, 2]
            child = state["child"]
            queue = job.queue.encode()
            os.write(child[1], struct.pack("=II", len(queue), len(job.payload)) + queue + job.payload)
            (length,) = struct.unpack("=I", forked._read_exact(child[2], 4))
            result = json.loads(forked._read_exact(child[2], length))
            child[3] -= 1
            if child[3] == 0:
                del state["child"]
                os.close(child[1])
                os.close(child[2])
                os.waitpid(child[0], 0)
            return self._outcome(job, result)

        return run_forked

    wrap(forked.ForkedRunning, "_run_forked", make)


def _signal_as(mapping):
    def make(f):
        def on_signal(self, signum, frame):
            signum = mapping.get(signum, signum)
            if signum is not None:
                return f(self, signum, frame)

        return on_signal

    wrap(W, "_on_signal", make)


@defect
def quit_as_term():
    """SIGQUIT gives the job back instead of finishing it."""
    _signal_as({signal.SIGQUIT: signal.SIGTERM})


@defect
def term_as_quit():
    """SIGTERM waits for the job to finish instead of killing it."""
    _signal_as({signal.SIGTERM: signal.SIGQUIT})


@defect
def int_ignored():
    """SIGINT is ignored."""
    _signal_as({signal.SIGINT: None})


@defect
def usr2_ignored():
    """SIGUSR2 does not pause."""
    _signal_as({signal.SIGUSR2: None})


@defect
def usr1_ignored():
    """SIGUSR1 does not kill the running job."""
    _signal_as({signal.SIGUSR1: None})


def _command_as(change):
    def make(f):
        def command(self, text):
            text = change(self, text.strip())
            if text is not None:
                return f(self, text)

        return command

    wrap(W, "_command", make)


@defect
def pause_command_ignored():
    """The pause control command is ignored."""
    _command_as(lambda self, t: None if t == "pause" else t)


@defect
def quit_command_ignored():
    """The quit control command is ignored."""
    _command_as(lambda self, t: None if t == "quit" else t)


@defect
def unknown_command_quits():
    """An unknown control command stops the worker."""
    known = ("pause", "resume", "quit", "kill")
    _command_as(lambda self, t: t if t.split(" ")[0] in known else "quit")


@defect
def kill_ignores_token():
    """kill <token> kills whatever job runs, token or not."""
    _command_as(lambda self, t: "kill" if t.startswith("kill ") else t)


@defect
def bare_kill_ignored():
    """A kill without a token is ignored."""
    _command_as(lambda self, t: None if t == "kill" else t)


@defect
def job_timeout_ignored():
    """--job-timeout-ms is accepted and never enforced."""

    def make(f):
        def init(self, config, registry=None):
            f(self, config, registry)
            object.__setattr__(self.config, "job_timeout_ms", 0)

        return init

    wrap(W, "__init__", make)


@defect
def id_reversed_queues():
    """The worker id lists the queues in another order than configured."""

    def make(f):
        def init(self, config, registry=None):
            f(self, config, registry)
            self.id = self.membership.id = f"{self.host}:{self.pid}:{','.join(reversed(config.queues))}"

        return init

    wrap(W, "__init__", make)


@defect
def no_predecessor_recovery():
    """Registers without recovering the in-flight job a dead predecessor left under its own id."""

    def make(f):
        def register(self, info):
            self.registered_once = True
            return f(self, info)

        return register

    wrap(M, "register", make)


@defect
def ignores_unknown_beat():
    """A beat answered 'unknown' (mode renew: its id among the unknown) is taken for 'ok'
    (work.lua's 'expired' makes it register later)."""

    def make(f):
        def heartbeat(self, mode, info=None):
            reply = f(self, mode, info)
            if mode == "renew" and reply and int(reply[2]) > 0:
                return [b"ok", reply[1], 0, *reply[3 + int(reply[2]) :]]
            return [b"ok"] if mode == "beat" and reply and reply[0] == b"unknown" else reply

        return heartbeat

    wrap(M, "heartbeat", make)


@defect
def no_quiet_look():
    """After a block that timed out, work.lua and promote.lua every time (1.2's idle loop), not the
    quiet look of protocol.md 16.3."""

    def nothing_new(self):
        self._timed_out = False
        return False

    W._nothing_new = nothing_new


@defect
def idle_beats_ignore_lapse():
    """Idle beats at the idle beat period only, never sooner for a peer's lapse (protocol.md 16.2)."""
    original = wmod.quiet_beat_s
    wmod.quiet_beat_s = lambda config, next_lapse_s: original(config, None)


@defect
def never_reregisters():
    """Registers once; told 'unknown' or 'expired' it never registers again."""

    def make(f):
        def register(self):
            if getattr(self, "_registered_ever", False):
                return None
            self._registered_ever = True
            return f(self)

        return register

    wrap(W, "_register", make)


@defect
def title_without_state():
    """The process title has the prefix and no state (protocol.md 7.8, a SHOULD)."""
    W._title = lambda self, state: wmod.setproctitle(f"jobwire-{self.config.impl}/resque-1: ")


# -- protocol 1.1 (protocol.md section 14) --------------------------------------------------------


@defect
def no_promote_while_busy():
    """Promotes only while idle: the beats during a job promote nothing (protocol.md 14.3)."""
    wrap(
        W,
        "_promote",
        lambda original: (
            lambda self, redis=None, scripts=None, remember=True: (
                original(self, redis, scripts, remember) if remember else False
            )
        ),
    )


@defect
def retry_false_ignored():
    """retry false and max_attempts 1 read as "no policy": the worker's default applies to them."""
    from jobwire import backoff

    original = backoff.policy_from_member

    def policy(value):
        found = original(value)
        return None if found is not None and found.never else found

    backoff.policy_from_member = policy


@defect
def default_retry_ignored():
    """--default-retry / JOBWIRE_DEFAULT_RETRY is accepted and never applied."""
    from jobwire import backoff

    original = backoff.parse_default
    backoff.parse_default = lambda text: (original(text), backoff.NEVER)[1]


@defect
def retries_protocol_failures():
    """An unknown class is retried like a job error, under protocol.md 14.4's default policy (5
    attempts, 1 s doubling), as if waiting for a deploy to bring its handler."""
    original = W._failure

    def failure(self, job, exception, error, backtrace=()):
        if exception == "jobwire.UnknownClass" and not getattr(self, "_retrying_protocol_failure", False):
            self._retrying_protocol_failure = True  # _retry_or_fail calls _failure for its record
            if isinstance(job.document, dict) and "retry" not in job.document:
                job.document = {**job.document, "retry": {}}  # every member of the policy at its default
            try:
                return self._retry_or_fail(job, exception, error, backtrace)
            finally:
                self._retrying_protocol_failure = False
        return original(self, job, exception, error, backtrace)

    W._failure = failure


@defect
def retry_also_fails():
    """A retried attempt also leaves a failure record in <ns>:failed."""

    def make(original):
        def settle(self, token, arg, queue):
            self.redis.rpush(self.keys.failed, arg[2])
            return original(self, token, arg, queue)

        return settle

    wrap(W, "_settle_retry", make)


@defect
def fire_payload_sorted():
    """A schedule's fire payload has its members sorted, not in protocol.md 14.5's order."""
    from jobwire import promotion

    original = promotion.Promoter._payload
    promotion.Promoter._payload = staticmethod(
        lambda name, definition, fire_ms: json.dumps(
            json.loads(original(name, definition, fire_ms)), sort_keys=True, separators=(",", ":")
        ).encode()
    )


def check_all() -> int:
    """Apply every defect (cumulatively, in this process) and report any that no longer applies:
    a patch of a function the worker renamed must fail here, not crash the worker mid-test, where
    its tests would fail for the wrong reason."""
    broken = []  # what the defects replace must exist before they run (a defect may set it)
    for cls, attrs in (
        (
            W,
            (
                "_expand",
                "_block",
                "_command",
                "_on_signal",
                "_register",
                "_failure",
                "_run_forked",
                "_with_redis",
                "_backoff",
                "_title",
                "_show_pause",
                "_inline_watch",
                "_promote",
                "_settle_retry",
                "_retry_or_fail",
            ),
        ),
        (M, ("heartbeat", "register")),
    ):
        for attr in attrs:
            if not callable(getattr(cls, attr, None)):
                broken.append(f"{cls.__module__}.{cls.__name__}.{attr} is gone")
    for mod, attrs in (
        (wmod, ("setproctitle", "REDIS_ERRORS", "current_job", "expand_queues", "parse_queues", "Config")),
        (forked, ("_prctl",)),
        (running, ("current_job",)),
        (jobmod, ("failure_record", "schema_error", "dumps", "failed_at_now", "InvalidJob")),
        (qmod, ("is_valid_queue_name",)),
        (cli, ("parse_queues",)),
        (options, ("check_constraints",)),
    ):
        for attr in attrs:
            if not hasattr(mod, attr):
                broken.append(f"{mod.__name__}.{attr} is gone")
    for name, fn in sorted(DEFECTS.items()):
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - every reason is reported
            broken.append(f"{name}: {type(exc).__name__}: {exc}")
    print("\n".join(broken) or f"{len(DEFECTS)} defects apply")
    return 1 if broken else 0


def main() -> int:
    if sys.argv[1:] == ["--check-all"]:
        return check_all()
    if len(sys.argv) < 2 or sys.argv[1] not in DEFECTS:
        print(
            f"usage: patched_reference.py DEFECT jobwire-args...; defects: {', '.join(sorted(DEFECTS))}",
            file=sys.stderr,
        )
        return 2
    DEFECTS[sys.argv[1]]()
    return cli.main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
