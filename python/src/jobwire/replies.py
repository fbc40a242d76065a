"""Redis replies as the bytes they are.

jobwire's clients never set decode_responses, so Redis replies arrive as bytes (or None, ints and
lists of those). redis-py types them `bytes | str`, because decoding is chosen at run time; these
helpers narrow them for the type checker, and a str from a client someone made with
decode_responses=True is encoded back rather than failing later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["as_bytes", "bytes_list", "bytes_map", "scored", "text"]


def as_bytes(value: bytes | str) -> bytes:
    """One reply (a list item, a hash value, a member) as bytes."""
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def bytes_list(values: Iterable[bytes | str]) -> list[bytes]:
    """LRANGE, SMEMBERS, ZRANGE without scores: every item as bytes."""
    return [as_bytes(v) for v in values]


def bytes_map(mapping: Mapping) -> dict[bytes, bytes]:
    """HGETALL: fields and values as bytes."""
    return {as_bytes(k): as_bytes(v) for k, v in mapping.items()}


def scored(page: Iterable) -> list[tuple[bytes, float]]:
    """ZRANGE ... WITHSCORES: (member, score) pairs."""
    return [(as_bytes(member), float(score)) for member, score in page]


def text(value: bytes | str) -> str:
    """A reply as text; bytes that are not UTF-8 are replaced, never fatal (names, ids)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
