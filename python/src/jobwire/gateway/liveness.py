"""Leases of many streams on one gateway: beats batched, live streams never recovered by their own gateway.

A gateway holds hundreds of worker streams. Starved of CPU (or stopped), its beats queued behind
the shared connection pool and its streams' leases lapsed; then every beat and register reply
listed lapsed siblings, each was recovered as dead although its worker was alive and beating,
its outcome turned stale, its beats answered `unknown`, and each re-register recovered more
(issue #16). Three parts here keep a starved gateway whole (spec/rationale.md, "A starved gateway"):

- AwakeClock: time the gateway was able to run. A stall (SIGSTOP, a starved event loop) does not
  advance it, so a stream whose beats were merely waiting to be read does not look silent.
- BeatBatcher: every stream's pending beat goes in one pipelined call of heartbeat.lua (the
  spec's script, unchanged) on a connection of its own, so beats never wait behind other traffic
  and a thousand streams cost one round trip per batch.
- Recoveries: lapsed peers reported by any reply are recovered one at a time, each id once,
  except streams this gateway holds alive (a beat within their lease, in awake time): for those
  it renews the lease instead.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
import redis.exceptions as rexc

__all__ = ["AwakeClock", "BeatBatcher", "Recoveries"]

log = logging.getLogger("jobwire.gateway.liveness")
REDIS_ERRORS = (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError)
TICK_S = 0.1  # the awake clock's resolution
BEAT_COALESCE_S = 0.02  # beats arriving this close together share one pipeline
BEAT_CHUNK = 500  # beats per pipeline execute: bounds one batch's time inside Redis
RECOVERY_BACKLOG = 1000  # lapsed ids waiting at most; beyond it later replies list them again


class AwakeClock:
    """Seconds during which the event loop ran: each tick adds at most 2 x TICK_S."""

    def __init__(self) -> None:
        self._awake = 0.0

    def now(self) -> float:
        return self._awake

    async def run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            self._awake += min(now - last, 2 * TICK_S)  # a longer gap is a stall, not time we saw pass
            last = now


class BeatBatcher:
    """Beats of all streams, sent together: `want(session)`; the session's `beat_reply` gets the answer."""

    def __init__(self, redis_url: str, socket_timeout: float) -> None:
        # One connection of its own: beats never queue behind the shared pool (issue #16).
        self.redis = aioredis.Redis(
            connection_pool=aioredis.ConnectionPool.from_url(
                redis_url, max_connections=1, socket_connect_timeout=5, socket_timeout=socket_timeout
            )
        )
        self._wanted: dict[object, None] = {}  # insertion-ordered set of sessions
        self._event = asyncio.Event()
        self.batches = 0  # pipelines sent, for logs and tests

    def want(self, session) -> None:
        """Renew `session`'s lease soon; a second beat before the batch leaves is one beat."""
        self._wanted[session] = None
        self._event.set()

    async def run(self) -> None:
        await self._connect()
        while True:
            await self._event.wait()
            await asyncio.sleep(BEAT_COALESCE_S)
            self._event.clear()
            batch, self._wanted = list(self._wanted), {}
            for start in range(0, len(batch), BEAT_CHUNK):
                await self._send(batch[start : start + BEAT_CHUNK])

    async def _connect(self) -> None:
        """Open the beat connection at start: an idle worker's first beat opens no connection
        (protocol.md 7.5's quiet idle worker; the suite's worker.idle.quiet counts them)."""
        try:
            await self.redis.ping()
        except REDIS_ERRORS as exc:
            log.warning("beat connection: Redis unavailable (%s); the first beat connects", exc)

    async def _send(self, sessions: list) -> None:
        """One pipeline of heartbeat.lua beats; each session handles its own reply or error."""
        pipe = self.redis.pipeline(transaction=False)
        for s in sessions:
            await s.heartbeat_call("beat", client=pipe)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except REDIS_ERRORS as exc:
            log.warning("%d beats failed, Redis unavailable (%s); the workers beat again", len(sessions), exc)
            return
        self.batches += 1
        for s, reply in zip(sessions, replies, strict=True):
            try:
                s.beat_reply(reply)
            except Exception:  # noqa: BLE001 - one session's trouble must not drop the others' beats
                log.exception("worker %s: beat failed", s.id)

    async def aclose(self) -> None:
        await self.redis.aclose(close_connection_pool=True)


class Recoveries:
    """Lapsed peers to recover (protocol.md 7.6), one at a time, each (namespace, id) once."""

    def __init__(self, gateway) -> None:
        self.gw = gateway
        self._queue: asyncio.Queue = asyncio.Queue(RECOVERY_BACKLOG)
        self._pending: set[tuple[str, str]] = set()

    def offer(self, session, dead_ids) -> None:
        """Peers `session`'s reply listed as lapsed. Ours and alive: renew. Others: queue once."""
        for raw in dead_ids:
            dead = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            key = (session.keys.ns, dead)
            ours = self.gw.live_session(key)
            if ours is not None:
                self.gw.beats.want(ours)  # it beat within its lease: its renewal was only late
                continue
            if key in self._pending or self._queue.full():
                continue
            self._pending.add(key)
            self._queue.put_nowait((session, dead, key))

    async def run(self) -> None:
        while True:
            session, dead, key = await self._queue.get()
            try:
                if self.gw.live_session(key) is None:  # it may have beaten meanwhile
                    await session.recover(dead)
            except REDIS_ERRORS as exc:
                log.warning("recovering %s: Redis unavailable (%s); a later reply lists it again", dead, exc)
            except Exception:  # noqa: BLE001 - recovery must go on for the next id
                log.exception("recovering %s failed", dead)
            finally:
                self._pending.discard(key)
