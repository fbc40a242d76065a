"""Next fire times of recurring schedules (protocol.md section 14.5), pinned by
conformance/vectors/v1/schedule-next.json.

The cron dialect is small and defined exactly by the spec (five numeric fields, UTC, Vixie's
day-of-month/day-of-week rule), so it is implemented here rather than taken from a library:
libraries differ on seconds fields, names, L/W/?, and the day rule, and every language that fires
schedules must agree to the minute.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

__all__ = ["Cron", "CronError", "next_fire_ms", "SEARCH_YEARS"]

FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
MAX_STEP = 1000  # protocol.md 14.5: 1 <= s <= 1000
SEARCH_YEARS = 5  # an expression with no fire time within five years never fires (e.g. 30 Feb)


class CronError(ValueError):
    """The expression is not in the dialect of protocol.md 14.5."""


def _number(text: str, low: int, high: int, name: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise CronError(f"{name}: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is outside {low}-{high}")
    return value


def _field(text: str, low: int, high: int, name: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        body, slash, step_text = item.partition("/")
        step = _number(step_text, 1, MAX_STEP, name) if slash else 1
        if body == "*":
            start, stop = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            start, stop = _number(a, low, high, name), _number(b, low, high, name)
            if start > stop:
                raise CronError(f"{name}: range {body} runs backwards")
        else:
            start = _number(body, low, high, name)
            stop = high if slash else start
        values.update(range(start, stop + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_star: bool  # the day-of-month field begins with "*"
    weekday_star: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        parts = [p for p in re.split(r"[ 	]+", expression) if p]  # spaces or tabs only (14.5)
        if len(parts) != 5:
            raise CronError(f"a cron expression has five fields, not {len(parts)}: {expression!r}")
        sets = [_field(p, low, high, name) for p, (name, low, high) in zip(parts, FIELDS, strict=True)]
        weekdays = frozenset(0 if d == 7 else d for d in sets[4])
        return cls(sets[0], sets[1], sets[2], sets[3], weekdays, parts[2].startswith("*"), parts[4].startswith("*"))

    def day_matches(self, day: dt.date) -> bool:
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.day_star or self.weekday_star:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, after_ms: int) -> int | None:
        """The first minute boundary strictly after `after_ms` that matches, in ms; None if none
        within SEARCH_YEARS."""
        t = dt.datetime.fromtimestamp((after_ms // 60000 + 1) * 60, dt.UTC)
        limit = t.year + SEARCH_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + dt.timedelta(days=32)).replace(day=1)
                continue
            if not self.day_matches(t.date()):
                t = t.replace(hour=0, minute=0) + dt.timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + dt.timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t = t + dt.timedelta(minutes=1)
                continue
            return calendar.timegm(t.utctimetuple()) * 1000
        return None


def next_fire_ms(definition: dict, after_ms: int) -> int | None:
    """The first fire time of a schedule definition strictly after `after_ms`."""
    if "cron" in definition:
        return Cron.parse(definition["cron"]).next_after(after_ms)
    every, start = definition["every_ms"], definition.get("start_ms", 0)
    if after_ms < start:
        return start
    return start + ((after_ms - start) // every + 1) * every
