"""The web UI's read-only JSON API (/api/...), which the live-update pages poll, and /metrics.

Each route returns what its page shows, as JSON built by data.py; /metrics is Prometheus text
(metrics.py) including the protocol 1.1 gauges.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from ..client import Client
from . import data, metrics, params, scheduling
from .params import FAILED_PAGE, failed_filters, stats_hours

__all__ = ["register"]


def register(app: Flask, client: Client) -> None:
    """Add /api/overview, /api/queues, /api/workers, /api/failed, /api/stats and /metrics."""

    @app.get("/api/overview")
    def api_overview():
        return jsonify(data.overview(client))

    @app.get("/api/queues")
    def api_queues():
        return jsonify(queues=data.queue_summaries(client, data.redis_now_ms(client)))

    @app.get("/api/workers")
    def api_workers():
        now = data.redis_now_ms(client)
        items = data.workers(client, now)
        wid = request.args.get("id")
        if wid is not None:
            match = [w for w in items if w["id"] == wid]
            return jsonify(
                worker=match[0] if match else None, stats=data.worker_stats(client, wid) if match else None, now_ms=now
            )
        return jsonify(workers=items, counts=data.worker_counts(items), now_ms=now)

    @app.get("/api/failed")
    def api_failed():
        try:
            count = max(1, min(500, int(request.args.get("count", str(FAILED_PAGE)))))
        except ValueError:
            count = FAILED_PAGE
        start = params.start()
        items, total = data.failures(client, start, count, **failed_filters())
        return jsonify(failed=items, total=total, start=start, count=count)

    @app.get("/api/stats")
    def api_stats():
        hours = stats_hours()
        now = data.redis_now_ms(client)
        return jsonify(info=client.info(), hours=hours, series=data.minute_series(client, now, hours * 60), now_ms=now)

    @app.get("/metrics")
    def prometheus():
        return Response(
            metrics.render(data.overview(client), scheduling=scheduling.gauges(client)),
            200,
            {"Content-Type": metrics.CONTENT_TYPE},
        )
