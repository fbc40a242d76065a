"""Protocol 1.3's quiet idle worker (protocol.md section 16, feature `quiet-idle`): what an idle
worker costs Redis, counted the way bench/run.py counts it (INFO commandstats, commands inside Lua
scripts included, a blocking call still waiting counted as issued), and that its longer idle beats
still recover a peer when the peer's lease lapses.

Timings are protocol.md 11's defaults divided by 5, so that a few idle periods fit in seconds: an
idle worker costs 5 times what it costs at the defaults, and 1 command a second at the defaults is
5 here.
"""

from __future__ import annotations

import time

from .core import MUST, Test, group
from .redisutil import Scripts, redis_time_ms, utc

P16 = "protocol.md#16-protocol-13-a-quiet-idle-worker"
FEATURE = "quiet-idle"

SCALED = {"heartbeat_ms": 1000, "lease_ms": 6000, "block_timeout_ms": 1000}  # protocol.md 11 / 5
SCALE = 5
SETTLE_S = 3.0  # after registering: the first beat (1 s) and the first idle block have begun
WINDOW_S = 8.0  # four idle beat periods (2 s each at these timings)
MAX_PER_S = 1.0 * SCALE  # the bound of protocol.md 16.4, scaled
GHOST_LEASE_MS = 2500  # lapses between two idle beats (2 s apart) of the worker under test
RECOVERY_BOUND_MS = SCALED["heartbeat_ms"] + 300  # within one heartbeat of the lapse, plus slack


def _issued(ctx) -> tuple[int, int]:
    """(commands completed so far, INFO itself excluded; clients blocked now) on the private Redis."""
    stats = ctx.r.info("commandstats")
    calls = sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")
    return calls, int(ctx.r.info("clients")["blocked_clients"])


@group(
    Test(
        "worker.idle.quiet-cost",
        P16,
        MUST,
        f"an idle worker with the default timings divided by {SCALE} issues at most {MAX_PER_S:.0f} Redis "
        f"commands a second over {WINDOW_S:.0f} s (1 a second at the defaults), scripts' inner commands "
        "and a blocking call still waiting included",
        feature=FEATURE,
    ),
    private_redis=True,
    weight=3,
)
def quiet_cost(ctx):
    w = ctx.start_worker("quiet", **SCALED)
    time.sleep(SETTLE_S)
    calls0, blocked0 = _issued(ctx)
    time.sleep(WINDOW_S)
    calls1, blocked1 = _issued(ctx)
    # completed in the window, plus a blocking call waiting at its end, minus one waiting at its
    # start (counted when it completes); the two INFO commandstats/clients pairs are excluded
    issued = calls1 - calls0 + blocked1 - blocked0 - 1  # the INFO clients of the first sample
    per_s = issued / WINDOW_S
    ctx.check(
        "worker.idle.quiet-cost",
        w.alive() and per_s <= MAX_PER_S,
        f"{issued} commands in {WINDOW_S} s = {per_s:.2f}/s (at most {MAX_PER_S:.0f}/s) with {SCALED}; {w.describe()}",
    )


def _register_ghost(ctx, wid: str, lease_ms: int) -> None:
    """A peer that registers through the spec's script with a short lease and then dies."""
    k = ctx.k
    Scripts(ctx.r).call(
        "heartbeat",
        [k.workers(), k.heartbeats(), k.leases(), k.worker_started(wid), k.worker_info(wid), k.meta()],
        [wid, lease_ms, "register", utc("%Y-%m-%d %H:%M:%S +0000"), "1", "impl", "ghost", "state", "idle"],
    )


@group(
    Test(
        "recovery.quiet-idle.next-lapse",
        P16,
        MUST,
        f"a peer that registers just after an idle worker's beat with a {GHOST_LEASE_MS} ms lease (it lapses "
        f"between two idle beats) is recovered within {RECOVERY_BOUND_MS} ms of its lapse",
        feature=FEATURE,
    ),
)
def quiet_next_lapse(ctx):
    w = ctx.start_worker("ql", **SCALED)
    time.sleep(SETTLE_S)  # idle: beats come at the idle period now
    first = ctx.r.zscore(ctx.k.leases(), w.worker_id)
    renewed = ctx.wait_for(lambda: (ctx.r.zscore(ctx.k.leases(), w.worker_id) or 0) > (first or 0), 5, 0.005)
    ctx.require(renewed, f"the idle worker did not renew its lease within 5 s: {w.describe()}")
    ghost = "ghost-host:77:ql"
    _register_ghost(ctx, ghost, GHOST_LEASE_MS)
    lapse_ms = int(ctx.r.zscore(ctx.k.leases(), ghost))
    gone = ctx.wait_for(lambda: ctx.r.zscore(ctx.k.leases(), ghost) is None, 8, 0.005)
    late_ms = redis_time_ms(ctx.r) - lapse_ms if gone else None
    ctx.check(
        "recovery.quiet-idle.next-lapse",
        late_ms is not None and late_ms <= RECOVERY_BOUND_MS,
        f"the peer was recovered {late_ms} ms after its lease lapsed (at most {RECOVERY_BOUND_MS}); {w.describe()}",
    )
