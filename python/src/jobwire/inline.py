"""Inline running (`--no-fork`, protocol.md 7.10): the job runs in the worker's own process.

A mixin of Worker. The main thread runs the job; a watcher thread, started once by work(), beats
and reads the control list meanwhile on a connection of its own, and interrupts the job with a
signal (SIGUSR1 for a kill) whose handler raises running.Interrupt inside it. It uses the worker's
config, membership, state flags (_stop, _kill_reason, _inline_job, _next_beat, _watch_done) and
_poll_control, _show_pause, _register and _promote.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from . import payload as jobmod
from .client import connect
from .forked import CONTROL_CHECK_S
from .membership import Membership
from .running import REDIS_ERRORS, Interrupt
from .scripts import Scripts

if TYPE_CHECKING:  # for the declarations in the class body
    from collections.abc import Callable

    from .keys import Keys
    from .promotion import Promoter
    from .running import Settle
    from .worker import Config

__all__ = ["InlineRunning"]

log = logging.getLogger("jobwire.worker")


class InlineRunning:
    """Worker._run_inline and the watcher thread; see the module comment for what it needs."""

    if TYPE_CHECKING:  # what it uses of Worker (worker.py), declared for the type checker
        config: Config
        keys: Keys
        id: str
        _stop: str | None
        _kill_reason: str | None
        _inline_job: bool
        _next_beat: float
        _watch_done: threading.Event
        _promoter: Promoter | None
        _poll_control: Callable[..., None]
        _show_pause: Callable[..., None]
        _register: Callable[[], None]
        _promote: Callable[..., bool]
        _perform: Callable[[jobmod.Job, Any], dict]
        _outcome: Callable[[jobmod.Job, dict], Settle | None]
        _failure: Callable[..., Settle]
        _retry_or_fail: Callable[..., Settle]

    def _run_inline(self, job: jobmod.Job, handler):
        """Run in this process; the settle tuple, or None to give the job back on leaving."""
        if self.config.job_timeout_ms:
            signal.setitimer(signal.ITIMER_REAL, self.config.job_timeout_ms / 1000)
        self._inline_job = True
        try:
            if self._stop == "term":
                return None
            return self._outcome(job, self._perform(job, handler))
        except Interrupt as interrupt:
            if interrupt.reason == "term":
                return None
            if interrupt.reason == "timeout":
                return self._retry_or_fail(
                    job, "jobwire.Timeout", f"job ran longer than {self.config.job_timeout_ms} ms"
                )
            return self._failure(job, "jobwire.Killed", interrupt.reason)
        finally:
            self._inline_job = False
            if self.config.job_timeout_ms:
                signal.setitimer(signal.ITIMER_REAL, 0)

    def _inline_watch(self) -> None:
        """Thread of an inline worker: while a job runs, beat and read the control list.

        The main thread is busy in the job then; between jobs it beats itself. A kill command
        interrupts the job with SIGUSR1, which raises inside it.
        """
        redis = connect(self.config.redis_url)
        scripts = Scripts(redis)
        membership = Membership(redis, self.keys, self.id, self.config.lease_ms, self.config.max_deaths, scripts)
        next_beat = 0.0
        while not self._watch_done.wait(CONTROL_CHECK_S):
            if not self._inline_job:
                continue
            try:
                self._poll_control(redis)
                self._show_pause(redis)
                main = threading.main_thread().ident
                if self._kill_reason and self._inline_job and main is not None:
                    signal.pthread_kill(main, signal.SIGUSR1)
                if time.monotonic() >= max(next_beat, self._next_beat):
                    next_beat = time.monotonic() + self.config.heartbeat_ms / 1000
                    self._watch_beat(membership, redis, scripts)
            except REDIS_ERRORS:
                pass
        redis.close()

    def _watch_beat(self, membership: Membership, redis, scripts: Scripts) -> None:
        """The watcher's beat while a job runs: lease, lapsed peers, and a promotion pass (14.3)."""
        if not membership.beat():
            # recovered as dead while the job runs: register again at once (protocol.md 7.6); the
            # job's outcome will settle as stale
            log.warning("worker %s was recovered as dead by a peer; registering again", self.id)
            self._register()
        if self._promoter:  # protocol.md 14.3: promote every beat while busy
            self._promote(redis, scripts, remember=False)
