"""Every Redis key jobwire uses, built in this one place (spec/key-layout.md).

Nothing else in the package formats a key. `Keys("resque").queue("high")` is
`"resque:queue:high"`; the names of the methods are the template names in key-layout.md.
"""

from __future__ import annotations

__all__ = ["Keys", "TEMPLATES", "TEMPLATES_1_1"]

# Mirrors the "Key templates as data" table of spec/key-layout.md; the tests compare them.
TEMPLATES = {
    "queues": "{ns}:queues",
    "queue": "{ns}:queue:{queue}",
    "workers": "{ns}:workers",
    "worker_record": "{ns}:worker:{worker_id}",
    "worker_started": "{ns}:worker:{worker_id}:started",
    "heartbeats": "{ns}:workers:heartbeat",
    "stat_processed": "{ns}:stat:processed",
    "stat_failed": "{ns}:stat:failed",
    "stat_processed_worker": "{ns}:stat:processed:{worker_id}",
    "stat_failed_worker": "{ns}:stat:failed:{worker_id}",
    "failed": "{ns}:failed",
    "pause_all": "{ns}:pause-all-workers",
    "meta": "{ns}:jobwire:meta",
    "leases": "{ns}:jobwire:leases",
    "inflight": "{ns}:jobwire:inflight:{worker_id}",
    "deaths": "{ns}:jobwire:deaths",
    "worker_info": "{ns}:jobwire:worker:{worker_id}",
    "control": "{ns}:jobwire:control:{worker_id}",
    "wake": "{ns}:jobwire:wake:{queue}",
    "wake_new_queue": "{ns}:jobwire:wake-new-queue",
    "minutes": "{ns}:jobwire:minutes:{day}",
    "conformance_echo": "{ns}:jobwire:conformance:echo",
}

# Mirrors key-layout.md's "Protocol 1.1 key templates" table (delayed jobs, retries, schedules).
TEMPLATES_1_1 = {
    "delayed_schedule": "{ns}:delayed_queue_schedule",
    "delayed_bucket": "{ns}:delayed:{ts}",
    "delayed_timestamps": "{ns}:timestamps:{item}",
    "retry_set": "{ns}:jobwire:retry",
    "schedules": "{ns}:jobwire:schedules",
    "schedule": "{ns}:jobwire:schedule:{name}",
    "wake_schedule": "{ns}:jobwire:wake-schedule",
}


class Keys:
    """Key names for one namespace (default ``resque``, Resque's own)."""

    def __init__(self, namespace: str = "resque") -> None:
        if not namespace:
            raise ValueError("namespace must not be empty")
        self.ns = namespace
        p = namespace + ":"
        self.queues = p + "queues"
        self.workers = p + "workers"
        self.heartbeats = p + "workers:heartbeat"
        self.stat_processed = p + "stat:processed"
        self.stat_failed = p + "stat:failed"
        self.failed = p + "failed"
        self.pause_all = p + "pause-all-workers"
        self.meta = p + "jobwire:meta"
        self.leases = p + "jobwire:leases"
        self.deaths = p + "jobwire:deaths"
        self.wake_new_queue = p + "jobwire:wake-new-queue"
        self.conformance_echo = p + "jobwire:conformance:echo"
        self.prefix = p  # promote.lua builds data-named keys from it (protocol.md 14.3)
        self.delayed_schedule = p + "delayed_queue_schedule"
        self.retry_set = p + "jobwire:retry"
        self.schedules = p + "jobwire:schedules"
        self.wake_schedule = p + "jobwire:wake-schedule"

    def queue(self, queue: str) -> str:
        return f"{self.ns}:queue:{queue}"

    def wake(self, queue: str) -> str:
        return f"{self.ns}:jobwire:wake:{queue}"

    def worker_record(self, worker_id: str) -> str:
        return f"{self.ns}:worker:{worker_id}"

    def worker_started(self, worker_id: str) -> str:
        return f"{self.ns}:worker:{worker_id}:started"

    def stat_processed_worker(self, worker_id: str) -> str:
        return f"{self.ns}:stat:processed:{worker_id}"

    def stat_failed_worker(self, worker_id: str) -> str:
        return f"{self.ns}:stat:failed:{worker_id}"

    def inflight(self, worker_id: str) -> str:
        return f"{self.ns}:jobwire:inflight:{worker_id}"

    def worker_info(self, worker_id: str) -> str:
        return f"{self.ns}:jobwire:worker:{worker_id}"

    def control(self, worker_id: str) -> str:
        return f"{self.ns}:jobwire:control:{worker_id}"

    def minutes(self, day: str) -> str:
        return f"{self.ns}:jobwire:minutes:{day}"

    def delayed_bucket(self, ts) -> str:
        return f"{self.ns}:delayed:{ts}"

    def delayed_timestamps(self, item) -> str:
        """resque-scheduler's reverse index; `item` is the delayed item's exact text."""
        if isinstance(item, bytes):
            item = item.decode("utf-8", "surrogateescape")
        return f"{self.ns}:timestamps:{item}"

    def schedule(self, name: str) -> str:
        return f"{self.ns}:jobwire:schedule:{name}"
