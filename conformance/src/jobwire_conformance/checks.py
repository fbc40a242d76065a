"""Format rules for records a worker writes, shared by the live tests and the vector self-check."""

from __future__ import annotations

import json
import re

from . import rawjson, schemas

FAILURE_KEYS = ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]
FAILED_AT = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} UTC$")
RUN_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
STARTED = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+0000$")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number (RFC 8259)")


def strict_loads(text: str | bytes):
    """json.loads as a strict RFC 8259 parser: NaN, Infinity and -Infinity are rejected too
    (Python accepts them by default; hex numbers, leading zeros and '+' it already rejects)."""
    return json.loads(text, parse_constant=_reject_constant)


def failure_write_problems(raw: bytes | str) -> list[str]:
    """Why a failure record is not one a jobwire worker may write (protocol.md 6.2); [] when it is."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        doc = strict_loads(text)
    except ValueError as exc:
        return [f"not JSON by a strict RFC 8259 parser: {exc}"]
    problems = []
    why = schemas.errors("failure", doc)
    if why:
        problems.append(f"does not validate against failure.schema.json: {why}")
    try:
        keys = [k for k, _ in rawjson.members(text)]
    except ValueError as exc:
        return problems + [f"not a JSON object: {exc}"]
    if keys[: len(FAILURE_KEYS)] != FAILURE_KEYS:
        problems.append(f"keys are {keys}, the first seven must be {FAILURE_KEYS} in this order")
    if len(set(keys)) != len(keys):
        problems.append("a key appears twice")
    if isinstance(doc, dict):
        if not isinstance(doc.get("failed_at"), str) or not FAILED_AT.match(doc.get("failed_at", "")):
            problems.append(f"failed_at {doc.get('failed_at')!r} is not '%Y/%m/%d %H:%M:%S UTC'")
        bt = doc.get("backtrace")
        if not isinstance(bt, list) or not all(isinstance(x, str) for x in bt):
            problems.append(f"backtrace {bt!r} is not an array of strings")
        if not doc.get("exception"):
            problems.append("exception is empty")
        problems += escaping_problems(text, doc)
    return problems


def js_string(value) -> str:
    """JSON text of value as ECMAScript's JSON.stringify writes it (protocol.md 6.2)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def escaping_problems(text: str, doc: dict) -> list[str]:
    """Members a writer encoded otherwise than JSON.stringify would (protocol.md 6.2, strings)."""
    problems = []
    raw = dict(rawjson.members(text))
    for name in ("failed_at", "exception", "error", "worker", "queue", "backtrace", "payload"):
        value = doc.get(name)
        if name == "payload" and not isinstance(value, str):
            continue  # an embedded payload keeps its own bytes
        if name in raw and isinstance(value, (str, list)) and raw[name] != js_string(value):
            problems.append(f"{name} is written {raw[name][:80]!r}; JSON.stringify writes {js_string(value)[:80]!r}")
    return problems


def raw_member(raw: bytes, name: str) -> bytes | None:
    """The raw bytes of one top-level member of a JSON object, exactly as written."""
    try:
        for k, v in rawjson.members(raw.decode("utf-8")):
            if k == name:
                return v.encode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return None
