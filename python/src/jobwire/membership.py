"""A worker id's membership of <ns>:workers: register, beat, leave, recover dead peers.

protocol.md 7.3 and 7.6 (the duties) and 8.1/8.5 (heartbeat.lua, unregister.lua). A Worker keeps
one Membership for itself (and its inline watcher thread one more on its own connection); the
prefork supervisor uses one under its own id to recover a worker process it saw die, without a
Worker of its own.
"""

from __future__ import annotations

import logging

import redis as redis_lib

from . import payload as jobmod
from . import spec
from .errors import SpecMismatch
from .keys import Keys
from .scripts import Scripts

__all__ = ["Membership", "UNREGISTER_RETRIES", "unregister_call"]

log = logging.getLogger("jobwire.worker")
UNREGISTER_RETRIES = 10  # protocol.md 8.5: calls on "retry" before giving up (a later beat tries again)


class Membership:
    """heartbeat.lua and unregister.lua for the worker `worker_id`, on one Redis connection."""

    def __init__(
        self,
        redis: redis_lib.Redis,
        keys: Keys,
        worker_id: str,
        lease_ms: int,
        max_deaths: int,
        scripts: Scripts | None = None,
    ) -> None:
        self.redis = redis
        self.scripts = scripts or Scripts(redis)
        self.keys = keys
        self.id = worker_id
        self.lease_ms = lease_ms
        self.max_deaths = max_deaths
        self.registered_once = False  # the predecessor check runs before the first register only
        self.next_lapse_s: float | None = None  # from the last renew (protocol.md 16.2)

    def heartbeat(self, mode: str, info: list[str] | None = None) -> list:
        """One heartbeat.lua call (mode register, beat or renew); the raw reply."""
        k = self.keys
        keys = [k.workers, k.heartbeats, k.leases, k.worker_started(self.id), k.worker_info(self.id), k.meta]
        args = [
            self.id,
            self.lease_ms,
            mode,
            jobmod.started_now() if mode == "register" else "",
            spec.spec_major(),
            *(info or []),
        ]
        return list(self.scripts.call("heartbeat", keys, args))

    def register(self, info: list[str]) -> None:
        """Join <ns>:workers with the info hash fields `info`; recover the lapsed peers the reply
        lists (protocol.md 7.6). Raises SpecMismatch when the namespace holds another major."""
        if not self.registered_once and self.redis.exists(self.keys.inflight(self.id)):
            # A dead predecessor had this very id (same host and pid, e.g. pid 1 in a container):
            # recover its job as a death first, or a job that kills the whole process would be
            # handed back to us forever (protocol.md 7.3).
            result = self.unregister(self.id, "dead")
            log.warning("worker %s: recovered the job of a dead worker with this id (%s)", self.id, _text(result[1]))
        self.registered_once = True
        try:
            reply = self.heartbeat("register", info)
        except redis_lib.ResponseError as exc:
            if "JOBWIRE_SPEC_MISMATCH" in str(exc):
                raise SpecMismatch(str(exc)) from None
            raise
        self.recover_all(reply[1:])  # register lists lapsed peers too (protocol.md 7.6)

    def beat(self) -> bool:
        """Renew the lease (heartbeat.lua mode renew, protocol.md 16.1) and recover the lapsed
        peers the reply lists. False when this worker was itself recovered as dead (it holds no
        lease): the caller must register again (7.6). Sets `next_lapse_s`, the seconds until the
        earliest other lease lapses (None: none seen), which bounds a quiet idle beat (16.2)."""
        reply = self.heartbeat("renew")
        next_lapse_ms, unknown = int(reply[1]), int(reply[2])
        self.next_lapse_s = None if next_lapse_ms < 0 else next_lapse_ms / 1000
        self.recover_all(reply[3 + unknown :])
        return unknown == 0

    def leave(self) -> list:
        """Unregister this worker (mode self: an unsettled job goes back to its queue, 7.3)."""
        return self.unregister(self.id, "self")

    def recover_all(self, dead_ids: list) -> None:
        for dead in dead_ids:
            self.recover(_text(dead))

    def recover(self, dead_id: str, mode: str = "expired") -> list:
        """Unregister a dead peer, its in-flight job counted as a death (protocol.md 7.6)."""
        reply = self.unregister(dead_id, mode)
        if reply[0] == b"done":
            log.warning("worker %s: recovered dead worker %s (job %s)", self.id, dead_id, _text(reply[1]))
        return reply

    def unregister(self, worker_id: str, mode: str) -> list:
        """unregister.lua for `worker_id`, called again on `retry` (the in-flight queue changed
        between reading it and the call), at most UNREGISTER_RETRIES times (protocol.md 8.5)."""
        k = self.keys
        reply: list = []
        for _ in range(UNREGISTER_RETRIES):
            raw_queue = self.redis.hget(k.inflight(worker_id), "queue")
            queue = _text(raw_queue) if raw_queue else ""
            keys, args = unregister_call(k, worker_id, mode, queue, self.max_deaths, self.id)
            reply = list(self.scripts.call("unregister", keys, args))
            if reply[0] != b"retry":
                return reply
        return reply


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def unregister_call(k, worker_id: str, mode: str, queue: str, max_deaths: int, by: str) -> tuple[list, list]:
    """KEYS and ARGV of unregister.lua (protocol.md 8.5) for `worker_id`, whose in-flight record
    names `queue` ("" when none: the queue slots then repeat an existing key). `by` is the id of
    the worker calling; the synchronous worker and the gateway's async sessions both use this."""
    keys = [
        k.leases,
        k.workers,
        k.heartbeats,
        k.worker_record(worker_id),
        k.worker_started(worker_id),
        k.inflight(worker_id),
        k.stat_processed_worker(worker_id),
        k.stat_failed_worker(worker_id),
        k.worker_info(worker_id),
        k.control(worker_id),
        k.deaths,
        k.failed,
        k.stat_processed,
        k.stat_failed,
        k.minutes(jobmod.utc_day()),
        k.queue(queue) if queue else k.inflight(worker_id),
        k.wake(queue) if queue else k.inflight(worker_id),
    ]
    return keys, [worker_id, mode, queue, jobmod.failed_at_now(), max_deaths, by]
