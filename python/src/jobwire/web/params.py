"""Reading the request's parameters the same way on every page and API route of the web UI."""

from __future__ import annotations

from flask import request

__all__ = ["FAILED_PAGE", "STATS_HOURS", "failed_filters", "optional", "short", "start", "stats_hours"]

FAILED_PAGE = 20
STATS_HOURS = (1, 3, 6, 12, 24)


def optional(name: str) -> str | None:
    """A query or form value, None when absent or empty."""
    value = request.values.get(name, "")
    return value if value != "" else None


def short(value: str, limit: int = 100) -> str:
    """A value quoted in a flash message, cut so that the session cookie stays small."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def start() -> int:
    """The `start` offset of a paged list; 0 when absent or not a number."""
    try:
        return max(0, int(request.args.get("start", "0")))
    except ValueError:
        return 0


def failed_filters() -> dict:
    """The failed list's filters (queue, class, exception) as Client.failures takes them."""
    return {"queue": optional("queue"), "job_class": optional("class"), "exception": optional("exception")}


def stats_hours() -> int:
    """The stats window in hours, one of STATS_HOURS (default 3)."""
    try:
        hours = int(request.args.get("hours", "3"))
    except ValueError:
        hours = 3
    return hours if hours in STATS_HOURS else 3
