"""Every Redis key jobwire uses, built in this one place from spec/keys.json.

Nothing else in the package formats a key. `Keys("resque").queue("high")` is
`"resque:queue:high"`; the names of the methods are the template names in key-layout.md.
"""

from __future__ import annotations

from . import spec
from .options import DEFAULTS

__all__ = ["Keys", "TEMPLATES"]

# spec/keys.json is the one source of the templates; nothing here spells a key by hand.
TEMPLATES = spec.key_templates()


class Keys:
    """Key names for one namespace (default ``resque``, Resque's own)."""

    def __init__(self, namespace: str = DEFAULTS["namespace"]) -> None:
        if not namespace:
            raise ValueError("namespace must not be empty")
        self.ns = namespace
        # Templates with the namespace filled in once; the methods fill the one other placeholder.
        self._t = {name: t.replace("{ns}", namespace) for name, t in TEMPLATES.items()}
        for name, t in TEMPLATES.items():
            if t.count("{") == 1:  # only {ns}: keys without a parameter are plain attributes
                setattr(self, name, self._t[name])

    # Keys with no parameter, set in __init__ (declared for readers and type checkers).
    queues: str
    workers: str
    heartbeats: str
    stat_processed: str
    stat_failed: str
    failed: str
    pause_all: str
    meta: str
    leases: str
    deaths: str
    wake_new_queue: str
    conformance_echo: str
    delayed_schedule: str  # protocol 1.1 (protocol.md 14)
    retry_set: str
    schedules: str
    wake_schedule: str
    routes: str  # namespace groups (protocol.md 15)

    @property
    def prefix(self) -> str:
        """ "<ns>:", from which promote.lua builds the keys its data names (protocol.md 14.3)."""
        return self.ns + ":"

    def queue(self, queue: str) -> str:
        return self._t["queue"].replace("{queue}", queue)

    def wake(self, queue: str) -> str:
        return self._t["wake"].replace("{queue}", queue)

    def worker_record(self, worker_id: str) -> str:
        return self._t["worker_record"].replace("{worker_id}", worker_id)

    def worker_started(self, worker_id: str) -> str:
        return self._t["worker_started"].replace("{worker_id}", worker_id)

    def stat_processed_worker(self, worker_id: str) -> str:
        return self._t["stat_processed_worker"].replace("{worker_id}", worker_id)

    def stat_failed_worker(self, worker_id: str) -> str:
        return self._t["stat_failed_worker"].replace("{worker_id}", worker_id)

    def inflight(self, worker_id: str) -> str:
        return self._t["inflight"].replace("{worker_id}", worker_id)

    def worker_info(self, worker_id: str) -> str:
        return self._t["worker_info"].replace("{worker_id}", worker_id)

    def control(self, worker_id: str) -> str:
        return self._t["control"].replace("{worker_id}", worker_id)

    def minutes(self, day: str) -> str:
        return self._t["minutes"].replace("{day}", day)

    def delayed_bucket(self, ts) -> str:
        return self._t["delayed_bucket"].replace("{ts}", str(ts))

    def delayed_timestamps(self, item) -> str:
        """resque-scheduler's reverse index; `item` is the delayed item's exact text."""
        if isinstance(item, bytes):
            item = item.decode("utf-8", "surrogateescape")
        return self._t["delayed_timestamps"].replace("{item}", item)

    def schedule(self, name: str) -> str:
        return self._t["schedule"].replace("{name}", name)
