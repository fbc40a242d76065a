"""Self-checks of the protocol 1.1 vectors (retry-delays.json, schedule-next.json).

These recompute each vector with a second, deliberately plain implementation of protocol.md
14.4 and 14.5 (brute force over days and minutes for cron), written apart from any worker's, so a
mistake in a worker's code that produced the vectors is caught here.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from typing import Any

DEFAULTS: dict[str, Any] = {
    "max_attempts": 5,
    "backoff": "exponential",
    "delay_ms": 1000,
    "factor": 2,
    "max_delay_ms": 3600000,
    "jitter": 0.5,
}


def fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) % (1 << 32)
    return h


def retry_outcome(policy, job_id: str, attempt: int):
    """('fail', None) or ('retry', delay_ms), straight from protocol.md 14.4."""
    if policy is False:
        return "fail", None
    p = dict(DEFAULTS)
    p.update({k: v for k, v in policy.items() if k in DEFAULTS})
    if attempt >= p["max_attempts"]:
        return "fail", None
    raw = float(p["delay_ms"])
    if p["backoff"] == "exponential":
        for _ in range(attempt - 1):
            raw *= p["factor"]
            if raw >= p["max_delay_ms"]:
                break
    base = math.floor(min(raw, float(p["max_delay_ms"])))
    h = fnv1a32((job_id + ":" + str(attempt)).encode())
    return "retry", base - math.floor(base * p["jitter"] * h / 2**32)


def _values(field: str, low: int, high: int):
    out = set()
    for item in field.split(","):
        rng, _, step = item.partition("/")
        if not item or (_ and not step.isdigit()) or (step and not 1 <= int(step) <= 1000):
            return None
        if rng == "*":
            a, b = low, high
        elif "-" in rng:
            x, _, y = rng.partition("-")
            if not (x.isdigit() and y.isdigit()):
                return None
            a, b = int(x), int(y)
        elif rng.isdigit():
            a = int(rng)
            b = high if step else a
        else:
            return None
        if a < low or b > high or a > b:
            return None
        out |= set(range(a, b + 1, int(step) if step else 1))
    return out


def cron_next(expr: str, after_ms: int):
    """First matching minute strictly after after_ms, by walking days then minutes; None if
    the expression is not valid or never fires within five years."""
    f = [x for x in re.split(r"[ \t]+", expr) if x]  # spaces or tabs only (protocol.md 14.5)
    if len(f) != 5:
        return None
    spec = [_values(f[0], 0, 59), _values(f[1], 0, 23), _values(f[2], 1, 31), _values(f[3], 1, 12), _values(f[4], 0, 7)]
    if any(s is None for s in spec):
        return None
    mins, hours, doms, months, dows = spec
    dows = {0 if d == 7 else d for d in dows}
    either = not f[2].startswith("*") and not f[4].startswith("*")
    start = dt.datetime.fromtimestamp(after_ms // 60000 * 60, dt.UTC)
    day = start.date()
    for _ in range(366 * 5 + 2):
        in_m, in_w = day.day in doms, (day.weekday() + 1) % 7 in dows
        if day.month in months and ((in_m or in_w) if either else (in_m and in_w)):
            for h in sorted(hours):
                for m in sorted(mins):
                    t = calendar.timegm((day.year, day.month, day.day, h, m, 0)) * 1000
                    if t > after_ms:
                        return t
        day += dt.timedelta(days=1)
    return None


def next_ms(definition: dict, after_ms: int):
    if "cron" in definition:
        return cron_next(definition["cron"], after_ms)
    every, start = definition["every_ms"], definition.get("start_ms", 0)
    return start if after_ms < start else start + ((after_ms - start) // every + 1) * every


def fire(definition: dict, next_fire: int, now: int):
    grace = definition.get("misfire_grace_ms", 60000)
    due: list[int] = []
    f = next_fire
    while f is not None and f <= now and len(due) < 1000:
        due.append(f)
        f = next_ms(definition, f)
    if not due:
        return None, 0, None, next_fire
    if now - due[-1] <= grace:
        return due[-1], len(due) - 1, (due[-2] if len(due) > 1 else None), f
    return None, len(due), due[-1], f


def check_case(kind: str, case: dict) -> list[str]:
    cid = case["id"]
    if kind == "retry-delays":
        if fnv1a32((case["job_id"] + ":" + str(case["attempt"])).encode()) != case["fnv1a32"]:
            return [f"{cid}: fnv1a32 differs"]
        outcome, delay = retry_outcome(case["policy"], case["job_id"], case["attempt"])
        if outcome != case["outcome"] or delay != case.get("delay_ms"):
            return [
                f"{cid}: protocol.md 14.4 gives {outcome} {delay}, the vector {case['outcome']} {case.get('delay_ms')}"
            ]
        return []
    d = case["definition"]
    if case["type"] == "invalid":
        return [] if next_ms(d, 0) is None else [f"{cid}: the expression is valid and fires"]
    if case["type"] == "next":
        got = next_ms(d, case["after_ms"])
        return [] if got == case["next_ms"] else [f"{cid}: next fire {got}, the vector {case['next_ms']}"]
    got = fire(d, case["next_ms"], case["now_ms"])
    want = (case["fire_ms"], case["missed"], case["last_missed_ms"], case["new_next_ms"])
    return [] if got == want else [f"{cid}: the firing rule gives {got}, the vector {want}"]
