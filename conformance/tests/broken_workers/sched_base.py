"""The Python reference worker with one deliberate protocol 1.1 defect, to prove the suite's
delayed, retries and schedules tests can fail.

    python sched_base.py DEFECT --queues a [standard flags]

Defects (each sched_*.py entry script picks one):
  poll-only          promotes only when it beats: ignores the next due time and the wake marker
  random-jitter      draws the retry jitter from a random generator instead of FNV-1a
  ignores-attempts   always counts the failed attempt as the first: never exhausts its attempts
  racy-fire          fires schedules with plain RPUSH + ZADD instead of fire.lua's compare-and-set
  racy-promote       promotes with LRANGE + RPUSH + DEL instead of promote.lua
Needs the jobwire package (the repository's .venv).
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import time

from jobwire import backoff, cli, promotion, worker
from jobwire.promotion import Promotion
from jobwire.recurring import decide, fire_job_id


def poll_only() -> None:
    run = promotion.Promoter.run

    def no_next_due(self, redis, scripts):
        done = run(self, redis, scripts)
        done.next_due_s = None
        done.next_due_ms = -1  # knows no due time at all: the quiet look (16.3) then promotes at each look
        return done

    promotion.Promoter.run = no_next_due


def random_jitter() -> None:
    exact = backoff.retry_delay_ms

    def delay(policy, job_id, attempt):
        base = exact(dataclasses.replace(policy, jitter=0), job_id, attempt)
        return base - int(base * policy.jitter * random.random())

    backoff.retry_delay_ms = delay


def ignores_attempts() -> None:
    retry_or_fail = worker.Worker._retry_or_fail

    def forgetful(self, job, exception, error, backtrace=()):
        if isinstance(job.document, dict):
            job.document = {k: v for k, v in job.document.items() if k != "attempts"}
        return retry_or_fail(self, job, exception, error, backtrace)

    worker.Worker._retry_or_fail = forgetful


def racy_fire() -> None:
    def fire(self, redis, scripts, name, next_ms, now_ms):
        k = self.keys
        definition = json.loads(redis.hget(k.schedule(name), "definition"))
        d = decide(definition, next_ms, now_ms)
        if d.fire_ms is not None:
            redis.rpush(k.queue(definition["queue"]), self._payload(name, definition, d.fire_ms))
            redis.hset(k.schedule(name), "last_job_id", fire_job_id(name, d.fire_ms))
        redis.zadd(k.schedules, {name: d.next_ms})
        return int(d.fire_ms is not None)

    promotion.Promoter._fire = fire


def racy_promote() -> None:
    def run(self, redis, scripts):
        k = self.keys
        now = redis.time()
        moved = 0
        for ts in redis.zrangebyscore(k.delayed_schedule, "-inf", now[0]):
            bucket = k.delayed_bucket(ts.decode())
            items = redis.lrange(bucket, 0, -1)
            time.sleep(0.05)  # a promoter that reads, works, then deletes: others read the same items
            for raw in items:
                redis.rpush(k.queue(json.loads(raw)["queue"]), raw)
                moved += 1
            redis.delete(bucket)
            redis.zrem(k.delayed_schedule, ts)
        first = redis.zrange(k.delayed_schedule, 0, 0)
        due = (int(first[0]) * 1000 - (now[0] * 1000 + now[1] // 1000)) / 1000 if first else None
        return Promotion(moved=moved, next_due_s=None if due is None else max(0.001, due))

    promotion.Promoter.run = run


DEFECTS = {
    "poll-only": poll_only,
    "random-jitter": random_jitter,
    "ignores-attempts": ignores_attempts,
    "racy-fire": racy_fire,
    "racy-promote": racy_promote,
}


def main(defect: str) -> int:
    DEFECTS[defect]()
    return cli.main(["worker", "--import", "jobwire.conformance_jobs", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv.pop(1)))
