"""The web UI's HTML pages: overview, queues, workers, failed jobs, stats, and the changes on them.

Every value is rendered through Jinja autoescape (the live-update script uses textContent); links
carry untrusted values only as URL-encoded query parameters after a fixed path; every change is a
POST (security.py checks its CSRF token) naming a failure by key (payload id or sha1), never by
index. The protocol 1.1 pages are in scheduling.py.
"""

from __future__ import annotations

from flask import Flask, abort, flash, redirect, render_template, request, url_for

from ..client import Client
from ..errors import InvalidJob, NotFound
from . import data, params
from .params import FAILED_PAGE, STATS_HOURS, failed_filters, short, stats_hours

__all__ = ["register"]

QUEUE_PAGE = 20
CONTROL_VERBS = ("pause", "resume", "quit", "kill")


def failed_url(filters: dict) -> str:
    """The failed list's URL keeping the filters in force (after a change on it)."""
    return url_for(
        "failed",
        **{
            k: v
            for k, v in (
                ("queue", filters["queue"]),
                ("class", filters["job_class"]),
                ("exception", filters["exception"]),
            )
            if v
        },
    )


def register(app: Flask, client: Client) -> None:
    """Add the pages and their POST routes to `app`."""

    @app.get("/")
    def overview():
        return render_template("overview.html", title="Overview", o=data.overview(client), page="overview")

    @app.get("/queue")
    def queue():
        name = request.args.get("name", "")
        start = params.start()
        now = data.redis_now_ms(client)
        size = client.queue_size(name)
        known = name in client.queue_names()
        if not known and not size:
            abort(404, "no such queue")
        jobs = [data.queued_job(j, now) for j in client.peek(name, start, QUEUE_PAGE)]
        return render_template(
            "queue.html",
            title=f"Queue {name}",
            name=name,
            size=size,
            jobs=jobs,
            start=start,
            count=QUEUE_PAGE,
            page="overview",
        )

    @app.post("/queue/remove-job")
    def queue_remove_job():
        name, key = request.form.get("name", ""), request.form.get("key", "")
        if client.remove_job(name, key):
            flash(f"Removed job {short(key)} from {short(name)}.", "ok")
        else:
            flash(f"Job {short(key)} is no longer in {short(name)}.", "warn")
        return redirect(url_for("queue", name=name), 303)

    @app.post("/queue/delete")
    def queue_delete():
        name = request.form.get("name", "")
        client.delete_queue(name)
        flash(f"Deleted queue {short(name)} and its jobs.", "ok")
        return redirect(url_for("overview"), 303)

    @app.get("/workers")
    def workers():
        now = data.redis_now_ms(client)
        items = data.workers(client, now)
        return render_template(
            "workers.html", title="Workers", workers=items, counts=data.worker_counts(items), page="workers"
        )

    @app.get("/worker")
    def worker():
        wid = request.args.get("id", "")
        now = data.redis_now_ms(client)
        found = [w for w in client.workers() if w.id == wid]
        if not found:
            abort(404, "no such worker (it may have left)")
        return render_template(
            "worker.html",
            title=f"Worker {wid}",
            w=data.worker(found[0], now),
            stats=data.worker_stats(client, wid),
            page="workers",
        )

    @app.post("/worker/control")
    def worker_control():
        wid, verb = request.form.get("id", ""), request.form.get("command", "")
        if verb not in CONTROL_VERBS:
            abort(400, "unknown command")
        command = verb
        if verb == "kill":
            token = request.form.get("token", "")
            if not token or any(c.isspace() for c in token):
                flash("That worker holds no job to kill.", "warn")
                return redirect(url_for("worker", id=wid), 303)
            command = f"kill {token}"
        wid_text = short(wid)
        try:
            client.control(wid, command)
        except NotFound:
            flash(f"Worker {wid_text} is no longer registered.", "warn")
            return redirect(url_for("workers"), 303)
        flash(
            {
                "pause": f"Asked {wid_text} to pause after its current job.",
                "resume": f"Asked {wid_text} to resume.",
                "quit": f"Asked {wid_text} to finish its job and quit.",
                "kill": f"Asked {wid_text} to kill its running job; it will be recorded as jobwire.Killed.",
            }[verb],
            "ok",
        )
        back = {"workers": url_for("workers"), "overview": url_for("overview")}
        return redirect(back.get(request.form.get("back", ""), url_for("worker", id=wid)), 303)

    @app.get("/failed")
    def failed():
        filters = failed_filters()
        start = params.start()
        items, total = data.failures(client, start, FAILED_PAGE, **filters)
        return render_template(
            "failed.html",
            title="Failed",
            items=items,
            total=total,
            start=start,
            count=FAILED_PAGE,
            filters=filters,
            all_count=client.failed_count(),
            filtered=any(filters.values()),
            page="failed",
        )

    @app.post("/failed/retry")
    def failed_retry():
        key = request.form.get("key", "")
        shown = short(key)
        try:
            moved = client.retry_failed(key)
        except NotFound:
            flash(f"Failure {shown} was already retried or removed.", "warn")
        except InvalidJob as exc:
            flash(f"Cannot retry {shown}: {short(str(exc), 300)}", "error")
        else:
            flash(
                f"Retried {shown}." if moved else f"Failure {shown} changed meanwhile; nothing retried.",
                "ok" if moved else "warn",
            )
        return redirect(failed_url(failed_filters()), 303)

    @app.post("/failed/remove")
    def failed_remove():
        key = request.form.get("key", "")
        try:
            client.remove_failed(key)
        except NotFound:
            flash(f"Failure {short(key)} was already retried or removed.", "warn")
        else:
            flash(f"Removed failure {short(key)}.", "ok")
        return redirect(failed_url(failed_filters()), 303)

    @app.post("/failed/retry-all")
    def failed_retry_all():
        filters = failed_filters()
        flash(f"Retried {client.retry_all(**filters)} matching failures.", "ok")
        return redirect(failed_url(filters), 303)

    @app.post("/failed/remove-all")
    def failed_remove_all():
        filters = failed_filters()
        flash(f"Removed {client.remove_all(**filters)} matching failures.", "ok")
        return redirect(failed_url(filters), 303)

    @app.post("/failed/clear")
    def failed_clear():
        client.clear_failed()
        flash("Cleared every failure record.", "ok")
        return redirect(url_for("failed"), 303)

    @app.get("/stats")
    def stats():
        hours = stats_hours()
        now = data.redis_now_ms(client)
        return render_template(
            "stats.html",
            title="Stats",
            info=client.info(),
            hours=hours,
            choices=STATS_HOURS,
            series=data.minute_series(client, now, hours * 60),
            page="stats",
        )
