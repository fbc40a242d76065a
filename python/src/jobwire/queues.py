"""Queue names and the `--queues` list (key-layout.md "Queue names", protocol.md 7.2).

A queue name is 1 to 255 bytes of UTF-8 without ':', '*', ',', whitespace, control characters
(C0, DEL, C1) or U+FEFF. `--queues` is a comma-separated list of names and at most one `*`,
nothing trimmed; `*` stands, at its place, for every valid name in <ns>:queues not listed
explicitly, in code point order.
"""

from __future__ import annotations

import re

from .errors import InvalidJob

__all__ = ["WILDCARD", "is_valid_queue_name", "validate_queue_name", "parse_queues", "expand_queues"]

WILDCARD = "*"
MAX_QUEUE_NAME_BYTES = 255
# The forbidden code points of key-layout.md: ':' '*' ',' C0 and space, DEL and C1 and NBSP,
# the other Unicode White_Space characters, and U+FEFF; surrogates are not UTF-8.
_FORBIDDEN = re.compile("[:*,\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff\ud800-\udfff]")


def is_valid_queue_name(name: object) -> bool:
    """True when name follows the queue-name rules."""
    if not isinstance(name, str) or not name or _FORBIDDEN.search(name):
        return False
    return len(name.encode("utf-8")) <= MAX_QUEUE_NAME_BYTES


def validate_queue_name(name: object) -> str:
    """name itself, or InvalidJob saying which rule it breaks (a non-string breaks them all)."""
    if not isinstance(name, str) or not is_valid_queue_name(name):
        raise InvalidJob(
            f"invalid queue name {name!r}: 1-255 bytes of UTF-8 without ':', '*', ',', whitespace or control characters"
        )
    return name


def parse_queues(text: str) -> list[str]:
    """Split a `--queues` value; InvalidJob for an empty entry, a bad name, a repeat or two `*`."""
    entries = text.split(",")
    seen: set[str] = set()
    for entry in entries:
        if entry != WILDCARD:
            validate_queue_name(entry)
        if entry in seen:
            raise InvalidJob(f"--queues lists {entry!r} twice")
        seen.add(entry)
    return entries


def expand_queues(configured: list[str], known: list[bytes]) -> list[str]:
    """The queues to reserve from: `*` replaced by the other valid names of <ns>:queues, sorted."""
    if WILDCARD not in configured:
        return list(configured)
    names = []
    for raw in known:
        try:
            name = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            continue  # not UTF-8: not a queue name (other producers' doing); skipped
        if is_valid_queue_name(name) and name not in configured:
            names.append(name)
    names.sort()  # code point order, which is the order of the UTF-8 bytes
    out: list[str] = []
    for entry in configured:
        out.extend(names if entry == WILDCARD else [entry])
    return out
