"""What every promoting worker does (protocol.md 14.3 and 14.5): move due delayed jobs and
retries onto their queues with promote.lua, and fire due recurring schedules with fire.lua.

No leader: any number of workers run this at once; the scripts make each move and each fire
happen once. Used by the worker's loop while idle and from whatever beats while a job runs.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from . import payload as jobmod
from .errors import InvalidJob
from .keys import Keys
from .recurring import decide, fire_job_id, validate_definition

__all__ = ["Promoter", "Promotion", "LIMIT"]

log = logging.getLogger("jobwire.promotion")
LIMIT = 100  # protocol.md 14.8: items per promote.lua call
ROUNDS = 10  # promote.lua calls per pass at most, so a backlog cannot starve the worker's jobs


@dataclass
class Promotion:
    """What one pass did: items moved, items failed as malformed, schedules fired, and how long
    until the next due time (seconds, None when nothing waits)."""

    moved: int = 0
    malformed: int = 0
    fired: int = 0
    next_due_s: float | None = None
    next_due_ms: int = -1  # the same due time on Redis's clock, as promote.lua gave it (-1: none)


class Promoter:
    def __init__(self, keys: Keys, worker_id: str, max_payload_bytes: int, fire_schedules: bool) -> None:
        self.keys = keys
        self.worker_id = worker_id
        self.max_payload_bytes = max_payload_bytes
        self.fire_schedules = fire_schedules

    def run(self, redis, scripts) -> Promotion:
        """promote.lua until nothing more is due (at most ROUNDS calls), firing due schedules."""
        k = self.keys
        keys = [
            k.delayed_schedule,
            k.queues,
            k.wake_new_queue,
            k.failed,
            k.retry_set,
            k.schedules if self.fire_schedules else k.delayed_schedule,
        ]
        result = Promotion()
        for _ in range(ROUNDS):
            reply = scripts.call(
                "promote",
                keys,
                [
                    k.prefix,
                    LIMIT,
                    jobmod.failed_at_now(),
                    self.worker_id,
                    self.max_payload_bytes,
                    "1" if self.fire_schedules else "0",
                ],
            )
            moved, malformed, more, now_ms, next_due = (int(x) for x in reply[:5])
            result.moved += moved
            result.malformed += malformed
            due = reply[5:]
            for i in range(0, len(due), 2):
                result.fired += self._fire(redis, scripts, due[i].decode("utf-8", "replace"), due[i + 1], now_ms)
            result.next_due_s = None if next_due < 0 else max(0.001, (next_due - now_ms) / 1000)
            result.next_due_ms = next_due
            if not more and not due:
                break
        if result.malformed:
            log.warning(
                "worker %s: %d delayed items could not be promoted; they are in the failed list",
                self.worker_id,
                result.malformed,
            )
        return result

    def _fire(self, redis, scripts, name: str, score: bytes, now_ms: int) -> int:
        """Handle one due schedule (protocol.md 14.5); 1 when a job was enqueued. `score` is the
        next fire time exactly as Redis wrote it: fire.lua compares it byte for byte."""
        k = self.keys
        raw = redis.hget(k.schedule(name), "definition") or b""
        base = [name, score, raw]
        try:
            next_ms = float(score)
            if not next_ms.is_integer():
                raise InvalidJob(f"schedule {name}: next fire time {score!r} is not a whole number of ms")
            next_ms = int(next_ms)
            definition = validate_definition(json.loads(raw)) if raw else None
            if definition is None:
                raise InvalidJob(f"schedule {name} has no definition")
            decision = decide(definition, next_ms, now_ms)
            if decision.next_ms is None:
                raise InvalidJob(f"schedule {name}: {definition.get('cron')!r} never fires again")
            payload = self._payload(name, definition, decision.fire_ms) if decision.fire_ms is not None else b""
        except (ValueError, InvalidJob, RecursionError) as exc:
            log.warning("worker %s: schedule %s is broken: %s", self.worker_id, name, exc)
            scripts.call(
                "fire",
                [k.schedules, k.schedule(name), k.schedules, k.schedules, k.schedules, k.schedules],
                base + ["error", "", "", 0, "", str(exc), "", ""],
            )
            return 0
        missed_at = "" if decision.last_missed_ms is None else decision.last_missed_ms
        if decision.fire_ms is None:
            scripts.call(
                "fire",
                [k.schedules, k.schedule(name), k.schedules, k.schedules, k.schedules, k.schedules],
                base + ["miss", decision.next_ms, "", decision.missed, missed_at, "", "", ""],
            )
        else:
            queue = definition["queue"]
            acted = scripts.call(
                "fire",
                [k.schedules, k.schedule(name), k.queues, k.queue(queue), k.wake(queue), k.wake_new_queue],
                base
                + [
                    "fire",
                    decision.next_ms,
                    decision.fire_ms,
                    decision.missed,
                    missed_at,
                    payload,
                    queue,
                    fire_job_id(name, decision.fire_ms),
                ],
            )
            if not acted:
                return 0
        if decision.missed:
            log.warning(
                "worker %s: schedule %s missed %d fire time(s), the latest at %d ms",
                self.worker_id,
                name,
                decision.missed,
                decision.last_missed_ms,
            )
        return 0 if decision.fire_ms is None else 1

    @staticmethod
    def _payload(name: str, definition: dict, fire_ms: int) -> bytes:
        """The job of one fire: class, args, id, enqueued_at, schedule, scheduled_for_ms, retry."""
        document = {
            "class": definition["class"],
            "args": definition.get("args", []),
            "id": fire_job_id(name, fire_ms),
            "enqueued_at": int(time.time() * 1000),
            "schedule": name,
            "scheduled_for_ms": fire_ms,
        }
        if "retry" in definition:
            document["retry"] = definition["retry"]
        return jobmod.dumps(document)
