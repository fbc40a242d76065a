"""Prometheus text exposition format 0.0.4, written by hand (no dependency)."""

from __future__ import annotations

import math

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    """A label value with backslash, double quote and newline escaped, as the format requires."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value) -> str:
    if value is None:
        return "NaN"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    return str(int(value))


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str, samples) -> None:
        """samples: [(labels dict, value)]."""
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
                self.lines.append(f"{name}{{{inner}}} {_number(value)}")
            else:
                self.lines.append(f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(overview: dict | None, error: str | None = None, scheduling: dict | None = None) -> str:
    """The exposition for one overview (web.data.overview), or just jobwire_up 0 on error."""
    out = Exposition()
    out.metric(
        "jobwire_up", "gauge", "1 when Redis answered this scrape, else 0.", [({}, 0 if overview is None else 1)]
    )
    if overview is None:
        return out.text()
    info, queues, counts = overview["info"], overview["queues"], overview["workers"]
    out.metric(
        "jobwire_queue_depth", "gauge", "Jobs waiting in a queue.", [({"queue": q["name"]}, q["size"]) for q in queues]
    )
    out.metric(
        "jobwire_queue_oldest_job_age_seconds",
        "gauge",
        "Age of the job at the head of a queue, from its enqueued_at (queues whose head has one).",
        [({"queue": q["name"]}, q["oldest_age_ms"] / 1000.0) for q in queues if q["oldest_age_ms"] is not None],
    )
    out.metric(
        "jobwire_processed_total",
        "counter",
        "Jobs settled, successful or not (stat:processed).",
        [({}, info["processed"])],
    )
    out.metric("jobwire_failed_total", "counter", "Jobs settled as failures (stat:failed).", [({}, info["failed"])])
    out.metric(
        "jobwire_failed_list_length", "gauge", "Failure records in the failed list.", [({}, info["failed_list"])]
    )
    out.metric(
        "jobwire_workers",
        "gauge",
        "Registered workers by state.",
        [({"state": s}, counts[s]) for s in ("busy", "idle", "paused")],
    )
    out.metric("jobwire_pending_jobs", "gauge", "Jobs waiting in all queues.", [({}, info["pending"])])
    spaces = overview.get("namespaces") or []  # protocol.md 15.2: the home and every group namespace
    for name, key, kind, help_text in (
        ("jobwire_namespace_pending_jobs", "pending", "gauge", "Jobs waiting in a namespace's queues."),
        ("jobwire_namespace_processed_total", "processed", "counter", "Jobs settled in a namespace."),
        ("jobwire_namespace_failed_total", "failed", "counter", "Jobs settled as failures in a namespace."),
        ("jobwire_namespace_workers", "workers", "gauge", "Workers registered in a namespace."),
    ):
        out.metric(name, kind, help_text, [({"namespace": n["name"]}, n[key]) for n in spaces])
    if scheduling is not None:  # protocol 1.1 (web.scheduling.gauges)
        out.metric(
            "jobwire_scheduled_jobs", "gauge", "Delayed jobs waiting for their time.", [({}, scheduling["scheduled"])]
        )
        out.metric(
            "jobwire_retrying_jobs",
            "gauge",
            "Failed jobs waiting for their next attempt.",
            [({}, scheduling["retrying"])],
        )
        out.metric(
            "jobwire_schedules",
            "gauge",
            "Recurring schedules by state.",
            [({"state": "ok"}, scheduling["schedules_ok"]), ({"state": "broken"}, scheduling["schedules_broken"])],
        )
        out.metric(
            "jobwire_schedule_missed_total",
            "counter",
            "Fire times of a schedule counted as missed.",
            [({"schedule": name}, n) for name, n in scheduling["missed"].items()],
        )
    return out.text()
