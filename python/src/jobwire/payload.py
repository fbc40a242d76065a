"""The job payload and the records built around it (protocol.md sections 5 and 6).

Payloads travel as raw bytes. jobwire decodes them to run a job but never re-encodes them to
store them again: failure records are built by concatenation around the raw bytes, so integers,
float spellings and fields this version does not know survive byte for byte.
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any
from dataclasses import dataclass, field


from . import queues, spec
from .errors import InvalidJob

__all__ = [
    "Job",
    "new_job",
    "new_jobs",
    "new_payload",
    "new_delayed_item",
    "validate_queue_name",
    "failure_record",
    "dumps",
    "failed_at_now",
    "run_at_now",
    "started_now",
    "utc_day",
]

_validator = None


def _job_validator():
    """jsonschema's validator for job.schema.json, made (and jsonschema imported) at first need:
    most payloads take _certainly_valid's fast path, and leaving jsonschema out of a process
    keeps about 4 MB out of a fork worker's master, whose every page a fork maps again."""
    global _validator
    if _validator is None:
        import jsonschema

        _validator = jsonschema.Draft202012Validator(spec.schema("job"))
    return _validator


# json.dumps with these options makes a new encoder per call: half its time for a small payload.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value) -> bytes:
    """Compact JSON as UTF-8 bytes; lone surrogates become \\u escapes instead of errors."""
    return _ENCODER.encode(value).encode("utf-8", "backslashreplace")


def validate_queue_name(queue: object) -> str:
    """The queue-name rules live in jobwire.queues; kept here for existing callers."""
    return queues.validate_queue_name(queue)


_KNOWN_FIELD_CHECKS = {
    "args": lambda v: type(v) is list,
    "id": lambda v: type(v) is str and 1 <= len(v) <= 64,
    "enqueued_at": lambda v: type(v) is int and v >= 0,
    "queue": lambda v: type(v) is str,
}


# Members the fast path does not check (protocol 1.1): their presence sends a payload to jsonschema.
_SLOW_PATH_FIELDS = ("attempts", "schedule", "scheduled_for_ms")


def _certainly_valid(document) -> bool:
    """True only for documents job.schema.json certainly accepts: the common shape, checked in
    a few microseconds. Anything else goes to jsonschema, which stays the authority (the tests
    run every job-schema vector through both)."""
    if type(document) is not dict:
        return False
    job_class = document.get("class")
    if type(job_class) is not str or not 1 <= len(job_class) <= 1024:
        return False
    for name, check in _KNOWN_FIELD_CHECKS.items():
        if name in document and not check(document[name]):
            return False
    return not any(name in document for name in _SLOW_PATH_FIELDS)


def schema_error(document) -> str | None:
    """The first reason `document` is not a valid payload, or None."""
    if _certainly_valid(document) or _job_validator().is_valid(document):
        return None
    from jsonschema.exceptions import best_match

    error = best_match(_job_validator().iter_errors(document))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "payload"
    return f"{where}: {error.message}"


def new_payload(job_class: str, args=(), **extra) -> bytes:
    """A validated payload for enqueue: class, args, id, enqueued_at, then `extra` fields."""
    return new_job(job_class, args, **extra)[1]


def new_id() -> str:
    """A job id (protocol.md 5): the 32 lowercase hex characters of a random (version 4) UUID,
    the bits uuid.uuid4() sets, without building a UUID object (a third of new_job's time)."""
    return _uuid4_hex(os.urandom(16))


def _uuid4_hex(random: bytes) -> str:
    """16 random bytes as a version-4 UUID's 32 hex characters."""
    return f"{int.from_bytes(random, 'big') & _UUID4_CLEAR | _UUID4_SET:032x}"


# uuid.UUID(version=4): variant 10 (bits 62-63), version 4 (bits 76-79)
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def new_job(job_class: str, args=(), **extra) -> tuple[str, bytes]:
    """(id, payload): new_payload that also hands back the id it chose."""
    job_id = new_id()
    document = {"class": job_class, "args": list(args), "id": job_id, "enqueued_at": int(time.time() * 1000)}
    document.update(extra)
    problem = schema_error(document)
    if problem:
        raise InvalidJob(f"invalid job: {problem}")
    try:
        return job_id, dumps(document)
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"invalid job: arguments are not JSON: {exc}") from None


def new_jobs(pairs) -> list[tuple[str, bytes]]:
    """new_job for many (class, args) pairs at once (bulk enqueue): the same bytes new_job would
    write, built from pieces. The class is checked and encoded once per distinct class, the ids
    come from one urandom call and enqueued_at is one reading of the clock for the batch (they
    are pushed in one call). A pair the fast path cannot vouch for goes through new_job itself."""
    pairs = list(pairs)
    random = os.urandom(16 * len(pairs))
    now = b',"enqueued_at":%d}' % int(time.time() * 1000)
    heads: dict[object, bytes | None] = {}  # class -> b'{"class":...,"args":', None: slow path
    built = []
    for i, (job_class, args) in enumerate(pairs):
        head = heads.get(job_class, b"") if type(job_class) is str else None
        if head == b"":
            head = heads[job_class] = _class_head(job_class)
        args = list(args)
        if head is None:
            built.append(new_job(job_class, args))
            continue
        job_id = _uuid4_hex(random[16 * i : 16 * i + 16])
        try:
            body = dumps(args)
        except (TypeError, ValueError) as exc:
            raise InvalidJob(f"invalid job: arguments are not JSON: {exc}") from None
        built.append((job_id, b'%s%s,"id":"%s"%s' % (head, body, job_id.encode(), now)))
    return built


def _class_head(job_class: str) -> bytes | None:
    """The payload's bytes up to its args for a class the fast path accepts, or None."""
    if not _certainly_valid({"class": job_class}):
        return None
    return b'{"class":%s,"args":' % dumps(job_class)


def new_delayed_item(queue: str, job_class: str, args, at_ms: int, **extra) -> tuple[str, bytes]:
    """(id, item) for a job due at `at_ms` (protocol.md 14.2): the payload with "queue" as its
    third member (resque-scheduler's order) and "scheduled_for_ms" after the id."""
    validate_queue_name(queue)
    job_id = new_id()
    document = {
        "class": job_class,
        "args": list(args),
        "queue": queue,
        "id": job_id,
        "enqueued_at": int(time.time() * 1000),
        "scheduled_for_ms": int(at_ms),
    }
    document.update(extra)
    problem = schema_error(document)
    if problem:
        raise InvalidJob(f"invalid job: {problem}")
    try:
        return job_id, dumps(document)
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"invalid job: arguments are not JSON: {exc}") from None


def _reject_constant(name: str):
    """NaN and Infinity are not JSON (RFC 8259), though Python and lua-cjson accept them."""
    raise ValueError(f"{name} is not a JSON number")


_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def strict_loads(payload: bytes | str):
    """json.loads(payload, parse_constant=_reject_constant) with one decoder made once: json.loads
    builds a new JSONDecoder for every call given an option (cProfile: a tenth of Job.decode). The
    same steps as json.loads: bytes in the encoding it detects, a UTF-8 BOM refused."""
    text = payload if isinstance(payload, str) else payload.decode(json.detect_encoding(payload), "surrogatepass")
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _STRICT_DECODER.decode(text)


@dataclass
class Job:
    """A reserved job: its queue, its raw payload and the reservation token."""

    queue: str
    payload: bytes
    token: str = ""
    document: Any = field(default=None, repr=False)  # the decoded payload: any JSON value until validated

    @classmethod
    def decode(cls, queue: str, payload: bytes, token: str = "") -> Job:
        """Decode and validate; raises InvalidJob with the reason when the payload is not a job."""
        try:
            document = strict_loads(payload)
        except (ValueError, RecursionError) as exc:
            raise InvalidJob(f"payload is not valid JSON: {exc}") from None
        problem = schema_error(document)
        if problem:
            raise InvalidJob(problem)
        return cls(queue, payload, token, document)

    @property
    def job_class(self) -> str:
        return self.document["class"]

    @property
    def args(self) -> list:
        return self.document.get("args", [])

    @property
    def id(self) -> str | None:
        return self.document.get("id")


@functools.lru_cache(maxsize=8)
def _utc_stamp(fmt: str, second: int) -> str:
    """A UTC time string, made once per format and second: a worker writes three per job."""
    return time.strftime(fmt, time.gmtime(second))


def failed_at_now() -> str:
    return _utc_stamp("%Y/%m/%d %H:%M:%S UTC", int(time.time()))


def run_at_now() -> str:
    return _utc_stamp("%Y-%m-%dT%H:%M:%SZ", int(time.time()))


def started_now() -> str:
    return _utc_stamp("%Y-%m-%d %H:%M:%S +0000", int(time.time()))


def utc_day() -> str:
    return _utc_stamp("%Y-%m-%d", int(time.time()))


def _is_json_object(payload: bytes) -> bool:
    """True when a strict RFC 8259 parser reads `payload` as an object. Only then may it be
    embedded verbatim: a payload lua-cjson let through (NaN, Infinity, 0x1F, +1, 017) would make
    the failure record itself invalid JSON, breaking every reader of the failed list."""
    if not payload.lstrip().startswith(b"{"):
        return False
    try:
        return isinstance(strict_loads(payload), dict)
    except (ValueError, RecursionError):
        return False


def failure_record(
    payload: bytes,
    exception: str,
    error: str,
    backtrace: list[str],
    worker: str,
    queue: str,
    failed_at: str | None = None,
) -> bytes:
    """A failure record (protocol.md 6.2) with `payload` embedded verbatim.

    `payload` is embedded verbatim when it is a JSON object's bytes by a strict RFC 8259 parser,
    else (also when it is not RFC 8259 JSON at all, exception jobwire.InvalidJSON) as a JSON string;
    bytes that are not UTF-8 go to "payload_hex" so that the record stays valid JSON.
    """
    extra = b""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        extra = b',"payload_hex":"' + payload.hex().encode() + b'"'
        payload = b'"payload is not valid UTF-8; its bytes are in payload_hex"'
    if not extra and (exception == "jobwire.InvalidJSON" or not _is_json_object(payload)):
        payload = dumps(payload.decode("utf-8"))  # not JSON text (or not an object): kept as a string
    return b"".join(
        (
            b'{"failed_at":',
            dumps(failed_at or failed_at_now()),
            b',"payload":',
            payload,
            b',"exception":',
            dumps(str(exception)),
            b',"error":',
            dumps(str(error)),
            b',"backtrace":',
            dumps([str(line) for line in backtrace]),
            b',"worker":',
            dumps(worker),
            b',"queue":',
            dumps(queue),
            extra,
            b"}",
        )
    )
