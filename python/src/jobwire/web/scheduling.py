"""The web UI's protocol 1.1 pages (protocol.md section 14): Scheduled (delayed jobs), Retrying
(jobs waiting for their next attempt) and Schedules (recurring), each with remove and run-now,
and the gauges /metrics adds for them.

Everything goes through jobwire.Client. As on the other pages, every change is a CSRF-checked
POST naming its item by key (payload id or sha1) or schedule name, and every untrusted string is
rendered by Jinja autoescape.
"""

from __future__ import annotations

import math

from flask import abort, flash, redirect, render_template, request, url_for

from ..client import Client
from ..errors import InvalidJob, NotFound
from . import data
from .params import short as _short
from .params import start as _start

PAGE = 20


def _args_preview(document) -> str:
    args = document.get("args") if isinstance(document, dict) else None
    return data.preview(args) if args is not None else ""


def scheduled_rows(client: Client, start: int, count: int, now_ms: int) -> list[dict]:
    return [
        {
            "key": j.key,
            "queue": j.queue,
            "class": j.job_class,
            "due_ms": j.ts * 1000,
            "in_ms": j.ts * 1000 - now_ms,
            "args_preview": _args_preview(j.document),
            "payload_pretty": data.pretty(j.document, j.raw),
            "runnable": bool(j.queue),
        }
        for j in client.scheduled(start, count)
    ]


def retrying_rows(client: Client, start: int, count: int, now_ms: int) -> list[dict]:
    rows = []
    for j in client.retrying(start, count):
        last = j.attempts[-1] if j.attempts and isinstance(j.attempts[-1], dict) else {}
        rows.append(
            {
                "key": j.key,
                "queue": j.queue,
                "class": j.job_class,
                "due_ms": j.due_ms,
                "in_ms": j.due_ms - now_ms,
                "attempt": len(j.attempts) + 1,
                "exception": str(last.get("exception", "")),
                "error": str(last.get("error", "")),
                "attempts": [a for a in j.attempts if isinstance(a, dict)],
                "args_preview": _args_preview(j.document),
                "payload_pretty": data.pretty(j.document, j.raw),
            }
        )
    return rows


def schedule_rows(client: Client, now_ms: int) -> list[dict]:
    rows = []
    for s in client.schedules():
        d = s.definition or {}
        when = d.get("cron") or (f"every {data.duration(d['every_ms'])}" if isinstance(d.get("every_ms"), int) else "")
        next_ms = s.next_ms if s.next_ms is not None and not math.isinf(s.next_ms) else None
        rows.append(
            {
                "name": s.name,
                "when": when,
                "queue": str(d.get("queue", "")),
                "class": str(d.get("class", "")),
                "next_ms": None if next_ms is None else int(next_ms),
                "in_ms": None if next_ms is None else int(next_ms) - now_ms,
                "fired": s.state.get("fired", "0"),
                "missed": s.state.get("missed", "0"),
                "last_fire_ms": s.state.get("last_fire_ms", ""),
                "error": s.state.get("error", ""),
                "broken": s.broken,
                "definition_pretty": data.pretty(s.definition, s.raw),
                "runnable": s.definition is not None and not s.state.get("error"),
            }
        )
    return rows


def gauges(client: Client) -> dict:
    """Figures /metrics exports: scheduled and retrying jobs, schedules by state, misses."""
    schedules = client.schedules()
    return {
        "scheduled": client.scheduled_count(),
        "retrying": client.retrying_count(),
        "schedules_ok": sum(1 for s in schedules if not s.broken),
        "schedules_broken": sum(1 for s in schedules if s.broken),
        "missed": {s.name: int(s.state.get("missed", "0") or 0) for s in schedules},
    }


def register(app, client: Client) -> None:
    """Add the Scheduled, Retrying and Schedules pages and their POST actions to the app."""

    _register_time_set(
        app,
        client,
        "scheduled",
        "Scheduled",
        rows=lambda start, now: scheduled_rows(client, start, PAGE, now),
        total=client.scheduled_count,
        remove=client.remove_scheduled,
        run=client.enqueue_scheduled_now,
        said={
            "cannot": "Cannot enqueue {key}",
            "remove": "Removed scheduled job {key}.",
            "run": "Enqueued scheduled job {key}.",
            "gone": "Scheduled job {key} was already promoted or removed.",
        },
    )
    _register_time_set(
        app,
        client,
        "retrying",
        "Retrying",
        rows=lambda start, now: retrying_rows(client, start, PAGE, now),
        total=client.retrying_count,
        remove=client.remove_retrying,
        run=client.retry_now,
        said={
            "cannot": "Cannot retry {key}",
            "remove": "Removed {key}.",
            "run": "Queued the next attempt of {key}.",
            "gone": "Retrying job {key} was already promoted or removed.",
        },
    )

    @app.get("/schedules")
    def schedules():
        now = data.redis_now_ms(client)
        return render_template("schedules.html", title="Schedules", items=schedule_rows(client, now), page="schedules")

    @app.post("/schedules/<action>")
    def schedules_action(action):
        name = request.form.get("name", "")
        if action not in ("remove", "run"):
            abort(404)
        try:
            if action == "remove":
                done = client.remove_schedule(name)
                flash(
                    f"Removed schedule {_short(name)}." if done else f"No schedule {_short(name)}.",
                    "ok" if done else "warn",
                )
            else:
                job_id = client.run_schedule_now(name)
                flash(f"Enqueued schedule {_short(name)}'s job now ({_short(str(job_id))}).", "ok")
        except NotFound:
            flash(f"No schedule {_short(name)}.", "warn")
        except InvalidJob as exc:
            flash(f"Cannot run {_short(name)}: {_short(str(exc), 300)}", "error")
        return redirect(url_for("schedules"), 303)


def _register_time_set(app, client: Client, name: str, title: str, *, rows, total, remove, run, said) -> None:
    """GET /<name> (a page of one time-ordered set: delayed or retrying jobs) and POST
    /<name>/remove|run naming an item by key. The endpoints are `name` and `<name>_action`
    (templates link to them); `said` holds the flash texts, each formatted with the item's key."""

    def listing():
        start = _start()
        items = rows(start, data.redis_now_ms(client))
        return render_template(
            f"{name}.html", title=title, items=items, total=total(), start=start, count=PAGE, page=name
        )

    def action(action):
        key = request.form.get("key", "")
        if action not in ("remove", "run"):
            abort(404)
        try:
            done = (remove if action == "remove" else run)(key)
        except NotFound:
            done = False
        except InvalidJob as exc:
            flash(f"{said['cannot'].format(key=_short(key))}: {_short(str(exc), 300)}", "error")
            return redirect(url_for(name), 303)
        if done:
            flash(said[action].format(key=_short(key)), "ok")
        else:
            flash(said["gone"].format(key=_short(key)), "warn")
        return redirect(url_for(name), 303)

    app.add_url_rule(f"/{name}", name, listing, methods=["GET"])
    app.add_url_rule(f"/{name}/<action>", f"{name}_action", action, methods=["POST"])
