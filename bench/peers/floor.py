"""The floor of make bench: the least a Redis list worker can do, with no queue system at all.

    floor.py   (REDIS_URL from the environment; run with bench/.venv/bin/python)

One redis-py connection BLPOPs bench:floor; an element "e" is an echo job (RPUSH to the echo
list, as every system's echo job does), anything else a no-op. No payload, no bookkeeping, no
recovery: its rows say what this machine, Redis and one Python process allow (throughput bound
by one round trip a job, and the jitter in every p99), so the other rows can be read against it."""

from __future__ import annotations

import os
import signal
import sys

import redis

from common import ECHO_KEY

FLOOR_QUEUE = "bench:floor"


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    while True:
        popped = r.blpop(FLOOR_QUEUE, timeout=2)  # under redis-py 8's default socket timeout (5 s)
        if popped and popped[1] == b"e":
            r.rpush(ECHO_KEY, "1")


if __name__ == "__main__":
    sys.exit(main())
