"""Fork-per-job running (protocol.md 7.4): the master forks a child per job and waits for its result.

A mixin of Worker: it uses the worker's config, registry, state flags (_stop, _kill_reason,
_child, _next_beat, _wake_r) and duties while busy (_beat, _poll_control, _show_pause,
_quietly), and returns the settle tuple the loop hands to work.lua.
"""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import os
import select
import signal
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

from . import payload as jobmod
from .client import is_cluster_url
from .running import connect_ahead, job_client_used, make_for_children

if TYPE_CHECKING:  # for the declarations in the class body
    from collections.abc import Callable

    from .registry import Registry
    from .running import Settle
    from .worker import Config

__all__ = ["ForkedRunning"]

log = logging.getLogger("jobwire.worker")
CONTROL_CHECK_S = 1.0  # protocol.md 11: control list read at least this often while a job runs
PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None
try:  # Linux: lets a forked child die with its master (protocol.md 7.4)
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class ForkedRunning:
    """Worker._run_forked and its helpers; see the module comment for what it needs of the worker."""

    if TYPE_CHECKING:  # what it uses of Worker (worker.py), declared for the type checker
        config: Config
        registry: Registry
        id: str
        pid: int
        _child: int | None
        _standby: tuple[int, int, int] | None  # the next job's child: (pid, job pipe, result pipe)
        _connect_ahead: bool  # the last job used current_job().redis: a standby connects ahead
        _after_idle: bool  # this job was reserved after an idle block (Worker._loop)
        _ran_a_job: bool
        _exiting: list[int]
        _stop: str | None
        _kill_reason: str | None
        _next_beat: float
        _wake_r: int
        _beat: Callable[[], None]
        _drain_wakeups: Callable[[], None]
        _poll_control: Callable[..., None]
        _show_pause: Callable[..., None]
        _quietly: Callable[[Callable[[], object]], None]
        _title: Callable[[str], None]
        _perform: Callable[[jobmod.Job, Any], dict]
        _outcome: Callable[[jobmod.Job, dict], Settle | None]
        _failure: Callable[..., Settle]
        _retry_or_fail: Callable[..., Settle]

    def _reap_exiting(self, block: bool = False) -> None:
        """Collect children that already reported their result."""
        for pid in list(self._exiting):
            try:
                done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self._exiting.remove(pid)

    def _run_forked(self, job: jobmod.Job, handler):
        """Start the job's child (the standby, or a fork), fork the next job's standby while it
        runs, wait for the child's report, settle: the tuple for work.lua, or None (give back)."""
        self._reap_exiting()
        make_for_children(self.config.redis_url)
        self.registry.run_hooks("before_fork", job)
        pid, read_fd = self._hand_to_standby(job)
        if pid is None:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                self._child_main(job, handler, write_fd)
            os.close(write_fd)
        self._child = pid
        if not self._after_idle:
            self._standby_ensure()  # jobs follow one another: fork the next one's child meanwhile
        self._title(f"Forked {pid} at {int(time.time())}")
        try:
            data, killed_by = self._wait_child(pid, read_fd)
        finally:
            os.close(read_fd)
        self._child = None
        result = None
        if data:
            try:
                result = json.loads(data)
            except ValueError:
                result = None
        if result is not None:
            self._connect_ahead = bool(result.pop("job_client", True))
            # The job finished and reported: that outcome stands, whatever signal came after.
            if killed_by is None:
                # The child is only exiting now. Reap it later, so that tearing down its memory
                # overlaps with settling this job and reserving the next.
                self._exiting.append(pid)
            else:
                os.waitpid(pid, 0)
            return self._outcome(job, result)
        _, status = os.waitpid(pid, 0)
        return self._child_ended(job, pid, status, killed_by)

    def _child_ended(self, job: jobmod.Job, pid: int, status: int, killed_by: str | None):
        """The settle tuple for a child that ended without a result."""
        if killed_by == "term":
            return None  # given back to its queue when the worker leaves (unregister mode self)
        if killed_by == "timeout":
            return self._retry_or_fail(
                job, "jobwire.Timeout", f"job ran longer than {self.config.job_timeout_ms} ms; child {pid} was killed"
            )
        if killed_by:
            return self._failure(job, "jobwire.Killed", f"{killed_by}; child {pid} was killed")
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            reason = f"child {pid} killed by signal {sig} ({_signal_name(sig)})"
        else:
            reason = f"child {pid} exited with status {os.waitstatus_to_exitcode(status)} without a result"
        log.warning("worker %s: %s while running %s", self.id, reason, job.job_class)
        return ("crash", job.token, reason, job.queue)

    def _wait_child(self, pid: int, read_fd: int):
        """Read the child's result while beating, watching control and enforcing the timeout."""
        chunks: list[bytes] = []
        killed_by: str | None = None
        started = time.monotonic()
        next_control = started + CONTROL_CHECK_S
        deadline = started + self.config.job_timeout_ms / 1000 if self.config.job_timeout_ms else None
        while True:
            now = time.monotonic()
            wait = min(next_control, self._next_beat) - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            readable, _, _ = select.select([read_fd, self._wake_r], [], [], max(0.0, wait))
            if self._wake_r in readable:
                self._drain_wakeups()
                self._quietly(self._show_pause)  # SIGUSR2/SIGCONT: state changes at once (7.5)
            if read_fd in readable:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    if killed_by is None:  # a signal handler may have killed the child already
                        killed_by = "term" if self._stop == "term" else self._kill_reason
                    return b"".join(chunks), killed_by
                chunks.append(chunk)
            now = time.monotonic()
            if now >= next_control:
                next_control = now + CONTROL_CHECK_S
                self._quietly(self._poll_control)
                self._quietly(self._show_pause)
            if now >= self._next_beat:
                self._quietly(self._beat)
            if killed_by is None:
                killed_by = self._kill_due(deadline, now)
                if killed_by:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

    def _kill_due(self, deadline: float | None, now: float) -> str | None:
        """Why the running child must die now (term, a kill's reason, timeout), or None."""
        if self._stop == "term":
            return "term"
        if self._kill_reason:
            return self._kill_reason
        if deadline is not None and now >= deadline:
            return "timeout"
        return None

    # -- the standby child (protocol.md 7.4): fork() and the child's set-up off the critical path --

    def _standby_for_idle(self) -> None:
        """Before an idle block: fork the next job's standby now, so that a job arriving while
        idle finds its child ready and no fork runs beside it. Only once a job has run (an idle
        worker that never ran one stays one process, with no extra connection)."""
        if self.config.fork and self._ran_a_job and not self._stop:
            self._standby_ensure()

    def _standby_ensure(self) -> None:
        """Fork the next job's child ahead, unless one waits already or a before_fork hook must see
        the job before the fork (Resque's hook order). A failed fork is no error here: the job
        then forks its child itself."""
        if self._standby is not None or self.registry.has_hooks("before_fork"):
            return
        job_r, job_w = os.pipe()
        result_r, result_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            log.warning("worker %s: could not fork a standby child: %s", self.id, exc)
            for fd in (job_r, job_w, result_r, result_w):
                os.close(fd)
            return
        if pid == 0:
            os.close(job_w)
            os.close(result_r)
            self._standby_main(job_r, result_w)
        os.close(job_r)
        os.close(result_w)
        self._standby = (pid, job_w, result_r)

    def _hand_to_standby(self, job: jobmod.Job) -> tuple[int | None, int]:
        """Send job to the standby (token, queue, payload, each length-prefixed): its pid and
        result pipe, or (None, -1) when there is none or it died (then it is reaped)."""
        if self._standby is None:
            return None, -1
        pid, job_w, result_r = self._standby
        self._standby = None
        token, queue = job.token.encode(), job.queue.encode()
        message = struct.pack("=III", len(token), len(queue), len(job.payload)) + token + queue + job.payload
        try:
            view = memoryview(message)
            while view:
                view = view[os.write(job_w, view) :]
        except OSError:  # BrokenPipeError: it died
            os.close(job_w)
            self._stop_standby_process(pid, result_r)
            return None, -1
        os.close(job_w)
        return pid, result_r

    def _stop_standby(self) -> None:
        """End and reap an unused standby (the worker leaves)."""
        if self._standby is not None:
            pid, job_w, result_r = self._standby
            self._standby = None
            os.close(job_w)
            self._stop_standby_process(pid, result_r)

    @staticmethod
    def _stop_standby_process(pid: int, result_r: int) -> None:
        os.close(result_r)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    def _standby_main(self, job_r: int, write_fd: int) -> None:
        """The standby child: a child's set-up and its job client first, then one job from the
        pipe, run like any child's. EOF instead of a job exits at once. Never returns."""
        try:
            self._child_prepare()
            self._title(f"Ready since {int(time.time())}")
            if self._connect_ahead or is_cluster_url(self.config.redis_url):
                connect_ahead(self.config.redis_url)
            lengths = _read_exact(job_r, 12)
            if lengths is None:
                os._exit(0)
            token_len, queue_len, payload_len = struct.unpack("=III", lengths)
            data = _read_exact(job_r, token_len + queue_len + payload_len)
            if data is None:
                os._exit(0)
            os.close(job_r)
            token, queue = data[:token_len].decode(), data[token_len : token_len + queue_len].decode()
            job = jobmod.Job.decode(queue, data[token_len + queue_len :], token)
            handler = self.registry.get(job.job_class)
        except BaseException:  # the child must reach os._exit whatever happens
            os._exit(3)
        self._child_run(job, handler, write_fd)

    # -- the child --------------------------------------------------------------------------

    def _child_prepare(self) -> None:
        """A child's first steps: die with the master, default signals, no collector."""
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != self.pid:
            os._exit(1)
        gc.disable()  # a short-lived child: collecting would only copy the master's pages
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGCONT):
            signal.signal(sig, signal.SIG_DFL)
        for sig in (signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_IGN)

    def _child_main(self, job: jobmod.Job, handler, write_fd: int) -> None:
        """The forked child: die with the master, run the job, report, _exit. Never returns."""
        try:
            self._child_prepare()
        except BaseException:
            os._exit(3)
        self._child_run(job, handler, write_fd)

    def _child_run(self, job: jobmod.Job, handler, write_fd: int) -> None:
        """Run the job in this child, report on write_fd, _exit. Never returns."""
        status = 0
        try:
            self._title(f"Processing {job.queue} since {int(time.time())} [{job.job_class}]")
            self.registry.run_hooks("after_fork", job)
            result = self._perform(job, handler)
            result["job_client"] = job_client_used()
            data = jobmod.dumps(result)
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view) :]
            os.close(write_fd)  # the master reads EOF now, not after this process's teardown
        except BaseException:  # the child must reach os._exit whatever happens
            status = 3
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(status)


def _read_exact(fd: int, n: int) -> bytes | None:
    """n bytes from fd, or None at EOF before them."""
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)
