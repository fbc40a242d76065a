"""The Python peers' client side for make bench, run with bench/.venv/bin/python:

    pyclient.py fill SYSTEM N       enqueue echo, N-2 noops, echo (the processing run's markers)
    pyclient.py probe SYSTEM K      K latency probes to an idle worker; prints the ms as JSON
    pyclient.py enqueue N           enqueue rates, one by one and bulk; prints JSON

SYSTEM is rq, celery, dramatiq (the client is the same for each of its worker kinds) or floor
(floor.py: plain RPUSHes of "n" and "e")."""

from __future__ import annotations

import json
import sys
import time

import redis

import pyjobs
from common import ECHO_KEY, latency_loop


def rq_queue():
    from rq import Queue

    return Queue("bench", connection=redis.Redis.from_url(pyjobs.URL))


def senders(system: str):
    """(send a noop, send an echo) for one system."""
    if system == "rq":
        q = rq_queue()
        return (lambda: q.enqueue(pyjobs.noop), lambda: q.enqueue(pyjobs.rq_echo))
    if system == "celery":
        return (
            lambda: pyjobs.celery_noop.apply_async(queue="bench"),
            lambda: pyjobs.celery_echo.apply_async(queue="bench"),
        )
    if system == "dramatiq":
        return (pyjobs.dramatiq_noop.send, pyjobs.dramatiq_echo.send)
    if system == "floor":
        from floor import FLOOR_QUEUE

        r = redis.Redis.from_url(pyjobs.URL)
        return (lambda: r.rpush(FLOOR_QUEUE, "n"), lambda: r.rpush(FLOOR_QUEUE, "e"))
    raise SystemExit(f"unknown system {system}")


def fill(system: str, n: int) -> None:
    """The echo markers first and last, n-2 noops between; RQ's noops in bulk (enqueue_many)."""
    noop, echo = senders(system)
    echo()
    if system == "rq":
        from rq import Queue

        q = rq_queue()
        for start in range(0, n - 2, 1000):
            q.enqueue_many([Queue.prepare_data(pyjobs.noop) for _ in range(min(1000, n - 2 - start))])
    else:
        for _ in range(n - 2):
            noop()
    echo()


def rate(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def enqueue(n: int) -> dict:
    """One by one for each peer, and RQ's enqueue_many (1000 per call, in a pipeline)."""
    from rq import Queue

    rates = {}
    for system in ("rq", "celery", "dramatiq"):
        noop, _ = senders(system)
        noop()  # connect (and declare) before the clock starts
        rates[f"{system} one by one"] = rate(noop, n)
    q = rq_queue()
    start = time.perf_counter()
    chunks = max(1, n * 4 // 1000)
    for _ in range(chunks):
        q.enqueue_many([Queue.prepare_data(pyjobs.noop) for _ in range(1000)])
    rates["rq enqueue_many bulk"] = chunks * 1000 / (time.perf_counter() - start)
    return rates


def main() -> int:
    mode, arg = sys.argv[1], sys.argv[2:]
    if mode == "fill":
        fill(arg[0], int(arg[1]))
    elif mode == "probe":
        _, echo = senders(arg[0])
        r = redis.Redis.from_url(pyjobs.URL)
        r.ping()
        print(json.dumps(latency_loop(echo, r, ECHO_KEY, int(arg[1]))))
    elif mode == "enqueue":
        print(json.dumps(enqueue(int(arg[0]))))
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
