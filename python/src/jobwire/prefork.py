"""Supervise N worker processes (`jobwire worker --processes N`).

The supervisor forks one Worker per slot, forwards signals to them, restarts a worker that dies
(after a short pause) and, since it saw the death itself, recovers the dead worker's job at once
with unregister.lua mode "dead" instead of waiting for its lease to lapse (protocol.md 7.6).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time

from .client import connect
from .keys import Keys
from .membership import Membership
from .worker import Config, Worker

__all__ = ["Supervisor"]

log = logging.getLogger("jobwire.prefork")
FORWARDED = (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)
RESTART_PAUSE_S = 1.0


class Supervisor:
    def __init__(self, config: Config, processes: int, registry=None) -> None:
        self.config = config
        self.processes = processes
        self.registry = registry
        self.children: dict[int, int] = {}  # pid -> slot
        self.stopping = False

    def run(self) -> int:
        for sig in FORWARDED:
            signal.signal(sig, self._forward)
        for slot in range(self.processes):
            self._spawn(slot)
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if pid not in self.children:
                continue
            slot = self.children.pop(pid)
            if os.WIFSIGNALED(status) or os.waitstatus_to_exitcode(status) != 0:
                self._recover(pid)
            if not self.stopping:
                log.warning("worker process %s ended (status %s); starting another", pid, status)
                time.sleep(RESTART_PAUSE_S)
                if not self.stopping:
                    self._spawn(slot)
        return 0

    def _spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            for sig in FORWARDED:
                signal.signal(sig, signal.SIG_DFL)
            code = 1
            try:
                code = Worker(self.config, self.registry).run()
            except BaseException as exc:
                log.error("worker process failed: %s", exc)
            finally:
                os._exit(code)
        self.children[pid] = slot

    def _recover(self, pid: int) -> None:
        """Give back the job of a worker process that died, without waiting for its lease."""
        dead_id = f"{socket.gethostname()}:{pid}:{','.join(self.config.queues)}"
        redis = None
        try:
            redis = connect(self.config.redis_url)
            membership = Membership(
                redis,
                Keys(self.config.namespace),
                f"{socket.gethostname()}:{os.getpid()}:supervisor",
                self.config.lease_ms,
                self.config.max_deaths,
            )
            result = membership.recover(dead_id, "dead")
            log.warning("recovered worker %s: %s", dead_id, [r.decode() for r in result])
        except Exception as exc:  # lease expiry will recover it instead
            log.warning("could not recover %s now (%s); its lease will lapse", dead_id, exc)
        finally:
            if redis is not None:
                redis.close()

    def _forward(self, signum, frame) -> None:
        if signum in (signal.SIGQUIT, signal.SIGTERM, signal.SIGINT):
            self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
