"""Retry policies and the retry delay (protocol.md section 14.4), pinned by
conformance/vectors/v1/retry-delays.json.

The delay is the same in every language: integer and IEEE-754 double arithmetic in a fixed
order, and a "random" part that is FNV-1a of the job id and attempt, not a random generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Policy",
    "NEVER",
    "parse_policy",
    "policy_from_member",
    "parse_default",
    "fnv1a32",
    "retry_delay_ms",
    "DEFAULTS",
]

# protocol.md 14.4: the value of every member a policy object leaves out.
DEFAULTS = {
    "max_attempts": 5,
    "backoff": "exponential",
    "delay_ms": 1000,
    "factor": 2,
    "max_delay_ms": 3600000,
    "jitter": 0.5,
}


@dataclass(frozen=True)
class Policy:
    """A retry policy with every member filled in; max_attempts 1 means never retry."""

    max_attempts: int = 5
    backoff: str = "exponential"
    delay_ms: int = 1000
    factor: float = 2
    max_delay_ms: int = 3600000
    jitter: float = 0.5

    @property
    def never(self) -> bool:
        return self.max_attempts <= 1


NEVER = Policy(max_attempts=1)


def parse_policy(value) -> Policy:
    """A Policy from the payload's "retry" member (already schema-checked): false or an object."""
    if value is False or value is None:
        return NEVER
    if not isinstance(value, dict):
        raise ValueError(f"a retry policy is false or an object, not {value!r}")
    merged = {**DEFAULTS, **{k: v for k, v in value.items() if k in DEFAULTS}}
    return Policy(**merged)


_policy_validator = None


def _validator():
    """job.schema.json's $defs/retry_policy, the one definition of a valid policy."""
    global _policy_validator
    if _policy_validator is None:
        import jsonschema

        from . import spec

        job = spec.schema("job")
        _policy_validator = jsonschema.Draft202012Validator({"$ref": "#/$defs/retry_policy", "$defs": job["$defs"]})
    return _policy_validator


def policy_from_member(value) -> Policy | None:
    """The policy a payload's "retry" member names, or None when it names none (absent, or a
    value of another producer's making): then the worker's default applies (protocol.md 14.4)."""
    if value is None or not _validator().is_valid(value):
        return None
    return parse_policy(value)


def parse_default(text) -> Policy:
    """The --default-retry option: JSON text (or an already decoded value); ValueError if invalid."""
    import json

    value = json.loads(text) if isinstance(text, (str, bytes)) else text
    if value is False:  # the default: valid by the schema, and no jsonschema in the worker for it
        return NEVER
    if not _validator().is_valid(value):
        raise ValueError(f"--default-retry is not a retry policy (false or an object, protocol.md 14.4): {text!r}")
    return parse_policy(value)


def fnv1a32(data: bytes) -> int:
    """32-bit FNV-1a: offset basis 2166136261, prime 16777619, modulo 2**32."""
    h = 2166136261
    for byte in data:
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def retry_delay_ms(policy: Policy, job_id: str, attempt: int) -> int:
    """The delay after failed attempt `attempt` (1-based) of job `job_id` ("" without an id)."""
    raw = float(policy.delay_ms)
    if policy.backoff == "exponential":
        for _ in range(attempt - 1):
            raw = raw * float(policy.factor)
            if raw >= policy.max_delay_ms:
                break
    raw = min(raw, float(policy.max_delay_ms))
    base = math.floor(raw)
    h = fnv1a32(f"{job_id}:{attempt}".encode())
    return int(base - math.floor(float(base) * float(policy.jitter) * float(h) / 4294967296.0))
