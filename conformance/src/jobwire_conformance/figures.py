"""Measured figures (never pass/fail): Noop throughput and enqueue-to-echo latency."""

from __future__ import annotations

import json
import statistics
import time
import uuid

from .core import Context, Group
from .redisutil import enqueue as lua_enqueue


def throughput(ctx: Context) -> None:
    n = 200 if ctx.impl.mode == "fork" else 500
    payloads = [
        json.dumps({"class": "jobwire.Noop", "args": [i], "id": uuid.uuid4().hex}, separators=(",", ":"))
        for i in range(n)
    ]
    for i in range(0, n, 1000):
        lua_enqueue(ctx.r, ctx.k, "tp", *payloads[i : i + 1000])
    t0 = time.monotonic()
    w = ctx.start_worker("tp")
    t1 = time.monotonic()
    done = ctx.wait_for(lambda: int(ctx.r.get(ctx.k.stat_processed()) or 0) >= n, 60, 0.01)
    t2 = time.monotonic()
    if done:
        ctx.figures["noop_jobs_per_s"] = round(n / (t2 - t1), 1)
        ctx.figures["noop_jobs"] = n
    ctx.figures["worker_start_ms"] = round((t1 - t0) * 1000, 1)
    lat = []
    for i in range(10):
        job = ctx.enqueue("tp", "jobwire.Echo", [i])
        s = time.monotonic()
        if (
            ctx.wait_echo(
                job,
                5,
            )
            is None
        ):
            break
        lat.append((time.monotonic() - s) * 1000)
        time.sleep(0.05)
    if lat:
        ctx.figures["echo_latency_ms_median"] = round(statistics.median(lat), 1)
        ctx.figures["echo_latency_ms_p90"] = round(sorted(lat)[int(len(lat) * 0.9) - 1], 1)
    w.signal(3)


FIGURE_GROUPS = [Group("figures", [], throughput)]
