"""What every Python side of make bench shares (the harness in the project's venv, the Python peers
in bench/.venv): the echo list a marker or probe job pushes to, and the enqueue-to-echo latency loop.
Only redis-py is imported, which both venvs have."""

from __future__ import annotations

import time

# A peer's marker/probe job RPUSHes to this list (jobwire's jobwire.Echo uses its own key).
ECHO_KEY = "bench:echo"


def latency_loop(enqueue, r, key: str, samples: int, gap_s: float = 0.015) -> list[float]:
    """Enqueue one probe job at a time to an idle worker and time, in ms, from just before the
    enqueue call to the moment the job's own RPUSH is seen (BLPOP on key): enqueue-to-start plus
    the one write a job makes, the same for every system."""
    values = []
    for _ in range(samples):
        time.sleep(gap_s)  # let the worker go idle and block again
        start = time.perf_counter()
        enqueue()
        if r.blpop(key, timeout=10) is None:
            raise RuntimeError("a latency probe job was not run within 10 s")
        values.append((time.perf_counter() - start) * 1000)
    return values
