"""Recurring schedules: definitions, and what one due schedule does at a check
(protocol.md section 14.5), pinned by conformance/vectors/v1/schedule-next.json.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


from . import spec
from .cron import Cron, CronError, next_fire_ms  # noqa: F401 - next_fire_ms is part of this module's API
from .errors import InvalidJob

__all__ = ["FireDecision", "decide", "validate_definition", "fire_job_id", "DEFAULT_GRACE_MS", "MAX_FIRES_PER_CHECK"]

DEFAULT_GRACE_MS = 60000  # protocol.md 14.5: a fire more than this late is missed
MAX_FIRES_PER_CHECK = 1000  # due fire times looked at per schedule per check
_validator = None


def _schedule_validator():
    global _validator
    if _validator is None:  # jsonschema imported at first need (payload._job_validator says why)
        import jsonschema
        from referencing import Registry, Resource

        job = spec.schema("job")
        registry = Registry().with_resource(job["$id"], Resource.from_contents(job))
        _validator = jsonschema.Draft202012Validator(spec.schema("schedule"), registry=registry)
    return _validator


def validate_definition(definition) -> dict:
    """The definition if it is usable; else InvalidJob saying why (schema, then cron)."""
    if not isinstance(definition, dict):
        raise InvalidJob("a schedule definition is a JSON object")
    from jsonschema.exceptions import best_match

    error = best_match(_schedule_validator().iter_errors(definition))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "definition"
        raise InvalidJob(f"invalid schedule: {where}: {error.message}")
    if "cron" in definition:
        try:
            never = Cron.parse(definition["cron"]).next_after(0) is None
        except CronError as exc:
            raise InvalidJob(f"invalid schedule: cron: {exc}") from None
        if never:
            raise InvalidJob(f"invalid schedule: cron: {definition['cron']!r} never fires")
    return definition


@dataclass(frozen=True)
class FireDecision:
    """What a check does with a due schedule: fire_ms (or None), missed fire times, next."""

    fire_ms: int | None
    missed: int
    last_missed_ms: int | None
    next_ms: int | None  # None: the expression never fires again


def decide(definition: dict, next_ms: int, now_ms: int) -> FireDecision:
    """protocol.md 14.5: of the fire times in [next_ms, now_ms], the latest is enqueued when it
    is at most misfire_grace_ms late; every other one is missed."""
    grace = definition.get("misfire_grace_ms", DEFAULT_GRACE_MS)
    due: list[int] = []
    f: int | None = next_ms
    while f is not None and f <= now_ms and len(due) < MAX_FIRES_PER_CHECK:
        due.append(f)
        f = next_fire_ms(definition, f)
    if not due:
        return FireDecision(None, 0, None, next_ms)
    latest = due[-1]
    if now_ms - latest <= grace:
        return FireDecision(latest, len(due) - 1, due[-2] if len(due) > 1 else None, f)
    return FireDecision(None, len(due), latest, f)


def fire_job_id(name: str, fire_ms: int) -> str:
    """The id of the job a fire enqueues: the same for the same fire in every language."""
    return hashlib.sha256(f"jobwire-schedule\0{name}\0{fire_ms}".encode()).hexdigest()[:32]


def definition_bytes(definition: dict) -> bytes:
    return json.dumps(definition, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
