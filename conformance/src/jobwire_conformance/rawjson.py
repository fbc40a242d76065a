"""JSON helpers that keep raw text: slicing a top-level object's members without re-encoding,
and comparing echoed arguments with the exactness protocol.md section 5 requires."""

from __future__ import annotations

import json
import math
import struct

_decoder = json.JSONDecoder()
_WS = " \t\n\r"


# The string scanner json's decoder uses (CPython's C one where built); typeshed does not list it.
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def members(text: str) -> list[tuple[str, str]]:
    """The members of a top-level JSON object as (key, raw value text), in written order.

    Raises ValueError when text is not one JSON object.
    """
    try:
        return _members(text)
    except IndexError:
        raise ValueError("truncated JSON object") from None


def _members(text: str) -> list[tuple[str, str]]:
    i = _skip(text, 0)
    if i >= len(text) or text[i] != "{":
        raise ValueError("not a JSON object")
    i = _skip(text, i + 1)
    out: list[tuple[str, str]] = []
    if i < len(text) and text[i] == "}":
        end = i + 1
    else:
        while True:
            if text[i] != '"':
                raise ValueError(f"expected a key at offset {i}")
            key, i = _scanstring(text, i + 1)
            i = _skip(text, i)
            if text[i] != ":":
                raise ValueError(f"expected ':' at offset {i}")
            i = _skip(text, i + 1)
            _, end = _decoder.raw_decode(text, i)
            out.append((key, text[i:end]))
            i = _skip(text, end)
            if text[i] == ",":
                i = _skip(text, i + 1)
                continue
            if text[i] == "}":
                end = i + 1
                break
            raise ValueError(f"expected ',' or '}}' at offset {i}")
    if _skip(text, end) != len(text):
        raise ValueError("trailing data after the object")
    return out


def same_value(expected, got, path: str = "$", signed_zero: bool = False) -> str | None:
    """None when got equals expected under protocol.md 5 (int64 exact, floats as doubles); else why not."""
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if type(got) is not type(expected) or got != expected:
            return f"{path}: expected {expected!r}, got {got!r}"
        return None
    if isinstance(expected, int):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"{path}: expected integer {expected}, got {got!r}"
        if isinstance(got, float) and (abs(expected) > 2**53 or got != expected):
            return f"{path}: expected integer {expected} exactly, got float {got!r}"
        if got != expected:
            return f"{path}: expected {expected}, got {got!r}"
        return None
    if isinstance(expected, float):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"{path}: expected number {expected!r}, got {got!r}"
        try:
            g = float(got)
        except OverflowError:
            return f"{path}: expected {expected!r}, got {got!r}"
        if g != expected and not (math.isnan(g) and math.isnan(expected)):
            return f"{path}: expected the double {expected!r}, got {got!r}"
        if signed_zero and struct.pack(">d", g) != struct.pack(">d", expected):
            return f"{path}: expected {expected!r} bit for bit, got {got!r}"
        return None
    if isinstance(expected, list):
        if not isinstance(got, list):
            return f"{path}: expected an array, got {got!r}"[:300]
        if len(got) != len(expected):
            return f"{path}: expected {len(expected)} elements, got {len(got)}"
        for n, (e, g) in enumerate(zip(expected, got, strict=True)):
            why = same_value(e, g, f"{path}[{n}]", signed_zero)
            if why:
                return why
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{path}: expected an object, got {got!r}"[:300]
        if set(got) != set(expected):
            return f"{path}: expected keys {sorted(expected)}, got {sorted(got)}"[:300]
        for k in expected:
            why = same_value(expected[k], got[k], f"{path}.{k}", signed_zero)
            if why:
                return why
        return None
    return f"{path}: cannot compare {expected!r}"
