"""An idle worker is never deaf: long idle periods with the default timings, jobs at random instants.

Every other group runs workers with short timings (block timeout 500 ms, beats every 200 ms) and
keeps them busy, so a worker whose client gives up on its own blocking call just as Redis answers
it (the call's read timeout no longer than the block) passes them all. This group uses the
defaults of protocol.md section 11 and looks at the idle worker from outside: its connections to a
private Redis, its log, and how soon a job enqueued at a random instant is reserved.
"""

from __future__ import annotations

import random
import re
import time

from .core import MUST, Failed, Test, group

P83 = "protocol.md#83-blocking-while-idle"

DEFAULTS = {"heartbeat_ms": 5000, "lease_ms": 30000, "block_timeout_ms": 5000}  # protocol.md 11
BLOCK_S = DEFAULTS["block_timeout_ms"] / 1000
IDLE_S = 2 * BLOCK_S + 1.0  # longer than two block timeouts


def idle_s(ctx) -> float:
    """Longer than two of the worker's longest idle blocks: 2 x block-timeout for a worker claiming
    quiet-idle (protocol.md 16.3), so that a client read timeout equal to the block shows."""
    return (2 * IDLE_S - 1.0) if ctx.impl.has("quiet-idle") else IDLE_S


PROBES = 6
RESERVE_BOUND_S = 0.3  # enqueue -> reserved; a healthy idle worker takes a few ms, a deaf one 500+
# What a worker writes when something is wrong: level words and the words of a lost connection.
TROUBLE = re.compile(r"(?i)\b(warn|warning|error|unavailable|lost|reconnect\w*|timeout|timed out|retry\w*)\b")


def _connections_received(ctx) -> int:
    return int(ctx.r.info("stats")["total_connections_received"])


def _blocked_clients(ctx) -> int:
    """Clients of the private Redis sitting in a BLPOP: the worker is idle and waiting."""
    return sum(1 for c in ctx.r.client_list() if c.get("cmd") == "blpop")


def _log_since(w, offset: int) -> list[str]:
    """Lines the worker wrote after byte `offset` of its log that sound like trouble."""
    text = w.log_bytes()[offset:].decode("utf-8", "replace")
    return [line for line in text.splitlines() if TROUBLE.search(line)]


def _log_size(w) -> int:
    return len(w.log_bytes())


def _reserved_within(ctx, sub, timeout: float) -> float | None:
    """Seconds until the keyspace notification of the in-flight hash's HSET, or None."""
    t0 = time.monotonic()
    while (left := timeout - (time.monotonic() - t0)) > 0:
        msg = sub.get_message(timeout=left)
        if msg and msg.get("type") == "message" and msg.get("data") == b"hset":
            return time.monotonic() - t0
    return None


@group(
    Test(
        "worker.idle.quiet",
        P83,
        MUST,
        "an idle worker with the default timings keeps its Redis connections and logs no warning "
        "for longer than two block timeouts",
    ),
    Test(
        "worker.idle.latency",
        P83,
        MUST,
        f"a job enqueued at a random instant while the worker idles is reserved within "
        f"{int(RESERVE_BOUND_S * 1000)} ms",
    ),
    private_redis=True,
    weight=6,
)
def idle_worker(ctx):
    ctx.r.config_set("notify-keyspace-events", "Kh")
    w = ctx.start_worker("idle", **DEFAULTS)
    sub = ctx.r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(f"__keyspace@0__:{ctx.k.inflight(w.worker_id)}")
    if not ctx.wait_for(lambda: _blocked_clients(ctx), 15, 0.05):  # started up: waiting for work
        raise Failed(f"the worker never blocked on Redis (no client in BLPOP): {w.describe()}")
    time.sleep(0.3)  # its start-up lines are written
    offset, conns = _log_size(w), _connections_received(ctx)

    idle_for = idle_s(ctx)
    time.sleep(idle_for)
    new_conns = _connections_received(ctx) - conns
    trouble = _log_since(w, offset)
    ctx.check(
        "worker.idle.quiet",
        w.alive() and new_conns == 0 and not trouble,
        f"in {idle_for:.0f} s idle: {new_conns} new connections to Redis, log lines {trouble[:4]}; {w.describe()}",
    )

    rng = random.Random()
    late, taken = [], []
    for n in range(PROBES):
        time.sleep(rng.uniform(0.05, 1.2 * BLOCK_S))
        job = ctx.enqueue("idle", "jobwire.Echo", [n])
        took = _reserved_within(ctx, sub, 3.0)
        taken.append(took if took is not None else 3.0)
        if took is None or took > RESERVE_BOUND_S:
            late.append("not reserved within 3 s" if took is None else f"{took * 1000:.0f} ms")
        if ctx.wait_echo(job, 5) is None:
            raise Failed(f"probe job {n} did not run: {w.describe()}")
    sub.close()
    ctx.figures["idle_reserve_ms_max"] = round(max(taken) * 1000, 1)
    trouble = _log_since(w, offset)
    ctx.check("worker.idle.latency", not late, f"{len(late)} of {PROBES} jobs late: {late}; {w.describe()}")
    ctx.check("worker.idle.quiet", not trouble, f"log lines while idle between jobs: {trouble[:4]}")
